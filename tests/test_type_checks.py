"""The worker's hot scripts check key types before their first write, with few commands.

For each scenario (jobs in wait, only prioritized jobs, wait running empty into
prioritized, a due delayed job, a rate limit; finishing completed and failed jobs; renewing
locks) and each of the script's keys spoiled with another type: either the script answers
``WRONGTYPE <key> is a <type>, expected a <type>`` and nothing at all changed in Redis, or
it succeeds without having written the spoiled key. Also: ``move_to_active`` returns the
job's hash exactly as it is after its writes (it reads the hash first, then patches it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from dashboard import Queue, scripts
from dashboard.keys import Keys

Q = "tc"
K = Keys("bull", Q)
NOW = 1_700_000_000_000
LIMITER = ("", "")


def spoil(r: redis.Redis, key: str, want: str) -> str:
    """Replace ``key`` by one of another type than ``want``; returns that type."""
    r.delete(key)
    if want == "string":
        r.hset(key, "written", "by another tool")
        return "hash"
    r.set(key, "written by another tool")
    return "string"


def snapshot(r: redis.Redis) -> dict[Any, tuple[Any, Any, int]]:
    """Every key's type, value and TTL in 10 s steps (locks here last 30 s, renewed to 60 s)."""
    return {k: (r.type(k), r.dump(k), round(ttl / 10_000) if (ttl := r.pttl(k)) >= 0 else ttl) for k in r.keys("*")}


def fetch(count: int, limiter: tuple[str, str] = LIMITER) -> scripts.Call:
    return scripts.move_to_active(K, "tok", 30_000, NOW, count, "w", limiter)


def in_wait(r: redis.Redis) -> None:
    q = Queue(Q, connection=r)
    q.add("a", {})
    q.add("b", {})


def prioritized_only(r: redis.Redis) -> None:
    Queue(Q, connection=r).add("p", {}, priority=3)


def wait_then_prioritized(r: redis.Redis) -> None:
    q = Queue(Q, connection=r)
    q.add("a", {})
    q.add("p", {}, priority=3)


def delayed_due(r: redis.Redis) -> None:
    q = Queue(Q, connection=r)
    q.add("d", {}, delay=5)
    r.zadd(K.delayed, {"1": 0})  # due long ago
    q.add("a", {})


def rate_limited(r: redis.Redis) -> None:
    in_wait(r)
    r.hset(K.meta, mapping={"max": 10, "duration": 1000})


FETCHES: dict[str, tuple[Callable[[redis.Redis], None], scripts.Call]] = {
    "wait": (in_wait, fetch(1)),
    "wait-two": (in_wait, fetch(2)),
    "prioritized": (prioritized_only, fetch(1)),
    "wait-then-prioritized": (wait_then_prioritized, fetch(2)),
    "delayed-due": (delayed_due, fetch(2)),
    "rate-limit": (rate_limited, fetch(2, ("10", "1000"))),
}
ACTIVE_TYPES = ["list", "list", "zset", "zset", "string", "hash", "zset", "stream", "string"]
FINISH_TYPES = ["list", "zset", "zset", "set", "stream", "hash"]


def check(r: redis.Redis, setup: Callable[[redis.Redis], None], call: scripts.Call, index: int, want: str,
          before: Callable[[redis.Redis], Any] = lambda r: None) -> str:
    """Spoil KEYS[index] of ``call`` after ``setup``, run it; returns 'refused' or 'ran'."""
    r.flushall()
    setup(r)
    before(r)
    key = str(call.keys[index])
    got = spoil(r, key, want)
    was = snapshot(r)
    try:
        scripts.Scripts(r).run(call)
    except redis.ResponseError as exc:
        assert str(exc) == f"WRONGTYPE {key} is a {got}, expected a {want}"
        assert snapshot(r) == was, f"{call.name} changed Redis before refusing {key}"
        return "refused"
    assert snapshot(r)[key.encode()] == was[key.encode()], f"{call.name} wrote {key} of the wrong type"
    return "ran"


@pytest.mark.parametrize("scenario", sorted(FETCHES))
def test_move_to_active_refuses_before_writing_or_leaves_the_spoiled_key_alone(r: redis.Redis,
                                                                              scenario: str) -> None:
    setup, call = FETCHES[scenario]
    outcomes = {str(call.keys[i]).rsplit(":", 1)[1]: check(r, setup, call, i, want)
                for i, want in enumerate(ACTIVE_TYPES)}
    # what a fetch that takes a job always needs is always refused
    assert {k for k, v in outcomes.items() if v == "refused"} >= {"active", "meta", "delayed", "events", "marker"}
    if scenario != "prioritized":
        assert outcomes["wait"] == "refused"


def take(r: redis.Redis) -> None:
    """Two jobs taken by a worker (tokens tok:1, tok:2)."""
    in_wait(r)
    scripts.Scripts(r).run(fetch(2))


def finish(*statuses: str) -> scripts.Call:
    jobs: list[list[scripts.Arg]] = [[str(n), f"tok:{n}", status, "v", "", 10, -1, 0, 1]
                                     for n, status in enumerate(statuses, 1)]
    return scripts.move_to_finished(K, NOW, jobs)


@pytest.mark.parametrize("statuses", [("completed",), ("failed",), ("completed", "failed")])
def test_move_to_finished_refuses_before_writing_or_leaves_the_spoiled_key_alone(r: redis.Redis,
                                                                                statuses: tuple[str, ...]) -> None:
    call = finish(*statuses)
    outcomes = [check(r, lambda r: None, call, i, want, take) for i, want in enumerate(FINISH_TYPES)]
    names = ["active", "completed", "failed", "stalled", "events", "meta"]
    refused = {name for name, outcome in zip(names, outcomes) if outcome == "refused"}
    assert refused == {"active", "stalled", "events", "meta", *statuses}


def test_extend_locks_refuses_before_writing(r: redis.Redis) -> None:
    call = scripts.extend_locks(K, 60_000, [(b"1", b"tok:1"), (b"2", b"tok:2")])
    assert check(r, lambda r: None, call, 0, "set", take) == "refused"
    lost = scripts.extend_locks(K, 60_000, [(b"1", b"someone else")])
    assert check(r, lambda r: None, lost, 0, "set", take) == "ran"  # no lock renewed: nothing written


@pytest.mark.parametrize("ats", [None, "4", str(2**60 + 1), "not a number", str(2**63 - 1)])
@pytest.mark.parametrize("worker", ["w", ""])
def test_move_to_active_returns_the_hash_as_it_is_after_its_writes(r: redis.Redis, ats: str | None,
                                                                   worker: str) -> None:
    q = Queue(Q, connection=r)
    q.add("a", {"x": 1})
    if ats is not None:
        r.hset(K.job("1"), "ats", ats)
    call = scripts.move_to_active(K, "tok", 30_000, NOW, 1, worker, LIMITER)
    taken = scripts.Scripts(r).run(call)[0]
    returned = dict(zip(taken[2][::2], taken[2][1::2]))
    assert returned == r.hgetall(K.job("1"))
    assert returned[b"processedOn"] == str(NOW).encode()


RETRY_TYPES = ["list", "list", "zset", "zset", "string", "zset", "stream", "hash", "set"]
RETRY_NAMES = ["active", "wait", "delayed", "prioritized", "pc", "marker", "events", "meta", "stalled"]


def take_prioritized(r: redis.Redis) -> None:
    prioritized_only(r)
    scripts.Scripts(r).run(fetch(1))


def take_paused(r: redis.Redis) -> None:
    take(r)
    r.hset(K.meta, "paused", 1)


@pytest.mark.parametrize(("scenario", "backoff", "writes"), [
    ("wait", 0, {"wait", "marker"}),
    ("delayed", 100, {"delayed", "marker"}),
    ("prioritized", 0, {"prioritized", "pc", "marker"}),
    ("paused", 0, {"wait"}),
])
def test_retry_job_refuses_before_writing_or_leaves_the_spoiled_key_alone(r: redis.Redis, scenario: str,
                                                                         backoff: int, writes: set[str]) -> None:
    setup = {"prioritized": take_prioritized, "paused": take_paused}.get(scenario, take)
    call = scripts.retry_job(K, ["1", "tok:1", NOW, backoff, "boom", "trace", 10, "0"])
    outcomes = [check(r, lambda r: None, call, i, want, setup) for i, want in enumerate(RETRY_TYPES)]
    refused = {name for name, outcome in zip(RETRY_NAMES, outcomes) if outcome == "refused"}
    assert refused == {"active", "events", "meta", "stalled", *writes}


def stalled_job(r: redis.Redis) -> None:
    """Job 1 taken, its lock gone, its id left in the stalled set since the last check."""
    take(r)
    r.delete(K.lock("1"))
    r.sadd(K.stalled, "1")


def test_move_stalled_to_wait_refuses_before_writing(r: redis.Redis) -> None:
    call = scripts.move_stalled_to_wait(K, 1, NOW, 30_000)
    types = ["set", "list", "list", "string", "hash", "zset", "stream"]
    assert [check(r, lambda r: None, call, i, want, stalled_job) for i, want in enumerate(types)] == ["refused"] * 7


def test_an_error_other_than_a_wrong_type_still_reaches_the_caller(r: redis.Redis) -> None:
    in_wait(r)
    was = r.config_get("maxmemory")["maxmemory"]
    r.config_set("maxmemory", 1)  # every write is refused: the fetch's first write fails with OOM
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            scripts.Scripts(r).run(fetch(1))
    finally:
        r.config_set("maxmemory", was)
    assert r.llen(K.wait) == 2
