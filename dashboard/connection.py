"""Decide which Redis the app and workers use, and say so in the log.

Three cases, in order:

1. ``settings.redis_url`` is set: use it as given (it may name any node of a Redis Cluster:
   :func:`dashboard.clients.cluster_mode` tells, and the description says so).
2. Something answers PING on 127.0.0.1:6379 within ~0.3 s: use it.
3. Otherwise start an :class:`~dashboard.redis_server.EmbeddedRedis` with
   append-only persistence under ``settings.data_dir``, on 127.0.0.1:6380 if
   that port is free (else any free port), and stop it when the process exits.
   If 6380 already holds an embedded Redis using the same data directory
   (another process of ours started it), that one is reused instead of
   starting a second server on the same append-only file.

This module must not write to a Redis it did not start: towards any other
server it sends only PING, INFO cluster (through :func:`~dashboard.clients.cluster_mode`)
and CONFIG GET dir on the 6380 candidate. It reads
no environment variables (everything comes from :class:`Settings`) and
configures no logging.
"""

from __future__ import annotations

import atexit
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis

from .clients import Client, cluster_mode, connect, probe_client
from .codec import text
from .config import Settings
from .redis_server import HOST, EmbeddedRedis, port_is_free

logger = logging.getLogger(__name__)

DEFAULT_PROBE_URL = "redis://127.0.0.1:6379/0"
DEFAULT_EMBEDDED_PORT = 6380


@dataclass
class ResolvedRedis:
    """Where Redis is, how it was chosen, and the embedded server to stop (if ours).

    Attributes:
        url: Connection URL for ``redis.Redis.from_url``.
        source: ``"REDIS_URL"``, ``"local"``, ``"embedded"`` or ``"embedded-shared"``.
        description: The one-line explanation that was logged.
        embedded: The server this process started, else None.
    """

    url: str
    source: str
    description: str
    embedded: EmbeddedRedis | None = None

    def client(self) -> Client:
        """A new client for :attr:`url`."""
        return connect(self.url)

    def stop(self) -> None:
        """Stop the embedded server if this process started it; otherwise do nothing."""
        if self.embedded is not None:
            self.embedded.stop()


def describe_url(url: str) -> str:
    """Where a Redis URL points, as ``host:port/db`` (``unix:<path>/db`` for a socket), plus
    ``(TLS)`` for ``rediss://``. Never a user name or password, in whichever part of the URL
    they were given (``user:pw@``, ``:pw@``, ``?password=``, ``?username=``): safe for pages
    and logs."""
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        db = parts.path.lstrip("/") if parts.scheme != "unix" else ""
        db = db or (query.get("db") or ["0"])[0]
        if parts.scheme == "unix":
            where = f"unix:{parts.path}"
        else:
            where = f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
    except ValueError:  # a port that is not a number, and the like
        return "an unparsable REDIS_URL"
    tls = " (TLS)" if parts.scheme == "rediss" else ""
    return f"{where}/{db if db.isdigit() else '?'}{tls}"


def redis_version(client: Client) -> tuple[int, int, int]:
    """Return the server's version as ``(major, minor, patch)`` from INFO server."""
    numbers = [int(part) for part in text(client.info("server")["redis_version"]).split(".")[:3] if part.isdigit()]
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


def answers_ping(url: str, timeout: float = 0.3) -> bool:
    """True when a Redis at ``url`` answers PING within ``timeout`` seconds."""
    try:
        with probe_client(url, connect_timeout=timeout, timeout=timeout) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _embedded_on(port: int, data_dir: Path, timeout: float) -> bool:
    """True when ``port`` holds a Redis whose working dir is ``data_dir``."""
    try:
        with probe_client(host=HOST, port=port, connect_timeout=timeout, timeout=timeout) as client:
            config: dict[Any, Any] = client.config_get("dir")
        reported = config.get("dir", config.get(b"dir"))
    except (redis.RedisError, OSError):
        return False
    if not reported:
        return False
    return Path(text(reported)).resolve() == data_dir.resolve()


def resolve_redis(
    settings: Settings,
    *,
    probe_url: str | None = DEFAULT_PROBE_URL,
    probe_timeout: float = 0.3,
    embedded_port: int | None = DEFAULT_EMBEDDED_PORT,
    register_atexit: bool = True,
) -> ResolvedRedis:
    """Pick the Redis to use (see the module docstring) and log which case applied.

    Args:
        settings: ``redis_url`` and ``data_dir`` are used.
        probe_url: The "is a local Redis running?" target; tests point it elsewhere. None
            skips it (the demo never writes into a Redis it was not pointed at).
        probe_timeout: Seconds to wait for that PING.
        embedded_port: Preferred port for an embedded server; None means any free port.
        register_atexit: Stop a server started here when the interpreter exits.

    Raises:
        dashboard.redis_server.EmbeddedRedisError: an embedded server was needed
            but could not be started.
    """
    if settings.redis_url:
        url = settings.redis_url
        kind = "the Redis Cluster that includes" if cluster_mode(url) else "Redis at"
        description = f"Using {kind} {describe_url(url)} (from REDIS_URL)"
        logger.info("%s", description)
        return ResolvedRedis(url=url, source="REDIS_URL", description=description)

    probe_where = describe_url(probe_url).split("/", 1)[0] if probe_url else ""
    if probe_url and answers_ping(probe_url, probe_timeout):
        description = f"No REDIS_URL; using the Redis that answers on {probe_where}"
        logger.info("%s", description)
        return ResolvedRedis(url=probe_url, source="local", description=description)

    why = f"No REDIS_URL and nothing answers on {probe_where}" if probe_url else "No REDIS_URL"
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    taken = embedded_port is not None and not port_is_free(embedded_port)
    if embedded_port is not None and taken and _embedded_on(embedded_port, data_dir, probe_timeout):
        url = f"redis://{HOST}:{embedded_port}/0"
        description = (
            f"{why}: reusing the embedded redis-server "
            f"on {HOST}:{embedded_port} that another process started with data in {settings.data_dir}"
        )
        logger.info("%s", description)
        return ResolvedRedis(url=url, source="embedded-shared", description=description)

    port = embedded_port if embedded_port is not None and port_is_free(embedded_port) else None
    server = EmbeddedRedis(port=port, data_dir=data_dir).start()
    if register_atexit:
        atexit.register(server.stop)
    description = (
        f"{why}: started embedded redis-server "
        f"{server.version} ({server.binary}) on {HOST}:{server.port}, data in {settings.data_dir} (append-only)"
    )
    logger.info("%s", description)
    return ResolvedRedis(url=server.url, source="embedded", description=description, embedded=server)
