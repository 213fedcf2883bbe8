"""The README's example runs as written: a producer adds a job, the worker CLI handles it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import redis

from dashboard import Queue
from tests.polling import wait_for
from tests.test_stalled import ROOT


def test_readme_example_producer_and_worker(redis_url: str, r: redis.Redis) -> None:
    env = {**os.environ, "REDIS_URL": redis_url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "worker", "--queue", "message-notifications",
         "--handler", "examples.notifications:notify"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for message_id in ("42", "-1"):
            added = subprocess.run([sys.executable, "-m", "examples.notifications", message_id], cwd=ROOT, env=env,
                                   capture_output=True, text=True, check=True)
            assert added.stdout.startswith("added job ")
        q = Queue("message-notifications", connection=r)
        wait_for(lambda: q.counts().completed == 1 and q.counts().failed == 1, what="both jobs to finish")
        done = q.job("1")
        assert done.returnvalue == {"sent": True, "devices": 3} and done.progress == 50
        assert q.logs("1") == ["sent message 42 to 3 devices"]
        assert q.job("2").failed_reason == "message -1 does not exist" and q.job("2").attempts_made == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        worker.stdout and worker.stdout.close()
