"""resolve_redis: REDIS_URL, then a local Redis, then an embedded one.

The "local Redis" probe is pointed at the private test server or at a closed
port; nothing here talks to 127.0.0.1:6379.
"""

from __future__ import annotations

import atexit
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from dashboard.config import Settings
from dashboard.connection import ResolvedRedis, describe_url, redis_version, resolve_redis
from dashboard.redis_server import EmbeddedRedis, find_redis_server, free_port

LOGGER = "dashboard.connection"


@pytest.fixture
def closed_url() -> str:
    """A URL where nothing listens."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def atexit_calls(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], None]]:
    """Capture atexit registrations instead of leaving them to the interpreter."""
    calls: list[Callable[[], None]] = []
    monkeypatch.setattr(atexit, "register", calls.append)
    return calls


def test_redis_url_is_used_as_given(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    resolved = resolve_redis(Settings(redis_url=redis_url), probe_url="redis://127.0.0.1:1/0")
    assert (resolved.url, resolved.source, resolved.embedded) == (redis_url, "REDIS_URL", None)
    assert f"Using Redis at {redis_url.removeprefix('redis://')} (from REDIS_URL)" in caplog.messages
    with resolved.client() as client:
        assert client.ping()
    resolved.stop()  # nothing of ours to stop; must not touch the server
    with resolved.client() as client:
        assert client.ping()


def test_a_redis_answering_the_probe_is_used(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    resolved = resolve_redis(Settings(), probe_url=redis_url)
    assert (resolved.url, resolved.source, resolved.embedded) == (redis_url, "local", None)
    port = redis_url.split(":")[2].split("/")[0]
    assert f"No REDIS_URL; using the Redis that answers on 127.0.0.1:{port}" in caplog.messages


@pytest.mark.skipif(find_redis_server() is None, reason="no redis-server binary")
def test_embedded_server_is_started_when_nothing_answers(
    tmp_path: Path, closed_url: str, atexit_calls: list[Callable[[], None]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    data_dir = tmp_path / "var" / "redis"
    port = free_port()
    resolved = resolve_redis(Settings(data_dir=str(data_dir)), probe_url=closed_url, embedded_port=port)
    try:
        assert resolved.source == "embedded" and resolved.embedded is not None
        assert resolved.url == f"redis://127.0.0.1:{port}/0"
        assert atexit_calls == [resolved.embedded.stop]
        server = resolved.embedded
        closed = closed_url.split("//")[1].split("/")[0]
        expected = (
            f"No REDIS_URL and nothing answers on {closed}: started embedded redis-server {server.version} "
            f"({server.binary}) on 127.0.0.1:{port}, data in {data_dir} (append-only)"
        )
        assert expected in caplog.messages
        with resolved.client() as client:
            client.set("k", "v")
            assert redis_version(client)[0] >= 6
        assert (data_dir / "appendonlydir").is_dir() or (data_dir / "appendonly.aof").is_file()
    finally:
        resolved.stop()
    assert not resolved.embedded.running


@pytest.mark.skipif(find_redis_server() is None, reason="no redis-server binary")
def test_busy_preferred_port_falls_back_to_a_free_one(
    tmp_path: Path, closed_url: str, atexit_calls: list[Callable[[], None]], r: redis.Redis
) -> None:
    r.set("other", "untouched")
    other_port = r.connection_pool.connection_kwargs["port"]
    resolved = resolve_redis(Settings(data_dir=str(tmp_path)), probe_url=closed_url, embedded_port=other_port)
    try:
        assert resolved.source == "embedded" and resolved.embedded is not None
        assert resolved.embedded.port != other_port
    finally:
        resolved.stop()
    assert r.get("other") == b"untouched" and r.dbsize() == 1


@pytest.mark.skipif(find_redis_server() is None, reason="no redis-server binary")
def test_embedded_server_of_another_process_is_reused(
    tmp_path: Path, closed_url: str, atexit_calls: list[Callable[[], None]]
) -> None:
    with EmbeddedRedis(data_dir=tmp_path) as first:
        resolved = resolve_redis(Settings(data_dir=str(tmp_path)), probe_url=closed_url, embedded_port=first.port)
        assert resolved == ResolvedRedis(
            url=first.url, source="embedded-shared", description=resolved.description, embedded=None
        )
        assert atexit_calls == []
        resolved.stop()
        assert first.running


def test_port_held_by_something_else_is_not_reused(
    tmp_path: Path, closed_url: str, atexit_calls: list[Callable[[], None]]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        resolved = resolve_redis(Settings(data_dir=str(tmp_path)), probe_url=closed_url, embedded_port=port)
        try:
            assert resolved.source == "embedded" and resolved.embedded is not None
            assert resolved.embedded.port != port
        finally:
            resolved.stop()


def test_redis_version_is_three_ints(r: redis.Redis) -> None:
    version = redis_version(r)
    assert len(version) == 3 and all(isinstance(part, int) for part in version)
    assert ".".join(map(str, version)) == r.info("server")["redis_version"]


SECRET_URLS = [
    ("redis://oncall:hunter2@example:6390/1", "example:6390/1"),
    ("redis://:hunter2@example/0", "example:6379/0"),
    ("redis://example:6390/2?password=hunter2", "example:6390/2"),
    ("redis://example/0?username=oncall&password=hunter2", "example:6379/0"),
    ("rediss://oncall:hunter2@example:6380/3", "example:6380/3 (TLS)"),
    ("redis://oncall:hunter2@[::1]:6390", "::1:6390/0"),
    ("unix://oncall:hunter2@/tmp/redis.sock?db=4&password=hunter2", "unix:/tmp/redis.sock/4"),
    ("redis://oncall:hunter2@example:notaport/0", "an unparsable REDIS_URL"),
]


@pytest.mark.parametrize(("url", "shown"), SECRET_URLS)
def test_redis_is_described_as_host_port_db_without_user_or_password(url: str, shown: str) -> None:
    assert describe_url(url) == shown
    assert "hunter2" not in describe_url(url) and "oncall" not in describe_url(url)


def test_redis_url_with_password_is_logged_without_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    resolve_redis(Settings(redis_url="redis://oncall:s3cret@127.0.0.1:1/0?password=s3cret"))
    assert "s3cret" not in caplog.text and "oncall" not in caplog.text and "127.0.0.1:1/0" in caplog.text


def test_without_probe_the_embedded_server_is_used_even_if_a_redis_answers(
    tmp_path: Path, redis_url: str, atexit_calls: list[Callable[[], None]], caplog: pytest.LogCaptureFixture
) -> None:
    """The demo passes probe_url=None: it never writes into a Redis it was not pointed at."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    resolved = resolve_redis(Settings(data_dir=str(tmp_path)), probe_url=None, embedded_port=None)
    try:
        assert resolved.source == "embedded" and resolved.url != redis_url
        assert any(m.startswith("No REDIS_URL: started embedded redis-server") for m in caplog.messages)
    finally:
        resolved.stop()
