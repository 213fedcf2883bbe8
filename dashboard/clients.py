"""Every Redis client Bullpen makes, built here and nowhere else.

Four kinds, each tuned for its job: :func:`connect` (producers, workers and command-line
tools: default timeouts, health checks), :func:`web_client` (the dashboard: short timeouts
and one quick retry, so a dead Redis gives a fast 503), :func:`probe_client` (one-shot checks
without redis-py's retries, which would turn a refused connection into seconds of backoff)
and :func:`named_copy` (a worker's blocking connection, named as BullMQ names it); plus
:func:`undecoded`, the bytes-returning twin a worker needs of a decoding client, and
:func:`direct_line`, one spare connection per client for single commands sent back to back.
The dashboard's client and the spare connections read with :class:`LookingParser` (see there).

A URL may name any node of a Redis Cluster: :func:`connect` and :func:`web_client` then
return a cluster client (``RedisCluster``), which finds every other node and sends each
command to the node holding its keys. Which it is, :func:`cluster_mode` asks the server once
per URL (``INFO cluster``: ``cluster_enabled:1``); that read-only command is the only one this
module sends. It reads no configuration.
"""

from __future__ import annotations

import logging
import os
import select
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeAlias, cast

import redis
from redis._parsers import _HiredisParser
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ClusterError, RedisClusterException, TryAgainError
from redis.retry import Retry
from redis.utils import HIREDIS_AVAILABLE, SENTINEL

#: Where producers and workers connect when given neither a URL nor a client.
DEFAULT_URL = "redis://127.0.0.1:6379/0"

#: What a Queue or Worker accepts as its connection: one server, or a Redis Cluster (with
#: hash-tagged queue names, see :func:`dashboard.keys.cluster_slot_problem`).
Client: TypeAlias = "redis.Redis | RedisCluster"

#: Errors meaning Redis, or a node of a Redis Cluster, cannot serve right now (gone, timed out,
#: the cluster down or resharding), rather than that a request was wrong: a 503, or a worker's
#: retry with backoff. redis-py raises some cluster ones outside ``RedisError``.
UNAVAILABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError, ClusterError, TryAgainError,
                                            RedisClusterException)

log = logging.getLogger(__name__)
_yield: Callable[[], Any] = getattr(os, "sched_yield", lambda: None)

#: What :func:`cluster_mode` found per URL (only definite answers are kept).
_MODES: dict[str, bool] = {}
_MODES_LOCK = threading.Lock()


def cluster_mode(url: str, timeout: float = 2.0) -> bool | None:
    """Whether the server at ``url`` is a Redis Cluster node (``INFO cluster`` says
    ``cluster_enabled:1``): True or False, asked once per URL and remembered; None when it
    cannot be asked now (unreachable). A server that refuses INFO is taken for a single one."""
    with _MODES_LOCK:
        known = _MODES.get(url)
    if known is not None:
        return known
    try:
        with probe_client(url, connect_timeout=timeout, timeout=timeout) as client:
            info: dict[str, Any] = client.info("cluster")
        enabled = str(info.get("cluster_enabled", "0")) == "1"
    except redis.ResponseError as exc:  # INFO refused (ACL, renamed command): not a cluster we can use
        log.warning("Redis refused INFO cluster (%s); treating it as a single server", exc)
        enabled = False
    except (redis.RedisError, OSError):
        return None
    with _MODES_LOCK:
        _MODES[url] = enabled
    return enabled


def forget_modes() -> None:
    """Forget what :func:`cluster_mode` learnt: for a port that now holds another kind of server
    (tests that start and stop servers)."""
    with _MODES_LOCK:
        _MODES.clear()


def _is_cluster_url(url: str) -> bool:
    mode = cluster_mode(url)
    if mode is None:
        log.warning("Redis unreachable: cannot tell whether it is a Redis Cluster node; treating it as a single "
                    "server for now")
    return bool(mode)


def connect(redis_url: str | None = None, connection: Client | None = None) -> Client:
    """The client to use: the one given, or a new one for ``redis_url`` (default localhost):
    a cluster client when the URL names a Redis Cluster node."""
    if connection is not None:
        return connection
    url = redis_url or DEFAULT_URL
    if _is_cluster_url(url):
        return RedisCluster.from_url(url, health_check_interval=30)
    return redis.Redis.from_url(url, health_check_interval=30)


def web_client(url: str) -> Client:
    """The dashboard's client (a cluster client for a cluster node's URL): a dead Redis, or a
    dead cluster node, answers in seconds, never hangs a page."""
    options: dict[str, Any] = dict(socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 1),
                                   health_check_interval=30)
    if _is_cluster_url(url):
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options, **LOOKING)


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
        kwargs = {k: v for k, v in base.get_connection_kwargs().items() if k not in ("host", "port", "db")}
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


def primaries(client: Client) -> list[tuple[str, redis.Redis]]:
    """``(node name, client)`` for each primary of a cluster client (the cluster client's own
    per-node clients, so a SCAN can walk each node), or ``[("", client)]`` for one server."""
    if not isinstance(client, RedisCluster):
        return [("", client)]
    return [(node.name, client.get_redis_connection(node)) for node in client.get_primaries()]


def ping_all(client: Client) -> bool:
    """PING the server, or every primary of a cluster (a node that went away raises)."""
    if isinstance(client, RedisCluster):
        return bool(client.ping(target_nodes=RedisCluster.PRIMARIES))
    return bool(client.ping())


def node_of(client: Client, key: str) -> str:
    """The name (``host:port``) of the cluster node holding ``key``; "" for one server."""
    return client.get_node_from_key(key).name if isinstance(client, RedisCluster) else ""


def client_lists(client: Client) -> list[tuple[str, list[dict[str, Any]]]]:
    """``CLIENT LIST`` of the server, or of every primary of a cluster, by node name."""
    if not isinstance(client, RedisCluster):
        return [("", client.client_list())]
    nodes = client.get_primaries()
    listed: Any = client.client_list(target_nodes=nodes)
    if not isinstance(listed, dict):  # redis-py unwraps the answer of a single node
        return [(nodes[0].name, listed)]
    return list(listed.items())


#: Seconds a :class:`LookingParser` looks for a reply without sleeping (polling its socket,
#: yielding the CPU between looks) before it waits in the kernel as usual. A thread
#: asleep on its socket is woken by Redis's reply late when Redis runs on another CPU: on a
#: 2-vCPU VM a loopback PING took 75 µs sleeping and 28 µs polling (18 µs either way when both share a
#: CPU). A reply that takes longer (a long script, a busy server) costs up to this much CPU time,
#: most of it given to whatever else is ready to run (each look is followed by ``sched_yield``).
SPIN_SECONDS = 0.0002


class LookingParser(_HiredisParser):
    """redis-py's hiredis parser, which looks for (more of) a reply for up to :data:`SPIN_SECONDS`
    before it sleeps on its socket. Only the wait differs: what is read, and how, is redis-py's.
    The dashboard's client and every :class:`DirectLine` read with it (when hiredis and
    ``select.poll`` are there); a worker's other connections do not (at high concurrency its
    handler threads want the CPU its loop would spend looking)."""

    _looker: tuple[int, Any] | None = None  # (socket fd, a select.poll on it)

    def read_from_socket(self, timeout: Any = SENTINEL, raise_on_timeout: bool = True) -> Any:
        sock = self._sock
        if timeout is SENTINEL and sock is not None and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            fd = sock.fileno()
            if self._looker is None or self._looker[0] != fd:
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                self._looker = (fd, poller)
            look, clock = self._looker[1].poll, time.perf_counter
            deadline = clock() + SPIN_SECONDS
            while not look(0) and clock() < deadline:
                _yield()
        return super().read_from_socket(timeout, raise_on_timeout)  # type: ignore[no-untyped-call]


#: The keyword arguments that make a connection read with :class:`LookingParser` (none without it).
LOOKING: dict[str, Any] = {"parser_class": LookingParser} if HIREDIS_AVAILABLE and hasattr(select, "poll") else {}


class DirectLine:
    """One spare connection of a one-server client's own kind (same address, auth, TLS, timeouts),
    for single commands sent one after another, such as ``Queue.add`` in a loop: it skips the
    pool checkout, the readiness poll and the retry wrapper redis-py spends on every call (a
    fifth of a small script call's time on loopback), and reads with :class:`LookingParser`. One
    thread at a time uses it; a caller
    that finds it busy goes through the client, and so does a call whose connection failed
    (after dropping it), so redis-py's retries still apply. Not for blocking commands,
    pipelines or pub/sub, nor for commands whose reply redis-py converts (the reply comes back
    raw, as a script's reply is anyway); a forked child opens its own."""

    def __init__(self, client: redis.Redis) -> None:
        pool = client.connection_pool  # not the client: the registry below holds it weakly
        kwargs = {**pool.connection_kwargs, **LOOKING}
        self._new: Callable[[], Any] = lambda: pool.connection_class(**kwargs)
        self._lock = threading.Lock()
        self._conn: Any = None
        self._pid = os.getpid()

    def execute(self, client: redis.Redis, *args: Any) -> Any:
        """``client.execute_command(*args)`` (``client``: the one this line was made for), on the
        spare connection when it is free."""
        if self._pid != os.getpid():  # a forked child: the parent's socket is not ours to use
            self._lock, self._conn, self._pid = threading.Lock(), None, os.getpid()
        if self._lock.acquire(blocking=False):
            try:
                conn = self._open()
                try:
                    conn.send_packed_command([_pack(args)] if _pack is not None else conn.pack_command(*args))
                    return conn.read_response()
                except redis.ResponseError:
                    raise  # a whole error reply was read: the connection stays in step
                except (redis.ConnectionError, redis.TimeoutError):
                    self._drop(conn)  # then the client's own path below, with its retries
                except BaseException:
                    self._drop(conn)  # a reply may be half read
                    raise
            finally:
                self._lock.release()
        return client.execute_command(*args)

    def several(self, commands: Sequence[tuple[Any, ...]]) -> list[Any] | None:
        """Commands in order on the spare connection, each sent as soon as it is packed and its
        reply read once the next is on its way, so Redis runs one while this thread packs the
        next and reads the last (``Queue.add_bulk``'s calls of 100 jobs each). Error replies
        come back in place, as a pipeline's with ``raise_on_error=False``. None, with nothing
        sent, when the line is busy or in a forked child; None also when the connection failed
        before any reply came (a stale socket: the caller's own path, with its retries, sends
        them). A connection lost after that, or a timeout, raises: some commands ran."""
        if _pack is None or self._pid != os.getpid() or not self._lock.acquire(blocking=False):
            return None
        replies: list[Any] = []
        try:
            conn = self._open()
            try:
                replies.extend(_interleaved(conn, commands))
                return replies
            except redis.ConnectionError:
                self._drop(conn)
                if replies:
                    raise
                return None
            except BaseException:
                self._drop(conn)  # a reply may be half read
                raise
        finally:
            self._lock.release()

    def stream(self, client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> Generator[Any, None, None] | None:
        """Read-only commands' replies in order, each handed out as soon as it is read: the next
        command is sent before a reply is handed out, so Redis runs it while the caller works on
        that reply (a page's job reads: Redis reads 25 jobs while Python builds the 25 before).
        Error replies come back in place. None, with nothing sent, when the line is busy or in a
        forked child. The line stays taken until the last reply is read or the iterator is closed
        (a reply not read then drops the connection). Should the connection fail, the commands not
        answered yet go through ``client``'s own pipeline (its retries): each may then run twice,
        which is why only reads may be sent this way."""
        if _pack is None or self._pid != os.getpid() or not self._lock.acquire(blocking=False):
            return None
        return self._stream(client, commands)

    def _stream(self, client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> Generator[Any, None, None]:
        answered, conn = 0, None
        try:
            try:
                conn = self._open()
                for reply in _interleaved(conn, commands):
                    answered += 1
                    if answered == len(commands):
                        conn = None  # every reply read: the connection stays in step
                    yield reply
            except (redis.ConnectionError, redis.TimeoutError):
                if conn is not None:
                    self._drop(conn)
                    conn = None
                pipe = client.pipeline(transaction=False)
                for command in commands[answered:]:
                    pipe.execute_command(*command)
                yield from pipe.execute(raise_on_error=False)
        finally:
            if conn is not None:  # closed early, or failed otherwise: a reply may be unread
                self._drop(conn)
            self._lock.release()

    def _open(self) -> Any:
        if self._conn is None:
            self._conn = self._new()
        return self._conn

    def _drop(self, conn: Any) -> None:
        conn.disconnect()
        self._conn = None

    def close(self) -> None:
        """Close the spare connection (done when its client goes: the pool does not know it)."""
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            conn.disconnect()


def _interleaved(conn: Any, commands: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
    """Each command sent as soon as hiredis packs it, each reply read once the next command is on
    its way (Redis runs that one meanwhile); error replies in place. The caller checked ``_pack``."""
    pack = cast(Callable[[tuple[Any, ...]], bytes], _pack)
    conn.send_packed_command([pack(commands[0])])
    for command in commands[1:]:
        conn.send_packed_command([pack(command)])
        yield _reply(conn)
    yield _reply(conn)


def _reply(conn: Any) -> Any:
    try:
        return conn.read_response()
    except redis.ResponseError as exc:  # a whole error reply was read: the connection stays in step
        return exc


_pack: Callable[[tuple[Any, ...]], bytes] | None
try:  # the C packer redis-py itself uses when hiredis is installed, minus its per-argument pass
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover - hiredis is in requirements.txt
    _pack = None


_LINES: weakref.WeakKeyDictionary[Any, DirectLine] = weakref.WeakKeyDictionary()
_LINES_LOCK = threading.Lock()


def direct_line(client: Client) -> DirectLine | None:
    """The :class:`DirectLine` shared by every user of ``client``; None for a cluster client or
    a single-connection client (their own path is used)."""
    if not isinstance(client, redis.Redis) or client.connection is not None:
        return None
    with _LINES_LOCK:
        line = _LINES.get(client)
        if line is None:
            line = _LINES[client] = DirectLine(client)
            weakref.finalize(client, line.close)
        return line
