"""A real Redis Cluster for tests: three private redis-servers with the 16384 slots split
between them, built once per test module (fixture ``redis_cluster``).

Use :meth:`Cluster.names_per_node` to get queue names tagged so that there is one queue on
each node, :meth:`Cluster.url` for ``REDIS_URL`` naming one node, :meth:`Cluster.owner` to
know which node holds a key, :meth:`Cluster.flush` between tests, and :meth:`Cluster.stop_node`
/ :meth:`Cluster.restart_node` to take a node away and bring it back. ``cluster_app`` (per
test: flushes the cluster first) builds dashboard apps whose ``REDIS_URL`` names one node,
as ``tests/webkit.py``'s ``make_app`` does for one server. Nothing here touches the Redis on
6379.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from app import create_app
from dashboard.clients import forget_modes
from dashboard.config import Settings
from dashboard.redis_server import EmbeddedRedis, find_redis_server, free_port, port_is_free

SLOTS = 16384
#: Seconds before a silent node is marked failing (short, so that a test can see it; long
#: enough that a busy 2-core machine does not mark a live node failing).
NODE_TIMEOUT_MS = 5000


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port <= 55535 and port_is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class Cluster:
    """Three primaries on 127.0.0.1; node ``i`` owns slots ``ranges[i]`` (inclusive)."""

    workdir: Path
    servers: list[EmbeddedRedis] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)

    # --- building --------------------------------------------------------------------

    def _args(self, i: int) -> list[str]:
        return ["--cluster-enabled", "yes", "--cluster-config-file", str(self.workdir / f"nodes-{i}.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS)]

    def start(self, nodes: int = 3) -> Cluster:
        forget_modes()  # a port of ours may have held a single server earlier in the session
        for i in range(nodes):
            self.servers.append(EmbeddedRedis(port=cluster_port(), extra_args=self._args(i)).start())
        share = SLOTS // nodes
        self.ranges = [(i * share, SLOTS - 1 if i == nodes - 1 else (i + 1) * share - 1) for i in range(nodes)]
        for i, (first, last) in enumerate(self.ranges):
            with self.node(i) as c:
                c.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
        with self.node(0) as c:
            for s in self.servers[1:]:
                c.execute_command("CLUSTER MEET", "127.0.0.1", s.port)
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30) -> None:
        """Wait until every node says the cluster is ok and knows every other node."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(self._healthy(i) for i in range(len(self.servers))):
                    return
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "cluster did not become ok"
            time.sleep(0.1)

    def _healthy(self, i: int) -> bool:
        with self.node(i) as c:
            info = c.cluster("info")
            return bool(info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == len(self.servers))

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
        forget_modes()  # our ports may hold single servers later in the session

    def stop_node(self, i: int) -> None:
        """Take node ``i`` away (its data is lost; it keeps its slots and identity)."""
        self.servers[i].stop()
        forget_modes()

    def restart_node(self, i: int) -> None:
        """Bring node ``i`` back on its port with its cluster identity, and wait until the cluster is ok."""
        port = self.servers[i].port
        self.servers[i] = EmbeddedRedis(port=port, extra_args=self._args(i)).start()
        self.wait_ok()

    # --- using -------------------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def url(self, i: int = 0) -> str:
        """``redis://127.0.0.1:PORT/0`` of node ``i``: what ``REDIS_URL`` names."""
        return f"redis://127.0.0.1:{self.ports[i]}/0"

    def node(self, i: int) -> redis.Redis:
        """A plain (single-node) client on node ``i``: close it after use."""
        return redis.Redis(port=self.ports[i])

    def client(self, **kwargs: object) -> RedisCluster:
        """A new cluster client (close it after use)."""
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports], **kwargs)  # type: ignore[arg-type]

    def owner(self, key: str | bytes) -> int:
        """The index of the node that holds ``key``."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        return next(i for i, (first, last) in enumerate(self.ranges) if first <= slot <= last)

    def names_per_node(self, stem: str = "q", prefix: str = "bull") -> list[str]:
        """Queue names ``{<stem>-<n>}``, the i-th held by node i (all its keys share a slot)."""
        found: dict[int, str] = {}
        n = 0
        while len(found) < len(self.servers):
            name = f"{{{stem}-{n}}}"
            found.setdefault(self.owner(f"{prefix}:{name}:meta"), name)
            n += 1
        return [found[i] for i in range(len(self.servers))]

    def other_node(self, key: str) -> int:
        """A node that does not hold ``key``."""
        return (self.owner(key) + 1) % len(self.servers)

    def flush(self) -> None:
        """Delete every key on every node (and the scripts)."""
        for i in range(len(self.servers)):
            with self.node(i) as c:
                c.flushall()
                c.script_flush()


def build_cluster(workdir: Path, nodes: int = 3) -> Cluster:
    """Start a cluster of ``nodes`` primaries (stop it with :meth:`Cluster.stop`)."""
    if find_redis_server() is None:
        pytest.skip("no redis-server binary")
    cluster = Cluster(workdir)
    try:
        return cluster.start(nodes)
    except BaseException:
        cluster.stop()
        raise


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-node cluster for the whole test module; tests flush it with :meth:`Cluster.flush`."""
    cluster = build_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_app(redis_cluster: Cluster) -> Iterator[Callable[..., Flask]]:
    """``make(node=0, **settings)``: a dashboard app whose ``REDIS_URL`` names node ``node`` of
    the (flushed) module cluster; ``handlers`` go to ``create_app``. Background threads stop
    after the test."""
    redis_cluster.flush()
    apps: list[Flask] = []

    def make(node: int = 0, handlers: dict[str, Any] | None = None, **overrides: Any) -> Flask:
        options: dict[str, Any] = dict(redis_url=redis_cluster.url(node), secret_key="test-secret", poll_seconds=1.0)
        options.update(overrides)
        app = create_app(Settings(**options), handlers=handlers)
        app.testing = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["bullpen"].stop()
