"""Worker behaviour on a real Redis: complete, fail, retry with backoff, keep policies, locks."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, Worker
from dashboard.codec import text
from tests import jobs


class Clock:
    def __init__(self, now: int = 1_795_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    return Queue("work", connection=r)


def make_worker(r: redis.Redis, handler: Any, **kw: Any) -> Worker:
    kw.setdefault("drain_delay", 0.2)
    return Worker("work", handler, connection=r, **kw)


def fields(r: redis.Redis, job_id: str) -> dict[str, str]:
    return {text(k): text(v) for k, v in r.hgetall(f"bull:work:{job_id}").items()}


def stream(r: redis.Redis) -> list[dict[str, str]]:
    return [{text(k): text(v) for k, v in f.items()} for _, f in r.xrange("bull:work:events")]


def test_completes_job_stores_return_value_progress_logs(q: Queue, r: redis.Redis) -> None:
    def notify(job: Job) -> Any:
        job.update_progress(50)
        job.log("sent to 3 devices")
        return {"sent": True, "id": job.data["messageId"]}

    q.add("notify", {"messageId": 42})
    make_worker(r, notify).run(burst=True)
    f = fields(r, "1")
    assert json.loads(f["returnvalue"]) == {"sent": True, "id": 42}
    assert f["progress"] == "50" and f["atm"] == "1" and f["ats"] == "1"
    assert int(f["finishedOn"]) >= int(f["processedOn"]) >= int(f["timestamp"])
    assert r.zscore("bull:work:completed", "1") == int(f["finishedOn"])
    assert r.lrange("bull:work:1:logs", 0, -1) == [b"sent to 3 devices"]
    assert r.llen("bull:work:active") == 0 and r.exists("bull:work:1:lock") == 0
    kinds = [e["event"] for e in stream(r)]
    assert kinds == ["added", "waiting", "active", "progress", "completed", "drained"]
    assert stream(r)[-2] == {"event": "completed", "jobId": "1", "returnvalue": f["returnvalue"], "prev": "active"}


def test_failure_stores_reason_and_traceback_then_fails(q: Queue, r: redis.Redis) -> None:
    q.add("x", {})
    make_worker(r, jobs.fail).run(burst=True)
    f = fields(r, "1")
    assert f["failedReason"] == "bad input for job 1"
    traces = json.loads(f["stacktrace"])
    assert len(traces) == 1 and "ValueError: bad input for job 1" in traces[0] and "tests/jobs.py" in traces[0]
    assert r.zscore("bull:work:failed", "1") == int(f["finishedOn"])
    kinds = [e["event"] for e in stream(r)]
    assert kinds[-3:] == ["failed", "retries-exhausted", "drained"]


def test_retries_with_exponential_backoff_through_delayed_never_failed(q: Queue, r: redis.Redis) -> None:
    clock = Clock()
    q.add("x", {}, attempts=3, backoff=("exponential", 2.0))
    w = make_worker(r, jobs.fail, clock=clock)
    w.run(burst=True)  # attempt 1 fails -> delayed by 2 s
    assert r.zscore("bull:work:delayed", "1") == (clock.now + 2000) * 4096
    assert r.zcard("bull:work:failed") == 0
    f = fields(r, "1")
    assert (f["atm"], f["delay"], f["failedReason"]) == ("1", "2000", "bad input for job 1")
    assert r.zscore("bull:work:marker", "1") == clock.now + 2000
    w.run(burst=True)  # not due yet: nothing runs
    assert fields(r, "1")["atm"] == "1"
    clock.now += 2000
    w.run(burst=True)  # attempt 2 fails -> delayed by 4 s
    assert r.zscore("bull:work:delayed", "1") == (clock.now + 4000) * 4096
    clock.now += 4000
    w.run(burst=True)  # attempt 3 fails for good
    f = fields(r, "1")
    assert f["atm"] == "3" and r.zscore("bull:work:failed", "1") is not None
    assert len(json.loads(f["stacktrace"])) == 3


def test_fixed_backoff_and_no_backoff_retry(q: Queue, r: redis.Redis) -> None:
    clock = Clock()
    q.add("fixed", {}, attempts=2, backoff=5)
    q.add("immediate", {}, attempts=2)
    w = make_worker(r, jobs.fail, clock=clock)
    w.run(burst=True)
    assert r.zscore("bull:work:delayed", "1") == (clock.now + 5000) * 4096
    assert fields(r, "2")["atm"] == "2" and r.zscore("bull:work:failed", "2") is not None  # retried at once


def test_unrecoverable_fails_at_once(q: Queue, r: redis.Redis) -> None:
    q.add("x", {}, attempts=5, backoff=1)
    make_worker(r, jobs.unrecoverable).run(burst=True)
    assert fields(r, "1")["atm"] == "1"
    assert r.zscore("bull:work:failed", "1") is not None


def test_unserializable_return_value_fails_the_job_clearly(q: Queue, r: redis.Redis) -> None:
    q.add("x", {})
    make_worker(r, lambda job: {1, 2}).run(burst=True)
    assert "return value of job 1 must be JSON-serializable" in fields(r, "1")["failedReason"]


def test_deferred_failure_fails_without_running(q: Queue, r: redis.Redis) -> None:
    q.add("x", {})
    r.hset("bull:work:1", "defa", "job stalled more than allowable limit")
    ran: list[str] = []
    make_worker(r, lambda job: ran.append(job.id)).run(burst=True)
    assert ran == []
    f = fields(r, "1")
    assert f["failedReason"] == "job stalled more than allowable limit" and "defa" not in f


@pytest.mark.parametrize("option,expected_left", [(True, 0), (2, 2), (False, 5), ({"count": 3}, 3)])
def test_remove_on_complete(q: Queue, r: redis.Redis, option: Any, expected_left: int) -> None:
    for _ in range(5):
        q.add("x", {}, remove_on_complete=option)
    make_worker(r, jobs.succeed).run(burst=True)
    assert r.zcard("bull:work:completed") == expected_left
    assert sum(r.exists(f"bull:work:{i}") for i in range(1, 6)) == expected_left


def test_remove_on_complete_by_age(q: Queue, r: redis.Redis) -> None:
    clock = Clock()
    q.add("old", {}, remove_on_complete={"age": 60})
    make_worker(r, jobs.succeed, clock=clock).run(burst=True)
    clock.now += 61_000
    q.add("new", {}, remove_on_complete={"age": 60})
    make_worker(r, jobs.succeed, clock=clock).run(burst=True)
    assert r.zrange("bull:work:completed", 0, -1) == [b"2"]


def test_worker_default_remove_on_fail(q: Queue, r: redis.Redis) -> None:
    q.add("x", {})
    make_worker(r, jobs.fail, remove_on_fail=True).run(burst=True)
    assert r.zcard("bull:work:failed") == 0 and r.exists("bull:work:1") == 0


def test_priority_order_and_wait_first(q: Queue, r: redis.Redis) -> None:
    seen: list[str] = []
    q.add("p5", {}, priority=5)
    q.add("plain", {})
    q.add("p1", {}, priority=1)
    make_worker(r, lambda job: seen.append(job.name)).run(burst=True)
    assert seen == ["plain", "p1", "p5"]


def test_paused_queue_is_not_processed(q: Queue, r: redis.Redis) -> None:
    q.add("x", {})
    q.pause()
    make_worker(r, jobs.succeed).run(burst=True)
    assert q.counts().waiting == 1
    q.resume()
    make_worker(r, jobs.succeed).run(burst=True)
    assert q.counts().completed == 1


def test_concurrency_runs_jobs_in_parallel(q: Queue, r: redis.Redis) -> None:
    barrier = threading.Barrier(4, timeout=10)
    q.add_bulk([("x", {}, {}) for _ in range(4)])
    make_worker(r, lambda job: barrier.wait(), concurrency=4).run(burst=True)  # would time out if serial
    assert q.counts().completed == 4


def test_lock_is_held_and_renewed_while_running(q: Queue, r: redis.Redis) -> None:
    seen: dict[str, Any] = {}
    renewed = threading.Event()

    def slow(job: Job) -> None:
        seen["token"] = r.get("bull:work:1:lock")
        r.sadd("bull:work:stalled", "1")  # as the stalled check's phase 2 would
        # a renewal (every lock_duration/2 = 0.15 s) removes it from stalled
        for _ in range(100):
            if not r.sismember("bull:work:stalled", "1"):
                renewed.set()
                return
            threading.Event().wait(0.05)

    q.add("x", {})
    make_worker(r, slow, lock_duration=0.3).run(burst=True)
    assert seen["token"] is not None and seen["token"].decode().count(":") == 2
    assert renewed.is_set()


def test_lock_ttl_is_extended_by_renewal(q: Queue, r: redis.Redis) -> None:
    started = threading.Event()
    began: list[float] = []

    def slow(job: Job) -> None:
        began.append(time.monotonic())
        started.set()
        time.sleep(3)

    q.add("x", {})
    w = make_worker(r, slow, lock_duration=2)
    t = threading.Thread(target=w.run, kwargs={"burst": True})
    t.start()
    assert started.wait(10)
    readings: list[tuple[float, int]] = []
    while t.is_alive() and time.monotonic() - began[0] < 2.9:
        elapsed = (time.monotonic() - began[0]) * 1000
        ttl = r.pttl("bull:work:1:lock")
        if elapsed > 1200:
            readings.append((elapsed, ttl))
        time.sleep(0.05)
    t.join(10)
    # The lock was set (for 2000 ms) before the handler began, so without a renewal it has at
    # most 2000 - elapsed ms left (give or take 1 ms of rounding); a renewal (every 1000 ms)
    # puts it back near 2000.
    assert readings and any(ttl > max(0, 2000 - elapsed) + 200 for elapsed, ttl in readings), readings
    assert q.counts().completed == 1


def test_close_from_another_thread_stops_gracefully(q: Queue, r: redis.Redis) -> None:
    started = threading.Event()
    release = threading.Event()

    def block(job: Job) -> str:
        started.set()
        release.wait(10)
        return "done"

    q.add("x", {})
    w = make_worker(r, block)
    t = threading.Thread(target=w.run)
    t.start()
    assert started.wait(10)
    closer = threading.Thread(target=w.close)
    closer.start()
    q.add("y", {})  # must not be taken after close
    release.set()
    closer.join(10)
    t.join(10)
    assert not t.is_alive()
    assert q.counts().completed == 1 and q.counts().waiting == 1


def test_close_now_leaves_the_running_job_active_and_stops_renewing(q: Queue, r: redis.Redis) -> None:
    started = threading.Event()
    release = threading.Event()

    def block(job: Job) -> str:
        started.set()
        release.wait(30)
        return "late"

    q.add("x", {})
    w = make_worker(r, block, lock_duration=0.4, shutdown_timeout=30)
    t = threading.Thread(target=w.run)
    t.start()
    try:
        assert started.wait(10)
        w.close(now=True)  # returns once run() has, long before the 30 s shutdown timeout
        assert not t.is_alive()
        assert r.lrange("bull:work:active", 0, -1) == [b"1"]
        deadline = time.monotonic() + 10
        while r.exists("bull:work:1:lock") and time.monotonic() < deadline:  # nobody renews it now
            time.sleep(0.05)
        assert r.exists("bull:work:1:lock") == 0
    finally:
        release.set()
        t.join(10)
    assert q.counts().completed == 0


def test_each_worker_names_one_connection_like_bullmq_and_drops_it_on_close(q: Queue, r: redis.Redis) -> None:
    workers = [make_worker(r, jobs.succeed, name="w1"), make_worker(r, jobs.succeed)]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    try:
        deadline = threading.Event()
        for _ in range(200):  # until both have connected (bounded)
            if len(q.workers()) == 2:
                break
            deadline.wait(0.05)
        names = sorted(c["name"] for c in q.workers())
        assert names == ["bull:d29yaw==", "bull:d29yaw==:w:w1"]  # base64("work"), one each
    finally:
        for w in workers:
            w.close()
        for t in threads:
            t.join(10)
    assert q.workers() == []


def test_idle_worker_promotes_delayed_job_when_due_and_wakes_for_new_jobs(q: Queue, r: redis.Redis) -> None:
    done = threading.Event()
    seen: list[str] = []

    def handler(job: Job) -> None:
        seen.append(job.name)
        if job.name == "later":
            done.set()

    w = make_worker(r, handler, drain_delay=30)  # long block: only the marker or the due time wakes it
    t = threading.Thread(target=w.run)
    t.start()
    try:
        q.add("now", {})
        later = q.add("later", {}, delay=0.3)
        assert done.wait(20)
    finally:
        w.close()
        t.join(10)
    job = q.job(later.id)
    assert seen == ["now", "later"]
    assert job.processed_on is not None and job.processed_on >= job.timestamp + 300


def test_ids_whose_hash_was_deleted_by_another_tool_are_dropped(q: Queue, r: redis.Redis) -> None:
    q.add("a", {})
    r.lpush("bull:work:wait", "ghost")  # next in line after job 1... and its hash does not exist
    r.rpush("bull:work:wait", "ghost2")  # first in line
    q.add("b", {})
    seen: list[str] = []
    make_worker(r, lambda job: seen.append(job.id)).run(burst=True)
    assert seen == ["1", "2"]
    assert r.exists("bull:work:ghost", "bull:work:ghost2") == 0  # no empty hash created
    assert r.llen("bull:work:active") == 0 and q.counts().completed == 2


def test_malformed_queue_key_is_logged_not_fatal(q: Queue, r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    r.set("bull:work:wait", "written by another tool")
    make_worker(r, jobs.succeed).run(burst=True)  # returns instead of raising
    assert any("cannot fetch jobs" in m and "WRONGTYPE" in m for m in caplog.messages)
