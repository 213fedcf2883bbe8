"""Finishing and fetching in one script call (BullMQ's moveToFinished with fetchNext), and an idle
worker's fetch sent behind its blocking pop of the marker.

``scripts.fetch_after`` joins a ``move_to_finished`` and a ``move_to_active`` into one call whose
reply is both replies; a worker whose turn has only finishes to send uses it, so at concurrency 1
each job costs one script call. An idle worker queues a fetch right behind its ``BZPOPMIN`` of the
marker on the same connection: Redis runs it, at the server's clock, as soon as the pop returns.
"""

from __future__ import annotations

import threading
import time

import redis

from dashboard import Queue, Worker, scripts
from dashboard.keys import Keys
from tests.polling import wait_for

K = Keys("bull", "ff")
NOW = 1_700_000_000_000


def finish(job_id: bytes, token: bytes) -> scripts.Call:
    return scripts.move_to_finished(K, NOW, [[job_id, token, "completed", '"ok"', "", 10, -1, 0, 1]])


def test_one_call_finishes_a_job_and_takes_the_next(r: redis.Redis) -> None:
    q = Queue("ff", connection=r)
    q.add("a", {})
    q.add("b", {})
    s = scripts.Scripts(r)
    taken, *_ = s.run(scripts.move_to_active(K, "t1", 30_000, NOW, 1, ""))
    done, fetched = s.run(scripts.fetch_after(finish(taken[0], taken[1]), scripts.move_to_active(
        K, "t2", 30_000, NOW + 5, 1, "w")))
    assert done == [1]
    nxt, next_due, dropped, limited = fetched
    assert nxt[0] == b"2" and nxt[1] == b"t2:1" and (next_due, dropped, limited) == (-1, [], 0)
    assert r.zscore("bull:ff:completed", "1") == NOW
    assert r.lrange("bull:ff:active", 0, -1) == [b"2"] and r.get("bull:ff:2:lock") == b"t2:1"
    assert r.hget("bull:ff:2", "processedOn") == str(NOW).encode()  # the fetch runs at the finish's time
    assert r.hget("bull:ff:2", "pb") == b"w"


def test_a_fetch_refused_on_a_spoiled_key_leaves_the_finish_done(r: redis.Redis) -> None:
    q = Queue("ff", connection=r)
    q.add("a", {})
    q.add("b", {})
    s = scripts.Scripts(r)
    taken, *_ = s.run(scripts.move_to_active(K, "t1", 30_000, NOW, 1, ""))
    r.delete("bull:ff:marker")
    r.set("bull:ff:marker", "spoiled")  # another tool wrote a string where BullMQ keeps a zset
    done, fetched = s.batch([scripts.fetch_after(finish(taken[0], taken[1]), scripts.move_to_active(
        K, "t2", 30_000, NOW, 1, ""))])[0]
    assert done == [1] and r.zscore("bull:ff:completed", "1") == NOW
    assert isinstance(fetched, redis.ResponseError) and "marker" in str(fetched)
    assert r.lrange("bull:ff:wait", 0, -1) == [b"2"] and r.get("bull:ff:marker") == b"spoiled"


def test_a_worker_at_concurrency_1_makes_one_script_call_per_job(r: redis.Redis) -> None:
    q = Queue("ff", connection=r)
    for i in range(30):
        q.add("n", {"i": i})
    seen: list[int] = []
    worker = Worker("ff", lambda job: seen.append(job.data["i"]), connection=r, drain_delay=0.2)
    r.config_resetstat()
    worker.run(burst=True)
    calls = int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
    assert seen == list(range(30)) and q.counts().completed == 30
    assert calls <= 30 + 6  # one per job, plus start-up (queue kind, stalled check, first fetch, heartbeat)


def test_a_fetch_with_no_time_given_runs_at_the_servers_clock(r: redis.Redis) -> None:
    Queue("ff", connection=r).add("a", {})
    before = int(time.time() * 1000)
    taken, *_ = scripts.Scripts(r).run(scripts.move_to_active(K, "t1", 30_000, scripts.SERVER_TIME, 1, ""))
    stamp = int(r.hget("bull:ff:1", "processedOn") or 0)
    assert taken[0] == b"1" and before - 5 <= stamp <= int(time.time() * 1000) + 5


def test_an_idle_worker_takes_a_new_job_with_the_fetch_queued_behind_its_marker_wait(r: redis.Redis) -> None:
    """The worker's clock is stopped at 1000: a job fetched by a turn would start at 1000; the fetch queued
    behind the marker pop runs at the server's clock, so processedOn says which fetch took the job."""
    q = Queue("ff", connection=r)
    done = threading.Event()
    w = Worker("ff", lambda job: done.set(), connection=r, concurrency=4, clock=lambda: 1000, name="idle")
    t = threading.Thread(target=w.run)
    t.start()
    try:
        def blocked_on_marker() -> bool:
            return any(c.get("name", "").endswith("idle") and c.get("cmd") == "bzpopmin" and "b" in c.get("flags", "")
                       for c in r.client_list())
        wait_for(blocked_on_marker, "the idle worker to block on the marker")
        job = q.add("new", {})
        assert done.wait(10)
        wait_for(lambda: q.job(job.id).finished_on is not None, "the job to be recorded")
        recorded = q.job(job.id)
        assert recorded.processed_on is not None and recorded.processed_on > 1_600_000_000_000  # Redis's clock
        assert recorded.finished_on == 1000  # the worker's
    finally:
        w.close()
        t.join(10)
