"""Interop with real Node BullMQ 6.7.0: deduplication (``de:<id>``, ``dn:<id>``) both ways.

Node adds with keepLastIfActive while its first job is active on a Bullpen worker: when ours
finishes it, the kept add is added (the reported bug); our adds are read by Node's
getDeduplicationJobId; a Node worker finishing our deduplicated job releases the slot and
re-adds what we kept, as ours does. See ``test_node_bullmq.py`` for the harness.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from dashboard import Job, Queue, Worker
from tests.interop.harness import Child, read_records, wait_until
from tests.interop.test_node_bullmq import node_cli, node_worker
from tests.interop.test_node_bullmq import pytestmark as node_marks

pytestmark = node_marks

KEEP = {"id": "order-7", "keepLastIfActive": True}


def test_node_keep_last_add_while_our_worker_runs_the_first_is_added_when_ours_finishes(
        redis_url: str, r: redis.Redis) -> None:
    name = "dd-node-keep"
    first = [{"name": "sync", "data": {"v": 1}, "opts": {"deduplication": KEEP}}]
    assert node_cli(redis_url, name, "add", stdin=first)["ids"] == ["1"]
    seen: list[Any] = []
    answers: list[Any] = []

    def handle(job: Job) -> Any:
        seen.append(job.data["v"])
        if job.data["v"] == 1:  # Node adds twice while job 1 is active here: the last one is kept
            jobs = [{"name": "sync", "data": {"v": v}, "opts": {"deduplication": KEEP}} for v in (2, 3)]
            answers.append(node_cli(redis_url, name, "add", stdin=jobs)["ids"])
            assert r.exists(f"bull:{name}:dn:order-7")
        return job.data["v"]

    Worker(name, handle, redis_url=redis_url, drain_delay=0.2).run(burst=True)
    assert answers == [["1", "1"]]
    assert seen == [1, 3]
    kept = node_cli(redis_url, name, "job", "--id", "3")
    assert kept["state"] == "completed" and kept["data"] == {"v": 3} and kept["returnvalue"] == 3
    assert kept["opts"]["deduplication"] == KEEP
    assert node_cli(redis_url, name, "dedup-job-id", "--id", "order-7") == {"jobId": None}
    assert not r.exists(f"bull:{name}:dn:order-7")


def test_node_reads_our_slot_and_options_and_removes_the_slot(redis_url: str, r: redis.Redis) -> None:
    name = "dd-ours-read"
    q = Queue(name, redis_url=redis_url)
    job = q.add("a", {"v": 1}, delay=60, deduplication={"id": "d", "ttl": 30, "extend": True, "replace": True})
    assert node_cli(redis_url, name, "dedup-job-id", "--id", "d") == {"jobId": job.id}
    seen = node_cli(redis_url, name, "job", "--id", job.id)
    assert seen["state"] == "delayed"
    assert seen["opts"]["deduplication"] == {"id": "d", "ttl": 30_000, "extend": True, "replace": True}
    # Node's add with the same options replaces our delayed job, as ours would
    node_ids = node_cli(redis_url, name, "add", stdin=[{"name": "a", "data": {"v": 2}, "opts": {
        "delay": 60_000, "deduplication": {"id": "d", "ttl": 30_000, "extend": True, "replace": True}}}])["ids"]
    assert node_ids == ["2"] and not r.exists(f"bull:{name}:{job.id}") and q.deduplication_job_id("d") == "2"
    assert q.add("a", {"v": 3}, deduplication={"id": "d", "ttl": 30}).id == "2"  # Node's holds the slot
    assert node_cli(redis_url, name, "remove-dedup-key", "--id", "d") == {"removed": 1}
    assert q.deduplication_job_id("d") is None


def test_node_worker_finishing_our_deduplicated_job_releases_the_slot_and_readds_ours(
        redis_url: str, r: redis.Redis, spawn: Callable[[list[str], str], Child], tmp_path: Path) -> None:
    name = "dd-node-finish"
    q = Queue(name, redis_url=redis_url)
    keep = {"id": "k", "keep_last_if_active": True}
    first = q.add("slow", {"v": 1, "sleepMs": 1500}, deduplication=keep)
    out = tmp_path / "node.jsonl"
    worker = node_worker(spawn, redis_url, name, out, "--expect", "2")
    wait_until(lambda: r.lindex(f"bull:{name}:active", 0) == first.id.encode(), 10, "job 1 active on Node")
    assert q.add("slow", {"v": 2}, deduplication=keep).id == first.id  # kept in dn:k while 1 runs
    assert json.loads(r.hget(f"bull:{name}:dn:k", "opts") or b"{}")["de"] == {"id": "k", "keepLastIfActive": True}
    worker.expect("done", timeout=20)
    assert [rec["data"]["v"] for rec in read_records(out)] == [1, 2]
    assert q.job("2") is not None and q.job(first.id) is not None
    assert q.deduplication_job_id("k") is None and not r.exists(f"bull:{name}:dn:k")
    assert q.add("slow", {"v": 3}, deduplication=keep).id == "4"  # the re-add INCRed the counter too
