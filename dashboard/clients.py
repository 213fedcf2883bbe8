"""Every Redis client Bullpen makes, built here and nowhere else.

Four kinds, each tuned for its job: :func:`connect` (producers and workers: default
timeouts, health checks), :func:`web_client` (the dashboard: short timeouts and one quick
retry, so a dead Redis gives a fast 503), :func:`probe_client` (one-shot checks without
redis-py's retries, which would turn a refused connection into seconds of backoff) and
:func:`named_copy` (a worker's blocking connection, named as BullMQ names it); plus
:func:`undecoded`, the bytes-returning twin a worker needs of a decoding client.
This module sends no command itself and reads no configuration.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

#: Where producers and workers connect when given neither a URL nor a client.
DEFAULT_URL = "redis://127.0.0.1:6379/0"

#: What a Queue or Worker accepts as its connection: one server, or a Redis Cluster (with
#: hash-tagged queue names, see :func:`dashboard.keys.check_cluster_tag`).
Client: TypeAlias = "redis.Redis | RedisCluster"


def connect(redis_url: str | None = None, connection: Client | None = None) -> Client:
    """The client to use: the one given, or a new one for ``redis_url`` (default localhost)."""
    if connection is not None:
        return connection
    return redis.Redis.from_url(redis_url or DEFAULT_URL, health_check_interval=30)


def web_client(url: str) -> redis.Redis:
    """The dashboard's client: a dead Redis answers in seconds, never hangs a page."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 1),
                                health_check_interval=30)


def probe_client(url: str | None = None, *, host: str = "127.0.0.1", port: int = 6379,
                 connect_timeout: float = 0.3, timeout: float = 0.3) -> redis.Redis:
    """A client for one quick check (PING, INFO, CONFIG GET, SHUTDOWN), with no retries."""
    options: dict[str, Any] = dict(socket_connect_timeout=connect_timeout, socket_timeout=timeout,
                                   retry=Retry(NoBackoff(), 0))
    if url is not None:
        return redis.Redis.from_url(url, **options)
    return redis.Redis(host=host, port=port, **options)


def named_copy(base: Any, client_name: str, **overrides: Any) -> Any:
    """A new client to the same server (or cluster) as ``base``, named as BullMQ names worker
    connections so dashboards can count workers."""
    return _copy(base, client_name=client_name, **overrides)


def undecoded(client: Client) -> Client:
    """``client`` when its replies are bytes, else a new client to the same server whose are:
    a worker reads job ids and fields as raw bytes, since another tool may write any bytes."""
    kwargs = client.get_connection_kwargs() if isinstance(client, RedisCluster) else \
        client.connection_pool.connection_kwargs
    return _copy(client, decode_responses=False) if kwargs.get("decode_responses") else client


def _copy(base: Any, **overrides: Any) -> Any:
    if isinstance(base, RedisCluster):
        nodes = [ClusterNode(n.host, n.port) for n in base.get_nodes()]
        kwargs = {k: v for k, v in base.get_connection_kwargs().items() if k not in ("host", "port")}
        return RedisCluster(startup_nodes=nodes, **{**kwargs, **overrides})
    pool = base.connection_pool
    kwargs = {**pool.connection_kwargs, **overrides}
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def disconnect(client: Any) -> None:
    """Close every connection ``client`` holds (a named one leaves ``CLIENT LIST`` with it)."""
    if isinstance(client, RedisCluster):
        client.close()
    else:
        client.connection_pool.disconnect()


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client."""
    return isinstance(client, RedisCluster)
