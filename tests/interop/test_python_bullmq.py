"""Interop with PyPI ``bullmq==3.4.4`` (the Python port of BullMQ), through ``pybullmq_cli.py``.

bullmq 3.4.4 needs redis-py < 8 to behave (layout spec §7.4) while Bullpen pins redis 8.1, so it
runs in its own virtualenv, ``tests/interop/.venv-pybullmq``, which the ``pybullmq`` fixture
builds once with pip from PyPI (about 6 s) and reuses while its requirements stay the same.
The tests skip, naming the cause, when the virtualenv cannot be built (no network to PyPI...).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, Worker
from tests.interop.harness import blocked_on_marker, now_ms, read_records, wait_until

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-pybullmq"
VENV_PY = VENV / "bin" / "python"
CLI = HERE / "pybullmq_cli.py"
REQUIREMENTS = ["bullmq==3.4.4", "redis>=6.2,<8"]
STAMP = VENV / "bullpen-requirements.txt"

pytestmark = pytest.mark.interop


@pytest.fixture(scope="session")
def pybullmq() -> str:
    """The virtualenv's python, with bullmq 3.4.4 and redis-py < 8 (built on first use)."""
    wanted = "\n".join(REQUIREMENTS)
    if not (VENV_PY.exists() and STAMP.exists() and STAMP.read_text() == wanted):
        shutil.rmtree(VENV, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, text=True,
                           timeout=60)
            subprocess.run([str(VENV_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
                           check=True, capture_output=True, text=True, timeout=90)
        except (subprocess.SubprocessError, OSError) as exc:
            shutil.rmtree(VENV, ignore_errors=True)
            detail = getattr(exc, "stderr", None) or str(exc)
            pytest.skip(f"could not build the PyPI bullmq 3.4.4 virtualenv in {VENV}: {detail.strip()[-500:]}")
        STAMP.write_text(wanted)
    code = "import importlib.metadata as m, redis; print(m.version('bullmq'), redis.__version__)"
    probe = subprocess.run([str(VENV_PY), "-c", code], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"the PyPI bullmq virtualenv in {VENV} is broken: {probe.stderr.strip()[-500:]}")
    bullmq_version, redis_version = probe.stdout.split()
    assert bullmq_version == "3.4.4" and int(redis_version.split(".")[0]) < 8, probe.stdout
    return str(VENV_PY)


def py_cli(python: str, redis_url: str, queue: str, command: str, *args: str, stdin: Any = None) -> Any:
    proc = subprocess.run([python, str(CLI), command, "--redis", redis_url, "--queue", queue, *args],
                          input="" if stdin is None else json.dumps(stdin), capture_output=True, text=True, timeout=30)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"pybullmq {command} exited {proc.returncode}: {proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1])


def test_our_jobs_run_on_a_python_bullmq_worker(pybullmq: str, redis_url: str, r: redis.Redis, spawn,
                                                tmp_path: Path) -> None:
    """Our producer -> a PyPI bullmq worker: an idle worker is woken by our marker, then 200 plain,
    prioritized and delayed jobs each run once with their data, in BullMQ's order."""
    q = Queue("to-pybullmq", redis_url=redis_url)
    out = tmp_path / "pybullmq.jsonl"
    n = 200
    worker = spawn([pybullmq, str(CLI), "work", "--redis", redis_url, "--queue", q.name, "--out", str(out),
                    "--expect", str(n + 1)], "pybullmq-worker")
    worker.expect("ready")

    # An idle bullmq 3.4.4 worker wakes on our marker (without one it would wait for its 5 s
    # drainDelay); 2 s is a loose bound that still tells the two apart.
    wait_until(lambda: blocked_on_marker(r), 15, "the Python BullMQ worker to block on the marker")
    added_at = now_ms()
    first = q.add("wake-up", {"first": True})
    started = wait_until(lambda: read_records(out), 10, "the Python BullMQ worker to take the first job")
    assert started[0]["id"] == first.id
    assert started[0]["startedAt"] - added_at < 2000

    # Added while it is paused, so that the order of the whole batch is BullMQ's to decide.
    q.pause()
    specs = []
    for i in range(n):
        opts: dict[str, Any] = {}
        if i % 5 == 3:
            opts["priority"] = 1 + i % 3
        if i % 10 == 9:
            opts["delay"] = 0.2
        specs.append(("delayed" if "delay" in opts else "prioritized" if opts else "plain", {"i": i}, opts))
    jobs = q.add_bulk(specs)
    q.resume()
    assert worker.expect("done", timeout=30)["recorded"] == n + 1
    assert worker.wait() == 0

    records = read_records(out)[1:]
    by_id = {j.id: j for j in jobs}
    assert Counter(x["id"] for x in records) == Counter(list(by_id))
    for x in records:
        job = by_id[x["id"]]
        assert (x["name"], x["data"], x["attemptsMade"]) == (job.name, job.data, 0)
        if job.delay:
            assert x["startedAt"] >= job.timestamp + job.delay
    ready = [j for j in jobs if not j.delay]
    expected = [j.id for j in ready if not j.priority] + [j.id for j in sorted((j for j in ready if j.priority),
                                                                              key=lambda j: j.priority)]
    assert [x["id"] for x in records if not by_id[x["id"]].delay] == expected
    counts = q.counts().as_dict()
    assert counts["completed"] == n + 1 and sum(counts.values()) == n + 1, counts
    done = q.job(jobs[3].id)
    assert (done.state, done.attempts_made, done.returnvalue) == ("completed", 1, {"ok": True, "id": jobs[3].id})


def test_python_bullmq_jobs_run_on_our_worker(pybullmq: str, redis_url: str) -> None:
    """PyPI bullmq's Queue.add (plain, prioritized, delayed, attempts + backoff) -> our Worker,
    retrying as the job options say."""
    specs: list[dict[str, Any]] = [
        {"name": "plain", "data": {"fail": 0}},
        {"name": "prioritized", "data": {"fail": 0}, "opts": {"priority": 2}},
        {"name": "delayed", "data": {"fail": 0}, "opts": {"delay": 300}},
        {"name": "fixed", "data": {"fail": 1}, "opts": {"attempts": 2, "backoff": {"type": "fixed", "delay": 150}}},
        {"name": "exponential", "data": {"fail": 2},
         "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 100}}},
        {"name": "exhausted", "data": {"fail": 9}, "opts": {"attempts": 2}},
    ]
    ids = py_cli(pybullmq, redis_url, "from-pybullmq", "add", stdin=specs)["ids"]
    q = Queue("from-pybullmq", redis_url=redis_url)
    assert q.counts().as_dict() == {"waiting": 4, "prioritized": 1, "delayed": 1, "active": 0, "completed": 0,
                                    "failed": 0, "waiting-children": 0, "paused": 0}

    runs: list[tuple[str, int, float]] = []
    lock = threading.Lock()

    def handler(job: Job) -> Any:
        with lock:
            runs.append((job.id, job.attempts_made, now_ms()))
        if job.data["fail"] > job.attempts_made:
            raise RuntimeError(f"attempt {job.attempts_made + 1} failed")
        return {"attempt": job.attempts_made + 1}

    worker = Worker(q.name, handler, redis_url=redis_url)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: (lambda c: c.completed + c.failed == len(specs))(q.counts()), 30,
                   "our worker to finish the Python BullMQ jobs")
    finally:
        worker.close()
        thread.join(10)

    for job_id, spec in zip(ids, specs):
        job = q.job(job_id)
        attempts = max(spec.get("opts", {}).get("attempts", 1), 1)
        made = min(spec["data"]["fail"] + 1, attempts)
        assert [atm for i, atm, _ in runs if i == job_id] == list(range(made)), (job_id, runs)
        assert job.attempts_made == made and job.attempts_started == made, job
        if spec["data"]["fail"] < attempts:
            assert (job.state, job.returnvalue) == ("completed", {"attempt": made}), job
        else:
            assert (job.state, job.failed_reason) == ("failed", f"attempt {made} failed"), job
        assert len(job.stacktrace) == min(spec["data"]["fail"], attempts)
    starts = {(i, atm): t for i, atm, t in runs}
    fixed, exponential = ids[3], ids[4]
    # Retry starts are due >= backoff after the failed run ended, which is after it started; Redis
    # keeps whole milliseconds (the finish time is truncated), so allow 1 ms against these floats.
    assert starts[(fixed, 1)] - starts[(fixed, 0)] >= 150 - 1
    assert starts[(exponential, 1)] - starts[(exponential, 0)] >= 100 - 1
    assert starts[(exponential, 2)] - starts[(exponential, 1)] >= 200 - 1


def test_flows_both_ways_with_python_bullmq(pybullmq: str, redis_url: str, r: redis.Redis, spawn,
                                            tmp_path: Path) -> None:
    """PyPI bullmq's FlowProducer -> our workers (the parent reads its children's values); our
    FlowProducer -> PyPI bullmq workers (its getChildrenValues reads what they finished)."""
    made = py_cli(pybullmq, redis_url, "", "flow", stdin={"name": "p", "queueName": "py-pq", "data": {}, "children": [
        {"name": "a", "queueName": "py-cq", "data": {"v": 1}}, {"name": "b", "queueName": "py-pq", "data": {"v": 2}}]})
    seen: dict[str, Any] = {}

    def handler(job: Job) -> Any:
        seen[job.name] = job.children_values()
        return job.data.get("v", 0)

    for name in ("py-cq", "py-pq", "py-pq"):
        Worker(name, handler, redis_url=redis_url, drain_delay=0.1).run(burst=True)
    a, b = made["tree"]["children"]
    assert seen["p"] == {f"bull:py-cq:{a['id']}": 1, f"bull:py-pq:{b['id']}": 2}
    assert Queue("py-pq", redis_url=redis_url).job(made["tree"]["id"]).state == "completed"

    from dashboard import FlowProducer

    tree = FlowProducer(redis_url).add({"name": "q", "queue_name": "to-py-pq", "children": [
        {"name": "c", "queue_name": "to-py-cq"}, {"name": "d", "queue_name": "to-py-cq"}]})
    out_c, out_p = tmp_path / "c.jsonl", tmp_path / "p.jsonl"
    for queue, out, extra in (("to-py-cq", out_c, ["--expect", "2"]), ("to-py-pq", out_p, ["--expect", "1",
                                                                                           "--record-children"])):
        spawn([pybullmq, str(CLI), "work", "--redis", redis_url, "--queue", queue, "--out", str(out), *extra],
              f"pybullmq-{queue}").expect("ready")
    wait_until(lambda: len(read_records(out_p)) == 1, 30, "the PyPI worker to run the parent")
    (parent,) = read_records(out_p)
    assert parent["childrenValues"] == {f"bull:to-py-cq:{c.job.id}": {"ok": True, "id": c.job.id}
                                        for c in tree.children}
