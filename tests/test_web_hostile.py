"""Hostile input against the dashboard: odd names and ids, malformed data, bad parameters,
forged and read-only requests, secrets in REDIS_URL. Every case gets a clear answer (never a
5xx) and changes nothing it should not."""

from __future__ import annotations

import base64
import html as htmllib
import re
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from dashboard import Queue
from dashboard.config import Settings
from dashboard.keys import Keys
from dashboard.redis_server import EmbeddedRedis
from dashboard.web.urls import segment
from tests.webkit import digest, post, queue, rows, seed, token

#: Job ids BullMQ accepts that once let a button act on another job, or broke a link.
ODD_IDS = ["evil/../victim", "a__act__b", "%2F", "?x#y", "ünï cödé ✓", "..", ".", "a/b/c", "sp ace", "100%",
           "back\\slash", "tab\there", "semi;colon", "amp&er=sand", "-dash", "x" * 300, "a%00b", "<b>bold</b>"]
#: Queue names Queue() accepts: every one can be opened from the overview.
ODD_NAMES = ["my__job__q", "a/b", "sp ace", "ünï", "..", "%", "q?x#y", "t\tab", "n" * 300, "<i>q</i>"]


def hrefs(page: str) -> list[str]:
    return [htmllib.unescape(h) for h in re.findall(r'href="([^"]+)"', page)]


def test_segment_urls_decode_back_to_the_value(app: Flask) -> None:
    with app.test_request_context():
        from flask import url_for

        for value in ODD_IDS + ODD_NAMES:
            url = url_for("bullpen.job_action", name="q", job_id=value, action="remove")
            assert url.count("/") == 5, url  # /queues/q/jobs/<one segment>/remove
            assert "/../" not in url and "/./" not in url
            adapter = app.url_map.bind("localhost")
            from urllib.parse import unquote

            endpoint, args = adapter.match(unquote(url), method="POST")  # the server decodes once
            assert (endpoint, args["job_id"]) == ("bullpen.job_action", value)
    assert segment("..") == "%252E%252E" and segment("a/b") == "a%252Fb"


def test_list_urls_are_what_url_for_builds(app: Flask) -> None:
    """A queue page's tabs and pager links come from urls.list_url_builder, not url_for each."""
    from flask import url_for

    from dashboard.web.urls import list_url_builder
    with app.test_request_context():
        for name in ODD_NAMES:
            build = list_url_builder(name)
            assert build("failed", 50) == url_for("bullpen.queue_view", name=name, state="failed", per=50)
            assert build("waiting-children", 20, 3) == url_for("bullpen.queue_view", name=name,
                                                               state="waiting-children", page=3, per=20)


@pytest.mark.parametrize("job_id", ODD_IDS)
def test_row_actions_on_odd_ids_change_only_that_job(client: FlaskClient, r: redis.Redis, job_id: str) -> None:
    q = queue(r)
    victims = [q.add("victim", {"n": n}, job_id=v) for n, v in enumerate(["victim-1", "b", "a", "evil"])]
    target = q.add("odd", {}, job_id=job_id, delay=3600)
    page = client.get("/queues/mail?state=delayed").get_data(as_text=True)
    assert rows(page) == [htmllib.escape(target.id, quote=True)]
    links = [h for h in hrefs(page) if "/jobs/" in h]
    assert client.get(links[0]).status_code == 200, links[0]
    actions = re.findall(r'(?:action|hx-post)="([^"]+/(?:promote|remove))"', page)
    promote = htmllib.unescape(next(a for a in actions if a.endswith("/promote")))
    before = {v.id: r.hgetall(Keys("bull", "mail").job(v.id)) for v in victims}
    assert post(client, promote).status_code in (200, 303)
    assert q.job(job_id).state == "waiting"
    remove = htmllib.unescape(next(a for a in actions if a.endswith("/remove")))
    assert post(client, remove).status_code in (200, 303)
    assert q.job(job_id) is None
    assert {v.id: r.hgetall(Keys("bull", "mail").job(v.id)) for v in victims} == before
    assert q.counts().waiting == len(victims)


@pytest.mark.parametrize("name", ODD_NAMES)
def test_every_name_queue_accepts_opens_from_the_overview(client: FlaskClient, r: redis.Redis, name: str) -> None:
    Queue(name, connection=r).add("x", {"n": 1})
    page = client.get("/").get_data(as_text=True)
    (link,) = [h for h in hrefs(page) if h.startswith("/queues/") and "?" not in h.split("/")[-1]
               and h.count("/") == 2]
    opened = client.get(link)
    assert opened.status_code == 200 and htmllib.escape(name) in opened.get_data(as_text=True)
    resp = post(client, link + "/pause", {"state": "waiting"})
    assert resp.status_code == 303 and Queue(name, connection=r).is_paused()


def test_registry_entries_that_are_not_queue_names_are_shown_and_skipped(client: FlaskClient,
                                                                          r: redis.Redis) -> None:
    seed(r, "mail", 2)
    r.sadd("bull::queues", "", "a:b", b"\xff\xfe")
    resp = client.get("/")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'data-queue="mail"' in body
    assert "which is not a queue name" in body and "&#39;a:b&#39;" in body


def test_a_registry_key_of_the_wrong_type_is_shown(client: FlaskClient, r: redis.Redis) -> None:
    r.set("bull::queues", "not a set")
    resp = client.get("/")
    assert resp.status_code == 200 and "cannot be read" in resp.get_data(as_text=True)


def test_wrong_type_keys_render_with_the_problem_shown(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 4)
    r.delete("bull:mail:completed")
    r.rpush("bull:mail:completed", "1")  # a list where BullMQ keeps a sorted set
    r.delete("bull:mail:wait")
    r.set("bull:mail:wait", "a string")
    r.hset("bull:mail:2:logs", "x", "y")  # a job's log that is a hash
    r.set("bull::task:0123456789abcdef", "not a hash")
    for path in ("/", "/queues/mail?state=completed", "/queues/mail?state=waiting", "/queues/mail/jobs/2",
                 "/tasks/0123456789abcdef"):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
    assert "could not be read" in client.get("/queues/mail?state=waiting").get_data(as_text=True)
    assert "log cannot be read" in client.get("/queues/mail/jobs/2").get_data(as_text=True)
    assert "cannot be read" in client.get("/tasks/0123456789abcdef").get_data(as_text=True)
    assert q.job("2") is not None


ODD_STAMPS = ["1795000000000000", "-5", "inf", "nan", "1e999", "2026-11-28", "99999999999999999999"]


@pytest.mark.parametrize("stamp", ODD_STAMPS)
def test_odd_timestamps_render(client: FlaskClient, r: redis.Redis, stamp: str) -> None:
    q = seed(r, "mail", 2)
    for field in ("timestamp", "processedOn", "finishedOn"):
        r.hset(Keys("bull", "mail").job("2"), field, stamp)
    for path in ("/queues/mail?state=failed", "/queues/mail/jobs/2", "/"):
        assert client.get(path).status_code == 200, path
    assert q.counts().failed == 1


@pytest.mark.parametrize("query", ["page=%C2%B2", "per=%C2%B2", "page=%D9%A3", "page=1e3", "page=+1", "page=%201",
                                   "state=%00", "page=99999999999999999999", "per=20&per=x"])
def test_numbers_in_query_strings_are_parsed_strictly(client: FlaskClient, r: redis.Redis, query: str) -> None:
    seed(r, "mail", 2)
    resp = client.get(f"/queues/mail?{query}")
    assert resp.status_code in (200, 400), query
    if "page=%" in query or "per=%C2" in query or "1e3" in query or "+1" in query:
        assert resp.status_code == 400 and "whole number" in resp.get_data(as_text=True)


@pytest.mark.parametrize("field", ["grace", "limit"])
def test_clean_form_numbers_are_strict(client: FlaskClient, r: redis.Redis, field: str) -> None:
    q = seed(r, "mail", 4)
    before = digest(r)
    resp = post(client, "/queues/mail/clean", {"state": "completed", field: "²"})
    assert resp.status_code == 400 and field in resp.get_data(as_text=True)
    assert digest(r) == before and q.counts().completed == 2


@pytest.mark.parametrize("target", ["//evil.example/x", "/\t/evil.example", "/\r\nSet-Cookie: x=1", "/\\evil.example",
                                    "https://evil.example/", "/%09/evil.example", " /x", "/ok\x00"])
def test_next_redirects_only_to_paths_on_this_site(client: FlaskClient, r: redis.Redis, target: str) -> None:
    seed(r, "mail", 2)
    resp = post(client, "/queues/mail/pause", {"next": target})
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert location.startswith("/queues/mail") and "evil" not in location and "\n" not in location
    assert "Set-Cookie" not in resp.headers or "x=1" not in resp.headers["Set-Cookie"]


def test_search_terms_of_any_size_get_an_answer(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 1)
    for term in ("x" * 5000, "\x00", "a:b:c", "../..", "%2F"):
        assert client.get("/search", query_string={"q": term}).status_code in (303, 404), term


def test_content_security_policy_directive_by_directive(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 1)
    expected = {"default-src": ["'self'"], "base-uri": ["'none'"], "form-action": ["'self'"],
                "frame-ancestors": ["'none'"], "object-src": ["'none'"]}
    for path in ("/", "/queues/mail", "/queues/mail/jobs/1", "/nope", "/healthz"):
        header = client.get(path).headers["Content-Security-Policy"]
        directives = {}
        for part in header.split(";"):
            name, *values = part.split()
            assert name not in directives, f"{name} given twice"
            directives[name] = values
        assert directives == expected, (path, header)


def post_routes(app: Flask) -> list[tuple[str, str]]:
    """(endpoint, url) of every state-changing route of the blueprint, with sample arguments."""
    samples = {"name": "mail", "job_id": "2", "action": "retry", "scheduler_id": "every-2s", "rest": "no/such/route",
               "cluster": "0123456789abcdef", "task_id": "0123456789abcdef", "what": "pause"}
    found = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith("bullpen.") and rule.methods and "POST" in rule.methods:
                missing = set(rule.arguments) - set(samples)
                assert not missing, f"{rule.endpoint}: add sample values for {missing} to this test"
                values: dict[str, Any] = {a: samples[a] for a in rule.arguments}
                found.append((rule.endpoint, url_for(rule.endpoint, **values)))
    return found


def test_read_only_refuses_every_state_changing_route(make_app: Any, r: redis.Redis) -> None:
    seed(r, "mail", 4)
    queue(r, "mail").add("later", {}, delay=3600)
    app = make_app(read_only=True)
    client = app.test_client()
    routes = post_routes(app)
    assert len(routes) >= 9  # rescan, pause/resume all, pause, resume, job action, retry/promote all, clean
    before = digest(r)
    for endpoint, url in routes:
        resp = post(client, url, {"state": "completed", "grace": "0", "limit": "0"}, csrf=token(client))
        assert resp.status_code == 403, (endpoint, resp.status_code)
    assert digest(r) == before


def test_forged_posts_change_nothing(client: FlaskClient, app: Flask, r: redis.Redis) -> None:
    seed(r, "mail", 4)
    before = digest(r)
    for endpoint, url in post_routes(app):
        for headers in ({}, {"X-CSRF-Token": "forged"}, {"Sec-Fetch-Site": "cross-site"}):
            resp = client.post(url, data={"state": "completed"}, headers=headers)
            assert resp.status_code == 403, (endpoint, headers)
    assert digest(r) == before and r.exists("bull::audit") == 0  # refused before the view: not even audited


def test_basic_auth_covers_error_pages_and_sets_no_cookie(make_app: Any, r: redis.Redis) -> None:
    client = make_app(auth_user="oncall", auth_password="s3cret").test_client()
    for method, path in (("GET", "/no/such/page"), ("GET", "/queues/nope"), ("DELETE", "/"), ("GET", "/static/x")):
        resp = client.open(path, method=method)
        assert resp.status_code == 401, (method, path)
        assert "Set-Cookie" not in resp.headers
    assert client.get("/healthz").status_code == 200
    good = base64.b64encode(b"oncall:s3cret").decode()
    resp = client.get("/no/such/page", headers={"Authorization": f"Basic {good}"})
    assert resp.status_code == 404 and "Set-Cookie" not in resp.headers


def test_error_pages_start_no_session(client: FlaskClient) -> None:
    for method, path in (("GET", "/no/such/page"), ("DELETE", "/"), ("GET", "/queues/nope")):
        resp = client.open(path, method=method)
        assert resp.status_code in (404, 405) and "Set-Cookie" not in resp.headers, path


@pytest.fixture
def password_redis() -> Any:
    with EmbeddedRedis() as server:
        with redis.Redis(port=server.port) as admin:
            admin.config_set("requirepass", "hunter2")
        yield server
        with redis.Redis(port=server.port, password="hunter2") as admin:
            admin.config_set("requirepass", "")  # so that stop() can SHUTDOWN it


def test_redis_password_never_reaches_a_page(password_redis: EmbeddedRedis) -> None:
    port = password_redis.port
    for url in (f"redis://:hunter2@127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/0?password=hunter2",
                f"redis://default:hunter2@127.0.0.1:{port}/0"):
        app = create_app(Settings(redis_url=url, secret_key="x"))
        app.testing = True
        try:
            client = app.test_client()
            Queue("mail", connection=redis.Redis(port=port, password="hunter2")).add("x", {})
            pages = [client.get(p) for p in ("/", "/queues/mail", "/queues/mail/jobs/1", "/nope", "/healthz")]
            pages.append(client.delete("/"))
            assert [p.status_code for p in pages] == [200, 200, 200, 404, 200, 405]
            for page in pages:
                text = page.get_data(as_text=True) + str(page.headers)
                assert "hunter2" not in text and "default:" not in text
            assert f"127.0.0.1:{port}/0" in pages[0].get_data(as_text=True)
        finally:
            app.extensions["bullpen"].stop()


@pytest.mark.parametrize("text", ["", "plain", "<script>alert('x')</script>", 'a"b\'c&d<e>f', "&amp; already",
                                  "ünï©ødé ✓ \u2028", "<<>>&&''\"\""])
def test_rows_escape_exactly_as_autoescaping_does(text: str) -> None:
    """Job list rows print with autoescaping off (cells.job_rows escapes each value once): the
    escaping must be markupsafe's, character for character."""
    from markupsafe import escape

    from dashboard.web.formatting import html
    assert html(text) == str(escape(text))
