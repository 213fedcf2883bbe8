"""Dashboard actions: CSRF and same-origin checks, read-only mode, basic auth, and every POST."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dashboard.job import JobState
from tests.webkit import HX, post, queue, rows, seed, state, token


def test_post_without_csrf_token_is_refused(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    client.get("/")
    resp = client.post("/queues/mail/pause", headers={"Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 403 and "CSRF" in resp.get_data(as_text=True)
    resp = client.post("/queues/mail/pause", headers={"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": "forged"})
    assert resp.status_code == 403
    fresh = client.application.test_client()  # no session at all
    assert fresh.post("/queues/mail/pause", data={"csrf_token": "x"}).status_code == 403
    assert not queue(r, "mail").is_paused()


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "https://evil.example"}])
def test_cross_site_posts_are_refused_even_with_the_token(client: FlaskClient, r: redis.Redis,
                                                          headers: dict[str, str]) -> None:
    seed(r, "mail", 2)
    resp = client.post("/queues/mail/pause", headers={"X-CSRF-Token": token(client), **headers})
    assert resp.status_code == 403
    assert not queue(r, "mail").is_paused()


def test_csrf_refusal_for_htmx_goes_to_the_flash(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    client.get("/")
    resp = client.post("/queues/mail/pause", headers={**HX, "HX-Target": "queue", "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 403 and resp.headers["HX-Retarget"] == "#flash"


def test_get_never_changes_anything(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    for path in ("/queues/mail/pause", "/pause-all", "/queues/mail/retry-all", "/queues/mail/jobs/2/retry"):
        assert client.get(path).status_code in (404, 405)
    assert not queue(r, "mail").is_paused() and queue(r, "mail").counts().failed == 1
    wrong = client.get("/pause-all")  # a page's 405 names what the path takes, as HTTP requires
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"] and "GET" not in wrong.headers["Allow"]


def test_read_only_hides_and_refuses_actions(make_app, r: redis.Redis) -> None:
    seed(r, "mail", 4)
    client = make_app(read_only=True).test_client()
    for path in ("/", "/queues/mail?state=failed", "/queues/mail/jobs/2"):
        html = client.get(path).get_data(as_text=True)
        assert "hx-post" not in html and "Retry all" not in html and "Pause all" not in html, path
        assert "read-only" in html
    for path in ("/queues/mail/pause", "/pause-all", "/queues/mail/retry-all", "/queues/mail/jobs/2/retry",
                 "/queues/mail/clean", "/rescan"):
        assert post(client, path, {"state": "failed"}).status_code == 403, path
    assert queue(r, "mail").counts().failed == 2 and not queue(r, "mail").is_paused()


def test_basic_auth(make_app, r: redis.Redis) -> None:
    client = make_app(auth_user="oncall", auth_password="s3cret").test_client()
    resp = client.get("/")
    assert resp.status_code == 401 and "Basic" in resp.headers["WWW-Authenticate"]
    wrong = base64.b64encode(b"oncall:nope").decode()
    assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    good = base64.b64encode(b"oncall:s3cret").decode()
    assert client.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
    assert client.get("/healthz").status_code == 200  # probes need no password


def toast(resp) -> str:
    return str(json.loads(resp.headers["HX-Trigger"])["dashboard:toast"]["message"])


def test_retry_one_from_the_queue_page(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 4)
    resp = post(client, "/queues/mail/jobs/2/retry", {"state": "failed", "page": "1", "per": "20"}, target="queue")
    assert resp.status_code == 200 and toast(resp) == "Retried job 2 in mail."
    body = resp.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="queue"') and rows(body) == ["4"]
    assert queue(r, "mail").job("2").state is JobState.WAITING


def test_job_page_actions(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 2)
    delayed = q.add("later", {}, delay=3600)
    resp = post(client, f"/queues/mail/jobs/{delayed.id}/promote", target="job")
    assert resp.status_code == 200 and 'id="job-state">waiting<' in resp.get_data(as_text=True)
    resp = post(client, "/queues/mail/jobs/1/remove", target="job")
    assert resp.status_code == 200 and "no longer exists" in resp.get_data(as_text=True)
    assert q.job("1") is None


def test_action_on_a_job_in_the_wrong_state_is_409(client: FlaskClient, r: redis.Redis) -> None:
    q = queue(r)
    q.add("waiting", {})
    resp = post(client, "/queues/mail/jobs/1/retry", target="job")
    assert resp.status_code == 409 and resp.headers["HX-Retarget"] == "#flash"
    assert "not failed or completed" in resp.get_data(as_text=True)
    plain = post(client, "/queues/mail/jobs/1/promote")
    assert plain.status_code == 409 and "<!doctype html>" in plain.get_data(as_text=True)
    assert post(client, "/queues/mail/jobs/1/explode").status_code == 404
    assert post(client, "/queues/mail/jobs/99/retry").status_code == 404


def test_plain_form_posts_redirect_back(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    resp = post(client, "/queues/mail/jobs/2/retry", {"next": "/queues/mail?state=failed"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/queues/mail?state=failed"
    evil = post(client, "/queues/mail/pause", {"next": "//evil.example/x"})
    assert evil.headers["Location"] == "/queues/mail"


def test_pause_and_resume_show_the_badge(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    resp = post(client, "/queues/mail/pause", {"state": "waiting"}, target="queue")
    assert 'id="paused-badge"' in resp.get_data(as_text=True) and queue(r, "mail").is_paused()
    resp = post(client, "/queues/mail/resume", target="queue")
    assert 'id="paused-badge"' not in resp.get_data(as_text=True) and not queue(r, "mail").is_paused()


def test_pause_all_and_resume_all(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 1)
    seed(r, "sms", 1)
    resp = post(client, "/pause-all", target="summary")
    assert toast(resp) == "Paused all 2 queues." and resp.get_data(as_text=True).count("badge paused") == 2
    assert queue(r, "mail").is_paused() and queue(r, "sms").is_paused()
    resp = post(client, "/resume-all", target="summary")
    assert "badge paused" not in resp.get_data(as_text=True) and not queue(r, "sms").is_paused()


def _task(app: Flask, resp) -> str:
    match = re.search(r'data-task="([0-9a-f]+)"', resp.get_data(as_text=True))
    assert match, resp.get_data(as_text=True)
    task = state(app).tasks.get(match.group(1))
    assert task is not None and task.wait(20)
    return match.group(1)


def test_retry_all_runs_as_a_task_with_progress(client: FlaskClient, app: Flask, r: redis.Redis) -> None:
    seed(r, "mail", 20)
    resp = post(client, "/queues/mail/retry-all", target="task")
    assert resp.status_code == 200 and "Retry all failed on mail" in toast(resp)
    task_id = _task(app, resp)
    done = client.get(f"/tasks/{task_id}", headers={**HX, "HX-Target": "task"})
    assert done.status_code == 286 and '<span class="task-count">10</span>' in done.get_data(as_text=True)
    assert "done, 10 jobs" in toast(done)
    assert queue(r, "mail").counts().failed == 0 and queue(r, "mail").counts().waiting == 10


def test_promote_all_and_clean(client: FlaskClient, app: Flask, r: redis.Redis) -> None:
    q = seed(r, "mail", 10)
    for _ in range(3):
        q.add("later", {}, delay=3600)
    _task(app, post(client, "/queues/mail/promote-all", target="task"))
    assert q.counts().delayed == 0
    _task(app, post(client, "/queues/mail/clean", {"state": "completed", "grace": "0", "limit": "2"}, target="task"))
    assert q.counts().completed == 3
    _task(app, post(client, "/queues/mail/clean", {"state": "completed", "grace": "0", "limit": ""}, target="task"))
    assert q.counts().completed == 0
    _task(app, post(client, "/queues/mail/clean", {"state": "failed", "grace": "3600"}, target="task"))
    assert q.counts().failed == 5  # all younger than an hour
    assert post(client, "/queues/mail/clean", {"state": "waiting"}, target="task").status_code == 400
    assert post(client, "/queues/mail/clean", {"state": "failed", "grace": "-5"}, target="task").status_code == 400


def test_rescan_finds_queues_without_registry_entry(client: FlaskClient, r: redis.Redis) -> None:
    r.hset("bull:node-made:meta", mapping={"opts.maxLenEvents": 10000})
    resp = post(client, "/rescan", target="summary")
    assert "found 1 queue" in toast(resp) and 'data-queue="node-made"' in resp.get_data(as_text=True)


def test_queue_page_lists_job_schedulers_and_removes_one(client: FlaskClient, r: redis.Redis) -> None:
    q = queue(r, "ticks")
    q.upsert_job_scheduler("every-2s", every=2, name="tick")
    q.upsert_job_scheduler("nightly", pattern="0 30 2 * * *", tz="Europe/Berlin", name="report")
    html = client.get("/queues/ticks").get_data(as_text=True)
    assert 'data-scheduler="every-2s"' in html and 'data-scheduler="nightly"' in html
    assert "<code>0 30 2 * * *</code>" in html and "Europe/Berlin" in html and "every 2.0 s" in html
    link = re.search(r'href="([^"]+)">its job</a>', html)
    assert link and client.get(link.group(1).replace("&amp;", "&")).status_code == 200
    resp = post(client, "/queues/ticks/schedulers/nightly/remove", {"state": "waiting"}, target="queue")
    assert resp.status_code == 200 and "Removed job scheduler nightly" in toast(resp)
    assert [s["key"] for s in q.job_schedulers()] == ["every-2s"]
    assert post(client, "/queues/ticks/schedulers/nightly/remove").status_code == 404


def test_queue_page_shows_the_rate_limit_and_when_it_throttles(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 2)
    assert 'id="rate-limit"' not in client.get("/queues/mail").get_data(as_text=True)
    q.set_global_rate_limit(10, 1)
    html = client.get("/queues/mail").get_data(as_text=True)
    assert "10 jobs / 1.0 s" in html and "throttled" not in html
    r.set("bull:mail:limiter", 10, px=60_000)  # ten jobs started in this window: the limit is reached
    html = client.get("/queues/mail").get_data(as_text=True)
    assert "10 jobs / 1.0 s: throttled," in html


def test_every_action_is_in_the_audit_trail_with_who_and_what(make_app: Any, r: redis.Redis) -> None:
    seed(r, "mail", 4)
    app = make_app(auth_user="oncall", auth_password="s3cret")
    client = app.test_client()
    creds = {"Authorization": "Basic " + base64.b64encode(b"oncall:s3cret").decode()}
    csrf = token_with(client, creds)
    post(client, "/queues/mail/pause", headers=creds, csrf=csrf)
    post(client, "/queues/mail/jobs/2/retry", headers=creds, csrf=csrf)
    post(client, "/queues/mail/jobs/3/retry", headers=creds, csrf=csrf)  # completed: retried too
    post(client, "/queues/mail/jobs/999/remove", headers=creds, csrf=csrf)  # no such job: refused
    client.post("/queues/mail/resume", headers=creds)  # forged (no CSRF token): logged, not stored
    resp = post(client, "/queues/mail/retry-all", headers=creds, csrf=csrf)
    assert resp.status_code == 303
    task_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert state(app).tasks.get(task_id).wait(10)
    deadline = time.monotonic() + 10
    while len(state(app).audit.entries()) < 6:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    entries = state(app).audit.entries()
    actions = [(e.actor, e.action, e.queue, e.target, e.ok) for e in reversed(entries)]
    assert actions[:4] == [("oncall", "pause", "mail", "", True), ("oncall", "retry job", "mail", "2", True),
                           ("oncall", "retry job", "mail", "3", True), ("oncall", "remove job", "mail", "999", False)]
    # the task's thread may finish before the request that started it is recorded
    assert sorted(actions[4:]) == [("oncall", "retry all", "mail", "", True),
                                   ("oncall", "retry all failed finished", "mail", "", True)]
    assert all(e.remote == "127.0.0.1" for e in entries) and "s3cret" not in str(entries)
    page = client.get("/audit", headers=creds).get_data(as_text=True)
    assert "retry all failed finished" in page and "refused (404)" in page
    queue_page = client.get("/queues/mail", headers=creds).get_data(as_text=True)
    assert "Recent actions on mail" in queue_page


def token_with(client: FlaskClient, headers: dict[str, str]) -> str:
    html = client.get("/", headers=headers).get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match
    return match.group(1)


def test_pause_with_a_reason_and_an_end_time_resumes_exactly_once(make_app: Any, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    app = make_app(auth_user="oncall", auth_password="s3cret")
    client = app.test_client()
    creds = {"Authorization": "Basic " + base64.b64encode(b"oncall:s3cret").decode()}
    csrf = token_with(client, creds)
    resp = post(client, "/queues/mail/pause", {"reason": "partner API down", "until": "900"}, headers=creds,
                csrf=csrf, target="queue")
    assert resp.status_code == 200 and "Paused mail for 15 min" in toast(resp) and "partner API down" in toast(resp)
    html = resp.get_data(as_text=True)
    assert "by oncall" in html and "“partner API down”" in html and "resumes by itself" in html
    q = queue(r, "mail")
    assert q.is_paused() and q.pause_info().until is not None
    assert post(client, "/queues/mail/pause", {"until": "17"}, headers=creds, csrf=csrf).status_code == 400
    assert not q.resume_if_due()  # not yet
    r.hset("bull::pause:mail", "until", 1)  # the end time has come
    other = queue(r, "mail")  # another process: a worker, or another dashboard
    assert other.resume_if_due() and not q.resume_if_due()  # exactly once
    assert not q.is_paused() and q.pause_info() is None
    state(app).overview.invalidate()  # the page's counts come from a snapshot at most a second old
    assert "paused-badge" not in client.get("/queues/mail", headers=creds).get_data(as_text=True)


def test_the_overview_resumes_a_pause_that_has_reached_its_end(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 2)
    q.pause("maintenance", until=60)
    r.hset("bull::pause:mail", "until", 1)
    html = client.get("/").get_data(as_text=True)
    assert not q.is_paused() and "badge paused" not in html


def _age_completed(r: redis.Redis, name: str, ages: list[float]) -> None:
    """Make the queue's completed jobs look finished ``ages`` seconds ago (one per job, oldest id first)."""
    ids = [i for i in r.zrange(f"bull:{name}:completed", 0, -1) if isinstance(i, bytes)]
    now = int(time.time() * 1000)
    r.zadd(f"bull:{name}:completed", {job_id: now - int(age * 1000) for job_id, age in zip(ids, ages)})


def test_clean_grace_takes_any_duration(client: FlaskClient, app: Flask, r: redis.Redis) -> None:
    q = seed(r, "mail", 10)
    _age_completed(r, "mail", [10, 120, 2 * 3600, 3 * 86400, 8 * 86400])
    _task(app, post(client, "/queues/mail/clean", {"state": "completed", "grace": "7d"}, target="task"))
    assert q.counts().completed == 4
    _task(app, post(client, "/queues/mail/clean", {"state": "completed", "grace": "1h30m"}, target="task"))
    assert q.counts().completed == 2
    _task(app, post(client, "/queues/mail/clean", {"state": "completed", "grace": "90s", "limit": "5"}, target="task"))
    assert q.counts().completed == 1
    for garbage in ("soon", "1h30", "30m1h", "-5", "1e3", "²", "9" * 20):
        resp = post(client, "/queues/mail/clean", {"state": "completed", "grace": garbage}, target="task")
        assert resp.status_code == 400 and "grace" in resp.get_data(as_text=True), garbage
    assert q.counts().completed == 1


def test_clean_preview_counts_what_the_form_matches(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 10)
    _age_completed(r, "mail", [10, 120, 2 * 3600, 3 * 86400, 8 * 86400])

    def preview(**query: str) -> tuple[int, str]:
        resp = client.get("/queues/mail/clean-preview", query_string=query, headers=HX)
        return resp.status_code, resp.get_data(as_text=True)

    assert preview(state="completed", grace="0", limit="0") == (
        200, '<span data-match="5" data-grace="0" data-limit="0">5 completed jobs match</span>')
    assert "3 completed jobs match" in preview(state="completed", grace="1h", limit="")[1]
    assert "2 completed jobs match" in preview(state="completed", grace="1h", limit="2")[1]
    assert "1 completed job matches" in preview(state="completed", grace="7d")[1]
    assert "0 failed jobs match" in preview(state="failed", grace="2h")[1]
    code, html = preview(state="completed", grace="1 fortnight")
    assert code == 400 and "grace: &#39;1 fortnight&#39; is not a duration" in html
    assert preview(state="completed", limit="-1")[0] == 400
    assert preview(state="waiting")[0] == 400
    assert client.get("/queues/nope/clean-preview?state=completed").status_code == 404


def test_the_clean_form_offers_durations_and_its_preview(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 10)
    html = client.get("/queues/mail?state=completed").get_data(as_text=True)
    assert 'id="clean-grace" name="grace" type="text" value="1h" list="grace-choices"' in html
    assert '<option value="1h">1 hour</option>' in html and '<option value="7d">7 days</option>' in html
    assert 'id="clean-match-completed"' in html and "/queues/mail/clean-preview?state=completed" in html
    assert "Delete {match} completed jobs finished {grace}" in html
