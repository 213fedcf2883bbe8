"""Property-based tests of the dashboard against hostile requests and hostile data.

- Random job hashes and keys of every type written straight into Redis: every page answers
  below 500.
- Random paths, query strings and form bodies against every route of the blueprint: never
  a 5xx; every POST without a valid CSRF token is refused and changes nothing in Redis
  (``DEBUG DIGEST`` before and after).

Example counts come from the Hypothesis profile (tests/fuzz/conftest.py: short by default,
``BULLPEN_FUZZ=long`` for a long run).
"""

from __future__ import annotations

import string
from typing import Any

import pytest
import redis
from flask import Flask, url_for
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import Queue
from tests.webkit import digest, seed, token

pytestmark = pytest.mark.fuzz

#: Text that stresses URLs and parsing: separators, escapes, dots, controls, unicode digits.
NASTY = st.sampled_from(["/", "%", "%2F", "%252F", "..", ".", "?", "#", "&", "=", "\\", "\t", "\n", "\r", "\x00",
                         "\x7f", "²", "٣", " ", "+", ";", ":", "'", '"', "<", ">", "ü", "✓", "\ud7ff", "-", "__"])
TEXT = st.lists(st.one_of(NASTY, st.text(alphabet=string.ascii_letters + string.digits, max_size=4),
                          st.text(max_size=3)), max_size=6).map("".join)
NUMBERISH = st.one_of(TEXT, st.integers(-10, 10**13).map(str), st.sampled_from(["0", "1", "20", "1e3", "inf", "²"]))
FIELDS = ["name", "data", "opts", "timestamp", "delay", "priority", "processedOn", "finishedOn", "atm", "ats",
          "stc", "failedReason", "stacktrace", "returnvalue", "progress", "attemptsMade", "defa", "pb", "parentKey"]
VALUES = st.one_of(NUMBERISH, st.binary(max_size=12), st.sampled_from([
    "{", "[", "null", "[]", "{}", '"x"', "1e999", "-1", "nan", "[" * 200 + "]" * 200,
    '{"attempts":"x","backoff":{"type":"odd"},"removeOnComplete":{"age":"x"}}', '{"jobId":1}', '["a",{"b":1}]']))
STATE_KEYS = ["wait", "paused", "active", "prioritized", "delayed", "completed", "failed", "waiting-children",
              "meta", "events", "marker", "id", "stalled"]
ROUTE_ARGS = {"name": TEXT.filter(bool), "job_id": TEXT.filter(bool), "action": TEXT.filter(bool),
              "task_id": TEXT.filter(bool)}

FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)


def write_key(r: redis.Redis, key: str, kind: str, value: Any) -> None:
    """Write ``value`` at ``key`` as a ``kind`` (replacing whatever was there)."""
    r.delete(key)
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    if kind == "string":
        r.set(key, raw)
    elif kind == "list":
        r.rpush(key, raw, b"1")
    elif kind == "set":
        r.sadd(key, raw)
    elif kind == "zset":
        r.zadd(key, {raw: 1, b"1": 2})
    elif kind == "hash":
        r.hset(key, b"f", raw)
    else:
        r.xadd(key, {b"event": raw})


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8),
       where=st.sampled_from(["wait", "active", "delayed", "prioritized", "completed", "failed", "waiting-children"]),
       job_id=st.one_of(st.sampled_from(["1", "2", "odd id", "x:y:z"]), TEXT.filter(bool)),
       broken=st.lists(st.tuples(st.sampled_from(STATE_KEYS + ["1:logs", "1:lock", "2"]),
                                 st.sampled_from(["string", "list", "set", "zset", "hash", "stream"]),
                                 VALUES), max_size=3))
def test_pages_never_fail_on_hostile_data(client: FlaskClient, r: redis.Redis, fields: dict[str, Any],
                                          where: str, job_id: str, broken: list[tuple[str, str, Any]]) -> None:
    r.flushall()
    seed(r, "mail", 2)
    key = f"bull:mail:{job_id}"
    try:
        r.delete(key)
        for name, value in fields.items():
            r.hset(key, name, value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass"))
        if where in ("wait", "active"):
            r.lpush(f"bull:mail:{where}", job_id)
        else:
            r.zadd(f"bull:mail:{where}", {job_id: 5})
    except redis.ResponseError:
        pass  # the job id is itself one of the queue's keys (e.g. "wait"): the broken keys cover that
    for suffix, kind, value in broken:
        write_key(r, f"bull:mail:{suffix}", kind, value)
    for path in ["/", "/queues/mail"] + [f"/queues/mail?state={s}" for s in (
            "waiting", "active", "delayed", "prioritized", "completed", "failed", "waiting-children")]:
        for headers in ({}, {"HX-Request": "true", "HX-Target": "queue"}):
            resp = client.get(path, headers=headers)
            assert resp.status_code < 500, (path, resp.status_code, resp.get_data(as_text=True)[:500])
    with client.application.test_request_context():
        job_url = url_for("bullpen.job_view", name="mail", job_id=job_id)
    for headers in ({}, {"HX-Request": "true", "HX-Target": "job"}):
        resp = client.get(job_url, headers=headers)
        assert resp.status_code < 500, (job_url, resp.status_code, resp.get_data(as_text=True)[:500])
    for what in ("data", "returnvalue", "stacktrace", "failedReason", "logs", "x"):
        resp = client.get(f"{job_url}/download/{what}")
        assert resp.status_code < 500, (what, resp.status_code)


def rules(app: Flask) -> list[Any]:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("bullpen.")
            and rule.endpoint != "bullpen.static"]


@FUZZ
@given(data=st.data())
def test_random_requests_never_5xx_and_forged_posts_change_nothing(app: Flask, r: redis.Redis, data: Any) -> None:
    r.flushall()
    seed(r, "mail", 4)
    Queue("mail", connection=r).add("later", {}, delay=3600)
    client = app.test_client()
    rule = data.draw(st.sampled_from(rules(app)), label="route")
    args = {a: data.draw(ROUTE_ARGS.get(a, TEXT.filter(bool)), label=a) for a in rule.arguments}
    if data.draw(st.booleans(), label="real names"):
        args = {**args, **{k: v for k, v in {"name": "mail", "job_id": "2"}.items() if k in args}}
    with app.test_request_context():
        path = url_for(rule.endpoint, **args)
    query = data.draw(st.dictionaries(st.sampled_from(["state", "page", "per", "q", "queue", "task", "next", "x"]),
                                      NUMBERISH, max_size=4), label="query")
    form = data.draw(st.dictionaries(st.sampled_from(["state", "grace", "limit", "next", "csrf_token", "x"]),
                                     NUMBERISH, max_size=4), label="form")
    headers = data.draw(st.sampled_from([{}, {"HX-Request": "true"}, {"HX-Request": "true", "HX-Target": "queue"},
                                         {"Sec-Fetch-Site": "same-origin"}]), label="headers")
    methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    method = data.draw(st.sampled_from(methods), label="method")
    if method == "GET":
        resp = client.get(path, query_string=query, headers=headers)
        assert resp.status_code < 500, (path, query, resp.status_code, resp.get_data(as_text=True)[:500])
        return
    before = digest(r)
    resp = client.post(path, query_string=query, data=form, headers=headers)  # no valid token
    # refused before it acts: 403, or 405 where the path takes no POST at all (``/api/v1//`` is
    # ``/api/v1/`` once werkzeug merges the slashes: a GET-only route)
    assert resp.status_code == 403 or (resp.status_code == 405 and "POST" not in resp.headers.get("Allow", "")), \
        (path, form, resp.status_code)
    assert digest(r) == before
    valid = token(client)
    resp = client.post(path, query_string=query, data={**form, "csrf_token": valid},
                       headers={**headers, "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code < 500, (path, form, resp.status_code, resp.get_data(as_text=True)[:500])
