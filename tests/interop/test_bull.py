"""The dashboard on a legacy Bull 3/4 queue written by the real npm ``bull@4.16.5`` (issue 10, item 4).

Bull adds the jobs and a Bull worker runs them; after each dashboard action (pause, resume,
retry, retry all, promote, remove, clean) Bull's own ``getJobCounts()`` and ``isPaused()``
agree with the dashboard, a Bull worker sees the result, and the queue holds nothing BullMQ-only.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dashboard.bull import BullQueue
from dashboard.catalog import Catalog
from tests.interop.harness import Child, read_records, wait_until
from tests.test_bull import assert_no_bullmq_keys
from tests.webkit import post, state

HERE = Path(__file__).resolve().parent
CLI = HERE / "bull_cli.js"
NODE = shutil.which("node")
BULL = HERE / "node_modules" / "bull" / "package.json"
NAME = "legacy-mail"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(NODE is None, reason="node is not on PATH: the Bull interop tests need Node 20"),
    pytest.mark.skipif(not BULL.exists(), reason="tests/interop/node_modules has no bull: run `bash tests/run.sh` "
                                                 "or `cd tests/interop && npm ci`"),
]


def bull(redis_url: str, command: str, *args: str, stdin: Any = None) -> Any:
    """Run one ``bull_cli.js`` command; its JSON answer."""
    assert NODE is not None
    proc = subprocess.run([NODE, str(CLI), command, "--redis", redis_url, "--queue", NAME, *args],
                          input="" if stdin is None else json.dumps(stdin), capture_output=True, text=True, timeout=30)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"bull {command} exited {proc.returncode}: {proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1])


def bull_worker(spawn: Any, redis_url: str, out: Path, *args: str) -> Child:
    assert NODE is not None
    child: Child = spawn([NODE, str(CLI), "work", "--redis", redis_url, "--queue", NAME, "--out", str(out), *args],
                         "bull-worker")
    child.expect("ready")
    return child


def agree(r: redis.Redis, redis_url: str, paused: bool) -> dict[str, int]:
    """Bull's getJobCounts() and isPaused() equal the dashboard's, and nothing BullMQ-only is there."""
    counts = bull(redis_url, "counts")
    ours = Catalog(r).queue(NAME)
    assert isinstance(ours, BullQueue)
    assert ours.counts().as_bull() == counts
    assert bull(redis_url, "is-paused")["paused"] is paused is ours.is_paused() is ours.counts().paused
    assert_no_bullmq_keys(r, NAME)
    return dict(counts)


def finish_task(app: Flask, resp: Any) -> None:
    match = re.search(r'data-task="([0-9a-f]+)"', resp.get_data(as_text=True))
    assert match, resp.get_data(as_text=True)
    task = state(app).tasks.get(match.group(1))
    assert task is not None and task.wait(20)


def test_pause_and_resume_from_the_dashboard_are_bulls(client: FlaskClient, redis_url: str, r: redis.Redis,
                                                       spawn: Any, tmp_path: Path) -> None:
    ids = bull(redis_url, "add", stdin=[{"name": "send", "data": {"i": i}} for i in range(4)]
               + [{"name": "urgent", "data": {}, "opts": {"priority": 1}}])["ids"]
    Catalog(r).discover()
    html = client.get("/").get_data(as_text=True)
    assert f'data-queue="{NAME}"' in html and "Bull 3/4" in html

    assert post(client, f"/queues/{NAME}/pause", {"reason": "deploy"}, target="queue").status_code == 200
    assert agree(r, redis_url, paused=True) == {"waiting": 0, "active": 0, "completed": 0, "failed": 0,
                                                 "delayed": 0, "paused": 5}
    ids += bull(redis_url, "add", stdin=[{"name": "send", "data": {"i": 9}}])["ids"]  # Bull sends it to paused
    assert agree(r, redis_url, paused=True)["paused"] == 6
    page = client.get(f"/queues/{NAME}?state=waiting").get_data(as_text=True)
    assert all(f"/queues/{NAME}/jobs/{i}" in page for i in ids)
    assert bull(redis_url, "job", "--id", ids[0])["state"] == "paused"
    job_page = client.get(f"/queues/{NAME}/jobs/{ids[0]}").get_data(as_text=True)
    assert "unknown" not in job_page

    out = tmp_path / "ran.jsonl"
    worker = bull_worker(spawn, redis_url, out, "--expect", "6")
    wait_until(lambda: len(Catalog(r).workers([NAME])[NAME]) == 1, 10, "the Bull worker's named connection")
    assert post(client, f"/queues/{NAME}/resume", target="queue").status_code == 200
    assert not r.exists(f"bull:{NAME}:meta-paused")
    assert bull(redis_url, "is-paused")["paused"] is False
    assert worker.expect("done")["recorded"] == 6
    assert worker.wait() == 0
    ran = read_records(out)
    assert sorted(rec["id"] for rec in ran) == sorted(ids) and ran[0]["name"] == "urgent"  # priority first
    assert agree(r, redis_url, paused=False) == {"waiting": 0, "active": 0, "completed": 6, "failed": 0,
                                                  "delayed": 0, "paused": 0}


def test_retry_promote_remove_and_clean_from_the_dashboard(client: FlaskClient, app: Flask, redis_url: str,
                                                           r: redis.Redis, spawn: Any, tmp_path: Path) -> None:
    ids = bull(redis_url, "add", stdin=[{"name": "boom", "data": {"i": i}} for i in range(3)]
               + [{"name": "ok", "data": {}}, {"name": "later", "data": {}, "opts": {"delay": 3_600_000}},
                  {"name": "later", "data": {}, "opts": {"delay": 3_600_000, "priority": 2}}])["ids"]
    boom, ok, later = ids[:3], ids[3], ids[4:]
    out = tmp_path / "ran.jsonl"
    first = bull_worker(spawn, redis_url, out, "--fail-names", "boom", "--expect", "4")
    assert first.expect("done")["recorded"] == 4 and first.wait() == 0
    wait_until(lambda: bull(redis_url, "counts")["failed"] == 3, 10, "Bull to record 3 failures")
    Catalog(r).discover()
    assert agree(r, redis_url, paused=False) == {"waiting": 0, "active": 0, "completed": 1, "failed": 3,
                                                 "delayed": 2, "paused": 0}
    shown = client.get(f"/queues/{NAME}/jobs/{boom[0]}").get_data(as_text=True)
    assert "failed on purpose: boom" in shown

    assert post(client, f"/queues/{NAME}/jobs/{boom[0]}/retry", target="job").status_code == 200
    job = bull(redis_url, "job", "--id", boom[0])
    assert (job["state"], job["failedReason"], job["finishedOn"], job["attemptsMade"]) == ("waiting", None, None, 1)
    assert agree(r, redis_url, paused=False)["waiting"] == 1

    finish_task(app, post(client, f"/queues/{NAME}/retry-all", target="task"))
    assert agree(r, redis_url, paused=False)["waiting"] == 3

    assert post(client, f"/queues/{NAME}/jobs/{later[1]}/promote", target="job").status_code == 200
    assert bull(redis_url, "job", "--id", later[1])["state"] == "waiting"
    assert agree(r, redis_url, paused=False)["delayed"] == 1
    finish_task(app, post(client, f"/queues/{NAME}/promote-all", target="task"))
    assert agree(r, redis_url, paused=False) == {"waiting": 5, "active": 0, "completed": 1, "failed": 0,
                                                 "delayed": 0, "paused": 0}

    second = bull_worker(spawn, redis_url, tmp_path / "again.jsonl", "--fail-names", "boom", "--expect", "5")
    assert second.expect("done")["recorded"] == 5 and second.wait() == 0
    ran = read_records(tmp_path / "again.jsonl")
    assert sorted(rec["id"] for rec in ran) == sorted(boom + later) and ran[0]["id"] == later[1]  # priority first
    wait_until(lambda: bull(redis_url, "counts")["failed"] == 3, 10, "Bull to fail the retried jobs again")
    assert agree(r, redis_url, paused=False) == {"waiting": 0, "active": 0, "completed": 3, "failed": 3,
                                                 "delayed": 0, "paused": 0}

    assert post(client, f"/queues/{NAME}/jobs/{ok}/remove", target="job").status_code == 200
    assert bull(redis_url, "job", "--id", ok)["state"] is None
    finish_task(app, post(client, f"/queues/{NAME}/clean", {"state": "failed", "grace": "0"}, target="task"))
    assert agree(r, redis_url, paused=False) == {"waiting": 0, "active": 0, "completed": 2, "failed": 0,
                                                 "delayed": 0, "paused": 0}
    assert all(bull(redis_url, "job", "--id", i)["state"] is None for i in boom)


def test_what_the_dashboard_cannot_do_safely_is_refused(client: FlaskClient, redis_url: str, r: redis.Redis) -> None:
    bull(redis_url, "add", stdin=[{"name": "send", "data": {}}])
    Catalog(r).discover()
    resp = post(client, f"/queues/{NAME}/schedulers/nightly/remove", target="queue")
    assert resp.status_code == 409 and "legacy Bull 3/4 queue" in resp.get_data(as_text=True)
    assert agree(r, redis_url, paused=False)["waiting"] == 1


def test_a_bullpen_worker_refuses_to_start_on_a_bull_queue(redis_url: str, r: redis.Redis) -> None:
    bull(redis_url, "add", stdin=[{"name": "send", "data": {}}])
    proc = subprocess.run([sys.executable, "-m", "dashboard", "worker", "--queue", NAME, "--redis-url", redis_url,
                           "--handler", "examples.notifications:notify", "--burst"],
                          capture_output=True, text=True, timeout=60, cwd=HERE.parent.parent)
    assert proc.returncode != 0
    assert "legacy Bull 3/4 queue" in proc.stderr and "Run Bull's own workers" in proc.stderr
    assert agree(r, redis_url, paused=False)["waiting"] == 1
