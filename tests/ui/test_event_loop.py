"""The browser fixtures leave no asyncio event loop behind in the thread that runs the tests.

Sync Playwright marks its event loop as running in the thread that drives it, between calls
too; driven from pytest's main thread, every later ``asyncio.run()`` of the session failed
(``assay.Eval.run`` among them), whatever module it was in. It runs in a thread of its own
(see ``tests/ui/conftest.py``): these checks run in the middle of a browser session.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from playwright.sync_api import Browser, Page

import assay
from assay.evals._scorer import as_scorer
from tests.conftest import LiveServer
from tests.ui.conftest import expect, page_errors


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def test_asyncio_run_works_between_browser_calls(ui_live: LiveServer, page: Page) -> None:
    page.goto(ui_live.url + "/")
    expect(page.locator("body")).to_be_visible()
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()
    assert asyncio.run(_answer()) == 42
    # What broke in practice: an eval run (asyncio.run inside) after a browser test.
    result = assay.Eval(
        "after-the-browser",
        [{"input": 1, "expected": 1}, {"input": 2, "expected": 2}],
        task=lambda x: x,
        scores=[as_scorer(lambda output, expected: output == expected, name="exact")],
    ).run()
    assert result.errored_rows == 0
    # The browser still answers afterwards, from the same test.
    page.reload()
    expect(page.locator("body")).to_be_visible()
    assert page_errors(page) == []


def test_playwright_runs_in_a_thread_of_its_own(browser: Browser, page: Page) -> None:
    seen: list[str] = []
    page.on("console", lambda message: seen.append(threading.current_thread().name))
    with page.expect_console_message() as message:
        page.evaluate("console.log('hello')")
    assert message.value.text == "hello"
    assert seen and all(name.startswith("playwright") for name in seen), seen
    assert threading.current_thread() is threading.main_thread()
    assert browser.is_connected()
