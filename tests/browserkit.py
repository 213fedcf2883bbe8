"""Shared pieces of the Chromium tests: the app served in a thread, dialog and console
watching, screenshots. Loaded as a pytest plugin (tests/conftest.py).

Screenshots go to ``test-artifacts/``. The README's pictures in ``docs/`` are made by the same
tests: ``BULLPEN_SCREENSHOTS=docs bash tests/run.sh tests/test_cockpit_browser.py
tests/test_browser_failures.py tests/test_browser_triage.py`` writes each ``shot(..., doc=...)``
there too."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page
from werkzeug.serving import make_server

from app import create_app
from dashboard.config import Settings
from dashboard.job import Job
from dashboard.web import DashboardState

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: What every Chromium test module sets as its ``pytestmark``.
BROWSER_MARKS = [pytest.mark.browser,
                 pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


class Live:
    """A running dashboard: its base URL and app state."""

    def __init__(self, url: str, state: DashboardState) -> None:
        self.url = url
        self.state = state


@pytest.fixture
def serve(redis_url: str) -> Iterator[Callable[..., Live]]:
    """Start the app in a thread (optionally with embedded workers for ``handlers``).

    Worker stories use queue names of their own: a stopped Worker's named connections stay
    open for a while and would count as workers of a queue another test reuses."""
    running: list[tuple[Any, threading.Thread, DashboardState]] = []

    def start(handlers: dict[str, Callable[[Job], Any]] | None = None, url: str | None = None,
              poll: float = 0.5) -> Live:
        settings = Settings(redis_url=url or redis_url, poll_seconds=poll, embedded_workers=bool(handlers),
                            concurrency=2)
        app = create_app(settings, handlers=handlers)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        state: DashboardState = app.extensions["bullpen"]
        running.append((server, thread, state))
        return Live(f"http://127.0.0.1:{server.server_port}", state)

    yield start
    for server, thread, state in running:
        server.shutdown()
        thread.join(10)
        server.server_close()
        state.stop()


@pytest.fixture
def watched(page: Page) -> Iterator[dict[str, list[str]]]:
    """Collect JavaScript dialogs (dismissed) and console errors (CSP violations show there)."""
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            seen["errors"].append(msg.text)

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    yield seen


def shot(page: Page, name: str, doc: str | None = None) -> None:
    """The whole page as ``test-artifacts/<name>.png``; with ``doc`` and the environment variable
    ``BULLPEN_SCREENSHOTS=docs``, what the window shows as ``docs/<doc>.png`` too (the README's)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if doc is not None and os.environ.get("BULLPEN_SCREENSHOTS") == "docs":
        page.screenshot(path=str(DOCS / f"{doc}.png"))
