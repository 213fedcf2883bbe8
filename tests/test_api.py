"""The JSON API at api/v1/: every route, auth (tokens, scopes, basic auth, CSRF), hostile input,
and every response checked against the served OpenAPI document."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from typing import Any
from urllib.parse import quote

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

from dashboard.config import ApiToken, ConfigError, Settings
from dashboard.redis_server import EmbeddedRedis, free_port
from dashboard.web import init_dashboard
from dashboard.web.openapi import document
from dashboard.web.urls import segment
from tests.webkit import digest, queue, run_burst, seed, state, token

READ, WRITE, METRICS = "s3cret", "t0ken", "m3trics"
TOKENS = (ApiToken("ci", READ, "read"), ApiToken("ops", WRITE, "write"), ApiToken("prom", METRICS, "metrics"))
SPEC = document("/api/v1")
_REGISTRY = Registry().with_resource("urn:bullpen-api", Resource.from_contents(SPEC, default_specification=DRAFT202012))
_TEMPLATES = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in SPEC["paths"]]


def checked(resp: TestResponse, method: str, path: str) -> TestResponse:
    """``resp`` after checking it against the OpenAPI document: a JSON body, and for a known
    route a documented status whose schema the body matches; every error has the error shape."""
    assert resp.mimetype == "application/json", (path, resp.status_code, resp.get_data(as_text=True)[:200])
    body = resp.get_json()
    if resp.status_code >= 400:
        assert body["error"]["status"] == resp.status_code and body["error"]["message"], body
    relative = path.split("?", 1)[0].removeprefix("/api/v1")
    template = next((t for rx, t in _TEMPLATES if rx.match(relative)), None)
    operation = SPEC["paths"].get(template, {}).get(method.lower()) if template else None
    if operation is None:
        assert resp.status_code in (404, 405, 401, 403), (method, path, resp.status_code)
        pointer = "/components/schemas/Error"
    else:
        answer = operation["responses"].get(str(resp.status_code))
        assert answer is not None, f"{method} {template} answered {resp.status_code}, which the document omits"
        if "$ref" in answer:
            pointer = "/components/schemas/Error"
        else:
            pointer = "/".join(["/paths", template.replace("~", "~0").replace("/", "~1"), method.lower(),
                                "responses", str(resp.status_code), "content", "application~1json", "schema"])
    validator = OAS31Validator({"$ref": "urn:bullpen-api#" + quote(pointer, safe="/~")}, registry=_REGISTRY)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert errors == [], (method, path, errors[:5])
    return resp


def call(client: FlaskClient, method: str, path: str, bearer: str | None = WRITE, *,
         headers: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
    """One API request (``bearer`` None: none), its answer checked against the document."""
    all_headers = dict(headers or {})
    if bearer is not None:
        all_headers["Authorization"] = f"Bearer {bearer}"
    return checked(client.open(path, method=method, headers=all_headers, **kwargs), method, path)


@pytest.fixture
def app(make_app) -> Flask:
    return make_app(api_tokens=TOKENS)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- the document ------------------------------------------------------------------------

def test_the_openapi_document_is_valid_and_served_with_its_server(client: FlaskClient) -> None:
    validate_spec(SPEC)
    served = call(client, "GET", "/api/v1/openapi.json", READ).get_json()
    assert served["openapi"] == "3.1.0" and served["servers"] == [{"url": "/api/v1"}]
    assert served["paths"] == json.loads(json.dumps(SPEC["paths"]))
    assert call(client, "GET", "/api/v1/", READ).get_json()["queues"] == "/api/v1/queues"


def test_every_page_action_has_its_api_route(app: Flask) -> None:
    """The API mirrors the pages: each POST rule of the pages exists under api/v1/ (same path)."""
    rules = {(r.rule, m) for r in app.url_map.iter_rules() for m in r.methods or ()}
    page_posts = {rule for rule, m in rules if m == "POST" and not rule.startswith("/api/")}
    assert page_posts and {f"/api/v1{rule}" for rule in page_posts} <= {rule for rule, m in rules if m == "POST"}
    documented = {re.sub(r"<(?:[^>:]*:)?([a-z_]+)>", r"{\1}", rule) for rule in page_posts}
    documented = {p.replace("{action}", a) for p in documented for a in ("retry", "promote", "remove")}
    assert documented <= set(SPEC["paths"])


# --- reads -------------------------------------------------------------------------------

def test_queues_and_one_queue(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 6)
    q.upsert_job_scheduler("nightly", pattern="0 30 2 * * *", tz="Europe/Berlin", name="report")
    q.set_global_rate_limit(10, 1)
    listed = call(client, "GET", "/api/v1/queues", READ).get_json()
    mail = next(row for row in listed["queues"] if row["name"] == "mail")
    assert mail["counts"]["failed"] == 3 and mail["counts"]["completed"] == 3 and mail["url"] == "/api/v1/queues/mail"
    one = call(client, "GET", mail["url"], READ).get_json()
    assert one["name"] == "mail" and one["pause"] is None and one["rateLimit"] == {"max": 10, "durationMs": 1000}
    assert [s["key"] for s in one["schedulers"]] == ["nightly"] and isinstance(one["facts"], list)
    assert call(client, "GET", "/api/v1/queues/nope", READ).status_code == 404


@pytest.mark.parametrize("state_name", ["waiting", "prioritized", "delayed", "active", "waiting-children",
                                        "completed", "failed"])
def test_job_pages_for_every_state(client: FlaskClient, r: redis.Redis, state_name: str) -> None:
    seed(r, "mail", 4)
    q = queue(r, "mail")
    q.add("later", {}, delay=3600)
    q.add("urgent", {}, priority=3)
    q.add("now", {})
    page = call(client, "GET", f"/api/v1/queues/mail/jobs?state={state_name}&per=50", READ).get_json()
    assert page["state"] == state_name and page["per"] == 50 and page["page"] == 1
    expected = q.counts().as_dict()[state_name]
    assert page["total"] == expected and len(page["jobs"]) == expected
    assert all(job["state"] == state_name for job in page["jobs"])


def test_paging(client: FlaskClient, r: redis.Redis) -> None:
    q = queue(r, "mail")
    q.add_bulk([("n", {"i": i}, {}) for i in range(45)])
    pages = [call(client, "GET", f"/api/v1/queues/mail/jobs?page={n}", READ).get_json() for n in (1, 2, 3)]
    assert [len(p["jobs"]) for p in pages] == [20, 20, 5] and pages[0]["pages"] == 3 and pages[0]["total"] == 45
    ids = [j["id"] for p in pages for j in p["jobs"]]
    assert len(set(ids)) == 45
    assert call(client, "GET", "/api/v1/queues/mail/jobs", READ).get_json()["state"] == "waiting"  # the default


def test_one_job_with_traces_and_log(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 2)
    q.add_log("2", "tried smtp")
    job = call(client, "GET", "/api/v1/queues/mail/jobs/2", READ).get_json()
    assert job["state"] == "failed" and job["failedReason"] == "cannot send mail #1" and job["attemptsMade"] == 1
    assert "ValueError" in job["stacktrace"][0] and job["logs"]["lines"] == ["tried smtp"]
    assert job["logs"]["total"] == 1 and job["data"] == {"i": 1, "to": "user1@example.com"}
    done = call(client, "GET", "/api/v1/queues/mail/jobs/1", READ).get_json()
    assert done["state"] == "completed" and done["returnvalue"] == {"sent": 0}
    assert call(client, "GET", "/api/v1/queues/mail/jobs/1?log=0", READ).get_json()["logs"]["start"] == 0
    missing = call(client, "GET", "/api/v1/queues/mail/jobs/99", READ)
    assert missing.status_code == 404 and "No job with id '99'" in missing.get_json()["error"]["message"]


def test_a_big_job_is_cut_and_says_so(client: FlaskClient, r: redis.Redis) -> None:
    job = queue(r, "mail").add("big", {"blob": "x" * 200_000})
    body = call(client, "GET", f"/api/v1/queues/mail/jobs/{job.id}", READ).get_json()
    assert isinstance(body["data"], str) and len(body["data"]) <= 65536 and body["truncated"]["data"] > 200_000


def test_values_json_cannot_carry_are_sent_as_strings(client: FlaskClient, r: redis.Redis) -> None:
    job = queue(r, "mail").add("odd", {})
    r.hset(f"bull:mail:{job.id}", "data", '{"x": NaN, "y": [Infinity, -Infinity]}')
    raw = client.get(f"/api/v1/queues/mail/jobs/{job.id}", headers={"Authorization": f"Bearer {READ}"})
    body = json.loads(raw.get_data(as_text=True), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert body["data"] == {"x": "NaN", "y": ["Infinity", "-Infinity"]}


# --- actions -----------------------------------------------------------------------------

def test_pause_and_resume(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    paused = call(client, "POST", "/api/v1/queues/mail/pause", data={"reason": "smtp down", "until": "900"})
    body = paused.get_json()
    assert paused.status_code == 200 and body["paused"] is True and queue(r, "mail").is_paused()
    assert body["pause"]["reason"] == "smtp down" and body["pause"]["by"] == "api:ops"
    assert body["pause"]["until"] - body["pause"]["since"] == 900_000
    assert call(client, "POST", "/api/v1/queues/mail/resume").get_json()["paused"] is False
    assert not queue(r, "mail").is_paused()
    as_json = call(client, "POST", "/api/v1/queues/mail/pause", json={"reason": "again", "until": 3600})
    assert as_json.status_code == 200 and queue(r, "mail").pause_info().reason == "again"


def test_pause_all_resume_all_and_rescan(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 1)
    seed(r, "sms", 1)
    assert call(client, "POST", "/api/v1/pause-all").get_json()["count"] == 2
    assert queue(r, "mail").is_paused() and queue(r, "sms").is_paused()
    assert call(client, "POST", "/api/v1/resume-all").get_json()["count"] == 2
    assert not queue(r, "sms").is_paused()
    r.hset("bull:foreign:meta", "opts.maxLenEvents", "10000")
    assert "foreign" in call(client, "POST", "/api/v1/rescan").get_json()["found"]


def test_job_actions_return_the_result(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 4)
    retried = call(client, "POST", "/api/v1/queues/mail/jobs/2/retry").get_json()
    assert retried["message"] == "Retried job 2 in mail." and retried["job"]["state"] == "waiting"
    again = call(client, "POST", "/api/v1/queues/mail/jobs/2/retry")
    assert again.status_code == 409 and "not failed or completed" in again.get_json()["error"]["message"]
    delayed = q.add("later", {}, delay=3600)
    promoted = call(client, "POST", f"/api/v1/queues/mail/jobs/{delayed.id}/promote").get_json()
    assert promoted["job"]["state"] == "waiting"
    removed = call(client, "POST", "/api/v1/queues/mail/jobs/4/remove").get_json()
    assert removed["job"] is None and q.job("4") is None
    assert call(client, "POST", "/api/v1/queues/mail/jobs/4/remove").status_code == 404
    assert call(client, "POST", "/api/v1/queues/mail/jobs/1/explode").status_code == 404


def test_remove_a_job_scheduler(client: FlaskClient, r: redis.Redis) -> None:
    q = queue(r, "ticks")
    q.upsert_job_scheduler("every-2s", every=2, name="tick")
    assert call(client, "POST", "/api/v1/queues/ticks/schedulers/every-2s/remove").status_code == 200
    assert q.job_schedulers() == []
    assert call(client, "POST", "/api/v1/queues/ticks/schedulers/every-2s/remove").status_code == 404


def _finish(client: FlaskClient, app: Flask, started: TestResponse) -> dict[str, Any]:
    assert started.status_code == 202
    task = started.get_json()["task"]
    assert started.headers["Location"] == task["url"] == f"/api/v1/tasks/{task['id']}"
    assert state(app).tasks.get(task["id"]).wait(30)
    done = call(client, "GET", task["url"], READ).get_json()
    assert done["finished"] and done["percent"] == 100 and done["error"] is None
    return done


def test_bulk_actions_answer_202_with_a_task(app: Flask, client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 10)
    assert _finish(client, app, call(client, "POST", "/api/v1/queues/mail/retry-all"))["done"] == 5
    assert q.counts().failed == 0
    for i in range(3):
        q.add("later", {"i": i}, delay=3600)
    assert _finish(client, app, call(client, "POST", "/api/v1/queues/mail/promote-all"))["done"] == 3
    assert q.counts().delayed == 0
    cleaned = _finish(client, app, call(client, "POST", "/api/v1/queues/mail/clean",
                                        data={"state": "completed", "grace": "0", "limit": "2"}))
    assert cleaned["done"] == 2 and q.counts().completed == 3 and "Clean completed on mail: done" in cleaned["summary"]
    assert call(client, "GET", "/api/v1/tasks/0123456789abcdef", READ).status_code == 404


def test_every_api_action_is_audited_as_its_token(app: Flask, client: FlaskClient, r: redis.Redis,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seed(r, "mail", 2)
    call(client, "POST", "/api/v1/queues/mail/pause", data={"reason": "deploy"})
    call(client, "POST", "/api/v1/queues/mail/jobs/2/retry")
    _finish(client, app, call(client, "POST", "/api/v1/queues/mail/retry-all"))
    call(client, "POST", "/api/v1/queues/mail/pause", READ)  # refused: logged, not stored
    call(client, "POST", "/api/v1/queues/mail/pause", "wrong-token")
    entries = state(app).audit.entries("mail")
    assert {e.actor for e in entries} == {"api:ops"}
    actions = [e.action for e in entries]
    assert "pause" in actions and "retry job" in actions and "retry all failed finished" in actions
    assert "api:ci" in caplog.text  # the refusal's log line names the token, never its secret
    stored = json.dumps([vars(e) for e in state(app).audit.entries(count=1000)])
    for secret in (READ, WRITE, METRICS, "wrong-token"):
        assert secret not in caplog.text and secret not in stored


# --- who may do what ---------------------------------------------------------------------

def test_read_tokens_read_and_cannot_act(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 4)
    before = digest(r)
    for path in ("/api/v1/queues/mail/pause", "/api/v1/queues/mail/retry-all", "/api/v1/pause-all",
                 "/api/v1/queues/mail/jobs/2/retry", "/api/v1/queues/mail/clean", "/api/v1/rescan"):
        resp = call(client, "POST", path, READ, data={"state": "failed"})
        assert resp.status_code == 403 and "scope 'read'" in resp.get_json()["error"]["message"], path
    assert digest(r) == before
    assert call(client, "GET", "/api/v1/queues", READ).status_code == 200
    assert call(client, "GET", "/api/v1/queues", WRITE).status_code == 200


def test_a_metrics_token_cannot_use_the_api(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    assert call(client, "GET", "/api/v1/queues", METRICS).status_code == 403
    assert call(client, "POST", "/api/v1/queues/mail/pause", METRICS).status_code == 403
    assert not queue(r, "mail").is_paused()


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer ", "Bearer", "bearer s3cretX", f"Bearer {WRITE[:-1]}",
                                    f"Bearer {WRITE} extra"])
def test_a_bad_token_is_401_and_never_falls_back_to_the_session(client: FlaskClient, r: redis.Redis,
                                                                header: str) -> None:
    seed(r, "mail", 2)
    csrf = token(client)  # a browser session with a valid CSRF token
    before = digest(r)
    resp = checked(client.post("/api/v1/queues/mail/pause", headers={
        "Authorization": header, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"}), "POST",
        "/api/v1/queues/mail/pause")
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert call(client, "GET", "/api/v1/queues", None, headers={"Authorization": header}).status_code == 401
    assert digest(r) == before


def test_only_token_requests_skip_the_csrf_check(client: FlaskClient, r: redis.Redis) -> None:
    """Without a token the API is guarded as the pages are: a forged form, a stale token or a
    cross-site request is refused; with a valid token no CSRF token or origin header is needed."""
    seed(r, "mail", 2)
    client.get("/")  # a session cookie, as a logged-in browser has
    before = digest(r)
    assert call(client, "POST", "/api/v1/queues/mail/pause", None).status_code == 403
    assert call(client, "POST", "/api/v1/queues/mail/pause", None, data={"csrf_token": "forged"}).status_code == 403
    csrf = token(client)
    cross = call(client, "POST", "/api/v1/queues/mail/pause", None,
                 headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert digest(r) == before
    same = call(client, "POST", "/api/v1/queues/mail/pause", None,
                headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200 and same.get_json()["pause"]["by"] == "anonymous"
    fresh = client.application.test_client()  # no cookie, no CSRF token, no origin headers
    assert call(fresh, "POST", "/api/v1/queues/mail/resume").status_code == 200
    assert not queue(r, "mail").is_paused()


def test_with_basic_auth_the_api_takes_tokens_or_basic_auth_and_csrf(make_app, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    client = make_app(auth_user="oncall", auth_password="pa55", api_tokens=TOKENS).test_client()
    anonymous = call(client, "GET", "/api/v1/queues", None)
    assert anonymous.status_code == 401 and "Basic" in anonymous.headers["WWW-Authenticate"]
    assert call(client, "GET", "/api/v1/nope", None).status_code == 401  # unknown routes too
    assert call(client, "GET", "/api/v1/queues", READ).status_code == 200
    basic = {"Authorization": "Basic " + base64.b64encode(b"oncall:pa55").decode()}
    assert call(client, "GET", "/api/v1/queues", None, headers=basic).status_code == 200
    assert call(client, "POST", "/api/v1/queues/mail/pause", None, headers=basic).status_code == 403  # no CSRF
    page = client.get("/", headers=basic).get_data(as_text=True)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    resp = call(client, "POST", "/api/v1/queues/mail/pause", None,
                headers={**basic, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 200 and resp.get_json()["pause"]["by"] == "oncall"
    assert call(client, "POST", "/api/v1/queues/mail/resume", WRITE).status_code == 200
    assert client.get("/", headers={"Authorization": f"Bearer {WRITE}"}).status_code == 401  # pages: no tokens


def test_without_tokens_configured_every_bearer_token_is_refused(make_app, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    client = make_app().test_client()
    assert call(client, "GET", "/api/v1/queues", None).status_code == 200  # open, as the pages are
    assert call(client, "GET", "/api/v1/queues", "anything").status_code == 401
    assert call(client, "POST", "/api/v1/queues/mail/pause", "anything").status_code == 401


def test_read_only_mode_refuses_write_tokens(make_app, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    client = make_app(read_only=True, api_tokens=TOKENS).test_client()
    resp = call(client, "POST", "/api/v1/queues/mail/pause")
    assert resp.status_code == 403 and "read-only" in resp.get_json()["error"]["message"]
    assert call(client, "GET", "/api/v1/queues/mail", READ).status_code == 200


# --- hostile input -----------------------------------------------------------------------

@pytest.mark.parametrize("job_id", ["evil/../victim", "a/b", "%2F", "?x#y", "..", "ünï cødé", "a\\b", "tab\there"])
def test_any_job_id_is_reached_as_itself(client: FlaskClient, r: redis.Redis, job_id: str) -> None:
    q = queue(r, "mail")
    q.add("odd", {"id": job_id}, job_id=job_id)
    listed = call(client, "GET", "/api/v1/queues/mail/jobs", READ).get_json()["jobs"]
    url = next(j["url"] for j in listed if j["id"] == job_id)
    assert url == f"/api/v1/queues/mail/jobs/{segment(job_id)}"
    assert call(client, "GET", url, READ).get_json()["data"] == {"id": job_id}
    assert call(client, "POST", url + "/remove").status_code == 200 and q.job(job_id) is None


@pytest.mark.parametrize("job_id", ["meta", "id", "repeat:nightly", "metrics:completed", "1:lock", "de:x"])
def test_bookkeeping_keys_are_not_jobs(client: FlaskClient, r: redis.Redis, job_id: str) -> None:
    seed(r, "mail", 2)
    before = digest(r)
    for method, suffix in (("GET", ""), ("POST", "/remove"), ("POST", "/retry")):
        resp = call(client, method, f"/api/v1/queues/mail/jobs/{segment(job_id)}{suffix}")
        assert resp.status_code == 404, (job_id, suffix)
    message = call(client, "GET", f"/api/v1/queues/mail/jobs/{segment(job_id)}").get_json()["error"]["message"]
    assert "not a job" in message or "is BullMQ's" in message or "only real jobs" in message, message
    assert digest(r) == before


@pytest.mark.parametrize("query", ["state=bogus", "state=unknown", "page=0", "page=abc", "page=-1", "per=7",
                                   "per=1000", "page=99999999999999"])
def test_bad_list_parameters_are_400_naming_them(client: FlaskClient, r: redis.Redis, query: str) -> None:
    seed(r, "mail", 2)
    resp = call(client, "GET", f"/api/v1/queues/mail/jobs?{query}", READ)
    assert resp.status_code == 400 and query.split("=")[0] in resp.get_json()["error"]["message"]


@pytest.mark.parametrize("path, kwargs", [
    ("/api/v1/queues/mail/pause", {"data": {"until": "5"}}),
    ("/api/v1/queues/mail/pause", {"json": {"until": 12.5}}),
    ("/api/v1/queues/mail/pause", {"json": {"reason": True}}),
    ("/api/v1/queues/mail/pause", {"json": ["not", "an", "object"]}),
    ("/api/v1/queues/mail/pause", {"data": "{broken", "content_type": "application/json"}),
    ("/api/v1/queues/mail/clean", {"data": {"state": "wait"}}),
    ("/api/v1/queues/mail/clean", {"data": {"state": "failed", "grace": "-1"}}),
    ("/api/v1/queues/mail/clean", {"json": {"state": "failed", "limit": 10**30}}),
    ("/api/v1/queues/mail/jobs/1?log=x", {"method": "GET"}),
])
def test_bad_action_parameters_are_400_and_change_nothing(client: FlaskClient, r: redis.Redis, path: str,
                                                          kwargs: dict[str, Any]) -> None:
    seed(r, "mail", 2)
    before = digest(r)
    method = kwargs.pop("method", "POST")
    assert call(client, method, path, **kwargs).status_code == 400
    assert digest(r) == before


@pytest.mark.parametrize("name", ["nope", "a:b", "%2E%2E", "x" * 5000, "<script>"])
def test_unknown_or_impossible_queues_are_404(client: FlaskClient, r: redis.Redis, name: str) -> None:
    for method, suffix in (("GET", ""), ("GET", "/jobs"), ("POST", "/pause"), ("POST", "/retry-all")):
        resp = call(client, method, f"/api/v1/queues/{quote(name, safe='%')}{suffix}")
        assert resp.status_code == 404 and "No queue named" in resp.get_json()["error"]["message"]


def test_keys_of_another_type_are_a_409_or_a_problem_never_a_500(app: Flask, client: FlaskClient,
                                                                 r: redis.Redis) -> None:
    seed(r, "mail", 2)
    r.set("bull:mail:failed", "written by another tool")
    one = call(client, "GET", "/api/v1/queues/mail", READ).get_json()
    assert any("bull:mail:failed" in problem for problem in one["problems"]) and one["counts"]["failed"] == 0
    listed = call(client, "GET", "/api/v1/queues/mail/jobs?state=failed", READ)
    assert listed.status_code == 409 and "another tool" in listed.get_json()["error"]["message"]
    assert call(client, "POST", "/api/v1/queues/mail/jobs/1/retry").status_code == 200  # the completed one
    refused = call(client, "POST", "/api/v1/queues/mail/retry-all")  # the re-drive's preview counts failed
    assert refused.status_code == 409 and "another tool" in refused.get_json()["error"]["message"]


def test_unknown_routes_and_methods(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    assert call(client, "GET", "/api/v1/nothing/here", READ).status_code == 404
    wrong = call(client, "GET", "/api/v1/queues/mail/pause", READ)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert call(client, "DELETE", "/api/v1/queues/mail").status_code == 405
    assert call(client, "PUT", "/api/v1/queues").status_code == 405
    assert not queue(r, "mail").is_paused()


def test_redis_down_is_a_json_503(make_app) -> None:
    port = free_port()
    client = make_app(redis_url=f"redis://127.0.0.1:{port}/0", api_tokens=TOKENS).test_client()
    down = call(client, "GET", "/api/v1/queues", READ)
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"
    assert call(client, "POST", "/api/v1/queues/mail/pause").status_code == 503
    with EmbeddedRedis(port=port):
        assert call(client, "GET", "/api/v1/queues", READ).status_code == 200


def test_mounted_under_a_prefix_in_a_host_app(redis_url: str, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    host = Flask("host")
    host.secret_key = "host-secret"
    dash = init_dashboard(host, Settings(redis_url=redis_url, api_tokens=TOKENS), redis_url, url_prefix="/admin/jobs")
    try:
        c = host.test_client()
        auth = {"Authorization": f"Bearer {WRITE}"}
        listed = c.get("/admin/jobs/api/v1/queues", headers=auth).get_json()
        assert listed["queues"][0]["url"] == "/admin/jobs/api/v1/queues/mail"
        doc = c.get("/admin/jobs/api/v1/openapi.json", headers=auth).get_json()
        assert doc["servers"] == [{"url": "/admin/jobs/api/v1"}]
        assert c.post("/admin/jobs/api/v1/queues/mail/pause", headers=auth).status_code == 200
        missing = c.get("/admin/jobs/api/v1/nope", headers=auth)
        assert missing.status_code == 404 and missing.get_json()["error"]["status"] == 404
    finally:
        dash.stop()


# --- configuration -----------------------------------------------------------------------

def test_api_tokens_from_the_environment() -> None:
    settings = Settings.from_env({"DASHBOARD_API_TOKENS": " ci:s3cret:read, ops:t0:ken:write,,prom:m:metrics"})
    assert [(t.name, t.token, t.scope) for t in settings.api_tokens] == [
        ("ci", "s3cret", "read"), ("ops", "t0:ken", "write"), ("prom", "m", "metrics")]
    assert "s3cret" not in repr(settings) and "t0:ken" not in repr(settings)
    assert Settings.from_env({}).api_tokens == ()


@pytest.mark.parametrize("raw", ["s3cret", "ci:s3cret", "ci:s3cret:admin", ":s3cret:read", "ci::read",
                                 "ci:s3 cret:read", "ci:s3cret:read,ci:other:read", "a:s3cret:read,b:s3cret:write",
                                 "bad name:s3cret:read", "ci:s3cret:read:"])
def test_malformed_api_tokens_fail_at_start_without_showing_the_token(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DASHBOARD_API_TOKENS": raw})
    assert "DASHBOARD_API_TOKENS" in str(caught.value) and "s3cret" not in str(caught.value)


# --- failure clusters and safe re-drive ---------------------------------------------------

def test_failure_clusters_and_a_throttled_redrive_through_the_api(app: Flask, client: FlaskClient,
                                                                  r: redis.Redis) -> None:
    q = seed(r, "mail", 10)  # five failed: "cannot send mail #<n>", one cluster
    found = call(client, "GET", "/api/v1/queues/mail/failures", READ).get_json()
    assert found["failed"] == 5 and found["complete"] and found["totalClusters"] == 1
    (cluster,) = found["clusters"]
    assert cluster["count"] == 5 and cluster["sample"].startswith("/api/v1/queues/mail/jobs/")
    assert call(client, "POST", "/api/v1/queues/mail/redrive", READ, json={}).status_code == 403  # read token
    bad = call(client, "POST", "/api/v1/queues/mail/redrive", json={"cluster": "nothex", "rate": 10})
    assert bad.status_code == 400 and "cluster" in bad.get_json()["error"]["message"]
    started = call(client, "POST", "/api/v1/queues/mail/redrive", json={"cluster": cluster["id"]})  # no pace: at once
    assert started.status_code == 202
    task = started.get_json()["task"]
    assert state(app).tasks.get(task["id"]).wait(30)
    assert (q.counts().failed, q.counts().waiting) == (0, 5)
    assert all(r.hexists(f"bull:mail:{job.id}", "bpRedrive") for job in q.jobs("waiting", 0, 9))
    paused = call(client, "POST", f"/api/v1/tasks/{task['id']}/redrive/pause")
    assert paused.status_code == 200 and paused.get_json()["message"] == "Paused the re-drive."
    assert call(client, "POST", f"/api/v1/tasks/{task['id']}/redrive/explode").status_code == 404
    assert call(client, "POST", "/api/v1/tasks/0123456789abcdef/redrive/pause").status_code == 404
    run_burst(r, "mail", lambda job: 1 / 0)  # every re-driven job fails again: a new cluster
    again = call(client, "GET", "/api/v1/queues/mail/failures", READ).get_json()
    (div,) = [c for c in again["clusters"] if c["type"] == "ZeroDivisionError"]
    assert div["count"] == 5 and div["failedAgain"] == 5
    assert call(client, "POST", f"/api/v1/queues/mail/failures/{cluster['id']}/remove").status_code == 404  # empty
    removed = call(client, "POST", f"/api/v1/queues/mail/failures/{div['id']}/remove")
    assert removed.status_code == 202 and state(app).tasks.get(removed.get_json()["task"]["id"]).wait(30)
    assert q.counts().failed == 0


@pytest.mark.parametrize("grace, kind", [("5400", "data"), (5400, "json"), ("1h30m", "data"), ("90m", "json")])
def test_clean_takes_seconds_or_a_duration(app: Flask, client: FlaskClient, r: redis.Redis, grace: Any,
                                           kind: str) -> None:
    q = seed(r, "mail", 10)
    ids = [i for i in r.zrange("bull:mail:completed", 0, -1) if isinstance(i, bytes)]
    now = int(time.time() * 1000)
    r.zadd("bull:mail:completed", {job_id: now - age * 1000 for job_id, age in zip(ids, [60, 60, 3600, 7200, 9000])})
    body: dict[str, Any] = {kind: {"state": "completed", "grace": grace}}
    cleaned = _finish(client, app, call(client, "POST", "/api/v1/queues/mail/clean", **body))
    assert cleaned["done"] == 2 and q.counts().completed == 3
    resp = call(client, "POST", "/api/v1/queues/mail/clean", data={"state": "completed", "grace": "1 fortnight"})
    assert resp.status_code == 400 and "grace" in resp.get_json()["error"]["message"]
