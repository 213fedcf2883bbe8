"""Finishing and fetching in one script call (BullMQ's moveToFinished with fetchNext).

``scripts.fetch_after`` joins a ``move_to_finished`` and a ``move_to_active`` into one call whose
reply is both replies; a worker whose turn has only finishes to send uses it, so at concurrency 1
each job costs one script call.
"""

from __future__ import annotations

import redis

from dashboard import Queue, Worker, scripts
from dashboard.keys import Keys

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
