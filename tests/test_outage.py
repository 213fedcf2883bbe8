"""A worker survives Redis going away and coming back: it logs the outage once, reconnects
by itself and loses no job. Uses its own persistent redis-server so it can be restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from dashboard import Queue
from dashboard.redis_server import EmbeddedRedis, free_port
from tests.polling import wait_for
from tests.test_stalled import ROOT, lines


def test_worker_rides_out_a_redis_restart(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "redis"
    server = EmbeddedRedis(port=port, data_dir=data).start()
    out = tmp_path / "out"
    env = {**os.environ, "REDIS_URL": server.url, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "worker", "--queue", "o", "--handler", "tests.jobs:record",
         "--concurrency", "2", "--lock-duration", "5", "--stalled-interval", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis.from_url(server.url)
        q = Queue("o", connection=client)
        q.add_bulk([("r", {"out": str(out), "sleep": 0.05}, {}) for _ in range(40)])
        wait_for(lambda: len(lines(out)) >= 10, what="some jobs to finish")
        server.stop()  # Redis goes away mid-run (append-only file kept)
        time.sleep(1.5)  # the worker meets the outage for a while
        server = EmbeddedRedis(port=port, data_dir=data).start()
        client = redis.Redis.from_url(server.url)
        q = Queue("o", connection=client)
        q.add_bulk([("r", {"out": str(out), "sleep": 0}, {}) for _ in range(10)])  # added after the restart
        wait_for(lambda: q.counts().completed == 50, timeout=60, what="all 50 jobs to complete")
        c = q.counts()
        assert (c.waiting, c.active, c.failed) == (0, 0, 0)
        done = set(lines(out)[::2])
        assert done == {str(i) for i in range(1, 51)}  # every job ran (at least once: none lost)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(30)
        log = worker.stdout.read().decode() if worker.stdout else ""
        worker.stdout and worker.stdout.close()
        server.stop()
    assert code == 0
    assert log.count("Redis unreachable") == 1, log
    assert "Redis is back" in log
