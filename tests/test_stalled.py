"""Stalled-job recovery: the throttled check on its own, and a worker process SIGKILLed mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from dashboard import Queue, scripts
from dashboard.codec import text
from dashboard.keys import Keys
from tests.polling import wait_for

ROOT = Path(__file__).resolve().parent.parent
K = Keys("bull", "st")


def check(s: scripts.Scripts, now: int, max_stalled: int = 1) -> list[bytes] | None:
    return s.run(scripts.move_stalled_to_wait(K, max_stalled, now, 30_000))


def take(s: scripts.Scripts, now: int) -> str:
    taken = s.run(scripts.move_to_active(K, "tok", 30_000, now, 1, ""))[0]
    return taken[0].decode()


def test_check_needs_two_passes_and_skips_locked_jobs(r: redis.Redis) -> None:
    q = Queue("st", connection=r)
    s = scripts.Scripts(r)
    q.add("a", {})
    q.add("b", {})
    take(s, 1)
    take(s, 1)
    assert check(s, 1) == []  # phase 2 only: both now suspects
    assert r.smembers(K.stalled) == {b"1", b"2"}
    assert check(s, 2) is None  # throttled by stalled-check
    r.delete(K.stalled_check)
    r.delete(K.lock("1"))  # what the lock's expiry does when the worker died
    assert check(s, 3) == [b"1"]
    assert r.lrange(K.wait, 0, -1) == [b"1"] and r.lrange(K.active, 0, -1) == [b"2"]
    assert r.hget(K.job("1"), "stc") == b"1" and not r.hexists(K.job("1"), "defa")
    assert r.zrange(K.marker, 0, -1) == [b"0"]
    ev = [{text(k): text(v) for k, v in f.items()} for _, f in r.xrange(K.events)]
    assert {"event": "stalled", "jobId": "1"} in ev


def test_stalling_past_the_limit_sets_deferred_failure(r: redis.Redis) -> None:
    q = Queue("st", connection=r)
    s = scripts.Scripts(r)
    q.add("a", {})
    for attempt in (1, 2):
        take(s, attempt)
        r.delete(K.stalled_check)
        check(s, attempt)
        r.delete(K.stalled_check, K.lock("1"))
        assert check(s, attempt) == [b"1"]
    assert r.hget(K.job("1"), "stc") == b"2"
    assert r.hget(K.job("1"), "defa") == b"job stalled more than allowable limit"


@pytest.fixture
def spawn(redis_url: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
        p = subprocess.Popen([sys.executable, "-m", "dashboard", "worker", "--queue", "st", *args],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        if p.stdout:
            p.stdout.close()


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_sigkilled_worker_job_is_finished_by_another_worker(r: redis.Redis, tmp_path: Path, spawn) -> None:
    started, out = tmp_path / "started", tmp_path / "out"
    q = Queue("st", connection=r)
    q.add("long", {"started": str(started), "out": str(out), "sleep": 1})
    fast = ["--handler", "tests.jobs:announce_then_sleep", "--lock-duration", "1", "--stalled-interval", "0.3"]
    first = spawn(*fast)
    wait_for(lambda: started.exists(), what="the first worker to start the job")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert r.lrange("bull:st:active", 0, -1) == [b"1"]  # left behind, lock still ticking
    second = spawn(*fast)
    wait_for(lambda: q.counts().completed == 1, what="the second worker to finish the job")
    second.send_signal(signal.SIGTERM)
    assert second.wait(10) == 0
    pids = [line for i, line in enumerate(lines(started)) if i % 2 == 1]
    assert len(pids) == 2 and pids[0] == str(first.pid) and pids[1] == str(second.pid)
    assert lines(out) == ["1", str(second.pid)]  # finished exactly once, by the second worker
    job = q.job("1")
    assert job.stalled_counter == 1 and job.attempts_started == 2 and job.returnvalue == "finished"
    events = [f[b"event"] for _, f in r.xrange("bull:st:events")]
    assert events.count(b"stalled") == 1


def test_sigterm_finishes_running_job_takes_no_new_one_and_exits_0(r: redis.Redis, tmp_path: Path, spawn) -> None:
    started, out = tmp_path / "started", tmp_path / "out"
    q = Queue("st", connection=r)
    q.add("a", {"started": str(started), "out": str(out), "sleep": 1})
    worker = spawn("--handler", "tests.jobs:announce_then_sleep")
    wait_for(lambda: started.exists(), what="the job to start")
    q.add("b", {"started": str(started), "out": str(out), "sleep": 1})
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    log = worker.stdout.read().decode() if worker.stdout else ""
    assert "SIGTERM received" in log
    assert lines(out)[0] == "1"
    c = q.counts()
    assert (c.completed, c.waiting, c.active) == (1, 1, 0)


def test_shutdown_timeout_leaves_job_active_for_stalled_recovery(r: redis.Redis, tmp_path: Path, spawn) -> None:
    started, out = tmp_path / "started", tmp_path / "out"
    q = Queue("st", connection=r)
    q.add("a", {"started": str(started), "out": str(out), "sleep": 3600})
    worker = spawn("--handler", "tests.jobs:announce_then_sleep", "--shutdown-timeout", "0.2",
                   "--lock-duration", "1")
    wait_for(lambda: started.exists(), what="the job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    log = worker.stdout.read().decode() if worker.stdout else ""
    assert "will be recovered as stalled" in log
    assert r.lrange("bull:st:active", 0, -1) == [b"1"]
    assert json.loads(r.hget("bull:st:1", "data"))["sleep"] == 3600
    # the lock (1 s) expires; a stalled check moves the job back to wait
    s = scripts.Scripts(r)
    wait_for(lambda: r.exists("bull:st:1:lock") == 0, what="the lock to expire")
    r.delete(K.stalled_check)
    r.sadd(K.stalled, "1")
    assert check(s, 1) == [b"1"]
    assert q.job("1").state.value == "waiting"
