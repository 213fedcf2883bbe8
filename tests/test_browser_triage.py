"""Triage in real Chromium, as an on-call person does it: pause with a reason and an end time
(the header and the "Why isn't this draining?" panel say by whom, why and until when), the
automatic resume once that time has come (done once, by the overview), the audit timeline,
the failed tab a queue opens on, search by part of a name, the clean form's preview, the
history of a job retried by hand, and the panel of a queue nobody works on.

Screenshots go to ``test-artifacts/`` (triage-*.png); with ``BULLPEN_SCREENSHOTS=docs`` the
panel also goes to ``docs/triage-panel.png`` (the README's), see :func:`tests.browserkit.shot`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import redis
from playwright.sync_api import Page, expect

from dashboard import Queue, Worker
from dashboard.audit import AuditLog
from dashboard.codec import now_ms
from dashboard.job import Job
from tests.browserkit import BROWSER_MARKS, shot

pytestmark = BROWSER_MARKS
MIN = 60_000


def tab(page: Page, state: str) -> Any:
    return page.locator(f".tabs a.state-{state} .n")


def refuse(job: Job) -> Any:
    raise ConnectionRefusedError(f"ledger service refused invoice {job.data.get('n')}")


def test_pause_with_reason_and_end_then_the_overview_resumes_it_once(page: Page, serve: Any, r: redis.Redis,
                                                                      watched: Any) -> None:
    q = Queue("payouts", connection=r)
    q.add_bulk([("payout", {"n": i}, {}) for i in range(6)])
    live = serve()
    page.goto(live.url + "/queues/payouts")
    page.get_by_label("Why pause payouts").fill("bank maintenance window")
    page.get_by_label("Resume by itself after").select_option(label="15 minutes")
    page.get_by_role("button", name="Pause payouts").click()
    expect(page.locator("#paused-badge")).to_be_visible()
    info = page.locator("#pause-info")
    expect(info).to_contain_text("by anonymous")
    expect(info).to_contain_text("“bank maintenance window”")
    expect(info).to_contain_text(re.compile(r"resumes by itself in (14|15) min"))
    panel = page.locator("section.drain")
    expect(panel).to_contain_text("Paused by anonymous")
    expect(panel).to_contain_text("“bank maintenance window”")
    expect(panel).to_contain_text(re.compile(r"It resumes by itself in (14|15) min"))
    expect(page.get_by_role("button", name="Resume payouts")).to_be_focused()  # focus follows the swap
    shot(page, "triage-paused")
    assert q.is_paused()

    r.hset("bull::pause:payouts", "until", now_ms() - 1000)  # the 15 minutes are over
    page.goto(live.url + "/")
    row = page.locator('tr[data-queue="payouts"]')
    expect(row).to_be_visible()
    expect(row.locator(".badge.paused")).to_have_count(0)
    for _ in range(3):  # later looks (and the poll) find nothing more to resume
        page.reload()
        expect(row.locator(".badge.paused")).to_have_count(0)
    assert not q.is_paused() and q.pause_info() is None

    page.get_by_role("link", name="Audit", exact=True).click()
    rows = page.locator("table.audit tbody tr")
    automatic = rows.filter(has_text="Resumed payouts automatically")
    expect(automatic).to_have_count(1)
    expect(automatic).to_contain_text("automatic")
    expect(rows.filter(has_text="Reason: bank maintenance window")).to_have_count(1)
    expect(rows.first).to_contain_text("Resumed payouts automatically")  # newest first
    shot(page, "triage-audit-auto-resume")
    resumes = [e for e in AuditLog(r, "bull").entries("payouts") if e.action == "resume"]
    assert len(resumes) == 1
    assert watched == {"dialogs": [], "errors": []}


def test_audit_timeline_lists_pause_resume_and_retry(page: Page, serve: Any, r: redis.Redis, watched: Any) -> None:
    q = Queue("invoices", connection=r)
    q.add_bulk([("invoice", {"n": i}, {}) for i in range(3)])
    Worker("invoices", refuse, connection=r).run(burst=True)
    live = serve()
    page.goto(live.url + "/queues/invoices")
    expect(page.locator("#tab-failed")).to_have_attribute("aria-current", "page")  # failures from the last hour
    page.get_by_label("Why pause invoices").fill("ledger is down, INC-4711")
    page.get_by_role("button", name="Pause invoices").click()
    expect(page.locator("#pause-info")).to_contain_text("“ledger is down, INC-4711”")
    page.get_by_role("button", name="Resume invoices").click()
    expect(page.locator("#paused-badge")).to_have_count(0)
    page.get_by_role("button", name="Retry all 3 failed jobs in invoices").click()
    expect(page.get_by_role("dialog")).to_contain_text("Retry all 3 failed jobs in queue “invoices”")
    page.locator("#confirm-ok").click()
    expect(page.locator("#task")).to_contain_text("done, 3 jobs")

    page.get_by_role("link", name="Audit", exact=True).click()
    rows = page.locator("table.audit tbody tr")

    def row(action: str) -> Any:
        found = rows.filter(has=page.locator("td:nth-child(3)", has_text=re.compile(f"^{action}$")))
        expect(found).to_have_count(1)
        expect(found).to_contain_text("anonymous")  # who, with the remote address
        expect(found).to_contain_text("127.0.0.1")
        expect(found.locator("td:nth-child(4)")).to_have_text("invoices")
        return found

    expect(row("pause")).to_contain_text("Paused invoices: workers take no new jobs from it. Reason: ledger is "
                                         "down, INC-4711")
    expect(row("resume")).to_contain_text("Resumed")
    retry = row("retry all")
    expect(retry.locator("td.num")).to_have_text("3")
    expect(retry).to_contain_text("Retry all failed: started (3 jobs expected)")
    finished = row("retry all failed finished")
    expect(finished.locator("td.num")).to_have_text("3")
    expect(finished).to_contain_text("Retry all failed on invoices: done, 3 jobs")
    shot(page, "triage-audit")

    page.goto(live.url + "/queues/invoices")  # the queue page lists its own recent actions
    page.locator("details.recent-actions summary").click()
    expect(page.locator("details.recent-actions tbody tr")).to_have_count(4)
    assert watched == {"dialogs": [], "errors": []}


def test_failed_tab_search_and_the_found_jobs_state(page: Page, serve: Any, r: redis.Redis) -> None:
    recent = Queue("billing-eu", connection=r)
    recent.add("charge", {"n": 1}, job_id="inv-42")
    Worker("billing-eu", refuse, connection=r).run(burst=True)
    old = Queue("billing-us", connection=r)
    old.add("charge", {"n": 2}, job_id="inv-42")
    old.add("charge", {"n": 3})
    hours_ago = functools.partial(int, now_ms() - 3 * 60 * MIN)
    Worker("billing-us", refuse, connection=r, clock=hours_ago).run(burst=True)  # failed 3 hours ago
    old.add("charge", {"n": 4}, job_id="inv-43")
    live = serve()

    page.goto(live.url + "/queues/billing-eu")  # failed a moment ago: opens on failed
    expect(page.locator("#tab-failed")).to_have_attribute("aria-current", "page")
    expect(page.locator('tr[data-job="inv-42"]')).to_be_visible()
    page.goto(live.url + "/queues/billing-us")  # failures are 3 hours old: opens on waiting
    expect(page.locator("#tab-waiting")).to_have_attribute("aria-current", "page")
    expect(page.locator('tr[data-job="inv-43"]')).to_be_visible()

    page.goto(live.url + "/")  # from the overview the search box looks in every queue
    page.locator("#search-q").fill("BILLING")  # part of the names, any case
    page.keyboard.press("Enter")
    hits = page.locator("ul.hits")
    expect(hits.get_by_role("link", name="Queue billing-eu")).to_be_visible()
    expect(hits.get_by_role("link", name="Queue billing-us")).to_be_visible()
    page.locator("#search-q").fill("inv-42")
    page.keyboard.press("Enter")
    expect(hits.get_by_role("link", name="Job inv-42 in billing-eu (failed)")).to_be_visible()
    expect(hits.get_by_role("link", name="Job inv-42 in billing-us (failed)")).to_be_visible()
    page.locator("#search-q").fill("inv-43")
    page.keyboard.press("Enter")  # one hit: straight to the job, showing its state
    expect(page).to_have_url(live.url + "/queues/billing-us/jobs/inv-43")
    expect(page.locator("#job-state")).to_have_text("waiting")
    page.goto(live.url + "/")
    page.locator("#search-q").fill("us")
    page.keyboard.press("Enter")  # only one queue's name holds "us": straight to it
    expect(page).to_have_url(re.compile(r"/queues/billing-us$"))
    shot(page, "triage-search")


def test_clean_previews_what_matches_then_cleans(page: Page, serve: Any, r: redis.Redis, watched: Any) -> None:
    q = Queue("receipts", connection=r)
    q.add_bulk([("receipt", {"n": i}, {}) for i in range(30)])
    Worker("receipts", lambda job: "ok", connection=r).run(burst=True)
    ids = [i for i in r.zrange("bull:receipts:completed", 0, -1) if isinstance(i, bytes)]
    now = now_ms()  # 10 finished 3 days ago, 10 two hours ago, 10 just now
    r.zadd("bull:receipts:completed", {job_id: now - [3 * 1440, 120, 0][k // 10] * MIN for k, job_id in enumerate(ids)})
    live = serve()
    page.goto(live.url + "/queues/receipts?state=completed")
    preview = page.locator("#clean-match-completed")
    expect(preview).to_have_text("20 completed jobs match")  # older than 1 h (the default), up to 1,000
    grace = page.get_by_label("Clean completed older than")
    grace.fill("1d")
    expect(preview).to_have_text("10 completed jobs match")
    grace.fill("1h30m")
    expect(preview).to_have_text("20 completed jobs match")
    page.get_by_label("up to").fill("15")
    expect(preview).to_have_text("15 completed jobs match")
    grace.fill("soon")
    expect(preview).to_contain_text("grace: 'soon' is not a duration")
    grace.fill("0")
    page.get_by_label("up to").fill("0")
    expect(preview).to_have_text("30 completed jobs match")
    grace.fill("90m")
    expect(preview).to_have_text("20 completed jobs match")
    page.get_by_role("button", name="Clean completed jobs in receipts").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete the 20 completed jobs finished more than 90m ago from queue “receipts” "
                                   "(30 completed now)? This cannot be undone.")
    page.locator("#confirm-ok").click()
    expect(page.locator("#task")).to_contain_text("done, 20 jobs")
    expect(tab(page, "completed")).to_have_text("10")
    expect(preview).to_have_text("0 completed jobs match")  # counted again; the chosen values stay
    expect(grace).to_have_value("90m")
    assert q.counts().completed == 10
    shot(page, "triage-clean-done")  # last: a screenshot may leave style="" on inputs, which a swap would copy
    assert watched["dialogs"] == []
    assert set(watched["errors"]) <= {"Failed to load resource: the server responded with a status of 400 "
                                               "(BAD REQUEST)"}  # the preview of "soon"


def test_job_failed_retried_by_hand_and_failed_again(page: Page, serve: Any, r: redis.Redis, watched: Any) -> None:
    q = Queue("ledger-sync", connection=r)
    job = q.add("sync", {"n": 7})
    Worker("ledger-sync", refuse, connection=r).run(burst=True)
    live = serve({"ledger-sync": refuse})  # still refused after the retry
    page.goto(live.url + f"/queues/ledger-sync/jobs/{job.id}")
    expect(page.locator("#job-state")).to_have_text("failed")
    page.get_by_role("button", name=f"Retry job {job.id}").click()
    expect(page.locator("#job-redrive")).to_contain_text("retried by anonymous")
    expect(page.locator("#job-state")).to_have_text("failed")  # the worker failed it again
    page.reload()
    attempts = page.locator("#attempts tbody tr")
    expect(attempts).to_have_count(2)
    expect(page.locator("#attempts")).to_contain_text("failed (latest)")
    expect(page.locator("#attempts").get_by_text("(latest)")).to_have_count(1)
    expect(page.locator("#job-redrive")).to_contain_text("retried by anonymous")
    latest = page.locator("summary", has_text="(latest)")
    expect(latest).to_have_count(1)
    expect(latest).to_contain_text("Failure 2 (latest)")
    expect(page.locator("summary", has_text="Failure 1")).not_to_contain_text("latest")
    shot(page, "triage-job-history")
    assert watched == {"dialogs": [], "errors": []}


def test_why_isnt_this_draining_with_waiting_jobs_and_no_workers(page: Page, serve: Any, r: redis.Redis,
                                                                 redis_url: str, watched: Any) -> None:
    now = now_ms()
    for ago in range(5, 0, -1):  # workers finished about 12 jobs a minute until a minute ago, then went away
        clock = functools.partial(int, now - ago * MIN)
        Queue("exports", connection=r, clock=clock).add_bulk([("export", {"n": i}, {}) for i in range(12)])
        own = redis.Redis.from_url(redis_url)  # its own connections, closed after: no worker is left connected
        Worker("exports", lambda job: "ok", connection=own, clock=clock, drain_delay=0.2).run(burst=True)
        own.close()
    two_hours_ago = functools.partial(int, now - 120 * MIN)
    Queue("exports", connection=r, clock=two_hours_ago).add_bulk([("export", {"n": i}, {}) for i in range(40)])
    for second in range(0, 240, 2):  # and 30 a minute keep arriving
        Queue("exports", connection=r, clock=functools.partial(int, now - 240_000 + second * 1000)).add(
            "export", {"n": 1000 + second})
    q = Queue("exports", connection=r)
    q.add_bulk([("export", {"n": 2000 + i}, {"delay": 3_600_000}) for i in range(5)])
    live = serve()
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(live.url + "/queues/exports")
    panel = page.get_by_role("region", name="Why isn’t this draining?")
    facts = panel.locator("li")
    expect(facts.first).to_have_text("No worker is connected: nothing takes the 160 jobs ready to run.")
    expect(panel).to_contain_text("5 jobs are delayed: scheduled for later, or backing off before a retry.")
    expect(panel).to_contain_text("The oldest waiting job has waited 2 h")
    expect(panel).to_contain_text(re.compile(r"Growing by [\d.]+/min: about [\d.]+ jobs a minute arrive, "
                                             r"[\d.]+ finished over the last 5 minutes\."))
    expect(page.locator(".page-head .badge.danger")).to_have_text("no workers: 160 jobs waiting")
    shot(page, "triage-panel", doc="triage-panel")
    assert watched == {"dialogs": [], "errors": []}
