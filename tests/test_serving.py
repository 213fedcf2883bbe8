"""Production serving: gunicorn runs the factory with ./gunicorn.conf.py, with no demo unless asked.

gunicorn starts as the README shows it (``gunicorn 'app:create_app()'`` from the repository
root, so it reads gunicorn.conf.py), plus ``-b`` on a free loopback port and
``--no-control-socket`` (gunicorn 27's control socket is one shared path under $HOME).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from dashboard import Queue
from dashboard.redis_server import free_port
from tests.test_stalled import ROOT

#: A client that announces a large multipart body, sends three bytes of it and stalls.
#: The CSRF check reads the form, so the request sits in a body read. With one sync
#: worker this held the whole server until gunicorn killed the worker (31 s).
STALLED_POST = (b"POST /rescan HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: multipart/form-data; boundary=bullpen\r\n"
                b"Content-Length: 1000000\r\n\r\n--b")


def get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


@contextlib.contextmanager
def gunicorn(redis_url: str, log: Path, *args: str) -> Iterator[int]:
    """``gunicorn [args] 'app:create_app()'`` from the repository root; yields its port once
    /healthz answers. gunicorn's output goes to ``log``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
    env["REDIS_URL"] = redis_url
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "--no-control-socket", *args,
             "app:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert get(port, "/healthz") == (200, "ok\n")
                    break
                except OSError:
                    assert server.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "gunicorn did not answer:\n" + log.read_text()
                    time.sleep(0.1)
            yield port
        finally:
            server.terminate()
            try:
                server.wait(40)  # a still-connected client can hold a graceful stop for graceful_timeout
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def stalled_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(STALLED_POST)
    return sock


def test_gunicorn_serves_the_factory_without_demo(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    Queue("billing", connection=r).add("charge", {"cents": 100})
    with gunicorn(redis_url, tmp_path / "gunicorn.log", "--workers", "1") as port:
        status, body = get(port, "/")
        assert status == 200 and "billing" in body
        assert Queue.names(r) == ["billing"]  # no demo queues appeared


def test_a_stalled_request_body_does_not_block_healthz(redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with gunicorn(redis_url, log) as port:
        assert "Using worker: gthread" in log.read_text()  # gunicorn.conf.py was read
        with stalled_client(port) as slow:
            # Connected first, so a single sync worker would take it first and block on it.
            assert get(port, "/healthz", timeout=10) == (200, "ok\n")
            slow.setblocking(False)
            try:
                answer = slow.recv(100)
            except BlockingIOError:
                answer = None
            assert answer is None, answer  # still connected, still waiting: no answer, no close


def test_a_stalled_request_body_is_cut_off_after_the_timeout(redis_url: str, tmp_path: Path) -> None:
    # Command-line flags override the file: one thread, so the stalled request holds it, and a
    # 2 s timeout. /healthz is answered only once that request was cut off and its thread freed.
    with (gunicorn(redis_url, tmp_path / "gunicorn.log", "--threads", "1", "--timeout", "2") as port,
          stalled_client(port) as slow):
        assert get(port, "/healthz", timeout=10) == (200, "ok\n")
        slow.setblocking(False)
        answer = slow.recv(100)  # already there: written before the thread took /healthz
        assert answer.startswith(b"HTTP/1.1 400 "), answer
