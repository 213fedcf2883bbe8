"""Dashboard pages through Flask's test client: full pages, htmx partials, errors, safety."""

from __future__ import annotations

import re

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dashboard.config import Settings
from dashboard.redis_server import EmbeddedRedis, free_port
from dashboard.web import init_dashboard
from tests.webkit import HX, SCRIPT, XSS, post, queue, rows, run_burst, seed, state, token


def test_overview_full_page_and_partial(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 6)
    queue(r, "idle").add("x", {})
    full = client.get("/")
    html = full.get_data(as_text=True)
    assert full.status_code == 200 and html.startswith("<!doctype html>")
    assert 'id="summary"' in html and "Pause all" in html
    assert 'data-queue="mail"' in html and 'data-queue="idle"' in html
    assert "no workers" in html  # nothing is connected in this test
    part = client.get("/", headers=HX)
    body = part.get_data(as_text=True)
    assert part.status_code == 200 and body.lstrip().startswith('<div id="summary"') and "<html" not in body
    assert re.search(r'data-state="completed"\s+href="[^"]+">3<', body)
    assert re.search(r'data-state="failed"\s+href="[^"]+">3<', body)
    assert "Vary" in part.headers and "HX-Request" in part.headers["Vary"]


def test_history_restore_gets_the_full_page(client: FlaskClient, r: redis.Redis) -> None:
    seed(r)
    resp = client.get("/queues/mail", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<!doctype html>" in resp.get_data(as_text=True)


def test_queue_page_tabs_rows_and_partial(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 10)
    html = client.get("/queues/mail?state=failed").get_data(as_text=True)
    assert 'aria-current="page"' in html and "Retry all 5" in html and "Clean" in html
    assert sorted(rows(html), key=int) == ["2", "4", "6", "8", "10"]  # order: finish time (ms ties possible)
    assert "cannot send mail #9" in html
    part = client.get("/queues/mail?state=completed", headers={**HX, "HX-Target": "queue"})
    body = part.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="queue"') and "<html" not in body
    assert sorted(rows(body), key=int) == ["1", "3", "5", "7", "9"]


def test_deep_pages_return_exactly_their_rows(client: FlaskClient, r: redis.Redis) -> None:
    q = queue(r)
    q.add_bulk([("bulk", {"n": i}, {}) for i in range(250)])
    page1 = rows(client.get("/queues/mail?state=waiting&per=20").get_data(as_text=True))
    assert page1 == [str(i) for i in range(250, 230, -1)]
    page5 = rows(client.get("/queues/mail?state=waiting&page=5&per=20").get_data(as_text=True))
    assert page5 == [str(i) for i in range(170, 150, -1)]
    last = rows(client.get("/queues/mail?state=waiting&page=13&per=20").get_data(as_text=True))
    assert last == [str(i) for i in range(10, 0, -1)]
    hundred = rows(client.get("/queues/mail?state=waiting&page=3&per=100", headers=HX).get_data(as_text=True))
    assert len(hundred) == 50
    beyond = client.get("/queues/mail?state=waiting&page=99&per=20").get_data(as_text=True)
    assert rows(beyond) == [] and "this list has 13 pages" in beyond


@pytest.mark.parametrize("query", ["state=bogus", "page=0", "page=abc", "per=7", "per=1000", "page=-1"])
def test_bad_list_arguments_are_400(client: FlaskClient, r: redis.Redis, query: str) -> None:
    seed(r, "mail", 2)
    assert client.get(f"/queues/mail?{query}").status_code == 400


def test_job_page_full_partial_and_polling(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 2)
    waiting = q.add("later", {"x": 1})
    html = client.get("/queues/mail/jobs/2").get_data(as_text=True)
    assert "Job 2" in html and "cannot send mail #1" in html and "Traceback" in html and "Failed reason" in html
    terminal = client.get("/queues/mail/jobs/2", headers={**HX, "HX-Target": "job"})
    assert terminal.status_code == 286  # htmx stops polling a finished job
    assert 'hx-trigger' not in terminal.get_data(as_text=True).split(">", 1)[0]
    live = client.get(f"/queues/mail/jobs/{waiting.id}", headers={**HX, "HX-Target": "job"})
    assert live.status_code == 200 and "every 1.0s" in live.get_data(as_text=True)
    gone = client.get("/queues/mail/jobs/999", headers={**HX, "HX-Target": "job"})
    assert gone.status_code == 286 and "no longer exists" in gone.get_data(as_text=True)


def test_job_page_shows_everything(client: FlaskClient, r: redis.Redis) -> None:
    q = queue(r)
    q.add("report", {"big": "y" * 20_000, "n": 1}, attempts=2)

    def handler(job):
        job.log("step one")
        job.update_progress(40)
        return {"pages": 12}

    run_burst(r, "mail", handler)
    html = client.get("/queues/mail/jobs/1").get_data(as_text=True)
    for text in ("completed", "step one", "&#34;pages&#34;: 12", "40%", "Created", "Processed", "Finished",
                 "1 made, 1 started, 2 allowed", "Download all", "&#34;attempts&#34;: 2"):
        assert text in html, text
    assert html.count("y" * 1000) == 9  # cut at ~10 KB
    full = client.get("/queues/mail/jobs/1/download/data")
    assert full.status_code == 200 and full.mimetype == "application/json"
    assert "y" * 20_000 in full.get_data(as_text=True)
    assert full.headers["Content-Disposition"] == 'attachment; filename="job-data.json"'


def test_unknown_queue_and_job_are_404_pages(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 1)
    resp = client.get("/queues/nope")
    assert resp.status_code == 404 and "No queue named" in resp.get_data(as_text=True)
    resp = client.get("/queues/mail/jobs/12345")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 404 and "No job with id &#39;12345&#39; in queue &#39;mail&#39;" in body
    assert client.get("/no/such/page").status_code == 404
    partial = client.get("/queues/nope", headers={**HX, "HX-Target": "queue"})
    assert partial.status_code == 404 and partial.headers["HX-Retarget"] == "#flash"
    assert partial.get_data(as_text=True).startswith('<div id="flash"')


def test_search_jumps_to_a_job_or_queue(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 3)
    seed(r, "sms", 1)
    assert client.get("/search?q=3").headers["Location"].endswith("/queues/mail/jobs/3")
    assert client.get("/search?q=sms").headers["Location"].endswith("/queues/sms")
    both = client.get("/search?q=1")
    assert both.status_code == 200 and "Job 1 in mail" in both.get_data(as_text=True)
    assert "Job 1 in sms" in both.get_data(as_text=True)
    scoped = client.get("/search?q=1&queue=sms")
    assert scoped.headers["Location"].endswith("/queues/sms/jobs/1")
    assert client.get("/search?q=777").status_code == 404
    assert client.get("/search?q=").status_code == 400


def test_task_page_full_and_partial(client: FlaskClient, app: Flask, r: redis.Redis) -> None:
    seed(r, "mail", 4)
    resp = post(client, "/queues/mail/retry-all")
    assert resp.status_code == 303 and "/tasks/" in resp.headers["Location"]
    task_id = resp.headers["Location"].rsplit("/", 1)[-1]
    assert state(app).tasks.get(task_id).wait(10)
    assert "done" in client.get(f"/tasks/{task_id}").get_data(as_text=True)
    part = client.get(f"/tasks/{task_id}", headers={**HX, "HX-Target": "task"})
    assert part.status_code == 286 and "dashboard:toast" in part.headers["HX-Trigger"]
    assert client.get("/tasks/unknown").status_code == 404


def test_redis_down_gives_503_and_recovers(make_app) -> None:
    port = free_port()
    app = make_app(redis_url=f"redis://127.0.0.1:{port}/0")
    client = app.test_client()
    down = client.get("/")
    assert down.status_code == 503 and "Redis is unreachable" in down.get_data(as_text=True)
    assert down.headers["Retry-After"] == "5" and 'http-equiv="refresh"' in down.get_data(as_text=True)
    assert client.get("/", headers=HX).status_code == 503
    assert client.get("/healthz").status_code == 503
    with EmbeddedRedis(port=port):
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200
    assert client.get("/queues/mail").status_code == 503


def test_healthz(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_data(as_text=True) == "ok\n"


def test_security_headers_and_no_inline_code(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    for path in ("/", "/queues/mail?state=failed", "/queues/mail/jobs/1", "/queues/nope"):
        resp = client.get(path)
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "private, no-store"
        html = resp.get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
        assert " style=" not in html and "<style" not in html and " on" + "click=" not in html
        assert "hx-on" not in html and "js:" not in html
    assert '"allowEval":false' in client.get("/").get_data(as_text=True)


def test_escaped_everywhere(client: FlaskClient, r: redis.Redis) -> None:
    name = XSS  # a legal queue name: no colon
    q = queue(r, name)
    q.add(XSS, {"html": XSS, "js": SCRIPT})
    q.add(SCRIPT, {"html": XSS}, attempts=1)

    def evil(job):
        job.log(f"log {XSS} {SCRIPT}")
        if job.name == SCRIPT:
            raise RuntimeError(f"reason {XSS} {SCRIPT}")
        return {"out": XSS, "s": SCRIPT}

    run_burst(r, name, evil)
    pages = [client.get("/"), client.get("/", headers=HX)]
    for state_name in ("completed", "failed"):
        pages.append(client.get("/queues/" + name, query_string={"state": state_name}))
    pages += [client.get(f"/queues/{name}/jobs/1"), client.get(f"/queues/{name}/jobs/2"),
              client.get(f"/queues/{name}/jobs/2", headers=HX), client.get("/search", query_string={"q": XSS})]
    for resp in pages:
        html = resp.get_data(as_text=True)
        assert resp.status_code in (200, 286, 303), resp.status_code
        assert "<img" not in html and "alert('x')</script>" not in html and "<script>alert" not in html
    job_html = pages[-3].get_data(as_text=True)
    assert "reason &lt;img src=x onerror=alert(1)&gt;" in job_html  # failed reason and stack, as text
    assert "log &lt;img src=x onerror=alert(1)&gt; &lt;script&gt;" in job_html
    done_html = pages[-4].get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in done_html and "&#34;out&#34;" in done_html


def test_mounted_under_a_prefix_in_another_app(redis_url: str, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    host = Flask("host")
    host.secret_key = "host-secret"

    @host.get("/")
    def home() -> str:
        return "host home"

    dash = init_dashboard(host, Settings(redis_url=redis_url), redis_url, url_prefix="/admin/jobs")
    try:
        c = host.test_client()
        assert c.get("/").get_data(as_text=True) == "host home"
        html = c.get("/admin/jobs/").get_data(as_text=True)
        assert 'href="/admin/jobs/queues/mail"' in html and "/admin/jobs/static/htmx-2.0.11.min.js" in html
        assert 'hx-get="/admin/jobs/"' in html
        with c.get("/admin/jobs/static/dashboard.css") as css:
            assert css.status_code == 200 and css.mimetype == "text/css"
        assert c.get("/admin/jobs/queues/mail/jobs/1").status_code == 200
        assert c.get("/admin/jobs/healthz").status_code == 200
        resp = post(c, "/admin/jobs/queues/mail/pause", csrf=token(c, "/admin/jobs/"))
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/jobs/")
        assert queue(r, "mail").is_paused()
    finally:
        dash.stop()


def test_create_app_mounts_at_the_configured_prefix(make_app, r: redis.Redis) -> None:
    seed(r, "mail", 1)
    client = make_app(url_prefix="/ops/queues").test_client()
    html = client.get("/ops/queues/").get_data(as_text=True)
    assert 'href="/ops/queues/queues/mail"' in html
    assert client.get("/").status_code == 404


def test_row_links_reach_jobs_with_odd_ids(client: FlaskClient, r: redis.Redis) -> None:
    q = queue(r)
    odd = "mail/2026 #1?x=<b>&y"
    q.add("odd", {}, job_id=odd)
    html = client.get("/queues/mail?state=waiting").get_data(as_text=True)
    (href,) = re.findall(r'<td class="id"><a href="([^"]+)"', html)
    page = client.get(href.replace("&amp;", "&"))
    assert page.status_code == 200
    assert "mail/2026 #1?x=&lt;b&gt;&amp;y" in page.get_data(as_text=True)
    (action,) = re.findall(r'action="([^"]+/remove)"', page.get_data(as_text=True))
    assert post(client, action.replace("&amp;", "&")).status_code in (200, 303)
    assert q.job(odd) is None


def test_a_queue_page_opens_on_failed_after_a_recent_failure(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)  # one failed just now
    html = client.get("/queues/mail").get_data(as_text=True)
    assert re.search(r'id="tab-failed"[^>]*aria-current="page"', html)
    r.zadd("bull:mail:failed", {"2": 1_000_000})  # the failure was long ago
    html = client.get("/queues/mail").get_data(as_text=True)
    assert re.search(r'id="tab-waiting"[^>]*aria-current="page"', html)


def test_search_finds_queues_by_part_of_their_name_and_jobs_with_their_state(client: FlaskClient,
                                                                             r: redis.Redis) -> None:
    for name in ("mail-eu", "mail-us", "sms"):
        queue(r, name).add("x", {})
    html = client.get("/search?q=MAIL").get_data(as_text=True)
    assert "Queue mail-eu" in html and "Queue mail-us" in html and "Queue sms" not in html
    html = client.get("/search?q=1").get_data(as_text=True)
    assert html.count("(waiting)") == 3


def test_why_isnt_this_draining_names_what_holds_jobs_back(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 4)  # metrics recorded by the worker: 4 jobs finished just now
    for i in range(30):
        q.add("later", {"i": i})
    q.add("snooze", {}, delay=3600)
    q.pause()
    q.set_global_rate_limit(1, 60)
    r.set("bull:mail:limiter", 5, px=30_000)
    r.hset("bull:mail:meta", "concurrency", 1)
    r.lpush("bull:mail:active", "x")
    html = client.get("/queues/mail?state=waiting").get_data(as_text=True)
    panel = html.split('id="drain-title"', 1)[1].split("</section>", 1)[0]
    for fact in ("Paused:", "No worker is connected: nothing takes the 30 jobs", "Global concurrency cap reached",
                 "Rate-limited now", "1 job is delayed", "The oldest waiting job has waited",
                 "Drains in about", "at the current rate"):
        assert fact in panel, fact
