"""Sign-in, sign-out, CSRF, roles and the settings page, in a real browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import Browser, Cookie, Page

from assay.server.security.web import SignInThrottle
from assay.server.ui import account
from assay.store import keys as key_store
from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span
from tests.ui.conftest import USER_PASSWORD, expect, login, page_errors, screenshot, seed_user

if TYPE_CHECKING:
    # Only the implementation module names the type add_cookies takes.
    from playwright._impl._api_structures import SetCookieParam


def _replayable(cookies: list[Cookie]) -> list[SetCookieParam]:
    """Cookies read from a browser as add_cookies takes them back (Playwright types the two
    apart: the same keys, optional in one)."""
    return [
        {
            "name": cookie["name"],
            "value": cookie["value"],
            "domain": cookie["domain"],
            "path": cookie["path"],
            "expires": cookie["expires"],
            "httpOnly": cookie["httpOnly"],
            "secure": cookie["secure"],
            "sameSite": cookie["sameSite"],
        }
        for cookie in cookies
    ]


def _keys(server: LiveServer) -> list[dict[str, object]]:
    with server.runtime.engine.connect() as conn:
        return key_store.list_keys(conn)


def _errors(page: Page, *refused: int) -> list[str]:
    """Page errors, less the console's note about a refusal the test asked for."""
    expected = tuple(f"status of {status} " for status in refused)
    return [
        error
        for error in page_errors(page)
        if not (error.startswith("Failed to load resource") and any(e in error for e in expected))
    ]


def _csrf(page: Page) -> str:
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    assert token
    return token


def _send_trace(server: LiveServer, project: str, name: str) -> str:
    """Ingest one trace with an administrator's key (whatever keys earlier tests made)."""
    with server.runtime.updates.begin() as conn:
        secret, _ = key_store.create(conn, name="ingest", role="admin", project=None)
    trace_id = new_trace_id()
    body = protobuf([span(trace_id, new_span_id(), name)], resource={"assay.project": project})
    headers = {**PB, "authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
    return trace_id.hex()


@pytest.fixture(autouse=True)
def _fresh_failure_counts() -> Iterator[None]:
    yield
    account.failures = SignInThrottle()


# --- on both engines --------------------------------------------------------------------


def test_sign_in_wrong_then_right_password_and_sign_out(live: LiveServer, page: Page) -> None:
    seed_user(live, "maria", roles={"shop": "editor"})
    page.goto(live.url + "/settings")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fsettings$"))
    screenshot(page, f"login-{live.runtime.engine.dialect.name}")

    for name in ("maria", "nobody-here"):  # the same answer for a wrong password and no user
        page.fill("#login-name", name)
        page.fill("#login-password", "not the password")
        page.click("form[action='/login'] button[type=submit]")
        expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
        assert "/login" in page.url
    assert not [c for c in page.context.cookies() if c["name"] == "assay_session"]

    page.fill("#login-name", "maria")
    page.fill("#login-password", USER_PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    expect(page).to_have_url(live.url + "/settings")  # back where the sign-in began
    expect(page.locator(".account a[href='/settings']")).to_have_text("maria")
    expect(page.locator("#account")).to_contain_text("editor")
    cookie = next(c for c in page.context.cookies() if c["name"] == "assay_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain http on loopback; https requests get Secure
    screenshot(page, f"settings-signed-in-{live.runtime.engine.dialect.name}")

    page.click("text=Sign out")
    expect(page).to_have_url(re.compile(r"/login\?signed_out=1$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    assert not [c for c in page.context.cookies() if c["name"] == "assay_session"]
    page.go_back()  # the browser keeps no copy of the signed-in page
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("main")).not_to_contain_text("Your account")
    # The old cookie, replayed, opens nothing: the session was deleted on the server.
    page.context.add_cookies(_replayable([cookie]))
    page.goto(live.url + "/settings")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert _errors(page, 401) == []


# --- SQLite only ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/settings?x=1", "/settings?x=1"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_only_leads_to_local_paths(target: str, landing: str) -> None:
    assert account.safe_next(target) == landing


def test_sign_in_never_redirects_off_site(signed_in_live: LiveServer, page: Page) -> None:
    for target in ("//evil.example/x", "/%5Cevil.example", "https:evil.example"):
        page.context.clear_cookies()
        page.goto(f"{signed_in_live.url}/login?next={target}")
        page.fill("#login-name", "vic")
        page.fill("#login-password", USER_PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_load_state()
        assert page.url.startswith(signed_in_live.url + "/"), page.url
    assert page_errors(page) == []


def test_sign_in_rotates_the_session_and_limits_guessing(
    signed_in_live: LiveServer, page: Page
) -> None:
    login(page, signed_in_live.url, "vic")
    first = next(c for c in page.context.cookies() if c["name"] == "assay_session")
    # Signing in with a session cookie already set (say, one planted by an attacker) gives a
    # new session and ends the old one.
    page.context.clear_cookies()
    page.goto(signed_in_live.url + "/login")
    page.context.add_cookies(_replayable([first]))
    page.fill("#login-name", "vic")
    page.fill("#login-password", USER_PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    expect(page).to_have_url(signed_in_live.url + "/")
    second = next(c for c in page.context.cookies() if c["name"] == "assay_session")
    assert first["value"] != second["value"]
    page.context.clear_cookies()
    page.context.add_cookies(_replayable([first]))
    page.goto(signed_in_live.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))  # the pre-rotation session is gone

    for _ in range(account.failures.per_client):
        page.fill("#login-name", "ed")
        page.fill("#login-password", "guess guess guess")
        page.click("form[action='/login'] button[type=submit]")
        expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    page.fill("#login-name", "ed")
    page.fill("#login-password", USER_PASSWORD)  # even the right password waits now
    page.click("form[action='/login'] button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    assert _errors(page, 401, 429) == []


def test_forged_posts_are_refused_and_change_nothing(
    signed_in_live: LiveServer, browser: Browser, page: Page
) -> None:
    login(page, signed_in_live.url, "admin")
    before = len(_keys(signed_in_live))
    action = signed_in_live.url + "/settings/keys"
    fields: dict[str, str | float | bool] = {"project": "alpha", "role": "admin", "name": "forged"}
    # The victim's own cookie, but no token / a wrong token / the right token from elsewhere.
    assert page.request.post(action, form=fields).status == 403
    assert page.request.post(action, form={**fields, "csrf_token": "x" * 43}).status == 403
    token = _csrf(page)
    elsewhere = {"Origin": "http://evil.example"}
    refused = page.request.post(action, form={**fields, "csrf_token": token}, headers=elsewhere)
    assert refused.status == 403 and "another site" in refused.text()
    # A page on another origin that submits a form to Assay.
    evil = browser.new_context()
    evil.add_cookies(_replayable(page.context.cookies()))
    attacker = evil.new_page()
    attacker.route(
        "http://evil.example/",
        lambda route: route.fulfill(
            content_type="text/html",
            body=(
                f'<form id="f" method="post" action="{action}">'
                '<input name="project" value="alpha"><input name="role" value="admin">'
                '<input name="name" value="forged"><input name="csrf_token" value="guess">'
                '</form><script>document.getElementById("f").submit()</script>'
            ),
        ),
    )
    attacker.goto("http://evil.example/")
    attacker.wait_for_url(re.compile(re.escape(signed_in_live.url)))
    assert "API key created" not in attacker.content()
    evil.close()
    # A sign-in form posted without its token is refused too (no login CSRF).
    assert (
        page.request.post(
            signed_in_live.url + "/login", form={"name": "admin", "password": USER_PASSWORD}
        ).status
        == 403
    )
    assert len(_keys(signed_in_live)) == before
    assert _errors(page, 403) == []


def test_project_admin_creates_a_key_shown_once_and_revokes_it(
    signed_in_live: LiveServer, page: Page
) -> None:
    login(page, signed_in_live.url, "ada")  # admin of alpha only
    page.goto(signed_in_live.url + "/settings")
    options = page.locator("#key-project option").all_inner_texts()
    assert options == ["alpha"]  # neither beta nor "every project"
    page.fill("#key-name", "ci <b>runner</b>")
    page.select_option("#key-role", "viewer")
    page.click("#key-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/settings\?done=key-created"))
    secret = page.locator("#new-secret").inner_text()
    assert secret.startswith("assay_") and secret not in page.url
    row = page.locator("#key-table tr", has_text="ci <b>runner</b>")  # shown as text
    expect(row).to_contain_text("alpha")
    screenshot(page, "settings-key-created")
    with httpx.Client(base_url=signed_in_live.url) as client:
        answer = client.get(
            "/api/v1/projects/alpha/traces", headers={"authorization": f"Bearer {secret}"}
        )
        assert answer.status_code == 200
    page.reload()
    expect(page.locator("#new-secret")).to_have_count(0)  # shown once
    assert secret not in page.content()

    # Keys for a project ada does not administer, or for every project, are refused.
    token = _csrf(page)
    for project in ("beta", ""):
        refused = page.request.post(
            signed_in_live.url + "/settings/keys",
            form={"project": project, "role": "admin", "csrf_token": token},
        )
        assert refused.status == 403
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("API key revoked")
    expect(page.locator("#key-table tr", has_text="ci <b>runner</b>")).to_contain_text("revoked")
    with signed_in_live.runtime.engine.connect() as conn:
        assert key_store.lookup(conn, secret) is None
    assert _errors(page, 403) == []


def test_an_annotator_cannot_create_api_keys(signed_in_live: LiveServer, page: Page) -> None:
    login(page, signed_in_live.url, "ann")
    page.goto(signed_in_live.url + "/settings")
    expect(page.locator("#keys")).to_contain_text("managed by the administrators")
    expect(page.locator("#key-form")).to_have_count(0)
    expect(page.locator("#users")).to_have_count(0)
    screenshot(page, "settings-annotator")
    before = len(_keys(signed_in_live))
    direct = page.request.post(
        signed_in_live.url + "/settings/keys",
        form={"project": "alpha", "role": "viewer", "csrf_token": _csrf(page)},
    )
    assert direct.status == 403
    user_admin = page.request.post(
        signed_in_live.url + "/settings/users",
        form={
            "name": "sneaky",
            "password": USER_PASSWORD,
            "is_admin": "on",
            "csrf_token": _csrf(page),
        },
    )
    assert user_admin.status == 403
    assert len(_keys(signed_in_live)) == before
    assert _errors(page, 403) == []


def test_a_user_of_one_project_sees_nothing_of_another(
    signed_in_live: LiveServer, page: Page
) -> None:
    _send_trace(signed_in_live, "alpha", "alpha-visible-step")
    hidden = _send_trace(signed_in_live, "beta", "beta-confidential-step")
    login(page, signed_in_live.url, "vic")  # viewer of alpha
    page.goto(signed_in_live.url + "/")
    expect(page.locator("table.grid tbody tr", has_text="alpha")).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("beta")
    screenshot(page, "projects-one-project")

    nothing = page.goto(signed_in_live.url + "/p/no-such-project/traces")
    assert nothing is not None
    for path in (
        "/p/beta/traces",
        f"/p/beta/traces/{hidden}",
        f"/p/alpha/traces/{hidden}",  # beta's trace through a project vic can see
        "/p/beta/sessions",
        "/p/beta/datasets",
        "/p/beta/experiments",
    ):
        answer = page.goto(signed_in_live.url + path)
        assert answer is not None
        assert answer.status in (403, 404), (path, answer.status)
        assert "beta-confidential-step" not in page.content(), path
        if path.startswith("/p/beta/traces") and answer.status == 403:
            # Worded as for a project that does not exist: existence is not disclosed.
            assert nothing.status == answer.status
    page.goto(signed_in_live.url + "/settings")
    expect(page.locator("main")).not_to_contain_text("beta")
    assert _errors(page, 403, 404) == []


def test_administrator_manages_users_and_roles(
    signed_in_live: LiveServer, browser: Browser, page: Page
) -> None:
    login(page, signed_in_live.url, "admin")
    page.goto(signed_in_live.url + "/settings")
    page.fill("#user-name", "newbie")
    page.fill("#user-password", "short")
    page.evaluate("document.getElementById('user-password').removeAttribute('minlength')")
    page.click("#user-form button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("too short")

    page.fill("#user-name", "newbie")
    page.fill("#user-password", "a fine long passphrase")
    page.select_option("#user-project", "alpha")
    page.select_option("#user-role", "viewer")
    page.click("#user-form button[type=submit]")
    expect(page.get_by_role("status")).to_have_text("User created.")
    row = page.locator("#user-table tr[data-user='newbie']")
    expect(row).to_contain_text("viewer alpha")
    row.locator("select[name=project]").select_option("beta")
    row.locator("select[name=role]").select_option("annotator")
    row.get_by_role("button", name="Grant").click()
    row = page.locator("#user-table tr[data-user='newbie']")
    expect(row).to_contain_text("annotator beta")
    row.get_by_role("button", name="Remove viewer in alpha").click()
    row = page.locator("#user-table tr[data-user='newbie']")
    expect(row.locator(".role-chip")).to_have_count(1)
    expect(row.locator(".role-chip")).to_contain_text("annotator beta")
    screenshot(page, "settings-admin")
    expect(
        page.locator("#user-table tr[data-user='admin'] button", has_text="Disable")
    ).to_have_count(0)

    other = browser.new_context()
    newbie = other.new_page()
    login(newbie, signed_in_live.url, "newbie", "a fine long passphrase")
    expect(newbie.locator("main")).to_contain_text("beta")
    row.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text("disabled")
    newbie.reload()  # disabling signs them out at once
    expect(newbie).to_have_url(re.compile(r"/login"))
    other.close()
    assert _errors(page, 400) == []


def test_password_change_ends_other_sessions(signed_in_live: LiveServer, browser: Browser) -> None:
    seed_user(signed_in_live, "pat", roles={"alpha": "viewer"})
    laptop, phone = browser.new_context(), browser.new_context()
    try:
        on_laptop, on_phone = laptop.new_page(), phone.new_page()
        login(on_laptop, signed_in_live.url, "pat")
        login(on_phone, signed_in_live.url, "pat")
        on_laptop.goto(signed_in_live.url + "/settings")
        on_laptop.fill("#pw-current", "wrong current password")
        on_laptop.fill("#pw-new", "brand new passphrase")
        on_laptop.fill("#pw-confirm", "brand new passphrase")
        on_laptop.click("#password-form button[type=submit]")
        expect(on_laptop.get_by_role("alert")).to_have_text("The current password is wrong.")
        on_laptop.fill("#pw-current", USER_PASSWORD)
        on_laptop.fill("#pw-new", "brand new passphrase")
        on_laptop.fill("#pw-confirm", "brand new passphrase")
        on_laptop.click("#password-form button[type=submit]")
        expect(on_laptop.get_by_role("status")).to_contain_text("Password changed")
        on_phone.reload()
        expect(on_phone).to_have_url(re.compile(r"/login"))
        login(on_phone, signed_in_live.url, "pat", "brand new passphrase")
    finally:
        laptop.close()
        phone.close()


def test_open_mode_ends_with_the_first_user_and_the_login_page_says_what_to_run(
    ui_live: LiveServer, page: Page
) -> None:
    page.goto(ui_live.url + "/login")
    expect(page).to_have_url(ui_live.url + "/")  # open mode: nobody needs to sign in
    page.goto(ui_live.url + "/settings")
    expect(page.locator("#account")).to_contain_text("Open local mode")
    expect(page.locator("#key-form")).to_have_count(0)  # a key would lock the local user out
    screenshot(page, "settings-open-mode")
    # An API key (made elsewhere) ends the open mode; the login page tells what to run.
    with ui_live.runtime.updates.begin() as conn:
        key_store.create(conn, name="sdk", role="editor", project="shop")
    ui_live.runtime._key_count = None  # skip the key cache's few seconds
    page.goto(ui_live.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    expect(page.locator(".setup")).to_contain_text("assay users create NAME --admin")
    expect(page.locator(".setup")).to_contain_text("API keys exist")
    screenshot(page, "login-no-users")
    assert page_errors(page) == []


def test_first_administrator_created_from_the_open_mode(ui_live: LiveServer, page: Page) -> None:
    page.goto(ui_live.url + "/settings")
    page.fill("#user-name", "owner")
    page.fill("#user-password", "a long passphrase here")
    expect(page.locator("#user-form input[name=is_admin]")).to_be_checked()
    page.click("#user-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login\?next=/settings$"))
    page.fill("#login-name", "owner")
    page.fill("#login-password", "a long passphrase here")
    page.click("form[action='/login'] button[type=submit]")
    expect(page).to_have_url(ui_live.url + "/settings")
    expect(page.locator("#users")).to_contain_text("administrator")
    assert page_errors(page) == []
