"""Interop with PyPI ``bullmq==3.4.4`` for what it has of issue 8: job schedulers, the global rate
limit and deduplication, both ways. (3.4.4 has no per-minute metrics API and no ``drained`` to
compare; flows are in ``test_python_bullmq.py``.)

PyPI bullmq runs in its own virtualenv (the ``pybullmq`` fixture of ``test_python_bullmq.py``):
its producer and worker through ``pybullmq_cli.py``, its Queue methods through
``pybullmq_calls.py``.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, Worker
from tests.interop import test_python_bullmq
from tests.interop.harness import Child, read_records, wait_until
from tests.interop.test_python_bullmq import CLI, py_cli

pytestmark = pytest.mark.interop

CALLS = Path(__file__).resolve().parent / "pybullmq_calls.py"
#: The session fixture that builds PyPI bullmq's virtualenv, shared with test_python_bullmq.py.
pybullmq = test_python_bullmq.pybullmq


def py_calls(python: str, redis_url: str, queue: str, calls: list[dict[str, Any]]) -> list[Any]:
    """Run PyPI bullmq Queue methods (see ``pybullmq_calls.py``); their results, in order."""
    proc = subprocess.run([python, str(CALLS), "--redis", redis_url, "--queue", queue], input=json.dumps(calls),
                          capture_output=True, text=True, timeout=30)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"pybullmq_calls.py exited {proc.returncode}: {proc.stdout}\n{proc.stderr}")
    results: list[Any] = json.loads(lines[-1])["results"]
    return results


@pytest.fixture
def our_worker(redis_url: str) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """Start a Bullpen Worker on a queue in a thread; it records each run (id, data, opts)."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start(queue: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []

        def handler(job: Job) -> Any:
            runs.append({"id": job.id, "name": job.name, "data": job.data, "opts": job.opts})
            return None

        worker = Worker(queue, handler, redis_url=redis_url, drain_delay=0.2)
        thread = threading.Thread(target=worker.run, name=f"worker-{queue}", daemon=True)
        thread.start()
        started.append((worker, thread))
        return runs

    yield start
    for worker, thread in started:
        worker.close()
        thread.join(10)


def millis_of(job_id: str, scheduler: str) -> int:
    prefix, _, ms = job_id.rpartition(":")
    assert prefix == f"repeat:{scheduler}", job_id
    return int(ms)


def test_our_worker_keeps_a_pybullmq_scheduler_going(pybullmq: str, redis_url: str, r: redis.Redis,
                                                      our_worker: Callable[[str], list[dict[str, Any]]]) -> None:
    """PyPI bullmq upserts an `every` scheduler; only our worker runs: each iteration is the next
    slot of the scheduler, with BullMQ's ids and counts, and PyPI bullmq reads the scheduler on."""
    name = "py-sched"
    (made,) = py_calls(pybullmq, redis_url, name, [{"queue": "upsertJobScheduler",
                                                    "args": ["every-300", {"every": 300}, "tick", {"a": 1}]}])
    first = millis_of(made["id"], "every-300")
    runs = our_worker(name)
    wait_until(lambda: len(runs) >= 3, 20, "three iterations of PyPI bullmq's scheduler on our worker")
    millis = [millis_of(run["id"], "every-300") for run in list(runs)]
    assert millis[0] == first
    assert all(b > a and (b - a) % 300 == 0 for a, b in zip(millis, millis[1:])), millis
    assert [run["opts"]["repeat"]["count"] for run in runs[:3]] == [1, 2, 3]
    assert all(run["name"] == "tick" and run["data"] == {"a": 1} for run in runs[:3])
    (listed,) = py_calls(pybullmq, redis_url, name, [{"queue": "getJobSchedulers"}])
    (sched,) = listed
    assert sched["key"] == "every-300" and sched["every"] == 300 and (sched["next"] - first) % 300 == 0


def test_a_pybullmq_worker_keeps_our_scheduler_going(pybullmq: str, redis_url: str, r: redis.Redis,
                                                      spawn: Callable[[list[str], str], Child],
                                                      tmp_path: Path) -> None:
    name = "py-sched-ours"
    q = Queue(name, redis_url=redis_url)
    first = q.upsert_job_scheduler("ours-300", every=0.3, name="tock", data={"b": 2})
    (listed,) = py_calls(pybullmq, redis_url, name, [{"queue": "getJobSchedulers"}])
    assert [(s["key"], s["every"], s["name"]) for s in listed] == [("ours-300", 300, "tock")]
    out = tmp_path / "pybullmq.jsonl"
    worker = spawn([pybullmq, str(CLI), "work", "--redis", redis_url, "--queue", name, "--out", str(out)],
                   "pybullmq-worker")
    worker.expect("ready")
    wait_until(lambda: len(read_records(out)) >= 3, 20, "three iterations of our scheduler on PyPI bullmq's worker")
    worker.stop()
    millis = [millis_of(rec["id"], "ours-300") for rec in read_records(out)]
    assert millis[0] == millis_of(first.id, "ours-300")
    assert all(b > a and (b - a) % 300 == 0 for a, b in zip(millis, millis[1:])), millis
    assert all(rec["name"] == "tock" and rec["data"] == {"b": 2} for rec in read_records(out))


def test_global_rate_limit_both_ways(pybullmq: str, redis_url: str, r: redis.Redis) -> None:
    """PyPI bullmq's setGlobalRateLimit(5, 500) holds our worker to 5 starts per 500 ms; ours is
    read by its getGlobalRateLimit, and its getRateLimitTtl agrees with ours."""
    name = "py-limit"
    py_calls(pybullmq, redis_url, name, [{"queue": "setGlobalRateLimit", "args": [5, 500]}])
    q = Queue(name, redis_url=redis_url)
    assert q.global_rate_limit() == (5, 500)
    ids = [j.id for j in q.add_bulk([("x", {}, {}) for _ in range(15)])]
    Worker(name, lambda job: None, redis_url=redis_url, concurrency=8, drain_delay=0.2).run(burst=True)
    stamps = sorted(int(r.hget(f"bull:{name}:{i}", "processedOn") or 0) for i in ids)
    assert all(stamps)
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 500 - 25, stamps
    q.set_global_rate_limit(2, 30)
    r.set(f"bull:{name}:limiter", 2, px=30_000)
    limit, ttl = py_calls(pybullmq, redis_url, name, [{"queue": "getGlobalRateLimit"}, {"queue": "getRateLimitTtl"}])
    assert limit == {"max": 2, "duration": 30_000}
    assert 0 < ttl <= 30_000 and 0 < q.rate_limit_ttl() <= 30_000
    q.remove_global_rate_limit()
    assert py_calls(pybullmq, redis_url, name, [{"queue": "getGlobalRateLimit"}]) == [None]


def test_deduplication_both_ways(pybullmq: str, redis_url: str, r: redis.Redis) -> None:
    """PyPI bullmq's adds and ours share `de:<id>` slots: each side's add is deduplicated against
    the other's job, and each side reads the other's slot."""
    name = "py-dedup"
    q = Queue(name, redis_url=redis_url)
    theirs = py_cli(pybullmq, redis_url, name, "add",
                    stdin=[{"name": "a", "data": {"v": 1}, "opts": {"deduplication": {"id": "d1"}}}])["ids"][0]
    assert q.deduplication_job_id("d1") == theirs
    assert q.add("a", {"v": 2}, deduplication={"id": "d1"}).id == theirs
    mine = q.add("a", {"v": 3}, deduplication={"id": "d2", "ttl": 60}).id
    py_cli(pybullmq, redis_url, name, "add", stdin=[{"name": "a", "data": {"v": 4},
                                                     "opts": {"deduplication": {"id": "d2", "ttl": 60_000}}}])
    assert py_calls(pybullmq, redis_url, name, [{"queue": "getDeduplicationJobId", "args": ["d2"]}]) == [mine]
    assert q.counts().waiting == 2 and 0 < r.pttl(f"bull:{name}:de:d2") <= 60_000


def test_a_pybullmq_keep_last_add_is_readded_when_our_worker_finishes(pybullmq: str, redis_url: str,
                                                                      r: redis.Redis) -> None:
    """keepLastIfActive from PyPI bullmq while our worker runs the first job: the last add is kept
    in `dn:<id>` and our finish re-adds it."""
    name = "py-keep"
    keep = {"id": "k", "keepLastIfActive": True}
    py_cli(pybullmq, redis_url, name, "add", stdin=[{"name": "s", "data": {"v": 1}, "opts": {"deduplication": keep}}])
    seen: list[Any] = []

    def handle(job: Job) -> None:
        seen.append(job.data["v"])
        if job.data["v"] == 1:
            py_cli(pybullmq, redis_url, name, "add", stdin=[{"name": "s", "data": {"v": v},
                                                             "opts": {"deduplication": keep}} for v in (2, 3)])
            assert r.exists(f"bull:{name}:dn:k")

    Worker(name, handle, redis_url=redis_url, drain_delay=0.2).run(burst=True)
    assert seen == [1, 3]
    assert not r.exists(f"bull:{name}:dn:k") and not r.exists(f"bull:{name}:de:k")
