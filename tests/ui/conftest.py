"""Browser fixtures: Debian's chromium driven by Playwright, against a live server on loopback.

Playwright's sync API runs in a thread of its own (``PLAYWRIGHT``): while it is started, the
thread that drives it has Playwright's asyncio event loop marked as running, between calls as
well. In pytest's main thread that would break every later test that calls ``asyncio.run()``
(``assay.Eval.run`` does), for as long as the session-wide browser lives. The fixtures hand out
proxies instead: each call on a ``Page``, ``Locator``, ``BrowserContext``... runs in the
Playwright thread and the main thread waits for it, so tests read as plain sync Playwright.
Assertions go through ``expect`` from this module, not ``playwright.sync_api.expect``.

Pages are screenshotted into ``artifacts/screenshots`` (git-ignored) for reviewers.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import playwright.sync_api
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Expect, Page, sync_playwright

from tests.conftest import LiveServer, start_server

CHROMIUM = os.environ.get("ASSAY_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]


# --- Playwright in a thread of its own ------------------------------------------------------


class PlaywrightThread:
    """One long-lived thread that makes every sync Playwright call of the session."""

    def __init__(self) -> None:
        self._ident: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._handlers: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def _mark(self) -> None:
        self._ident = threading.get_ident()

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in the Playwright thread: arguments unwrapped, result wrapped."""
        return self.run(fn, *self.unwrap(args), **self.unwrap(kwargs))

    def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in the Playwright thread, the result wrapped."""
        if threading.get_ident() == self._ident:  # e.g. in an event handler: already there
            return self.wrap(fn(*args, **kwargs))
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="playwright", initializer=self._mark
                )
            executor = self._executor
        return self.wrap(executor.submit(fn, *args, **kwargs).result())

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._ident = None
        self._handlers.clear()

    def wrap(self, value: Any) -> Any:
        """Playwright objects (and their bound methods) become proxies bound to this thread."""
        if isinstance(value, PlaywrightProxy | BaseException):
            return value
        if isinstance(value, list | tuple):
            return type(value)(self.wrap(item) for item in value)
        owner = getattr(value, "__self__", None) if callable(value) else None
        if _is_playwright(type(value)) or (owner is not None and _is_playwright(type(owner))):
            return PlaywrightProxy(value, self)
        return value

    def unwrap(self, value: Any) -> Any:
        """Proxies back to the objects they stand for; callbacks get proxies for arguments."""
        if isinstance(value, PlaywrightProxy):
            return object.__getattribute__(value, "_target")
        if isinstance(value, list | tuple):
            return type(value)(self.unwrap(item) for item in value)
        if isinstance(value, dict):
            return {key: self.unwrap(item) for key, item in value.items()}
        if callable(value) and not isinstance(value, type):
            return self._handler(value)
        return value

    def _handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        # One wrapper per handler, so that remove_listener() finds what on() registered.
        # functools.wraps keeps the signature visible (``__wrapped__``): Playwright passes a
        # handler as many arguments as it takes.
        if handler not in self._handlers:

            @functools.wraps(handler)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return handler(*self.wrap(args), **kwargs)

            self._handlers[handler] = wrapper
        return self._handlers[handler]


def _is_playwright(cls: type) -> bool:
    return cls.__module__.split(".", 1)[0] == "playwright"


class PlaywrightProxy:
    """Stands for a Playwright object of the Playwright thread; attributes and calls run there.

    Attributes set on a proxy stay on the proxy (the ``page`` fixture keeps ``errors`` there).
    """

    def __init__(self, target: Any, thread: PlaywrightThread) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_thread", thread)

    def __getattr__(self, name: str) -> Any:
        target = object.__getattribute__(self, "_target")
        thread: PlaywrightThread = object.__getattribute__(self, "_thread")
        return thread.run(getattr, target, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        thread: PlaywrightThread = object.__getattribute__(self, "_thread")
        return thread.call(object.__getattribute__(self, "_target"), *args, **kwargs)

    def __enter__(self) -> Any:
        return self.__getattr__("__enter__")()

    def __exit__(self, *exc_info: object) -> Any:
        return self.__getattr__("__exit__")(*exc_info)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(proxy, Page) holds, as for the object itself
        return type(object.__getattribute__(self, "_target"))

    def __repr__(self) -> str:
        return f"<proxy {object.__getattribute__(self, '_target')!r}>"

    def __str__(self) -> str:
        return str(self.__getattr__("__str__")())


#: The Playwright thread of this test session.
PLAYWRIGHT = PlaywrightThread()

#: ``playwright.sync_api.expect`` for the proxies of the fixtures: it runs in the Playwright
#: thread, as do the assertions it returns (``expect(locator).to_have_text(...)``).
expect = cast(Expect, PLAYWRIGHT.wrap(playwright.sync_api.expect))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; scripts/chromium.sh installs it")
    driver = PLAYWRIGHT.call(lambda: sync_playwright().start())
    try:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield cast(Browser, launched)
        finally:
            launched.close()
    finally:
        driver.stop()
        PLAYWRIGHT.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser test must use this module's ``expect``: Playwright's own would make its sync
    calls from the main thread, on objects of the Playwright thread."""
    for module in {item.module for item in items if isinstance(item, pytest.Function)}:
        if getattr(module, "expect", None) is playwright.sync_api.expect:
            raise pytest.UsageError(
                f"{module.__name__} imports expect from playwright.sync_api; "
                "import it from tests.ui.conftest (Playwright runs in a thread of its own)"
            )


class PageErrors(list[str]):
    """Uncaught page errors and console errors seen during a test."""


#: The errors of each open page of the ``page`` fixture, by id() of the page.
_PAGE_ERRORS: dict[int, PageErrors] = {}


def page_errors(page: Page) -> PageErrors:
    """Uncaught page errors and console errors seen so far on the ``page`` fixture's page."""
    return _PAGE_ERRORS[id(page)]


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
    # Also as an attribute, for tests written before page_errors().
    opened.errors = errors  # type: ignore[attr-defined]
    _PAGE_ERRORS[id(opened)] = errors
    try:
        yield opened
    finally:
        del _PAGE_ERRORS[id(opened)]
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
    from assay.store import users as user_store

    with server.runtime.updates.begin() as conn:
        user_id = user_store.create_user(conn, name, password, is_admin=is_admin)
        for project, role in (roles or {}).items():
            user_store.grant(conn, user_id, project, role)
    server.runtime.forget_users()  # no waiting for the cached "no users yet"
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
