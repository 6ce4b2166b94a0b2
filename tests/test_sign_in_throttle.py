"""Sign-in guessing is bounded per account whatever the source, forwarded headers count only
from named proxies, and one client's failures never lock out another's correct password."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest

from assay.server.security.web import SignInThrottle
from assay.server.ui import account
from assay.services import accounts
from assay.services.principal import Principal
from assay.settings import Settings
from tests.conftest import LiveServer, start_server

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    account.failures = SignInThrottle()
    yield
    account.failures = SignInThrottle()


def _with_user(server: LiveServer) -> LiveServer:
    accounts.create_user(server.runtime, Principal.operator(), "ada", PASSWORD, is_admin=True)
    return server


@pytest.fixture
def users_live(live: LiveServer) -> LiveServer:
    return _with_user(live)


@pytest.fixture
def proxied_live(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(replace(settings, trusted_proxies=("127.0.0.0/8",)))
    try:
        yield _with_user(server)
    finally:
        server.stop()


def sign_in(client: httpx.Client, password: str, **headers: str) -> int:
    form = client.get("/login", headers=headers).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert found, form[:500]
    answer = client.post(
        "/login",
        data={"name": "ada", "password": password, "csrf_token": found.group(1), "next": "/"},
        headers=headers,
    )
    return answer.status_code


def test_a_rotating_forwarded_header_from_an_unnamed_proxy_does_not_escape(
    users_live: LiveServer,
) -> None:
    with users_live.client() as client:
        statuses = [
            sign_in(client, "guess", **{"x-forwarded-for": f"203.0.113.{n}"}) for n in range(8)
        ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}


def test_one_clients_failures_never_lock_out_another_clients_correct_password(
    users_live: LiveServer,
) -> None:
    with users_live.client() as attacker:
        statuses = [sign_in(attacker, "guess") for _ in range(30)]
        assert statuses.count(429) == 25
        assert sign_in(attacker, PASSWORD) == 429  # this client is locked out, rightly
    with users_live.client() as colleague:  # same address (think NAT), another browser
        assert sign_in(colleague, PASSWORD) == 303


def test_guesses_per_account_are_bounded_whatever_the_source(users_live: LiveServer) -> None:
    account.failures = SignInThrottle(account_free=3, account_interval=0.5, max_wait=1.2)
    regular = users_live.client()  # a browser ada signed in from before
    assert sign_in(regular, PASSWORD) == 303
    assert "assay_device" in regular.cookies
    regular.cookies.delete("assay_session")

    def fresh_guess(_: int) -> int:
        with users_live.client() as client:  # a new browser every time
            return sign_in(client, "guess")

    assert [fresh_guess(n) for n in range(3)] == [401, 401, 401]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(fresh_guess, range(8)))
    elapsed = time.monotonic() - started
    checked = statuses.count(401)
    # One check per 0.5 s for the whole account, queued for at most 1.2 s: the rest wait out.
    assert statuses.count(429) >= 3 and checked <= 4, statuses
    assert elapsed >= (checked - 1) * 0.5 - 0.1
    # While guessers overfill the queue (some of them refused), a trusted browser is not
    # in it ...
    with ThreadPoolExecutor(8) as pool:
        guessing = [pool.submit(fresh_guess, n) for n in range(8)]
        time.sleep(0.3)
        assert sign_in(regular, PASSWORD) == 303
        assert 429 in [future.result() for future in guessing]
    regular.close()
    # ... and a fresh browser with the right password waits its turn, then gets in.
    time.sleep(1.5)
    with users_live.client() as newcomer:
        assert sign_in(newcomer, PASSWORD) == 303


def test_forwarded_headers_count_from_named_proxies(proxied_live: LiveServer) -> None:
    with proxied_live.client() as client:
        for _ in range(5):
            assert sign_in(client, "guess", **{"x-forwarded-for": "198.51.100.7"}) == 401
        assert sign_in(client, "guess", **{"x-forwarded-for": "198.51.100.7"}) == 429
        # The address is the proxy's report, read from the right: a client-written entry to
        # the left of it changes nothing.
        spoofed = {"x-forwarded-for": "10.9.9.9, 198.51.100.7"}
        assert sign_in(client, "guess", **spoofed) == 429
        assert sign_in(client, PASSWORD, **{"x-forwarded-for": "198.51.100.8"}) == 303
    with proxied_live.client() as fresh:
        login = fresh.get("/login", headers={"x-forwarded-proto": "https"})
        assert "; secure" in login.headers["set-cookie"].lower()
    with httpx.Client(base_url=proxied_live.url) as fresh:
        assert "; secure" not in fresh.get("/login").headers["set-cookie"].lower()
