"""End-to-end, in Chromium: the failure clusters page of a queue, and a re-drive from it that
its brake stops because the embedded worker fails the jobs again. Screenshots go to
test-artifacts/ (failures-page.png, redrive-dialog.png, redrive-stopped.png); with
BULLPEN_SCREENSHOTS=docs the failures page also goes to docs/failure-clusters.png (the README's)."""

from __future__ import annotations

import redis
from playwright.sync_api import Page, expect

from dashboard import Queue, Worker
from dashboard.job import Job
from tests.browserkit import BROWSER_MARKS, shot

pytestmark = BROWSER_MARKS


class DeliveryError(Exception):
    pass


def send(job: Job) -> None:
    """Three causes: an SMTP refusal (per recipient), a missing template key, a timeout."""
    i = job.data["i"]
    if i % 7 == 0:
        raise KeyError(f"template 'welcome-{i % 3}' has no 'link'")
    if i % 5 == 0:
        raise TimeoutError(f"provider did not answer within {2000 + i} ms")
    raise DeliveryError(f"SMTP relay 10.0.0.{i % 250}:25 refused mail to user{i}@example.com")


def test_failure_clusters_then_a_redrive_the_brake_stops(page: Page, serve, r: redis.Redis, watched) -> None:
    q = Queue("outbox-clusters", connection=r)
    q.add_bulk([("send", {"i": i}, {}) for i in range(1, 121)])
    Worker("outbox-clusters", send, connection=r).run(burst=True)
    now = q.clock()
    for i in range(1, 121):  # as if they had failed over the last hour, more of them lately
        at = now - int(3_600_000 * (1 - (i / 120) ** 0.5))
        r.zadd("bull:outbox-clusters:failed", {str(i): at})
        r.hset(f"bull:outbox-clusters:{i}", "finishedOn", at)
    live = serve({"outbox-clusters": send})  # the worker keeps failing them: re-driven jobs fail again
    page.goto(live.url + "/queues/outbox-clusters?state=failed")
    page.locator("#failures-link").click()
    expect(page.locator("#failures-summary")).to_have_text("120 failed jobs in 3 clusters")
    first = page.locator(".cluster").first
    expect(first.locator("h2")).to_contain_text("DeliveryError")
    expect(first.locator("h2")).to_contain_text("SMTP relay <n>:<n> refused mail to <email>")
    expect(first.locator(".count")).to_have_text("82 jobs")
    expect(first).to_contain_text("test_browser_failures.py in send")
    expect(first.locator("svg.spark rect.spark-bar")).not_to_have_count(0)
    first.locator("details.trace summary").click()
    expect(first.locator("details.trace pre")).to_contain_text("Traceback (most recent call last)")
    shot(page, "failures-page", doc="failure-clusters")

    first.get_by_role("link", name="Retry 82").click()
    expect(page.locator("#redrive-preview")).to_contain_text("82 jobs in 1 cluster")
    page.locator("#redrive-rate").select_option("10")
    page.locator("#redrive-share").select_option("50")
    shot(page, "redrive-dialog")
    page.locator("#redrive-go").click()
    expect(page.locator("#task")).to_contain_text("failed again", timeout=20_000)
    expect(page.locator("#task")).to_contain_text("stopped by itself", timeout=30_000)
    shot(page, "redrive-stopped")
    assert q.counts().failed >= 90  # most of the cluster was never re-driven: the brake stopped it
    assert watched["errors"] == [] and watched["dialogs"] == []

    page.goto(live.url + "/queues/outbox-clusters/failures")
    expect(page.locator(".cluster .again").first).to_contain_text("failed again after a re-drive")
    page.set_viewport_size({"width": 390, "height": 800})  # a phone: no page-wide horizontal scroll
    page.reload()
    expect(page.locator("#failures-summary")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "failures-page-390")


def test_a_redrive_paused_resumed_and_cancelled_from_its_panel(page: Page, serve, r: redis.Redis, watched) -> None:
    q = Queue("outbox-slow", connection=r)
    q.add_bulk([("send", {"i": i}, {}) for i in range(1, 61)])
    Worker("outbox-slow", send, connection=r).run(burst=True)
    live = serve()  # no workers: re-driven jobs wait
    page.goto(live.url + "/queues/outbox-slow?state=failed")
    page.locator("#redrive-all").click()  # more than a handful: the dialog, not a confirm
    expect(page.locator("#redrive-preview")).to_contain_text("60 jobs in 3 clusters")
    page.locator("#redrive-rate").select_option("10")
    page.locator("#redrive-go").click()
    expect(page.locator("#redrive-status")).to_contain_text("re-driven of 60")
    page.locator("#redrive-toggle").click()  # Pause
    expect(page.locator("#redrive-status")).to_contain_text("paused by anonymous")
    paused_at = q.counts().waiting
    expect(page.get_by_role("button", name="Resume the re-drive")).to_be_focused()  # focus follows the swap
    shot(page, "redrive-paused")
    assert q.counts().waiting == paused_at < 60
    page.get_by_role("button", name="Resume the re-drive").click()
    expect(page.locator("#redrive-status")).not_to_contain_text("paused")
    page.get_by_role("button", name="Cancel the re-drive").click()
    expect(page.locator("#task")).to_contain_text("cancelled by anonymous")
    assert 0 < q.counts().waiting < 60 and q.counts().failed == 60 - q.counts().waiting
    assert watched["errors"] == []
