"""Keys other tools wrote with the wrong type: logged (naming key and type, once a minute),
skipped, never fatal; the worker serves the queue again once the key is fixed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, Worker
from dashboard.wrongtype import Throttle
from tests import jobs
from tests.polling import wait_for

Q = "work"


@pytest.fixture
def running(r: redis.Redis) -> Iterator[Callable[..., Worker]]:
    """Start non-burst workers in threads; each is closed (and must have stopped) afterwards."""
    started: list[tuple[Worker, threading.Thread, list[BaseException]]] = []

    def start(handler: Any = jobs.succeed, **kw: Any) -> Worker:
        kw.setdefault("drain_delay", 0.2)
        kw.setdefault("stalled_interval", 0.3)
        kw.setdefault("shutdown_timeout", 2)
        w = Worker(Q, handler, connection=r, **kw)
        errors: list[BaseException] = []

        def target() -> None:
            try:
                w.run()
            except BaseException as exc:  # noqa: BLE001 - checked below
                errors.append(exc)

        t = threading.Thread(target=target)
        t.start()
        started.append((w, t, errors))
        return w

    yield start
    for w, t, errors in started:
        w.close(wait=False)
        t.join(10)
        assert not t.is_alive(), "worker did not stop"
        assert errors == [], f"worker raised {errors[0]!r}"


def mentions(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in m for m in caplog.messages)


@pytest.mark.parametrize(("key", "spoil", "expected"), [
    ("wait", lambda r, k: r.set(k, "written by another tool"), "bull:work:wait is a string, expected a list"),
    ("active", lambda r, k: r.hset(k, "x", "1"), "bull:work:active is a hash, expected a list"),
    ("meta", lambda r, k: r.rpush(k, "x"), "bull:work:meta is a list, expected a hash"),
    ("marker", lambda r, k: r.set(k, "x"), "bull:work:marker is a string, expected a zset"),
    ("events", lambda r, k: r.sadd(k, "x"), "bull:work:events is a set, expected a stream"),
])
def test_queue_key_of_the_wrong_type_is_logged_once_and_served_again_when_fixed(
        r: redis.Redis, running: Callable[..., Worker], caplog: pytest.LogCaptureFixture, key: str,
        spoil: Callable[[redis.Redis, str], Any], expected: str) -> None:
    q = Queue(Q, connection=r)
    q.add("early", {})
    r.delete(f"bull:{Q}:{key}")
    spoil(r, f"bull:{Q}:{key}")
    w = running()
    wait_for(lambda: w._fetches >= 2, "two fetch attempts")
    assert mentions(caplog, expected) == 1  # named once, not once per attempt
    assert q.counts().completed == 0
    r.delete(f"bull:{Q}:{key}")  # fixed
    if key == "wait":
        q.add("later", {})  # the id of the first job went with the key
    wait_for(lambda: q.counts().completed == 1, "the queue to be served again")
    assert r.llen(f"bull:{Q}:active") == 0


def test_throttle_lets_one_message_per_key_through_per_interval() -> None:
    now = [0.0]
    t = Throttle(every=60, clock=lambda: now[0])
    assert t.allow("a") and t.allow("b") and not t.allow("a")
    now[0] = 59.9
    assert not t.allow("a")
    now[0] = 60.0
    assert t.allow("a") and not t.allow("a")


def test_a_lock_overwritten_with_a_hash_costs_only_that_job(r: redis.Redis, running: Callable[..., Worker],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    q = Queue(Q, connection=r)
    spoiled = threading.Event()

    def handler(job: Job) -> str:
        if job.name == "spoiled" and job.attempts_started == 1:
            lock = f"bull:{Q}:{job.id}:lock"
            r.delete(lock)
            r.hset(lock, "written", "by another tool")
            spoiled.set()
        elif job.name == "healthy":
            assert spoiled.wait(10)
        time.sleep(1.0)  # several renewals (lock 0.4 s, renewed every 0.2 s)
        return job.name

    q.add("spoiled", {})
    q.add("healthy", {})
    running(handler, concurrency=2, lock_duration=0.4)
    wait_for(lambda: r.zscore(f"bull:{Q}:completed", "2") is not None, "the healthy job to complete")
    healthy = q.job("2")
    assert (healthy.attempts_started, healthy.stalled_counter) == (1, 0)  # its lock was renewed throughout
    assert mentions(caplog, "bull:work:1:lock is a hash, not a string") == 1
    wait_for(lambda: mentions(caplog, "job=1: completed result discarded") == 1, "the spoiled job's result")
    assert r.lrange(f"bull:{Q}:active", 0, -1) == [b"1"]  # held by the foreign lock key, not lost
    r.delete(f"bull:{Q}:1:lock")  # fixed: the stalled check recovers the job, a worker runs it again
    wait_for(lambda: q.counts().completed == 2, "the spoiled job to run again")
    assert q.job("1").stalled_counter == 1 and q.job("1").returnvalue == "spoiled"


def test_a_log_key_of_the_wrong_type_drops_the_line_not_the_job(r: redis.Redis,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    q = Queue(Q, connection=r)
    q.add("x", {})
    r.hset(f"bull:{Q}:1:logs", "written", "by another tool")
    counts: list[int] = []

    def handler(job: Job) -> str:
        counts.extend([job.log("one"), job.log("two")])
        return "done"

    Worker(Q, handler, connection=r, drain_delay=0.2).run(burst=True)
    assert counts == [0, 0]
    assert q.job("1").returnvalue == "done"
    assert mentions(caplog, "bull:work:1:logs is a hash, expected a list") == 1


def test_a_job_key_that_is_not_a_hash_is_taken_off_the_queue(r: redis.Redis,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    q = Queue(Q, connection=r)
    r.set(f"bull:{Q}:odd", "a string, not a job hash")
    r.rpush(f"bull:{Q}:wait", "odd")
    q.add("next", {})
    seen: list[str] = []
    Worker(Q, lambda job: seen.append(job.id), connection=r, drain_delay=0.2).run(burst=True)
    assert seen == ["1"]
    assert mentions(caplog, "bull:work:odd is a string, not a hash") == 1
    assert r.llen(f"bull:{Q}:active") == 0 and r.get(f"bull:{Q}:odd") == b"a string, not a job hash"


def test_a_finished_set_of_the_wrong_type_is_logged_and_the_loop_goes_on(r: redis.Redis, running: Callable[..., Worker],
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    q = Queue(Q, connection=r)
    r.set(f"bull:{Q}:completed", "x")
    q.add("a", {})
    w = running(lock_duration=0.5)
    wait_for(lambda: mentions(caplog, "bull:work:completed is a string, expected a zset") == 1, "the log")
    assert w._inflight == {}  # the slot is free again; the job's lock lapses
    r.delete(f"bull:{Q}:completed")
    wait_for(lambda: q.counts().completed == 1, "the job to be recovered and completed")
