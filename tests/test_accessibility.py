"""Accessibility: every page passes axe-core's WCAG 2.1 A and AA rules, in light and dark mode,
and focus stays where the user acted after an htmx swap.

axe-core is pinned in tests/a11y/package.json (installed by tests/run.sh). It is injected
into the page, which the strict Content-Security-Policy would refuse: these contexts bypass
CSP for the injection only (the CSP itself is tested in test_web_hostile.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from playwright.sync_api import Browser, expect

from dashboard import FlowProducer, Queue
from dashboard.heartbeat import Heartbeat
from tests.browserkit import BROWSER_MARKS
from tests.webkit import fail_odd, run_burst

AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = [*BROWSER_MARKS, pytest.mark.skipif(not AXE.exists(), reason="needs tests/a11y/node_modules "
                                                 "(bash tests/run.sh installs it)")]


def violations(browser: Browser, url: str, scheme: str) -> list[str]:
    context = browser.new_context(bypass_csp=True, color_scheme=scheme)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_load_state("networkidle")
        page.add_script_tag(path=str(AXE))
        found: list[dict[str, Any]] = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(r => r.violations"
            ".map(v => ({id: v.id, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: '"
            " + n.failureSummary.split('\\n').slice(1, 2).join(''))})))", TAGS)
        return [f"{v['id']} ({v['help']}): {'; '.join(v['nodes'])}" for v in found]
    finally:
        context.close()


def seed(r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    for i in range(6):
        q.add("welcome", {"i": i, "to": f"u{i}@example.com"})
    run_burst(r, "mail", fail_odd)
    q.add("later", {"x": 1}, delay=3600)
    q.add("now", {"x": 2})
    q.upsert_job_scheduler("every-2s", every=2, name="tick")  # the schedulers table is checked too
    q.set_global_rate_limit(10, 1)
    Queue("sms", connection=r).pause()
    Queue("sms", connection=r).add("hello", {})
    Heartbeat(r, "bull", "mail", "a11y-worker", concurrency=2, ttl_ms=600_000).publish(["1", "2"])  # a workers row
    FlowProducer(connection=r).add({"name": "report", "queue_name": "reports", "opts": {"job_id": "flow-parent"},
                                    "children": [{"name": "part", "queue_name": "reports",
                                                  "opts": {"job_id": "flow-child"}},
                                                 {"name": "text", "queue_name": "sms"}]})


PAGES = ["/", "/?range=24h", "/workers", "/queues/mail?state=failed", "/queues/mail?state=delayed",
         "/queues/mail?state=completed", "/queues/mail/jobs/2", "/queues/mail/jobs/1", "/queues/sms",
         "/search?q=nothing-like-this", "/no/such/page", "/queues/reports/jobs/flow-parent",
         "/queues/reports/jobs/flow-child", "/queues/mail/failures", "/queues/mail/redrive"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe(browser: Browser, serve: Any, r: redis.Redis, scheme: str) -> None:
    seed(r)
    live = serve(poll=60)  # no poll swaps (and their fade) while axe reads the page
    found = {path: violations(browser, live.url + path, scheme) for path in PAGES}
    assert {path: v for path, v in found.items() if v} == {}


def settled(page: Any) -> None:
    """Wait until htmx has finished swapping and wired the new content (Enter on a control
    htmx has not processed yet would submit or navigate natively)."""
    page.wait_for_function("!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


@pytest.fixture
def page(browser: Browser) -> Any:
    """A page whose context lets the test evaluate its own waits (the CSP forbids eval)."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()


def test_focus_stays_on_the_control_after_each_swap(page: Any, serve: Any, r: redis.Redis) -> None:
    """Keyboard only: pause, resume, a tab change, a row retry. After each htmx swap the focus
    is on the control that replaced the one pressed, or on the part that was swapped; never
    on <body>."""
    seed(r)
    live = serve(poll=60)  # swaps come from the actions alone
    page.goto(live.url + "/queues/mail?state=failed")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    toggle = page.locator("#pause-toggle")
    toggle.focus()
    settled(page)
    page.keyboard.press("Enter")
    expect(page.locator("#paused-badge")).to_be_visible()
    expect(page.locator("#pause-toggle")).to_be_focused()
    expect(page.locator("#pause-toggle")).to_have_text("Resume")
    settled(page)
    page.keyboard.press("Enter")
    expect(page.locator("#paused-badge")).to_be_hidden()
    expect(page.locator("#pause-toggle")).to_be_focused()
    page.locator("#tab-completed").focus()
    settled(page)
    page.keyboard.press("Enter")
    expect(page.locator("#tab-completed")).to_have_attribute("aria-current", "page")
    expect(page.locator("#tab-completed")).to_be_focused()
    page.locator("#tab-failed").focus()
    settled(page)
    page.keyboard.press("Enter")
    expect(page.locator("#tab-failed")).to_be_focused()
    page.get_by_role("button", name="Retry job 2", exact=True).focus()
    settled(page)
    page.keyboard.press("Enter")
    expect(page.locator("#toast")).to_contain_text("Retried job 2")
    expect(page.locator("#queue")).to_be_focused()  # the row is gone: its table takes the focus


@pytest.mark.parametrize("path", ["/", "/workers", "/queues/mail?state=failed", "/queues/mail/jobs/2"])
def test_pages_fit_a_390px_phone_without_sideways_scrolling(browser: Browser, serve: Any, r: redis.Redis,
                                                            path: str) -> None:
    seed(r)
    live = serve(poll=60)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(live.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
