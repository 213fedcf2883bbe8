"""Interop with real Node BullMQ 6.7.0: rate limits, metrics and the drained event.

Rates are judged from the jobs' own processedOn stamps (read from their hashes), never from
how long the test took. See ``test_node_bullmq.py`` for the harness.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis

from dashboard import Queue, Worker
from dashboard.codec import text
from tests.interop.harness import Child, read_records, wait_until
from tests.interop.test_node_bullmq import node_cli, node_worker, py_worker
from tests.interop.test_node_bullmq import pytestmark as node_marks

pytestmark = node_marks


def processed_on(r: redis.Redis, name: str, ids: list[str]) -> list[int]:
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(f"bull:{name}:{job_id}", "processedOn")
    return sorted(int(v) for v in pipe.execute() if v is not None)


def per_second(stamps: list[int], seconds: int) -> list[int]:
    """Jobs started in each whole second after the first start."""
    t0 = stamps[0]
    return [sum(1 for t in stamps if t0 + 1000 * k <= t < t0 + 1000 * (k + 1)) for k in range(seconds)]


def test_mixed_fleet_holds_a_global_rate_limit_set_by_node(redis_url: str, r: redis.Redis,
                                                            spawn: Callable[[list[str], str], Child],
                                                            tmp_path: Path) -> None:
    """Node's setGlobalRateLimit(10, 1000); a Bullpen worker and a Node worker share a backlog of
    70 jobs: the fleet holds 10 jobs/s +- 1 over 5 s, and both kinds of worker take jobs."""
    name = "limited"
    node_cli(redis_url, name, "rate-limit", "--max", "10", "--duration", "1000")
    assert r.hgetall(f"bull:{name}:meta")[b"max"] == b"10"
    q = Queue(name, redis_url=redis_url)
    ids = [j.id for j in q.add_bulk([("x", {"i": i}, {}) for i in range(70)])]
    outs = [tmp_path / "py.jsonl", tmp_path / "node.jsonl"]
    workers = [py_worker(spawn, redis_url, name, outs[0], "--concurrency", "4"),
               node_worker(spawn, redis_url, name, outs[1], "--concurrency", "4")]
    wait_until(lambda: q.counts().completed >= 60, 30, "60 completed jobs", interval=0.05)
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait()
    stamps = processed_on(r, name, ids)
    counts = per_second(stamps, 5)
    assert all(9 <= c <= 11 for c in counts), counts
    per_worker = [len(read_records(p)) for p in outs]
    assert all(per_worker), f"jobs per worker {per_worker}: both should have taken some"


def test_our_worker_honours_a_limit_node_set(redis_url: str, r: redis.Redis) -> None:
    """A Bullpen worker alone under Node's setGlobalRateLimit(5, 500); then Node's
    removeGlobalRateLimit lifts it."""
    name = "node-limit"
    node_cli(redis_url, name, "rate-limit", "--max", "5", "--duration", "500")
    q = Queue(name, redis_url=redis_url)
    ids = [j.id for j in q.add_bulk([("x", {}, {}) for _ in range(15)])]
    Worker(name, lambda job: None, redis_url=redis_url, concurrency=8, drain_delay=0.2).run(burst=True)
    stamps = processed_on(r, name, ids)
    assert len(stamps) == 15
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 500 - 25, stamps
    node_cli(redis_url, name, "no-rate-limit")
    assert q.global_rate_limit() is None
    # ours written, Node read: with our global limit (2 per 30 s) and a limiter at 2, Node's
    # getRateLimitTtl sees the queue limited, as ours does
    q.set_global_rate_limit(2, 30)
    r.set(f"bull:{name}:limiter", 2, px=30_000)
    assert 0 < node_cli(redis_url, name, "rate-limit-ttl")["ttl"] <= 30_000
    assert 0 < q.rate_limit_ttl() <= 30_000
    q.remove_global_rate_limit()
    assert node_cli(redis_url, name, "rate-limit-ttl")["ttl"] > 0  # no max anywhere: the limiter's PTTL


def test_metrics_match_node_get_metrics(redis_url: str, r: redis.Redis, spawn: Callable[[list[str], str], Child],
                                        tmp_path: Path) -> None:
    """The same run recorded by our worker (metrics on by default) and by a Node worker with
    metrics {maxDataPoints}: 5 jobs, a faked 3-minute gap (the worker stopped, prevTS moved 3
    minutes back: a worker remembers the minute it last recorded in and reads prevTS again only
    when that minute is over, so the gap is faked between two workers), 2 more jobs by a new
    worker. Both queues hold the same per-minute data, and our Queue.metrics reads what Node's
    getMetrics reads."""
    def run(name: str, start: Callable[[], Callable[[], object]]) -> None:
        q = Queue(name, redis_url=redis_url)
        q.add_bulk([("ok", {}, {}) for _ in range(4)] + [("bad", {}, {})])
        stop = start()
        wait_until(lambda: (lambda c: c.completed + c.failed)(q.counts()) >= 5, 20, "5 finished", interval=0.05)
        stop()
        for status in ("completed", "failed"):
            key = f"bull:{name}:metrics:{status}"
            r.hset(key, "prevTS", int(r.hget(key, "prevTS") or 0) - 180_000)
        q.add_bulk([("ok", {}, {}), ("bad", {}, {})])
        stop = start()
        wait_until(lambda: (lambda c: c.completed + c.failed)(q.counts()) >= 7, 20, "7 finished", interval=0.05)
        stop()

    def ours() -> Callable[[], object]:
        child = py_worker(spawn, redis_url, "ours", tmp_path / "py.jsonl", "--fail-names", "bad")
        return child.stop

    def theirs() -> Callable[[], object]:
        child = node_worker(spawn, redis_url, "theirs", tmp_path / "node.jsonl", "--fail-names", "bad",
                            "--metrics", "20160")
        return child.stop

    run("ours", ours)
    run("theirs", theirs)
    for status, before, total in (("completed", 4, 5), ("failed", 1, 2)):
        got = {n: node_cli(redis_url, n, "metrics", "--type", status) for n in ("ours", "theirs")}
        mine = Queue("ours", redis_url=redis_url).metrics(status)
        assert {"meta": mine.meta, "data": mine.data, "count": mine.count} == got["ours"]
        for n in ("ours", "theirs"):
            m = got[n]
            assert m["meta"]["count"] == total and m["meta"]["prevCount"] == before, (n, m)
            # 3 (or 4, if a real minute ended meanwhile) points: the 5 earlier jobs, then empty minutes
            assert m["data"][-1] == before and set(m["data"][:-1]) == {0} and m["count"] in (3, 4), (n, m)


def test_drained_event_as_node_emits_it(redis_url: str, r: redis.Redis, spawn: Callable[[list[str], str], Child],
                                        tmp_path: Path) -> None:
    """The same three jobs run by a Node worker and by ours: each queue's event stream ends with
    one `drained`, after the last `completed`."""
    def kinds(name: str) -> list[str]:
        return [text(f[b"event"]) for _, f in r.xrange(f"bull:{name}:events")]

    node_cli(redis_url, "theirs", "add", stdin=[{"name": "x", "data": {}} for _ in range(3)])
    child = node_worker(spawn, redis_url, "theirs", tmp_path / "node.jsonl")
    wait_until(lambda: "drained" in kinds("theirs"), 20, "Node's drained event")
    child.stop()
    q = Queue("ours", redis_url=redis_url)
    q.add_bulk([("x", {}, {}) for _ in range(3)])
    Worker("ours", lambda job: None, redis_url=redis_url, drain_delay=0.2).run(burst=True)
    for name in ("theirs", "ours"):
        got = kinds(name)
        assert got.count("drained") == 1 and got[-1] == "drained", (name, got)
        assert got.index("drained") > max(i for i, k in enumerate(got) if k == "completed"), (name, got)
