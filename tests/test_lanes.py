"""From concurrency LANE_MIN a worker's loop has two lanes (dashboard/worker_lanes.py): each fills half the
slots and sends its own results, the first one does the idle waits. These tests pin what must not change:
both lanes take jobs, never more than ``concurrency`` run at once, a burst ends and an idle worker wakes for
new jobs whichever lane ran the last ones, and a graceful stop records every running job."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

import redis

from dashboard import Job, Queue, Worker
from dashboard.worker_lanes import LANE_MIN, Lane
from tests.polling import wait_for

#: Long enough that a worker left waiting on a timer instead of the marker or its lanes fails the test.
NEVER = 600


class CountingWorker(Worker):
    """Counts the jobs each lane took."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken_by: collections.Counter[int] = collections.Counter()

    def _exchange(self, lane: Lane) -> Any:
        out = super()._exchange(lane)
        if out is not None:
            self.taken_by[lane.index] += out[1]
        return out


def completed(q: Queue, n: int) -> Callable[[], bool]:
    return lambda: q.counts().completed == n


def run_in_thread(worker: Worker, burst: bool = False) -> threading.Thread:
    t = threading.Thread(target=worker.run, kwargs={"burst": burst})
    t.start()
    return t


def test_both_lanes_fill_their_slots_and_never_more_than_concurrency_jobs_run(r: redis.Redis) -> None:
    q = Queue("lanes", connection=r)
    release = threading.Event()
    lock = threading.Lock()
    running, most = 0, 0

    def handler(job: Job) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            assert release.wait(20)
        finally:
            with lock:
                running -= 1

    q.add_bulk([("j", {"i": i}, None) for i in range(4 * LANE_MIN)])
    w = CountingWorker("lanes", handler, connection=r, concurrency=LANE_MIN, drain_delay=NEVER)
    t = run_in_thread(w, burst=True)
    try:
        # the first lane's fetch comes back full and wakes the second, whose fetch fills the other half
        wait_for(lambda: sum(w.taken_by.values()) >= LANE_MIN and not any(lane.fetching for lane in w._lanes),
                 "every slot to take a job")
        assert sum(w.taken_by.values()) == LANE_MIN and q.counts().active == LANE_MIN
        assert w.taken_by[0] == w.taken_by[1] == LANE_MIN // 2
    finally:
        release.set()
        t.join(60)
    assert not t.is_alive()
    assert q.counts().completed == 4 * LANE_MIN and q.counts().failed == 0
    assert most == LANE_MIN
    assert sum(w.taken_by.values()) == 4 * LANE_MIN


def test_below_lane_min_there_is_one_lane(r: redis.Redis) -> None:
    q = Queue("lanes", connection=r)
    q.add_bulk([("j", {}, None) for _ in range(50)])
    w = CountingWorker("lanes", lambda job: None, connection=r, concurrency=LANE_MIN - 1, drain_delay=NEVER)
    t = run_in_thread(w, burst=True)
    t.join(60)
    assert not t.is_alive()
    assert set(w.taken_by) == {0} and w.taken_by[0] == 50


def test_a_burst_ends_when_the_last_jobs_ran_in_the_second_lane(r: redis.Redis) -> None:
    """The first lane may be waiting on a timer (here: never) when the second settles the last job."""
    q = Queue("lanes", connection=r)
    for _ in range(5):
        q.add_bulk([("j", {}, None) for _ in range(200)])
        w = CountingWorker("lanes", lambda job: None, connection=r, concurrency=16, drain_delay=NEVER,
                           stalled_interval=NEVER)
        t = run_in_thread(w, burst=True)
        t.join(60)
        assert not t.is_alive(), "the burst did not end"
        assert w.taken_by[1] > 0
    assert q.counts().completed == 1000 and q.counts().waiting == 0


def test_an_idle_worker_takes_new_jobs_after_its_second_lane_ran_the_last_ones(r: redis.Redis) -> None:
    q = Queue("lanes", connection=r)
    w = CountingWorker("lanes", lambda job: None, connection=r, concurrency=16, drain_delay=NEVER,
                       stalled_interval=NEVER)
    t = run_in_thread(w)
    try:
        for spell in range(5):
            q.add_bulk([("j", {}, None) for _ in range(200)])
            busy = 201 * spell + 200
            wait_for(completed(q, busy), f"{busy} jobs to complete")
            q.add("lone", {})  # the worker is idle now: the marker must wake it
            wait_for(completed(q, busy + 1), "the lone job to complete")
        assert w.taken_by[1] > 0
    finally:
        w.close()
        t.join(20)
    assert not t.is_alive()


def test_a_graceful_stop_records_the_jobs_running_in_both_lanes(r: redis.Redis) -> None:
    q = Queue("lanes", connection=r)
    release = threading.Event()
    started = threading.Semaphore(0)

    def handler(job: Job) -> str:
        started.release()
        assert release.wait(20)
        return "done"

    q.add_bulk([("j", {}, None) for _ in range(LANE_MIN)])
    w = CountingWorker("lanes", handler, connection=r, concurrency=LANE_MIN, drain_delay=NEVER, shutdown_timeout=10)
    t = run_in_thread(w)
    for _ in range(LANE_MIN):
        assert started.acquire(timeout=20), "not every slot took a job"
    assert w.taken_by[0] > 0 and w.taken_by[1] > 0, w.taken_by
    w.close(wait=False)
    # the jobs end after the second lane did: their results go to the first, which records them
    wait_for(lambda: w._lane_thread is None, "the second lane to end")
    release.set()
    t.join(30)
    assert not t.is_alive()
    counts = q.counts()
    assert counts.completed == LANE_MIN and counts.active == 0
    assert w.processed == LANE_MIN
