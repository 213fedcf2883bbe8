"""The cockpit in real Chromium: the overview's charts, the rows that need attention, the strip's
range toggle, and the workers page with a Bullpen worker (and a Node BullMQ one when Node is
here). Screenshots go to ``test-artifacts/`` (cockpit-*.png) for a person to look at; with
``BULLPEN_SCREENSHOTS=docs`` the overview and the workers page go to ``docs/`` too (the README's).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from playwright.sync_api import Page, expect

from dashboard import Job, Queue, Worker
from dashboard.codec import now_ms
from tests.browserkit import BROWSER_MARKS, shot
from tests.interop.harness import Child
from tests.interop.test_node_bullmq import CLI, NODE, NODE_MODULES

pytestmark = BROWSER_MARKS
MIN = 60_000


def flaky_send(job: Job) -> Any:
    if job.data.get("i", 0) % 7 == 3:
        raise ConnectionError("SMTP server said 421: try again later")
    return {"sent": True}


def history(r: redis.Redis, name: str, minutes: dict[int, int]) -> None:
    """Jobs run by real workers whose clocks say ``k`` minutes ago, ``n`` jobs at each."""
    now = now_ms()
    for ago, n in sorted(minutes.items(), reverse=True):
        clock = functools.partial(int, now - ago * MIN)
        Queue(name, connection=r, clock=clock).add_bulk([("send", {"i": i}, {}) for i in range(n)])
        Worker(name, flaky_send, connection=r, clock=clock, drain_delay=0.2).run(burst=True)


def test_overview_charts_attention_and_the_workers_page(page: Page, serve: Any, r: redis.Redis, watched: Any,
                                                         redis_url: str, tmp_path: Path,
                                                         spawn: Callable[[list[str], str], Child]) -> None:
    history(r, "send-email", {ago: 5 + (ago * 7) % 13 for ago in range(0, 58, 2)})
    history(r, "resize-image", {ago: 3 + ago % 4 for ago in range(10, 50, 3)})
    history(r, "resize-image", {1: 8})  # failing now
    Queue("reports", connection=r).add_bulk([("monthly", {}, {})] * 12)  # no worker takes them
    Queue("exports", connection=r).pause()
    release = threading.Event()
    worker = Worker("send-email", lambda job: release.wait(30), connection=r, concurrency=4, name="mailer-1",
                    lock_duration=2)
    Queue("send-email", connection=r).add_bulk([("send", {"i": 100 + i}, {}) for i in range(3)])
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    if NODE is not None and NODE_MODULES.exists():
        spawn([NODE, str(CLI), "work", "--redis", redis_url, "--queue", "node-orders", "--concurrency", "8",
               "--metrics", "100", "--out", str(tmp_path / "node.jsonl")], "node").expect("ready")
        Queue("node-orders", connection=r).add("charge", {})
    try:
        live = serve(poll=2)
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(live.url + "/")
        email = page.locator('tr[data-queue="send-email"]')
        expect(email.locator("svg.chart path.completed")).to_have_count(1)
        expect(email.locator("svg.chart")).to_have_attribute("aria-label", re.compile(
            r"^send-email, last hour: [\d,]+ completed, [\d,]+ failed; at most [\d,]+ a minute$"))
        resize = page.locator('tr[data-queue="resize-image"]')
        expect(resize).to_have_class("attention")
        expect(resize.locator(".reasons")).to_contain_text("failing now")
        expect(page.locator('tr[data-queue="reports"] .reasons')).to_contain_text("12 waiting, no worker")
        expect(page.locator('tr[data-queue="exports"] .badge.paused')).to_have_text("paused")
        expect(page.locator("#strip h2")).to_have_text("Jobs finished, all queues, the last hour")
        shot(page, "cockpit-overview", doc="cockpit-overview")

        page.locator("#range-24h").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#strip h2")).to_have_text("Jobs finished, all queues, the last 24 hours")
        expect(page).to_have_url(live.url + "/?range=24h")
        expect(page.locator("#range-24h")).to_be_focused()  # the swap keeps the keyboard where it was
        shot(page, "cockpit-overview-24h")

        page.get_by_role("link", name="Workers", exact=True).click()
        ours = page.locator('tr[data-worker-queue="send-email"][data-kind="Bullpen"]')
        expect(ours).to_contain_text("mailer-1")
        expect(ours.locator(".running a")).to_have_count(3)
        if NODE is not None and NODE_MODULES.exists():
            expect(page.locator('tr[data-worker-queue="node-orders"][data-kind="BullMQ"]')).to_contain_text(
                "not published")
        shot(page, "cockpit-workers", doc="cockpit-workers")
        ours.locator(".running a").first.click()
        expect(page.locator("h1")).to_contain_text("send")
    finally:
        release.set()
        worker.close()
        thread.join(10)
    assert watched == {"dialogs": [], "errors": []}
