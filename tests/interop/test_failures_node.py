"""Failure clusters and re-drive on jobs a Node BullMQ 6.7.0 worker failed: Node's ``err.stack``
is fingerprinted (type, message, the innermost frame outside node_modules), a re-drive mark
survives Node's own finish, and a second failure on Node shows as one."""

from __future__ import annotations

import subprocess

import redis

from dashboard import Queue
from dashboard.failure_index import FailureIndex
from dashboard.redrive import Redrive, RedriveControl, RedrivePlan
from tests.interop.test_node_bullmq import CLI, NODE, node_cli, pytestmark  # noqa: F401

NAME = "node-failures"


def node_work(redis_url: str, expect: int) -> None:
    subprocess.run([NODE, str(CLI), "work", "--redis", redis_url, "--queue", NAME, "--fail-names", "boom",
                    "--expect", str(expect), "--out", "/dev/null"], check=True, capture_output=True, timeout=60)


def test_node_failures_cluster_and_fail_again_after_a_redrive(redis_url: str, r: redis.Redis) -> None:
    specs = [{"name": "boom", "data": {"i": i}} for i in range(6)] + [{"name": "ok", "data": {}}]
    node_cli(redis_url, NAME, "add", stdin=specs)
    node_work(redis_url, 7)
    q = Queue(NAME, connection=r)
    index = FailureIndex.of(q)
    assert index.refresh().complete
    (cluster,) = index.overview().clusters
    assert (cluster.type, cluster.message, cluster.count) == ("Error", "failed on purpose: boom", 6)
    assert cluster.frame.startswith("interop/bullmq_cli.js"), cluster.frame  # not node_modules/bullmq

    plan = RedrivePlan(cutoff=q.clock(), clusters=[cluster.id], actor="oncall")
    assert Redrive(q, plan, RedriveControl(r, "bull", "t-node"), "t-node").run() == 6
    node_work(redis_url, 6)  # Node fails them again
    index.refresh()
    (again,) = index.overview().clusters
    assert (again.id, again.count, again.again) == (cluster.id, 6, 6)
    assert node_cli(redis_url, NAME, "counts")["failed"] == 6
