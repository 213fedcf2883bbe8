"""Per-minute metrics and the `drained` event on a real Redis, as BullMQ 6.7.0 writes them.

Minutes are driven by the worker's injected clock, so nothing here depends on real time.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, Worker, scripts
from dashboard.codec import text
from dashboard.keys import Keys

K = Keys("bull", "met")
MINUTE = 60_000
T0 = 1_795_000_020_000  # 20 s into a minute


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    return Queue("met", connection=r)


def run(r: redis.Redis, handler: Any = lambda job: None, **kw: Any) -> None:
    kw.setdefault("drain_delay", 0.2)
    Worker("met", handler, connection=r, **kw).run(burst=True)


def fail_bad(job: Job) -> Any:
    if job.name == "bad":
        raise ValueError("bad")


def events(r: redis.Redis) -> list[str]:
    return [text(f[b"event"]) for _, f in r.xrange("bull:met:events")]


def test_worker_records_per_minute_metrics_by_default(q: Queue, r: redis.Redis) -> None:
    clock = Clock()
    q.add_bulk([("ok", {}, {})] * 3 + [("bad", {}, {})])
    run(r, fail_bad, clock=clock)
    assert r.hgetall("bull:met:metrics:completed") == {b"count": b"3", b"prevTS": str(T0).encode(),
                                                       b"prevCount": b"0"}
    assert r.hget("bull:met:metrics:failed", "count") == b"1"
    clock.now = T0 + 3 * MINUTE
    q.add_bulk([("ok", {}, {})] * 2)
    run(r, fail_bad, clock=clock)
    m = q.metrics("completed")
    # BullMQ's collectMetrics: the 3 earlier jobs, then the 2 empty minutes, newest first
    assert m.meta == {"count": 5, "prevTS": T0 + 3 * MINUTE, "prevCount": 3}
    assert m.data == [0, 0, 3] and m.count == 3
    assert q.metrics("completed", 0, 0).data == [0]
    assert q.metrics("failed").meta["count"] == 1 and q.metrics("failed").data == []


def test_metrics_none_records_nothing(q: Queue, r: redis.Redis) -> None:
    q.add_bulk([("ok", {}, {})] * 2)
    run(r, metrics=None)
    assert r.exists("bull:met:metrics:completed", "bull:met:metrics:completed:data") == 0
    assert q.metrics("completed").meta == {"count": 0, "prevTS": 0, "prevCount": 0}
    with pytest.raises(ValueError):
        Worker("met", lambda job: None, connection=r, metrics=0)


def test_data_points_are_trimmed_to_max(q: Queue, r: redis.Redis) -> None:
    clock = Clock()
    q.add("ok", {})
    run(r, clock=clock, metrics=2)
    clock.now += 5 * MINUTE
    q.add("ok", {})
    run(r, clock=clock, metrics=2)
    # BullMQ caps the gap at maxDataPoints: the earlier minute's count, then one empty minute
    assert r.lrange("bull:met:metrics:completed:data", 0, -1) == [b"0", b"1"]


def bullmq_collect(meta: dict[str, int], data: list[int], ts: int, keep: int) -> None:
    """BullMQ 6.7.0's collectMetrics for one job, in Python (list index 0 = newest)."""
    count = meta.get("count", 0)
    meta["count"] = count + 1
    if "prevTS" not in meta:
        meta["prevTS"], meta["prevCount"] = ts, 0
        return
    n = min(ts // MINUTE - meta["prevTS"] // MINUTE, keep)
    if n > 0:
        data[:0] = [0] * (n - 1) + [count - meta["prevCount"]]
        del data[keep:]
        meta["prevCount"], meta["prevTS"] = count, ts


@pytest.mark.parametrize("same_minute_flag", [False, True])
def test_one_collect_per_batch_equals_bullmq_per_job(q: Queue, r: redis.Redis, same_minute_flag: bool) -> None:
    """Batches of finishes recorded once per status per call leave exactly what BullMQ's one
    call per job leaves, also when a call in the minute of the previous one says so (``keep:c``,
    as a worker does) and skips reading prevTS."""
    rng = random.Random(7)
    s = scripts.Scripts(r)
    meta: dict[str, int] = {}
    data: list[int] = []
    now, keep, last_minute = T0, 6, -1
    for _ in range(40):
        now += rng.choice([0, 0, 1000, MINUTE, 2 * MINUTE, 9 * MINUTE])
        size = rng.randint(1, 5)
        q.add_bulk([("x", {}, {})] * size)
        taken, *_ = s.run(scripts.move_to_active(K, "t", 30_000, now, size, ""))
        jobs = [[taken[i], taken[i + 1], "completed", "null", "", 10, -1, 0, 0] for i in range(0, len(taken), 3)]
        metrics = f"{keep}:c" if same_minute_flag and now // MINUTE == last_minute else keep
        assert all(code >= 1 for code in s.run(scripts.move_to_finished(K, now, jobs, metrics)))
        last_minute = now // MINUTE
        for _ in range(size):
            bullmq_collect(meta, data, now, keep)
    got = {text(k): int(v) for k, v in r.hgetall("bull:met:metrics:completed").items()}
    assert got == meta
    assert [int(v) for v in r.lrange("bull:met:metrics:completed:data", 0, -1)] == data


def test_metrics_cost_one_command_per_finish_call_within_a_minute(q: Queue, r: redis.Redis) -> None:
    """Each finish call counts with one HINCRBY; prevTS is read only by the first call of a minute
    (per status): five jobs finished one call each in one minute read it once, then once more in
    the next minute, which also writes its data point."""
    def hgets(**kw: Any) -> int:
        for key in list(r.scan_iter("bull:met:*")):
            r.delete(key)
        q.add_bulk([("ok", {}, {})] * 5)
        r.config_resetstat()
        run(r, **kw)  # concurrency 1: one finish call per job
        return int(r.info("commandstats").get("cmdstat_hget", {}).get("calls", 0))

    baseline = hgets(metrics=None)
    clock = Clock()
    assert hgets(clock=clock) == baseline + 1
    assert q.metrics("completed").meta == {"count": 5, "prevTS": T0, "prevCount": 0}
    clock.now += MINUTE
    q.add("ok", {})
    run(r, clock=clock)
    assert q.metrics("completed").meta == {"count": 6, "prevTS": T0 + MINUTE, "prevCount": 5}
    assert q.metrics("completed").data == [5]


def test_drained_once_when_the_queue_runs_empty(q: Queue, r: redis.Redis) -> None:
    q.add_bulk([("x", {}, {})] * 6)
    run(r, concurrency=3)
    got = events(r)
    assert got.count("drained") == 1 and got[-1] == "drained"


def test_no_drained_while_a_delayed_job_waits(q: Queue, r: redis.Redis) -> None:
    q.add("x", {})
    q.add("later", {}, delay=3600)
    run(r)
    assert "completed" in events(r) and "drained" not in events(r)


def test_no_drained_when_paused(q: Queue, r: redis.Redis) -> None:
    q.add("x", {})
    run(r, lambda job: q.pause())
    assert "completed" in events(r) and "drained" not in events(r)


def test_no_drained_when_rate_limited(q: Queue, r: redis.Redis) -> None:
    s = scripts.Scripts(r)
    q.set_global_rate_limit(1, 60)
    q.add("x", {})
    taken, *_ = s.run(scripts.move_to_active(K, "t", 30_000, T0, 1, ""))
    s.run(scripts.move_to_finished(K, T0, [[taken[0], taken[1], "completed", "null", "", 10, -1, 0, 0]]))
    assert "completed" in events(r) and "drained" not in events(r)
    q.remove_global_rate_limit()
    q.add("x", {})
    taken, *_ = s.run(scripts.move_to_active(K, "t", 30_000, T0, 1, ""))
    s.run(scripts.move_to_finished(K, T0, [[taken[0], taken[1], "completed", "null", "", 10, -1, 0, 0]]))
    assert events(r)[-1] == "drained"


def test_spoiled_metrics_keys_never_block_finishes(q: Queue, r: redis.Redis) -> None:
    r.set("bull:met:metrics:completed", "not a hash")
    r.hset("bull:met:metrics:failed", "count", "many")
    r.set("bull:met:metrics:failed:data", "not a list")
    q.add_bulk([("ok", {}, {}), ("bad", {}, {})])
    run(r, fail_bad)
    assert r.zcard("bull:met:completed") == 1 and r.zcard("bull:met:failed") == 1
    assert r.get("bull:met:metrics:completed") == b"not a hash"
