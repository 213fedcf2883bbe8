"""Job hashes other tools wrote badly: the worker fails each one at once and moves on.

A malformed job (a number that is not a finite integer, JSON that does not parse or nests
too deeply, options of the wrong shape, text that is not UTF-8) goes to ``failed`` through
the normal finish script, without retries, with a failedReason naming the field; the next
job runs and a burst worker returns. Job ids are kept as raw bytes, so an id that is not
UTF-8 is finished on its own key.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, Worker
from dashboard.backoff import backoff_ms
from dashboard.codec import text
from dashboard.job import fatal_problems, keep_policy
from tests import jobs

Q = "work"


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    return Queue(Q, connection=r)


def run_burst(worker: Worker, timeout: float = 20) -> None:
    """Run a burst worker in a thread; fail (after stopping it) when it raises or never returns."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(burst=True)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join(timeout)
    if t.is_alive():
        worker.close(wait=False)
        t.join(worker.shutdown_timeout + 5)
        pytest.fail("the burst worker did not return")
    assert errors == [], f"the worker raised {errors[0]!r}"


def worker(r: redis.Redis, **kw: Any) -> Worker:
    kw.setdefault("drain_delay", 0.2)
    kw.setdefault("shutdown_timeout", 1)
    return Worker(Q, kw.pop("handler", jobs.succeed), connection=r, **kw)


def spoil(r: redis.Redis, job_id: str | bytes, **fields: Any) -> None:
    key = (f"bull:{Q}:".encode() + job_id) if isinstance(job_id, bytes) else f"bull:{Q}:{job_id}"
    r.hset(key, mapping=fields)  # type: ignore[arg-type]


def state_of(r: redis.Redis, job_id: str | bytes) -> str:
    for state in ("completed", "failed"):
        if r.zscore(f"bull:{Q}:{state}", job_id) is not None:
            return state
    for state in ("wait", "active"):
        if job_id in r.lrange(f"bull:{Q}:{state}", 0, -1) or (
                isinstance(job_id, str) and job_id.encode() in r.lrange(f"bull:{Q}:{state}", 0, -1)):
            return state
    return "nowhere"


def reason(r: redis.Redis, job_id: str) -> str:
    return text(r.hget(f"bull:{Q}:{job_id}", "failedReason") or b"")


BAD_FIELDS = [
    ("timestamp", "inf", "malformed job: timestamp = 'inf'"),
    ("atm", "1e999", "malformed job: atm = '1e999'"),
    ("ats", "nan", "malformed job: ats = 'nan'"),
    ("stc", "9" * 40, "malformed job: stc = '99999"),
    ("priority", "-inf", "malformed job: priority = '-inf'"),
    ("data", "[" * 100_000 + "]" * 100_000, "malformed job: data = '[[[["),
    ("data", '{"a": ', "malformed job: data = '{\"a\": '"),
    ("data", b"\xff\xfe{}", "malformed job: data = b'\\xff\\xfe{}'"),
    ("name", b"\xc3(", "malformed job: name = b'\\xc3('"),
    ("opts", "[1, 2]", "malformed job: opts = '[1, 2]'"),
    ("opts", '{"removeOnComplete": {"age": "x"}}', "malformed job: opts.removeOnComplete = {'age': 'x'}"),
    ("opts", '{"removeOnFail": {"count": 1e999}}', "malformed job: opts.removeOnFail = {'count': inf}"),
    ("opts", '{"attempts": "3"}', "malformed job: opts.attempts = '3'"),
    ("opts", '{"attempts": 1e999}', "malformed job: opts.attempts = inf"),
    ("opts", '{"backoff": {"type": "fixed", "delay": "soon"}}', "malformed job: opts.backoff = "),
    ("opts", '{"stackTraceLimit": -1}', "malformed job: opts.stackTraceLimit = -1"),
    ("opts", '{"priority": 1.5}', "malformed job: opts.priority = 1.5"),
    ("opts", '{"kl": "many"}', "malformed job: opts.kl = 'many'"),
]


@pytest.mark.parametrize(("field", "value", "expected"), BAD_FIELDS, ids=[f"{f}={v[:12]!r}" for f, v, _ in BAD_FIELDS])
def test_malformed_job_fails_at_once_and_the_next_job_runs(q: Queue, r: redis.Redis, field: str, value: Any,
                                                            expected: str) -> None:
    q.add("bad", {}, attempts=5)
    q.add("good", {"n": 2})
    spoil(r, "1", **{field: value})
    run_burst(worker(r))  # concurrency 1: the good job waits behind the bad one
    assert state_of(r, "1") == "failed"
    assert reason(r, "1").startswith(expected), reason(r, "1")
    assert len(reason(r, "1")) <= 400
    assert state_of(r, "2") == "completed"
    assert r.llen(f"bull:{Q}:active") == 0 and r.llen(f"bull:{Q}:wait") == 0
    assert r.exists(f"bull:{Q}:1:lock") == 0


def test_malformed_job_is_not_retried_whatever_its_attempts(q: Queue, r: redis.Redis) -> None:
    q.add("bad", {}, attempts=3, backoff=1)
    spoil(r, "1", timestamp="inf")
    run_burst(worker(r, handler=jobs.fail))
    assert state_of(r, "1") == "failed" and r.zcard(f"bull:{Q}:delayed") == 0
    events = [f[b"event"] for _, f in r.xrange(f"bull:{Q}:events")]
    assert events.count(b"failed") == 1


def test_non_utf8_job_id_is_finished_on_its_own_key(r: redis.Redis) -> None:
    bad_id = b"\xff\xfe"
    r.hset(f"bull:{Q}:".encode() + bad_id, mapping={"name": "odd", "data": '{"x": 1}', "opts": "{}",
                                                   "timestamp": "1"})
    r.rpush(f"bull:{Q}:wait", bad_id)
    Queue(Q, connection=r).add("next", {})  # behind it in line (LPUSH)
    seen: list[tuple[str, Any]] = []

    def handler(job: Job) -> Any:
        seen.append((job.id, job.data))
        job.update_progress(7)
        job.log("hello")
        return "ok"

    run_burst(worker(r, handler=handler))
    assert seen == [("\ufffd\ufffd", {"x": 1}), ("1", {})]
    key = f"bull:{Q}:".encode() + bad_id
    assert r.zscore(f"bull:{Q}:completed", bad_id) is not None
    assert r.hget(key, "returnvalue") == b'"ok"' and r.hget(key, "progress") == b"7"
    assert r.lrange(key + b":logs", 0, -1) == [b"hello"]
    assert r.exists(key + b":lock") == 0 and r.llen(f"bull:{Q}:active") == 0
    assert r.exists(f"bull:{Q}:\ufffd\ufffd") == 0  # nothing written under the replaced id
    assert r.zscore(f"bull:{Q}:completed", "1") is not None


def test_non_utf8_job_id_lock_is_renewed(r: redis.Redis) -> None:
    bad_id = b"\x80id"
    key = f"bull:{Q}:".encode() + bad_id
    r.hset(key, mapping={"name": "odd", "data": "{}", "opts": "{}", "timestamp": "1"})
    r.rpush(f"bull:{Q}:wait", bad_id)

    def slow(job: Job) -> None:
        r.sadd(f"bull:{Q}:stalled", bad_id)  # as the stalled check's phase 2 would
        for _ in range(200):  # a renewal (every 0.15 s) takes it out again
            if not r.sismember(f"bull:{Q}:stalled", bad_id):  # type: ignore[arg-type]
                return
            threading.Event().wait(0.05)
        raise AssertionError("lock never renewed")

    run_burst(worker(r, handler=slow, lock_duration=0.3))
    assert r.zscore(f"bull:{Q}:completed", bad_id) is not None


def test_a_worker_on_a_decoding_client_still_handles_non_utf8_ids(redis_factory: Any, r: redis.Redis) -> None:
    bad_id = b"\xfe"
    r.hset(f"bull:{Q}:".encode() + bad_id, mapping={"name": "odd", "data": "{}", "opts": "{}"})
    r.rpush(f"bull:{Q}:wait", bad_id)
    run_burst(Worker(Q, jobs.succeed, connection=redis_factory(decode_responses=True), drain_delay=0.2))
    assert r.zscore(f"bull:{Q}:completed", bad_id) is not None


def test_handler_errors_that_cannot_be_encoded_still_fail_the_job(q: Queue, r: redis.Redis) -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text for you")

    def surrogate(job: Job) -> None:
        raise ValueError("bad \udcff byte")

    def weird(job: Job) -> None:
        raise Weird()

    q.add("a", {})
    run_burst(worker(r, handler=surrogate))
    q.add("b", {})
    run_burst(worker(r, handler=weird))
    assert state_of(r, "1") == "failed" and "bad" in reason(r, "1")
    assert state_of(r, "2") == "failed" and reason(r, "2")


# --- the pure functions: never raise, whatever the options hold --------------------------

HOSTILE_OPTION_VALUES: list[Any] = [
    None, True, False, -1, 0, 5, 2**80, -(2**80), 1.5, math.inf, -math.inf, math.nan, "x", "", [], [1],
    {"age": "x"}, {"count": "x"}, {"age": math.inf}, {"count": math.nan}, {"age": -5, "count": -1},
    {"age": 2**80, "count": 2**80}, {"age": None}, {"type": "exponential", "delay": math.inf},
    {"type": "exponential", "delay": 1000}, {"type": 5, "delay": "x"}, {"delay": math.nan}, {"delay": -3},
]


@pytest.mark.parametrize("value", HOSTILE_OPTION_VALUES, ids=repr)
def test_keep_policy_never_raises_and_returns_script_ready_ints(value: Any) -> None:
    keep, age = keep_policy(value)
    assert isinstance(keep, int) and isinstance(age, int)
    assert keep >= -1 and age >= 0


@pytest.mark.parametrize("value", HOSTILE_OPTION_VALUES, ids=repr)
@pytest.mark.parametrize("made", [0, 1, 5, 2000, 10**6])
def test_backoff_ms_never_raises(value: Any, made: int) -> None:
    delay = backoff_ms({"backoff": value}, made)
    assert isinstance(delay, int) and delay >= 0


def test_backoff_ms_still_follows_bullmq() -> None:
    assert backoff_ms({"backoff": {"type": "exponential", "delay": 1000}}, 3) == 4000
    assert backoff_ms({"backoff": {"type": "fixed", "delay": 500}}, 3) == 500
    assert backoff_ms({"backoff": 250}, 1) == 250
    assert keep_policy({"age": 60, "count": 3}) == (3, 60) and keep_policy(True) == (0, 0)


@pytest.mark.parametrize(("field", "value", "expected"), BAD_FIELDS, ids=[f"{f}={v[:12]!r}" for f, v, _ in BAD_FIELDS])
def test_from_hash_stays_tolerant_and_fatal_problems_names_the_field(field: str, value: Any, expected: str) -> None:
    raw: dict[bytes, bytes] = {b"name": b"x", b"data": b"{}", b"opts": b"{}", b"timestamp": b"1"}
    raw[field.encode()] = value if isinstance(value, bytes) else value.encode()
    job = Job.from_hash(b"7", raw)  # never raises: the dashboard shows whatever it can
    assert job.id == "7" and job.problems
    problems = fatal_problems(job)
    assert problems and ("malformed job: " + "; ".join(problems)).startswith(expected)


def test_fatal_problems_accepts_what_bullmq_writes() -> None:
    opts = {"attempts": 3, "backoff": {"type": "exponential", "delay": 1000}, "removeOnComplete": {"count": 10},
            "removeOnFail": True, "stackTraceLimit": 5, "priority": 4, "lifo": True, "delay": 0, "jobId": "a:b:c",
            "kl": 20}
    raw = {b"name": b"x", b"data": json.dumps({"deep": [[[1]]]}).encode(), b"opts": json.dumps(opts).encode(),
           b"timestamp": b"1795000000000", b"delay": b"0", b"priority": b"4", b"atm": b"-3", b"ats": b"2",
           b"processedOn": b"1795000000001", b"progress": b'{"p": 1}', b"returnvalue": b"not json",
           b"failedReason": b"\xff", b"stacktrace": b"[broken", b"extra": b"\xff\xfe"}
    job = Job.from_hash(b"1", raw)
    assert fatal_problems(job) == []
    assert job.attempts == 3 and job.opts["kl"] == 20
