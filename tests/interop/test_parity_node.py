"""Interop with real Node BullMQ 6.7.0 for the smaller parts of issue 8 (the compatibility table
in ``docs/bullmq-compatibility.md`` names each test): getRateLimitTtl value for value, backoff
jitter both ways, a keepLastIfActive add re-added by our finish in one script while Node adds.

Node's Queue and Job methods are called through ``bullmq_calls.js``; workers and producers through
``bullmq_cli.js``. See ``test_node_bullmq.py`` for the harness.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from dashboard import Queue, Worker
from tests import jobs
from tests.interop.harness import Child, wait_until
from tests.interop.test_node_bullmq import NODE, node_cli, node_worker
from tests.interop.test_node_bullmq import pytestmark as node_marks

pytestmark = node_marks

CALLS = Path(__file__).resolve().parent / "bullmq_calls.js"


def node_calls(redis_url: str, queue: str, calls: list[dict[str, Any]]) -> list[Any]:
    """Run Node Queue / Job methods in one Node start (see ``bullmq_calls.js``); their results."""
    proc = subprocess.run([str(NODE), str(CALLS), "--redis", redis_url, "--queue", queue], input=json.dumps(calls),
                          capture_output=True, text=True, timeout=30)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"bullmq_calls.js exited {proc.returncode}: {proc.stdout}\n{proc.stderr}")
    results: list[Any] = json.loads(lines[-1])["results"]
    return results


def test_rate_limit_ttl_answers_what_node_get_rate_limit_ttl_answers(redis_url: str, r: redis.Redis) -> None:
    """Every case of getRateLimitTtl(maxJobs?): no limiter key, a key without expiry, a key with
    one and no max anywhere, a max given, meta max below and above the count."""
    name = "ttl"
    q = Queue(name, redis_url=redis_url)
    limiter = f"bull:{name}:limiter"

    def both(max_jobs: int | None = None) -> tuple[int, int]:
        args = [] if max_jobs is None else [max_jobs]
        node = node_calls(redis_url, name, [{"queue": "getRateLimitTtl", "args": args}])
        ours = q.rate_limit_ttl(max_jobs)
        return ours, int(node[0])

    assert both() == (-2, -2)
    assert both(5) == (0, 0)
    r.set(limiter, 3)
    assert both() == (-1, -1)
    r.set(limiter, 3, px=60_000)
    ours, node = both()
    assert 0 < ours <= 60_000 and 0 < node <= 60_000
    assert both(4) == (0, 0)
    ours, node = both(3)
    assert 0 < ours <= 60_000 and 0 < node <= 60_000
    q.set_global_rate_limit(5, 1)
    assert both() == (0, 0)
    q.set_global_rate_limit(2, 1)
    ours, node = both()
    assert 0 < ours <= 60_000 and 0 < node <= 60_000
    r.delete(limiter)
    assert both() == (0, 0)


def test_backoff_jitter_both_ways(redis_url: str, r: redis.Redis, tmp_path: Path,
                                  spawn: Callable[[list[str], str], Child]) -> None:
    """Node adds jobs with a jittered fixed backoff and our worker retries them within BullMQ's
    bounds; ours added with a jitter are retried by a Node worker within the same bounds."""
    now = 1_795_000_000_000
    backoff = {"type": "fixed", "delay": 100_000, "jitter": 0.5}
    theirs = [{"name": "x", "data": {}, "opts": {"attempts": 2, "backoff": backoff}} for _ in range(10)]
    ids = node_cli(redis_url, "jit-node", "add", stdin=theirs)["ids"]
    Worker("jit-node", jobs.fail, redis_url=redis_url, drain_delay=0.2, clock=lambda: now).run(burst=True)
    due = [int(r.zscore("bull:jit-node:delayed", i) or 0) // 4096 - now for i in ids]
    assert all(50_000 <= d < 100_000 for d in due) and len(set(due)) > 1, due

    q = Queue("jit-ours", redis_url=redis_url)
    ours = [q.add("x", {}, attempts=2, backoff=("fixed", 100, 0.5)).id for _ in range(10)]
    assert json.loads(r.hget(f"bull:jit-ours:{ours[0]}", "opts") or "{}")["backoff"] == backoff
    worker = node_worker(spawn, redis_url, "jit-ours", tmp_path / "node.jsonl", "--fail-names", "x")
    wait_until(lambda: r.zcard("bull:jit-ours:delayed") == 10, 20, "10 retries delayed", interval=0.05)
    worker.stop()
    # Node draws delay * (1 - jitter) .. delay and adds it to its clock at the failure (after processedOn)
    waits = [int(r.zscore("bull:jit-ours:delayed", i) or 0) // 4096
             - int(r.hget(f"bull:jit-ours:{i}", "processedOn") or 0) for i in ours]
    assert all(w >= 50_000 for w in waits) and min(waits) < 95_000, waits  # 10 draws >= 95 s: odds 1e-10
