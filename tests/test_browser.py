"""End-to-end: what an on-call engineer does, in real headless Chromium (Debian's /usr/bin/chromium).

Each test runs the app on 127.0.0.1 (port 0) against the private test Redis, with embedded
workers where the story needs them. No sleeps: Playwright's ``expect`` waits for the page.
Screenshots of every page go to ``test-artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

from typing import Any

import redis
from playwright.sync_api import Browser, Page, expect

from dashboard import Queue, Worker
from dashboard.job import Job
from dashboard.redis_server import EmbeddedRedis, free_port
from tests.browserkit import BROWSER_MARKS, shot
from tests.webkit import SCRIPT, XSS, run_burst

pytestmark = BROWSER_MARKS


def count_cell(page: Page, queue: str, state: str) -> Any:
    return page.locator(f'tr[data-queue="{queue}"] a[data-state="{state}"]')


def tab(page: Page, state: str) -> Any:
    return page.locator(f".tabs a.state-{state} .n")


def test_overview_counts_change_as_jobs_arrive(page: Page, serve, r: redis.Redis, watched) -> None:
    q = Queue("inbox", connection=r)
    q.add("welcome", {"to": "a@example.com"})
    live = serve()
    page.goto(live.url + "/")
    expect(count_cell(page, "inbox", "waiting")).to_have_text("1")
    expect(page.locator('tr[data-queue="inbox"] .badge')).to_have_text("no workers")
    q.add_bulk([("welcome", {"n": i}, {}) for i in range(41)])
    q.add("later", {}, delay=3600)
    expect(count_cell(page, "inbox", "waiting")).to_have_text("42")
    expect(count_cell(page, "inbox", "delayed")).to_have_text("1")
    shot(page, "overview")
    assert watched == {"dialogs": [], "errors": []}


def test_pause_stops_the_worker_and_resume_restarts_it(page: Page, serve, r: redis.Redis) -> None:
    q = Queue("pausable", connection=r)
    live = serve({"pausable": lambda job: {"ok": job.id}})
    q.add("first", {})
    page.goto(live.url + "/queues/pausable?state=completed")
    expect(tab(page, "completed")).to_have_text("1")
    expect(page.locator(".page-head .workers")).to_have_text("1 worker")
    page.get_by_role("button", name="Pause pausable").click()
    expect(page.locator("#paused-badge")).to_be_visible()
    expect(page.locator("#toast")).to_contain_text("Paused pausable")
    q.add_bulk([("while-paused", {"n": i}, {}) for i in range(3)])
    expect(tab(page, "waiting")).to_have_text("3")
    assert q.counts().completed == 1 and q.counts().active == 0  # the worker took none of them
    shot(page, "queue-paused")
    page.get_by_role("button", name="Resume pausable").click()
    expect(page.locator("#paused-badge")).to_have_count(0)
    expect(tab(page, "completed")).to_have_text("4")
    expect(tab(page, "waiting")).to_have_text("0")


def test_failed_jobs_retry_one_then_retry_all(page: Page, serve, r: redis.Redis) -> None:
    healed: set[str] = set()

    def flaky(job: Job) -> Any:
        if job.id not in healed:
            raise ConnectionResetError(104, "Connection reset by peer (smtp.example.net)")
        return {"sent": True}

    q = Queue("outbox", connection=r)
    live = serve({"outbox": flaky})
    jobs = q.add_bulk([("welcome", {"to": f"u{i}@example.com"}, {}) for i in range(5)])
    page.goto(live.url + "/queues/outbox?state=failed")
    expect(tab(page, "failed")).to_have_text("5")
    shot(page, "queue-failed")
    healed.update(job.id for job in jobs)
    page.locator(f'tr[data-job="{jobs[0].id}"] td.id a').click()
    expect(page.locator("#job-state")).to_have_text("failed")
    expect(page.locator("pre.reason")).to_contain_text("Connection reset by peer")
    shot(page, "job-failed")
    page.get_by_role("button", name=f"Retry job {jobs[0].id}").click()
    expect(page.locator("#job-state")).to_have_text("completed")
    shot(page, "job-completed")
    page.goto(live.url + "/queues/outbox?state=failed")
    expect(tab(page, "failed")).to_have_text("4")
    page.get_by_role("button", name="Retry all 4 failed jobs in outbox").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Retry all 4 failed jobs in queue “outbox”")
    expect(page.locator("#confirm-cancel")).to_be_focused()
    shot(page, "confirm-retry-all")
    page.locator("#confirm-ok").click()
    expect(page.locator("#task")).to_contain_text("done, 4 jobs")
    expect(tab(page, "failed")).to_have_text("0")
    expect(tab(page, "completed")).to_have_text("5")
    shot(page, "retry-all-done")


def test_clean_completed_after_confirming(page: Page, serve, r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    q.add_bulk([("welcome", {"n": i}, {}) for i in range(30)])
    run_burst(r, "mail", lambda job: {"ok": True})
    live = serve()
    page.goto(live.url + "/queues/mail?state=completed")
    expect(tab(page, "completed")).to_have_text("30")
    expect(page.locator("#clean-match-completed")).to_have_text("0 completed jobs match")  # none older than 1h
    page.fill("#clean-limit", "0")  # the limit first: only the last preview (both values) can say 30
    page.fill("#clean-grace", "0")
    expect(page.locator("#clean-match-completed")).to_have_text("30 completed jobs match")
    page.get_by_role("button", name="Clean completed jobs in mail").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(
        "Delete the 30 completed jobs finished at any time from queue “mail” (30 completed now)")
    expect(page.locator("#confirm-cancel")).to_be_focused()
    page.keyboard.press("Escape")  # cancel first: nothing happens
    expect(dialog).to_be_hidden()
    assert q.counts().completed == 30
    page.get_by_role("button", name="Clean completed jobs in mail").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#task")).to_contain_text("done, 30 jobs")
    expect(tab(page, "completed")).to_have_text("0")
    shot(page, "clean-done")


def test_find_a_job_by_id(page: Page, serve, r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    for i in range(12):
        q.add("welcome", {"n": i})
    Queue("sms", connection=r).add("otp", {"code": "123456"})
    live = serve()
    page.goto(live.url + "/")
    page.keyboard.press("/")
    expect(page.locator("#search-q")).to_be_focused()
    page.keyboard.type("7")
    page.keyboard.press("Enter")
    expect(page).to_have_url(live.url + "/queues/mail/jobs/7")
    expect(page.locator("h1")).to_contain_text("Job 7")
    shot(page, "job-waiting")
    page.goto(live.url + "/")
    page.fill("#search-q", "404404")
    page.keyboard.press("Enter")
    expect(page.locator(".empty")).to_contain_text("No job with id “404404”")
    shot(page, "search-miss")


def test_hostile_job_opens_with_no_dialog(page: Page, serve, r: redis.Redis, watched) -> None:
    q = Queue(XSS, connection=r)
    q.add(XSS, {"html": XSS, "js": SCRIPT})

    def evil(job: Job) -> Any:
        job.log(f"log {XSS} {SCRIPT}")
        raise RuntimeError(f"reason {XSS} {SCRIPT}")

    run_burst(r, XSS, evil)
    live = serve()
    page.goto(live.url + "/")
    expect(page.locator("#summary")).to_contain_text(XSS)
    page.get_by_role("link", name=XSS).click()
    page.locator(".tabs a.state-failed").click()
    expect(page.locator("table.jobs")).to_contain_text(f"reason {XSS}")
    page.locator("td.id a").first.click()
    expect(page.locator("pre.logs")).to_contain_text(f"log {XSS} {SCRIPT}")
    expect(page.locator("pre.reason")).to_contain_text(SCRIPT)
    expect(page.locator("pre.json").first).to_contain_text(XSS)
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("main script").count() == 0
    shot(page, "job-hostile")
    page.reload()
    expect(page.locator("#job-state")).to_have_text("failed")
    assert watched == {"dialogs": [], "errors": []}


def test_error_pages_and_dark_mode(browser: Browser, serve, r: redis.Redis) -> None:
    Queue("mail", connection=r).add("welcome", {"to": "a@example.com"})
    live = serve()
    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(live.url + "/queues/mail")
    expect(page.locator("h1")).to_have_text("mail")
    shot(page, "queue-dark")
    page.goto(live.url + "/queues/mail/jobs/1")
    shot(page, "job-dark")
    response = page.goto(live.url + "/queues/no-such-queue")
    assert response is not None and response.status == 404
    expect(page.locator(".error-page")).to_contain_text("No queue named 'no-such-queue'")
    shot(page, "not-found-dark")
    context.close()


def test_redis_outage_shows_a_banner_and_recovers(page: Page, serve) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = EmbeddedRedis(port=port).start()  # no persistence: every restart starts empty

    def restart_with_one_job() -> EmbeddedRedis:
        started = EmbeddedRedis(port=port).start()
        Queue("mail", connection=redis.Redis.from_url(url)).add("welcome", {})
        return started

    try:
        Queue("mail", connection=redis.Redis.from_url(url)).add("welcome", {})
        live = serve(url=url)
        page.goto(live.url + "/")
        expect(count_cell(page, "mail", "waiting")).to_have_text("1")
        server.stop()
        expect(page.locator("#banner")).to_contain_text("Redis is unreachable")
        shot(page, "redis-down-banner")
        server = restart_with_one_job()
        expect(page.locator("#banner")).to_be_hidden()  # the next poll succeeds
        expect(count_cell(page, "mail", "waiting")).to_have_text("1")
        server.stop()
        page.goto(live.url + "/queues/mail")
        expect(page.locator("h1")).to_contain_text("Redis is unreachable")
        shot(page, "redis-down-page")
        server = restart_with_one_job()
        expect(page.locator("h1")).to_have_text("mail", timeout=15_000)  # the 503 page reloads itself
    finally:
        server.stop()


#: Ids that once made a button act on another job (or a link go elsewhere).
BROWSER_IDS = ["evil/../victim", "a__act__b", "%2F", "?x#y", "ünï✓-job", "..", "a/b"]
BYSTANDERS = ["victim", "b", "a", "evil", "x", "a__retry__b"]


def test_actions_on_odd_ids_touch_only_that_job(page: Page, serve, r: redis.Redis, watched) -> None:
    q = Queue("odd-ids", connection=r)
    for name in BYSTANDERS:
        q.add("bystander", {"keep": name}, job_id=name, delay=3600)
    for job_id in BROWSER_IDS:
        q.add("odd", {"id": job_id}, job_id=job_id)

    def fail(job: Job) -> Any:
        raise ValueError(f"cannot handle {job.id}")

    Worker("odd-ids", fail, connection=r).run(burst=True)

    def bystanders() -> dict[str, Any]:
        return {name: r.hgetall(f"bull:odd-ids:{name}") for name in BYSTANDERS}

    before = bystanders()
    live = serve()
    page.goto(live.url + "/queues/odd-ids?state=failed")
    expect(tab(page, "failed")).to_have_text(str(len(BROWSER_IDS)))
    for job_id in BROWSER_IDS:
        page.get_by_role("button", name=f"Retry job {job_id}", exact=True).click()
        expect(page.locator("#toast")).to_contain_text(f"Retried job {job_id}")
        assert q.job(job_id).state == "waiting", job_id
    assert bystanders() == before
    for job_id in BROWSER_IDS:
        page.goto(live.url + "/queues/odd-ids?state=waiting")
        page.locator(f'tr[data-job="{job_id}"] td.id a').click()
        expect(page.locator("h1")).to_contain_text(job_id)
        page.get_by_role("button", name=f"Remove job {job_id}", exact=True).click()
        page.locator("#confirm-ok").click()
        expect(page.locator("#job")).to_contain_text(f"Job {job_id} no longer exists")
        assert q.job(job_id) is None, job_id
    assert bystanders() == before and q.counts().delayed == len(BYSTANDERS)
    shot(page, "odd-ids-removed")
    assert watched["dialogs"] == []
