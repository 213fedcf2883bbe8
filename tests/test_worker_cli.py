"""The worker command line (``python -m dashboard worker``) on a real Redis: its options
reach the Worker, bad values are refused as usage errors (exit 2, naming the option), and a
second SIGTERM stops at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis

from dashboard import Queue
from dashboard.__main__ import main
from tests.polling import wait_for

ROOT = Path(__file__).resolve().parent.parent
Q = "cli"


def test_lock_duration_and_stalled_interval_reach_the_worker(r: redis.Redis, redis_url: str) -> None:
    q = Queue(Q, connection=r)
    q.add("x", {"redis": redis_url, "queue": Q})
    assert main(["worker", "--queue", Q, "--handler", "tests.jobs:report_lock", "--redis-url", redis_url,
                 "--burst", "--lock-duration", "4", "--stalled-interval", "9"]) == 0
    seen = q.job("1").returnvalue
    assert 0 < seen["lock"] <= 4_000  # the default would be 30 s
    assert 0 < seen["check"] <= 9_000


@pytest.mark.parametrize(("option", "expected_state", "reason"), [
    ("0", "failed", "job stalled more than allowable limit"),
    ("1", "completed", None),
])
def test_max_stalled_count_reaches_the_worker(r: redis.Redis, redis_url: str, option: str, expected_state: str,
                                              reason: str | None) -> None:
    q = Queue(Q, connection=r)
    q.add("x", {})
    # as a worker that died mid-job leaves it: in active, no lock, already seen by one check
    r.lmove(f"bull:{Q}:wait", f"bull:{Q}:active", "RIGHT", "LEFT")
    r.sadd(f"bull:{Q}:stalled", "1")
    assert main(["worker", "--queue", Q, "--handler", "tests.jobs:succeed", "--redis-url", redis_url,
                 "--burst", "--max-stalled-count", option]) == 0
    job = q.job("1")
    assert job.stalled_counter == 1 and job.state.value == expected_state
    assert job.failed_reason == reason


@pytest.mark.parametrize("args", [
    ["--lock-duration", "-1"], ["--lock-duration", "0"], ["--lock-duration", "nan"], ["--lock-duration", "inf"],
    ["--stalled-interval", "-5"], ["--stalled-interval", "0"], ["--max-stalled-count", "-1"],
    ["--max-stalled-count", "1.5"], ["--concurrency", "0"], ["--shutdown-timeout", "-1"],
    ["--shutdown-timeout", "soon"],
])
def test_invalid_numbers_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", "--queue", Q, "--handler", "tests.jobs:succeed", *args])
    assert exit_info.value.code == 2
    assert f"Invalid value for '{args[0]}'" in capsys.readouterr().err


def test_second_sigterm_stops_at_once_leaving_the_job_active(r: redis.Redis, redis_url: str,
                                                              tmp_path: Path) -> None:
    started, out = tmp_path / "started", tmp_path / "out"
    q = Queue(Q, connection=r)
    q.add("long", {"started": str(started), "out": str(out), "sleep": 60})
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "worker", "--queue", Q, "--handler",
                             "tests.jobs:announce_then_sleep", "--shutdown-timeout", "30", "--lock-duration", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(started.exists, "the job to start")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: any("SIGTERM received" in line for line in lines), "the first signal to be handled")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0  # not after the 30 s shutdown timeout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)
        proc.stdout.close()
    log = "".join(lines)
    assert "second SIGTERM: stopping at once" in log and "left active" in log
    assert r.lrange(f"bull:{Q}:active", 0, -1) == [b"1"] and not out.exists()
    ttl = r.pttl(f"bull:{Q}:1:lock")
    assert ttl == -2 or 0 < ttl <= 2_000
    wait_for(lambda: r.exists(f"bull:{Q}:1:lock") == 0, "the lock to expire (nobody renews it)", timeout=10)
    assert q.job("1").state.value == "active"  # until a stalled check moves it back to wait
