"""Production serving: gunicorn runs the factory, with no demo unless asked."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time

import redis

from dashboard import Queue
from dashboard.redis_server import free_port
from tests.test_stalled import ROOT


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_gunicorn_serves_the_factory_without_demo(redis_url: str, r: redis.Redis) -> None:
    Queue("billing", connection=r).add("charge", {"cents": 100})
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--no-control-socket", "app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = get(port, "/healthz")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.1)
        assert (status, body) == (200, "ok\n")
        status, body = get(port, "/")
        assert status == 200 and "billing" in body
        assert Queue.names(r) == ["billing"]  # no demo queues appeared
    finally:
        server.terminate()
        server.wait(20)
        if server.stdout:
            server.stdout.close()
