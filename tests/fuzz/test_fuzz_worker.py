"""Fuzz: random job hashes written straight into Redis, then a burst worker.

Each example writes one to four jobs (random ids, some not UTF-8) with fields drawn from
valid values and from the hostile ones other tools write: inf/nan/1e999 and numbers beyond
64 bits, bytes that are not UTF-8, invalid and deeply nested JSON, options of the wrong
JSON type; plus random extra fields. The strategy knows which jobs it spoiled. A burst
worker (concurrency 1 or 4) must return, leave nothing in wait or active, complete every
sound job and fail every spoiled one with a failedReason starting "malformed job:" that
names a spoiled field.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import Job, Worker
from dashboard.codec import text
from dashboard.job import INT_FIELDS, MAX_PRIORITY
from dashboard.keys import STATE_SUFFIXES, Keys

Q = "fz"
KEYS = Keys("bull", Q)
RESERVED = {k.removeprefix(KEYS.base).encode() for k in KEYS.bookkeeping()} | {s.encode() for s in STATE_SUFFIXES}
KNOWN = {*INT_FIELDS, "name", "data", "opts", "progress", "defa", "rjk", "deid"}


@dataclass
class Spec:
    """One job to write: its hash fields, and the fields the strategy spoiled."""

    fields: dict[bytes, bytes] = field(default_factory=dict)
    spoiled: set[str] = field(default_factory=set)


def utf8_json_ok(raw: bytes) -> bool:
    try:
        json.loads(raw.decode())
        return True
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


def not_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
        return False
    except UnicodeDecodeError:
        return True


# --- values ----------------------------------------------------------------------------

GOOD_INT = st.integers(-(2**63), 2**63 - 1).map(lambda n: str(n).encode())
BAD_INT = st.one_of(
    st.sampled_from([b"inf", b"-inf", b"nan", b"1e999", b"1.5", b"", b"abc", b" 1", b"1_000", b"+1", b"\xff",
                     "\u0661\u0662".encode(), b"9" * 30, b"-" + b"9" * 25, b"0x10"]),
    st.integers(min_value=2**63).map(lambda n: str(n).encode()),
    st.integers(max_value=-(2**63) - 1).map(lambda n: str(n).encode()),
    st.floats().map(lambda f: repr(f).encode()),
)
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=8)
GOOD_JSON = st.one_of(JSON_VALUE.map(lambda v: json.dumps(v).encode()),
                      st.integers(1, 60).map(lambda d: b"[" * d + b"]" * d))
BAD_JSON = st.one_of(
    st.sampled_from([b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000, b'{"a": ', b"{'a': 1}", b"undefined",
                     b"", b"\xff\xfe{}", b'"\xff"', b"[1,]", b"\xc3(" + b"{}"]),
    st.binary(max_size=12).filter(lambda b: not utf8_json_ok(b)),
)
ANY_BYTES = st.binary(max_size=16)
NAME_GOOD = st.text(max_size=10).map(str.encode)
NAME_BAD = st.binary(min_size=1, max_size=8).filter(not_utf8)

KEEP_GOOD = st.one_of(st.just(False), st.integers(10, 1000), st.fixed_dictionaries({"count": st.integers(10, 100)}),
                      st.fixed_dictionaries({"age": st.integers(3600, 10**6)}, optional={"count": st.integers(10, 50)}))
GOOD_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "attempts": st.integers(0, 5),
    "backoff": st.one_of(st.integers(0, 1000), st.fixed_dictionaries(
        {"type": st.sampled_from(["fixed", "exponential"]), "delay": st.integers(0, 1000)})),
    "removeOnComplete": KEEP_GOOD, "removeOnFail": KEEP_GOOD,
    "stackTraceLimit": st.integers(0, 20), "priority": st.integers(0, MAX_PRIORITY), "kl": st.integers(0, 100),
    "lifo": st.booleans(), "delay": st.integers(0, 10), "jobId": st.text(max_size=5), "somethingElse": JSON_VALUE,
}
BAD_OPTIONS: dict[str, list[Any]] = {
    "attempts": [-1, 1.5, "3", True, None, math.inf, math.nan, [], {}, 2**60],
    "backoff": ["x", -1, {"type": 5}, {"delay": "x"}, {"delay": -3}, {"delay": math.inf}, [1], math.nan],
    "removeOnComplete": [{"age": "x"}, {"count": math.nan}, "yes", -1, [1], {"age": -5}, 1.5, {"count": math.inf}],
    "removeOnFail": [{"age": "x"}, {"count": "all"}, None, -7, {"limit": -1}],
    "stackTraceLimit": [-1, "x", 1.5, True, math.inf],
    "priority": [-1, MAX_PRIORITY + 1, "x", 1.5, math.nan],
    "kl": ["many", -1, 2.5],
}


@st.composite
def opts_field(draw: st.DrawFn) -> tuple[bytes, set[str]]:
    """The opts JSON, and which option names (or "opts" itself) were spoiled."""
    kind = draw(st.sampled_from(["good", "good", "bad option", "not an object", "not json"]))
    if kind == "not json":
        return draw(BAD_JSON), {"opts"}
    if kind == "not an object":
        return json.dumps(draw(st.sampled_from([[1, 2], "x", 5, None, True]))).encode(), {"opts"}
    opts = draw(st.fixed_dictionaries({}, optional=GOOD_OPTIONS))
    spoiled: set[str] = set()
    if kind == "bad option":
        for name in draw(st.sets(st.sampled_from(sorted(BAD_OPTIONS)), min_size=1, max_size=2)):
            opts[name] = draw(st.sampled_from(BAD_OPTIONS[name]))
            spoiled.add(f"opts.{name}")
    return json.dumps(opts).encode(), spoiled


@st.composite
def job_spec(draw: st.DrawFn) -> Spec:
    spec = Spec()
    bad_rate = draw(st.sampled_from([0.0, 0.1, 0.3]))

    def pick(name: str, good: st.SearchStrategy[bytes], bad: st.SearchStrategy[bytes]) -> None:
        if not draw(st.booleans()):
            return  # field absent
        if draw(st.floats(0, 1)) < bad_rate:
            spec.fields[name.encode()] = draw(bad)
            if name != "processedOn":  # the fetch itself rewrites it, healing the job
                spec.spoiled.add(name)
        else:
            spec.fields[name.encode()] = draw(good)

    for name in INT_FIELDS:
        pick(name, GOOD_INT, BAD_INT)
    pick("name", NAME_GOOD, NAME_BAD)
    pick("data", GOOD_JSON, BAD_JSON)
    pick("progress", GOOD_JSON, BAD_JSON)
    if draw(st.booleans()):
        spec.fields[b"opts"], spoiled = draw(opts_field())
        spec.spoiled |= spoiled
    for name in ("returnvalue", "failedReason", "stacktrace", "pb"):  # rewritten or never read: any bytes
        if draw(st.booleans()):
            spec.fields[name.encode()] = draw(st.one_of(ANY_BYTES, BAD_JSON, GOOD_JSON))
    extra = draw(st.dictionaries(st.binary(min_size=1, max_size=6).filter(lambda b: b.decode("latin-1") not in KNOWN),
                                 ANY_BYTES, max_size=3))
    spec.fields.update({k: v for k, v in extra.items() if k not in spec.fields})
    spec.fields.setdefault(b"name", b"plain")  # a hash needs one field
    return spec


JOB_ID = st.binary(min_size=1, max_size=6).filter(lambda b: b":" not in b and b not in RESERVED)
EXAMPLE = st.lists(st.tuples(JOB_ID, job_spec()), min_size=1, max_size=4, unique_by=lambda pair: pair[0])


def handler(job: Job) -> Any:
    job.update_progress(1)
    job.log("ran")
    return {"id": job.id}


def run_burst(w: Worker) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            w.run(burst=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join(30)
    if t.is_alive():
        w.close(wait=False, now=True)
        t.join(10)
        pytest.fail("the burst worker did not return")
    assert errors == [], f"the worker raised {errors[0]!r}"


@pytest.mark.parametrize("concurrency", [1, 4])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(example=EXAMPLE)
def test_burst_worker_settles_every_job_whatever_the_hashes_hold(r: redis.Redis, concurrency: int,
                                                                  example: list[tuple[bytes, Spec]]) -> None:
    r.flushall()
    for job_id, spec in example:
        r.hset(KEYS.job_key(job_id), mapping=spec.fields)  # type: ignore[arg-type]
        r.rpush(KEYS.wait, job_id)
    r.zadd(KEYS.marker, {"0": 0})
    run_burst(Worker(Q, handler, connection=r, concurrency=concurrency, drain_delay=0.1, shutdown_timeout=5))

    assert r.llen(KEYS.wait) == 0 and r.llen(KEYS.active) == 0
    for job_id, spec in example:
        key = KEYS.job_key(job_id)
        completed = r.zscore(KEYS.completed, job_id) is not None
        failed = r.zscore(KEYS.failed, job_id) is not None
        reason = text(r.hget(key, "failedReason") or b"")
        if spec.spoiled:
            assert failed and not completed, (job_id, spec)
            assert reason.startswith("malformed job:"), (job_id, reason)
            named = reason.removeprefix("malformed job: ")
            assert any(f"{name} = " in named for name in spec.spoiled), (reason, spec.spoiled)
        else:
            assert completed and not failed, (job_id, spec, reason)
            assert r.hget(key, "progress") == b"1" and r.lrange(KEYS.job_key(job_id, ":logs"), 0, -1)[-1] == b"ran"
        assert r.exists(KEYS.job_key(job_id, ":lock")) == 0
