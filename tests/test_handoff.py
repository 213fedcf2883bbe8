"""Concurrency above 1: a job an idle worker takes alone runs at once in the loop's own thread, and an idle
handler thread goes on with the loop (no thread wake-up between the fetch and the job's start)."""

from __future__ import annotations

import threading
import time

import redis

from dashboard import Job, Queue, Worker
from tests.polling import wait_for


def worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("bullpen-")}


def test_a_lone_job_runs_in_the_loops_thread_and_the_loop_goes_on_meanwhile(r: redis.Redis) -> None:
    q = Queue("work", connection=r)
    ran: dict[str, str] = {}
    second_started = threading.Event()

    def handler(job: Job) -> str:
        ran[job.name] = threading.current_thread().name
        if job.name == "first":
            q.add("second", {})
            assert second_started.wait(10), "the second job did not start while the first ran"
        else:
            second_started.set()
        return job.name

    before = worker_threads()
    w = Worker("work", handler, connection=r, concurrency=4, drain_delay=0.2)
    t = threading.Thread(target=w.run)
    t.start()
    try:
        q.add("first", {})
        wait_for(lambda: q.counts().completed == 2, "both jobs to complete")
    finally:
        w.close()
        t.join(10)
    assert not t.is_alive()
    assert ran["first"] == "bullpen-loop"  # taken by the idle loop, run there: no hand-off to a sleeping thread
    assert ran["second"] != "bullpen-loop"  # meanwhile a handler thread went on with the loop and took it
    wait_for(lambda: worker_threads() <= before, "every thread of the worker to end")


def test_graceful_stop_while_a_handed_off_job_runs_records_it_and_ends_every_thread(r: redis.Redis) -> None:
    q = Queue("work", connection=r)
    started, release = threading.Event(), threading.Event()

    def handler(job: Job) -> str:
        started.set()
        assert release.wait(10)
        return "done"

    before = worker_threads()
    w = Worker("work", handler, connection=r, concurrency=3, drain_delay=0.2)
    t = threading.Thread(target=w.run)
    t.start()
    q.add("slow", {})
    assert started.wait(10)
    closer = threading.Thread(target=w.close)
    closer.start()
    time.sleep(0.2)
    q.add("late", {})  # not taken: the worker is stopping
    release.set()
    closer.join(10)
    t.join(10)
    assert not t.is_alive()
    assert q.counts().completed == 1 and q.counts().waiting == 1 and q.counts().active == 0
    assert q.job("1").returnvalue == "done"
    wait_for(lambda: worker_threads() <= before, "every thread of the worker to end")


def test_a_trickle_of_jobs_hands_the_loop_around_and_loses_nothing(r: redis.Redis) -> None:
    q = Queue("work", connection=r)
    names: list[str] = []

    def handler(job: Job) -> int:
        names.append(threading.current_thread().name)
        if job.data["n"] % 3 == 0:
            time.sleep(0.05)  # a handler thread leads by the time the next one comes
        return int(job.data["n"])

    before = worker_threads()
    w = Worker("work", handler, connection=r, concurrency=2, drain_delay=0.2)
    t = threading.Thread(target=w.run)
    t.start()
    try:
        for n in range(30):
            q.add("x", {"n": n})
            time.sleep(0.01)
        wait_for(lambda: q.counts().completed == 30, "every job to complete")
    finally:
        w.close()
        t.join(10)
    assert not t.is_alive()
    counts = q.counts()
    assert (counts.completed, counts.active, counts.waiting, counts.failed) == (30, 0, 0, 0)
    assert sorted(q.job(str(i)).returnvalue for i in range(1, 31)) == list(range(30))
    assert len(set(names)) >= 2  # the loop moved between threads
    wait_for(lambda: worker_threads() <= before, "every thread of the worker to end")
