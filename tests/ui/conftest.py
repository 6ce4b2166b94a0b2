"""Browser fixtures: Debian's chromium driven by Playwright, against a live server on loopback.

Pages are screenshotted into ``artifacts/screenshots`` (git-ignored) for reviewers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import LiveServer, start_server

CHROMIUM = os.environ.get("ASSAY_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; scripts/chromium.sh installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


class PageErrors(list[str]):
    """Uncaught page errors and console errors seen during a test."""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    errors = PageErrors()
    opened.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    opened.on("console", on_console)
    opened.errors = errors  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def ui_live(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server on SQLite for browser tests that need no PostgreSQL variant."""
    from assay.settings import Settings

    server = start_server(Settings(database_url=f"sqlite:///{tmp_path}/ui.db", home=tmp_path))
    try:
        yield server
    finally:
        server.stop()


# --- users and sign-in (for role tests) -----------------------------------------------------

#: The password of every user the fixtures below create.
USER_PASSWORD = "correct horse battery staple"
#: The users of ``signed_in_live``: name -> (is_admin, {project: role}).
SEEDED_USERS: dict[str, tuple[bool, dict[str, str]]] = {
    "admin": (True, {}),
    "vic": (False, {"alpha": "viewer"}),
    "ann": (False, {"alpha": "annotator"}),
    "ed": (False, {"alpha": "editor"}),
    "ada": (False, {"alpha": "admin"}),
    "bea": (False, {"beta": "editor"}),
}


def seed_user(
    server: LiveServer,
    name: str,
    *,
    is_admin: bool = False,
    roles: dict[str, str] | None = None,
    password: str = USER_PASSWORD,
) -> int:
    """Create a user with roles in a live server's store; sign-in is required from then on."""
    from assay.server.web_auth import users_seen
    from assay.store import users as user_store

    with server.runtime.updates.begin() as conn:
        user_id = user_store.create_user(conn, name, password, is_admin=is_admin)
        for project, role in (roles or {}).items():
            user_store.grant(conn, user_id, project, role)
    users_seen.forget(server.runtime)  # no waiting for the cached "no users yet"
    return user_id


def login(page: Page, base_url: str, name: str, password: str = USER_PASSWORD) -> None:
    """Sign in through the login form; fails the test when the sign-in is refused."""
    page.goto(base_url + "/login")
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    assert "/login" not in page.url, f"signing in as {name!r} failed"


@pytest.fixture(scope="module")
def signed_in_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A SQLite live server, one per test module, where sign-in is required: the users of
    ``SEEDED_USERS`` exist (password ``USER_PASSWORD``); projects alpha and beta exist, empty."""
    from assay.settings import Settings

    home = tmp_path_factory.mktemp("signed-in")
    server = start_server(Settings(database_url=f"sqlite:///{home}/ui.db", home=home))
    try:
        for name, (is_admin, roles) in SEEDED_USERS.items():
            seed_user(server, name, is_admin=is_admin, roles=roles)
        yield server
    finally:
        server.stop()
