"""Redis Cluster: a queue whose name or prefix carries a hash tag works across a real
three-node cluster that this test builds from private redis-servers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from dashboard import Queue, Worker
from dashboard.reads import DETAIL
from dashboard.redis_server import EmbeddedRedis, find_redis_server, free_port, port_is_free

SLOTS = 16384


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port <= 55535 and port_is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    if find_redis_server() is None:
        pytest.skip("no redis-server binary")
    servers: list[EmbeddedRedis] = []
    try:
        for i in range(3):
            conf = tmp_path_factory.mktemp(f"node{i}") / "nodes.conf"
            args = ["--cluster-enabled", "yes", "--cluster-config-file", str(conf)]
            servers.append(EmbeddedRedis(port=cluster_port(), extra_args=args).start())
        clients = [redis.Redis(port=s.port) for s in servers]
        share = SLOTS // 3
        for i, c in enumerate(clients):
            last = SLOTS - 1 if i == 2 else (i + 1) * share - 1
            c.execute_command("CLUSTER ADDSLOTS", *range(i * share, last + 1))
        for s in servers[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", s.port)
        deadline = time.monotonic() + 30
        while not all(c.cluster("info")["cluster_state"] == "ok" for c in clients):
            assert time.monotonic() < deadline, "cluster did not become ok"
            time.sleep(0.1)
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", s.port) for s in servers])
        yield rc
        rc.close()
    finally:
        for s in servers:
            s.stop()


def test_queue_without_hash_tag_is_refused_with_advice(cluster: RedisCluster) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        Queue("plain", connection=cluster)


@pytest.mark.parametrize("name,prefix", [("{mail}", "bull"), ("mail", "{app}")])
def test_produce_and_work_on_cluster(cluster: RedisCluster, name: str, prefix: str) -> None:
    q = Queue(name, connection=cluster, prefix=prefix)
    q.add_bulk([("n", {"i": i}, {}) for i in range(50)] + [("p", {}, {"priority": 2}), ("d", {}, {"delay": 60})])
    q.add("boom", {}, attempts=2)

    def handler(job):
        if job.name == "boom":
            raise RuntimeError("nope")
        job.log("ran")
        return job.data

    Worker(name, handler, connection=cluster, prefix=prefix, drain_delay=0.2).run(burst=True)
    c = q.counts()
    assert (c.completed, c.failed, c.delayed) == (51, 1, 1)
    assert q.job("1").returnvalue == {"i": 0} and q.logs("1") == ["ran"]
    assert q.job("1", caps=DETAIL).returnvalue == {"i": 0} and q.log_page("1").lines == ["ran"]
    assert [j.data for j in q.jobs("completed", 0, 9, summary=True)] == [j.data for j in q.jobs("completed", 0, 9)]
    q.retry(q.jobs("failed", 0, 0)[0].id)
    assert q.counts().waiting == 1
    assert q.promote_all() == 1
    assert q.clean("completed", 0) == 51
    q.obliterate()
    assert q.counts().total == 0
