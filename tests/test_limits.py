"""Rate limits on a real Redis, in BullMQ's `limiter` key and meta `max`/`duration`.

Timing is judged from the jobs' own processedOn stamps, never from how long a test took:
under a limit of N per D ms, any N+1 jobs taken one after another span at least D ms.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, RateLimited, Worker, scripts
from dashboard.codec import text
from dashboard.keys import Keys

K = Keys("bull", "lim")
#: processedOn comes from the worker's clock before its fetch reaches Redis, the limiter's
#: expiry from Redis's clock: the two may disagree by a few milliseconds.
SKEW_MS = 25


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    return Queue("lim", connection=r)


def processed_on(r: redis.Redis, n: int) -> list[int]:
    return sorted(int(r.hget(f"bull:lim:{i}", "processedOn") or 0) for i in range(1, n + 1))


def assert_at_most(stamps: list[int], max_jobs: int, duration_ms: int) -> None:
    """No window of duration_ms holds more than max_jobs starts."""
    for i in range(len(stamps) - max_jobs):
        assert stamps[i + max_jobs] - stamps[i] >= duration_ms - SKEW_MS, (i, stamps)


def run_burst(worker: Worker) -> None:
    t = threading.Thread(target=worker.run, kwargs={"burst": True})
    t.start()
    t.join(60)
    assert not t.is_alive(), "burst worker did not finish"


def test_global_rate_limit_spreads_a_burst(q: Queue, r: redis.Redis) -> None:
    q.set_global_rate_limit(10, 1)
    assert r.hgetall("bull:lim:meta") == {b"max": b"10", b"duration": b"1000"}
    q.add_bulk([("x", {}, {}) for _ in range(30)])
    worker = Worker("lim", lambda job: None, connection=r, concurrency=8, drain_delay=0.2)
    run_burst(worker)
    assert r.zcard("bull:lim:completed") == 30  # a limited burst worker waits: it does not stop early
    stamps = processed_on(r, 30)
    assert_at_most(stamps, 10, 1000)
    assert stamps[-1] - stamps[0] >= 2000 - SKEW_MS  # three windows


def test_worker_limiter_spreads_a_burst(q: Queue, r: redis.Redis) -> None:
    q.add_bulk([("x", {}, {}) for _ in range(12)])
    worker = Worker("lim", lambda job: None, connection=r, concurrency=4, drain_delay=0.2, limiter=(4, 0.3))
    run_burst(worker)
    assert r.zcard("bull:lim:completed") == 12
    assert_at_most(processed_on(r, 12), 4, 300)


def test_fetch_counts_and_expires_like_bullmq(r: redis.Redis, q: Queue) -> None:
    s = scripts.Scripts(r)
    q.add_bulk([("x", {}, {}) for _ in range(5)])
    # meta max wins over the worker's max; the worker's duration wins over meta duration (BullMQ)
    q.set_global_rate_limit(2, 60)
    taken, _, _, limited = s.run(scripts.move_to_active(K, "t", 30_000, 1, 10, "", ("100", "5000")))
    assert len(taken) == 2 * 3 and limited > 0
    assert r.get("bull:lim:limiter") == b"2" and 0 < r.pttl("bull:lim:limiter") <= 5000
    assert q.rate_limit_ttl() == limited or 0 < q.rate_limit_ttl() <= limited
    taken, _, _, limited = s.run(scripts.move_to_active(K, "t2", 30_000, 1, 10, "", ("100", "5000")))
    assert taken == [] and 0 < limited <= 5000
    assert r.llen("bull:lim:wait") == 3
    q.remove_global_rate_limit()
    assert r.hgetall("bull:lim:meta").get(b"max") is None
    # without meta max the worker's own max (100) applies: the counter goes on from 2
    taken, _, _, limited = s.run(scripts.move_to_active(K, "t3", 30_000, 1, 10, "", ("100", "5000")))
    assert len(taken) == 3 * 3 and limited == 0 and r.get("bull:lim:limiter") == b"5"
    # with no limit at all the limiter is left alone
    r.delete("bull:lim:limiter")
    q.add("y", {})
    s.run(scripts.move_to_active(K, "t4", 30_000, 1, 10, ""))
    assert r.exists("bull:lim:limiter") == 0


def test_deferred_failures_do_not_count(r: redis.Redis, q: Queue) -> None:
    s = scripts.Scripts(r)
    job = q.add("x", {})
    r.hset(f"bull:lim:{job.id}", "defa", "no")
    s.run(scripts.move_to_active(K, "t", 30_000, 1, 10, "", ("5", "1000")))
    assert r.exists("bull:lim:limiter") == 0


def test_rate_limit_ttl_as_get_rate_limit_ttl(q: Queue, r: redis.Redis) -> None:
    assert q.rate_limit_ttl() == -2  # no max anywhere and no limiter key: its PTTL, as Node returns it
    assert q.rate_limit_ttl(1) == 0
    r.set("bull:lim:limiter", 3)
    assert q.rate_limit_ttl() == -1
    r.set("bull:lim:limiter", 3, px=5000)
    assert q.rate_limit_ttl() > 0  # no max anywhere: the limiter's PTTL
    assert q.rate_limit_ttl(4) == 0  # 3 < 4: not limited
    assert 0 < q.rate_limit_ttl(3) <= 5000
    q.set_global_rate_limit(10, 1)
    assert q.rate_limit_ttl() == 0
    assert q.global_rate_limit() == (10, 1000)
    q.remove_global_rate_limit()
    assert q.global_rate_limit() is None
    with pytest.raises(ValueError):
        q.set_global_rate_limit(0, 1)
    with pytest.raises(ValueError):
        Worker("lim", lambda job: None, connection=r, limiter=(5, 0))


def test_rate_limited_handler_puts_the_job_back_and_pauses(q: Queue, r: redis.Redis) -> None:
    first = q.add("x", {"n": 1})
    q.add("x", {"n": 2})
    calls: list[str] = []

    def handler(job: Job) -> Any:
        calls.append(job.id)
        if len(calls) == 1:
            raise RateLimited(0.4)
        return "ok"

    worker = Worker("lim", handler, connection=r, drain_delay=0.2)
    run_burst(worker)
    assert calls == [first.id, first.id, "2"]  # back at the front of wait, taken first again
    f = {text(k): text(v) for k, v in r.hgetall(f"bull:lim:{first.id}").items()}
    assert f["ats"] == "2" and f["atm"] == "1"  # the limited run used up no attempt
    events = [{text(k): text(v) for k, v in e.items()} for _, e in r.xrange("bull:lim:events")]
    assert {"event": "waiting", "jobId": first.id, "prev": "active"} in events
    assert len([e for e in events if e["event"] == "active"]) == 3
    assert r.zcard("bull:lim:completed") == 2


def test_rate_limited_sets_the_limiter_and_requeues(q: Queue, r: redis.Redis) -> None:
    s = scripts.Scripts(r)
    q.add("a", {})
    q.add("b", {}, priority=3)
    taken, *_ = s.run(scripts.move_to_active(K, "t", 30_000, 1, 2, ""))
    (id1, tok1, _), (id2, tok2, _) = (taken[0:3], taken[3:6])
    ttl = s.run(scripts.move_limited_to_wait(K, id1, tok1, 800))
    assert 0 < ttl <= 800 and r.get("bull:lim:limiter") == b"9007199254740991"
    assert r.lrange("bull:lim:wait", 0, -1) == [id1] and r.exists(f"bull:lim:{text(id1)}:lock") == 0
    s.run(scripts.move_limited_to_wait(K, id2, tok2, 0))
    assert r.zscore("bull:lim:prioritized", id2) == 3 * 2**32
    assert r.llen("bull:lim:active") == 0
    assert s.run(scripts.move_limited_to_wait(K, id2, tok2, 0)) == -2  # lock gone


def test_a_limited_worker_waits_the_limiter_ttl(q: Queue, r: redis.Redis) -> None:
    """After RateLimited(0.5) the next job starts no sooner than 500 ms later."""
    q.add("x", {})
    q.add("x", {})
    seen: list[int] = []

    def handler(job: Job) -> Any:
        seen.append(int(job.processed_on or 0))
        if len(seen) == 1:
            raise RateLimited(0.5)

    worker = Worker("lim", handler, connection=r, drain_delay=0.2)
    run_burst(worker)
    assert len(seen) == 3 and seen[1] - seen[0] >= 500 - SKEW_MS


def test_rate_limited_zero_puts_the_job_back_and_a_burst_runs_it_again(q: Queue, r: redis.Redis) -> None:
    job = q.add("x", {})
    calls: list[str] = []

    def handler(j: Job) -> Any:
        calls.append(j.id)
        if len(calls) == 1:
            raise RateLimited(0)

    run_burst(Worker("lim", handler, connection=r, drain_delay=0.2))
    assert calls == [job.id, job.id] and r.zcard("bull:lim:completed") == 1


def test_global_concurrency_set_and_removed_as_bullmq_writes_it(q: Queue, r: redis.Redis) -> None:
    q.set_global_concurrency(2)
    assert r.hget("bull:lim:meta", "concurrency") == b"2" and q.global_concurrency() == 2
    q.remove_global_concurrency()
    assert r.hget("bull:lim:meta", "concurrency") is None and q.global_concurrency() is None
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError):
            q.set_global_concurrency(bad)  # type: ignore[arg-type]
