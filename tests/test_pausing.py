"""Pauses with a reason and an end time: the record lives where BullMQ never looks, and the
automatic resume happens exactly once, by a worker when no dashboard is open."""

from __future__ import annotations

import threading
import time

import redis

from dashboard import Queue, Worker
from dashboard.audit import AuditLog


def test_a_worker_resumes_a_pause_that_reached_its_end(r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    job = q.add("x", {})
    q.pause("deploy", until=3600, by="oncall")
    info = q.pause_info()
    assert info is not None and (info.reason, info.by) == ("deploy", "oncall")
    assert r.hget("bull:mail:meta", "paused") == b"1"  # what BullMQ's workers obey
    r.hset("bull::pause:mail", "until", 1)  # the end time has come
    worker = Worker("mail", lambda job: "ok", connection=r, lock_duration=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while q.job(job.id).state != "completed":
            assert time.monotonic() < deadline, "the worker did not resume the queue"
            time.sleep(0.02)
    finally:
        worker.close()
        thread.join(10)
    assert q.pause_info() is None and not q.is_paused()
    (entry,) = AuditLog(r, "bull").entries("mail")  # the resume is in the audit trail, once
    assert entry.action == "resume" and entry.actor.startswith("automatic (worker ") and "automatically" in entry.result


def test_a_pause_without_end_time_stays_and_resume_forgets_the_record(r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    q.pause("incident 42")
    assert not q.resume_if_due() and q.is_paused()
    q.resume()
    assert q.pause_info() is None and not q.is_paused()


def test_a_record_left_by_a_resume_elsewhere_is_dropped_without_resuming_anything(r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    q.pause(until=1)
    r.hdel("bull:mail:meta", "paused")  # resumed by BullMQ, which knows nothing of our record
    assert not q.resume_if_due() and q.pause_info() is None
