"""Interop with real Node BullMQ 6.7.0 for the smaller parts of issue 8 (the compatibility table
in ``docs/bullmq-compatibility.md`` names each test): getRateLimitTtl value for value, backoff
jitter both ways, a keepLastIfActive add re-added by our finish in one script while Node adds.

Node's Queue and Job methods are called through ``bullmq_calls.js``; workers and producers through
``bullmq_cli.js``. See ``test_node_bullmq.py`` for the harness.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard import Queue, Worker, scripts
from dashboard.cron import next_fire_ms
from dashboard.errors import JobNotFound, JobNotInState
from tests import jobs
from tests.interop.harness import Child, now_ms, read_records, wait_until
from tests.interop.test_node_bullmq import HERE, NODE, node_cli, node_worker, py_worker
from tests.interop.test_node_bullmq import pytestmark as node_marks
from tests.interop.test_schedulers import PATTERNS, STARTS

pytestmark = node_marks

CALLS = Path(__file__).resolve().parent / "bullmq_calls.js"


def node_calls(redis_url: str, queue: str, calls: list[dict[str, Any]]) -> list[Any]:
    """Run Node Queue / Job methods in one Node start (see ``bullmq_calls.js``); their results."""
    proc = subprocess.run([str(NODE), str(CALLS), "--redis", redis_url, "--queue", queue], input=json.dumps(calls),
                          capture_output=True, text=True, timeout=30)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"bullmq_calls.js exited {proc.returncode}: {proc.stdout}\n{proc.stderr}")
    results: list[Any] = json.loads(lines[-1])["results"]
    return results


def test_rate_limit_ttl_answers_what_node_get_rate_limit_ttl_answers(redis_url: str, r: redis.Redis) -> None:
    """Every case of getRateLimitTtl(maxJobs?): no limiter key, a key without expiry, a key with
    one and no max anywhere, a max given, meta max below and above the count."""
    name = "ttl"
    q = Queue(name, redis_url=redis_url)
    limiter = f"bull:{name}:limiter"

    def both(max_jobs: int | None = None) -> tuple[int, int]:
        args = [] if max_jobs is None else [max_jobs]
        node = node_calls(redis_url, name, [{"queue": "getRateLimitTtl", "args": args}])
        ours = q.rate_limit_ttl(max_jobs)
        return ours, int(node[0])

    assert both() == (-2, -2)
    assert both(5) == (0, 0)
    r.set(limiter, 3)
    assert both() == (-1, -1)
    r.set(limiter, 3, px=60_000)
    ours, node = both()
    assert 0 < ours <= 60_000 and 0 < node <= 60_000
    assert both(4) == (0, 0)
    ours, node = both(3)
    assert 0 < ours <= 60_000 and 0 < node <= 60_000
    q.set_global_rate_limit(5, 1)
    assert both() == (0, 0)
    q.set_global_rate_limit(2, 1)
    ours, node = both()
    assert 0 < ours <= 60_000 and 0 < node <= 60_000
    r.delete(limiter)
    assert both() == (0, 0)


def test_backoff_jitter_both_ways(redis_url: str, r: redis.Redis, tmp_path: Path,
                                  spawn: Callable[[list[str], str], Child]) -> None:
    """Node adds jobs with a jittered fixed backoff and our worker retries them within BullMQ's
    bounds; ours added with a jitter are retried by a Node worker within the same bounds."""
    now = 1_795_000_000_000
    backoff = {"type": "fixed", "delay": 100_000, "jitter": 0.5}
    theirs = [{"name": "x", "data": {}, "opts": {"attempts": 2, "backoff": backoff}} for _ in range(10)]
    ids = node_cli(redis_url, "jit-node", "add", stdin=theirs)["ids"]
    Worker("jit-node", jobs.fail, redis_url=redis_url, drain_delay=0.2, clock=lambda: now).run(burst=True)
    due = [int(r.zscore("bull:jit-node:delayed", i) or 0) // 4096 - now for i in ids]
    assert all(50_000 <= d < 100_000 for d in due) and len(set(due)) > 1, due

    q = Queue("jit-ours", redis_url=redis_url)
    ours = [q.add("x", {}, attempts=2, backoff=("fixed", 100, 0.5)).id for _ in range(10)]
    assert json.loads(r.hget(f"bull:jit-ours:{ours[0]}", "opts") or "{}")["backoff"] == backoff
    worker = node_worker(spawn, redis_url, "jit-ours", tmp_path / "node.jsonl", "--fail-names", "x")
    wait_until(lambda: r.zcard("bull:jit-ours:delayed") == 10, 20, "10 retries delayed", interval=0.05)
    worker.stop()
    # Node draws delay * (1 - jitter) .. delay and adds it to its clock at the failure (after processedOn)
    waits = [int(r.zscore("bull:jit-ours:delayed", i) or 0) // 4096
             - int(r.hget(f"bull:jit-ours:{i}", "processedOn") or 0) for i in ours]
    assert all(w >= 50_000 for w in waits) and min(waits) < 95_000, waits  # 10 draws >= 95 s: odds 1e-10


def test_job_edits_leave_what_nodes_leave(redis_url: str, r: redis.Redis) -> None:
    """The same queue twice; one edited by Node's Job methods (updateData, changePriority,
    changeDelay), one by ours: wait, prioritized and delayed and the jobs' fields end up the same,
    and the same edits are refused (no job, not delayed)."""
    def setup(name: str) -> Queue:
        q = Queue(name, redis_url=redis_url)
        q.add("a", {"n": 1})
        q.add("b", {"n": 2}, priority=5)
        q.add("c", {"n": 3}, delay=60)
        q.add("d", {"n": 4})
        q.add("e", {"n": 5}, priority=5)
        return q

    setup("ed-node")
    ours = setup("ed-ours")
    before = int(now_ms())
    answers = node_calls(redis_url, "ed-node", [
        {"job": "1", "call": "changePriority", "args": [{"priority": 3}]},
        {"job": "2", "call": "changePriority", "args": [{"priority": 0}]},
        {"job": "4", "call": "changePriority", "args": [{"priority": 3, "lifo": True}]},
        {"job": "5", "call": "changePriority", "args": [{"priority": 1}]},
        {"job": "3", "call": "updateData", "args": [{"x": [1, "é"]}]},
        {"job": "3", "call": "changeDelay", "args": [120_000]},
        {"job": "3", "call": "changePriority", "args": [{"priority": 7}]},
        {"job": "1", "call": "changeDelay", "args": [5000]},
    ])
    node_after = now_ms()
    assert [a.get("state") for a in answers[:7]] == ["prioritized", "waiting", "prioritized", "prioritized",
                                                     "delayed", "delayed", "delayed"]
    assert "error" in answers[7]
    ours.change_priority("1", 3)
    ours.change_priority("2", 0)
    ours.change_priority("4", 3, lifo=True)
    ours.change_priority("5", 1)
    ours.update_data("3", {"x": [1, "é"]})
    our_before = int(now_ms())
    ours.change_delay("3", 120)
    after = now_ms()
    ours.change_priority("3", 7)
    with pytest.raises(JobNotInState):
        ours.change_delay("1", 5)
    with pytest.raises(JobNotFound):
        ours.update_data("404", {})
    assert "error" in node_calls(redis_url, "ed-node", [{"job": "404", "call": "updateData", "args": [{}]}])[0]
    for name in ("ed-node", "ed-ours"):
        assert r.lrange(f"bull:{name}:wait", 0, -1) == [b"2"]
    assert (r.zrange("bull:ed-node:prioritized", 0, -1, withscores=True)
            == r.zrange("bull:ed-ours:prioritized", 0, -1, withscores=True))
    assert r.get("bull:ed-node:pc") == r.get("bull:ed-ours:pc")
    for job_id in "12345":  # data compared as JSON: ours escapes non-ASCII, Node's does not
        node_job, our_job = ([json.loads(r.hget(f"bull:{n}:{job_id}", "data") or ""),
                              *r.hmget(f"bull:{n}:{job_id}", ["priority", "opts"])] for n in ("ed-node", "ed-ours"))
        assert node_job == our_job, job_id
    assert r.hget("bull:ed-node:3", "delay") == r.hget("bull:ed-ours:3", "delay") == b"120000"
    node_due = int(r.zscore("bull:ed-node:delayed", "3") or 0) // 4096
    our_due = int(r.zscore("bull:ed-ours:delayed", "3") or 0) // 4096
    assert before + 120_000 <= node_due <= node_after + 120_000
    assert our_before + 120_000 <= our_due <= after + 120_000


def test_deduplication_reschedule_both_ways(redis_url: str, r: redis.Redis) -> None:
    """reschedule: an add deduplicated against a still-delayed job moves that job to the add's
    delay (from the add's time), keeping its id and data; Node's adds do it to our jobs, ours to
    Node's, and both leave the same fields."""
    de = {"id": "R", "reschedule": True}

    def node_add(name: str, data: dict[str, Any], delay: int) -> str:
        spec = [{"name": "a", "data": data, "opts": {"delay": delay, "deduplication": de}}]
        ids: list[str] = node_cli(redis_url, name, "add", stdin=spec)["ids"]
        return ids[0]

    def due(name: str, job_id: str) -> int:
        return int(r.zscore(f"bull:{name}:delayed", job_id) or 0) // 4096

    # Node's delayed job, our add reschedules it
    theirs = node_add("rs-node", {"v": 1}, 60_000)
    q = Queue("rs-node", redis_url=redis_url)
    before = int(now_ms())
    assert q.add("a", {"v": 2}, delay=5, deduplication={"id": "R", "reschedule": True}).id == theirs
    after = int(now_ms())
    assert before + 5000 <= due("rs-node", theirs) <= after + 5000
    assert r.hget(f"bull:rs-node:{theirs}", "delay") == b"5000"
    assert json.loads(r.hget(f"bull:rs-node:{theirs}", "data") or "") == {"v": 1}
    # our delayed job, Node's add reschedules it
    ours = Queue("rs-ours", redis_url=redis_url).add("a", {"v": 1}, delay=60,
                                                     deduplication={"id": "R", "reschedule": True}).id
    before = int(now_ms())
    assert node_add("rs-ours", {"v": 2}, 5000) == ours
    after = int(now_ms())
    assert before + 5000 <= due("rs-ours", ours) <= after + 5000
    assert r.hget(f"bull:rs-ours:{ours}", "delay") == b"5000"
    assert json.loads(r.hget(f"bull:rs-ours:{ours}", "data") or "") == {"v": 1}


@pytest.mark.parametrize("host_tz", ["America/New_York", "Europe/Berlin", ":Asia/Kolkata", ""])
def test_cron_without_tz_runs_in_the_hosts_zone_as_nodes(host_tz: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scheduler's pattern without ``tz``: Node's cron-parser runs it in its host's zone (TZ);
    ours too. The next 20 fire times of every pattern from days around the DST changes, with Node
    and us under the same TZ."""
    cases: list[dict[str, Any]] = [{"pattern": p, "n": 20,
              "from": int(dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC).timestamp() * 1000) + 1234}
             for p in PATTERNS for s in STARTS]
    proc = subprocess.run([str(NODE), str(HERE / "cron_next.js")], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=60, check=True, env={**os.environ, "TZ": host_tz})
    node = json.loads(proc.stdout)["times"]
    monkeypatch.setenv("TZ", host_tz)
    wrong = []
    for case, theirs in zip(cases, node, strict=True):
        ours, at = [], case["from"]
        for _ in range(case["n"]):
            at = next_fire_ms(case["pattern"], at)
            ours.append(at)
        if ours != theirs:
            wrong.append(f"{case['pattern']!r} from={case['from']}: ours {ours[:3]}... node {theirs[:3]}...")
    assert not wrong, f"{len(wrong)} of {len(cases)} cases differ:\n" + "\n".join(wrong[:10])


def test_global_concurrency_both_ways(redis_url: str, r: redis.Redis) -> None:
    """Node's setGlobalConcurrency(2) holds our worker (concurrency 6) to 2 jobs at once; ours is
    read by Node's getGlobalConcurrency, and Node's removeGlobalConcurrency lifts it for us."""
    name = "gconc"
    node_calls(redis_url, name, [{"queue": "setGlobalConcurrency", "args": [2]}])
    q = Queue(name, redis_url=redis_url)
    assert q.global_concurrency() == 2
    q.add_bulk([("x", {}, {}) for _ in range(12)])
    lock, running, most = threading.Lock(), [0], [0]

    def handle(job: Any) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.05)
        with lock:
            running[0] -= 1

    Worker(name, handle, redis_url=redis_url, concurrency=6, drain_delay=0.2).run(burst=True)
    assert q.counts().completed == 12 and most[0] == 2
    q.set_global_concurrency(3)
    got, _ = node_calls(redis_url, name, [{"queue": "getGlobalConcurrency"}, {"queue": "removeGlobalConcurrency"}])
    assert got == 3 and q.global_concurrency() is None


def test_delayed_leaves_what_node_move_to_delayed_leaves(redis_url: str, r: redis.Redis) -> None:
    """An active job moved to delayed by Node's job.moveToDelayed(ts, token) (what a Node
    processor does before throwing DelayedError) and its twin by ours (a handler raising Delayed):
    the same fields, no attempt used, lock gone, delayed 30 s from the move, a `delayed` event."""
    def active(name: str) -> str:
        job_id = Queue(name, redis_url=redis_url).add("poll", {"n": 1}, attempts=3).id
        r.lmove(f"bull:{name}:wait", f"bull:{name}:active", "RIGHT", "LEFT")
        r.set(f"bull:{name}:{job_id}:lock", "tok", px=30_000)
        return job_id

    theirs, ours = active("dl-node"), active("dl-ours")
    before = int(now_ms())
    (moved,) = node_calls(redis_url, "dl-node", [{"job": theirs, "call": "moveToDelayed",
                                                   "args": [before + 30_000, "tok"]}])
    assert moved["state"] == "delayed"
    q = Queue("dl-ours", redis_url=redis_url)
    now = int(now_ms())
    assert q.scripts.run(scripts.move_to_delayed(q.keys, ours, "tok", 30_000, now)) == 0
    # Node: delay = ts - its Date.now() at the call, due at ts; ours: due now + 30 s
    for name, job_id, due_at in (("dl-node", theirs, before + 30_000), ("dl-ours", ours, now + 30_000)):
        fields = r.hgetall(f"bull:{name}:{job_id}")
        assert b"atm" not in fields and b"failedReason" not in fields, name
        assert 0 < int(fields[b"delay"]) <= 30_000, (name, fields[b"delay"])
        assert not r.exists(f"bull:{name}:{job_id}:lock") and r.llen(f"bull:{name}:active") == 0
        assert int(r.zscore(f"bull:{name}:delayed", job_id) or 0) // 4096 == due_at, name
        last = r.xrevrange(f"bull:{name}:events", count=1)[0][1]
        assert last[b"event"] == b"delayed" and int(last[b"delay"]) == due_at


def test_keep_logs_both_ways(redis_url: str, r: redis.Redis) -> None:
    """keepLogs: Node's add stores it as `kl` and our worker's job.log keeps that many newest
    lines; ours is stored the same way and Node reads it back as keepLogs."""
    node_cli(redis_url, "kl", "add", stdin=[{"name": "x", "data": {}, "opts": {"keepLogs": 2}}])

    def handle(job: Any) -> None:
        for i in range(5):
            job.log(f"line {i}")

    Worker("kl", handle, redis_url=redis_url, drain_delay=0.2).run(burst=True)
    assert r.lrange("bull:kl:1:logs", 0, -1) == [b"line 3", b"line 4"]
    ours = Queue("kl", redis_url=redis_url).add("y", {}, keep_logs=3)
    (read,) = node_calls(redis_url, "kl", [{"job": ours.id, "call": "isWaiting"}])
    assert read["opts"]["keepLogs"] == 3 and json.loads(r.hget(f"bull:kl:{ours.id}", "opts") or "")["kl"] == 3


def test_remove_on_complete_and_fail_both_ways(redis_url: str, r: redis.Redis, tmp_path: Path,
                                               spawn: Callable[[list[str], str], Child]) -> None:
    """removeOnComplete: true and removeOnFail: {count: 1} on Node's jobs are carried out by our
    worker; the same options on ours by a Node worker."""
    spec = {"removeOnComplete": True, "removeOnFail": {"count": 1}}
    node_cli(redis_url, "rm-node", "add", stdin=[{"name": n, "data": {}, "opts": spec} for n in ("ok", "bad", "bad")])

    def handle(job: Any) -> None:
        if job.name == "bad":
            raise RuntimeError("bad")

    Worker("rm-node", handle, redis_url=redis_url, drain_delay=0.2).run(burst=True)
    q = Queue("rm-ours", redis_url=redis_url)
    for name in ("ok", "bad", "bad"):
        q.add(name, {}, remove_on_complete=True, remove_on_fail={"count": 1})
    worker = node_worker(spawn, redis_url, "rm-ours", tmp_path / "node.jsonl", "--fail-names", "bad")
    wait_until(lambda: r.zcard("bull:rm-ours:failed") == 1 and not r.exists("bull:rm-ours:1")
               and not r.exists("bull:rm-ours:2"), 20, "Node's worker to apply our remove options", interval=0.05)
    worker.stop()
    for name in ("rm-node", "rm-ours"):
        assert not r.exists(f"bull:{name}:completed") and not r.exists(f"bull:{name}:1"), name
        assert r.zrange(f"bull:{name}:failed", 0, -1) == [b"3"] and not r.exists(f"bull:{name}:2"), name


def test_progress_logs_values_and_traces_read_the_same(redis_url: str, r: redis.Redis) -> None:
    """What our worker records (progress, log lines, return value, failure and stack traces) is
    what Node's Job and getJobLogs read."""
    q = Queue("fields", redis_url=redis_url)
    ok = q.add("ok", {}).id
    bad = q.add("bad", {}, attempts=2).id

    def handle(job: Any) -> dict[str, Any]:
        job.update_progress({"step": 2, "of": 3})
        job.log("first line")
        job.log("second line")
        if job.name == "bad":
            raise ValueError("no such order")
        return {"sent": True, "n": [1, "é"]}

    Worker("fields", handle, redis_url=redis_url, drain_delay=0.2).run(burst=True)  # bad: retried at once, fails
    done, failed, logs = node_calls(redis_url, "fields", [
        {"job": ok, "call": "isCompleted"}, {"job": bad, "call": "isFailed"},
        {"queue": "getJobLogs", "args": [ok]}])
    assert done["state"] == "completed" and done["returnvalue"] == {"sent": True, "n": [1, "é"]}
    assert done["progress"] == {"step": 2, "of": 3}
    assert logs == {"logs": ["first line", "second line"], "count": 2}
    assert failed["state"] == "failed" and failed["failedReason"] == "no such order" and failed["attemptsMade"] == 2
    assert len(failed["stacktrace"]) == 2 and "ValueError: no such order" in failed["stacktrace"][-1]


def test_worker_limiters_of_a_mixed_fleet_count_in_one_limiter(redis_url: str, r: redis.Redis, tmp_path: Path,
                                                               spawn: Callable[[list[str], str], Child]) -> None:
    """A Bullpen worker with limiter=(5, 0.5) and a Node worker with limiter {max 5, duration 500}
    on one queue: together they start at most 5 jobs in any 500 ms (one `limiter` key)."""
    name = "wlim"
    q = Queue(name, redis_url=redis_url)
    ids = [j.id for j in q.add_bulk([("x", {}, {}) for _ in range(30)])]
    outs = [tmp_path / "py.jsonl", tmp_path / "node.jsonl"]
    workers = [py_worker(spawn, redis_url, name, outs[0], "--concurrency", "4", "--limiter", "5,0.5"),
               node_worker(spawn, redis_url, name, outs[1], "--concurrency", "4", "--limiter-max", "5",
                           "--limiter-duration", "500")]
    wait_until(lambda: q.counts().completed >= 30, 30, "30 completed jobs", interval=0.05)
    for w in workers:
        w.stop()
    stamps = sorted(int(r.hget(f"bull:{name}:{i}", "processedOn") or 0) for i in ids)
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 500 - 25, stamps
    assert all(read_records(p) for p in outs), "both workers should have taken some"


def test_node_get_workers_lists_our_worker(redis_url: str) -> None:
    """Our worker's connection is named as BullMQ names its workers', so Node's getWorkers counts it."""
    worker = Worker("wl", lambda job: None, redis_url=redis_url, drain_delay=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: Queue("wl", redis_url=redis_url).workers() != [], 10, "our worker's connection")
        listed, count = node_calls(redis_url, "wl", [{"queue": "getWorkers"}, {"queue": "getWorkersCount"}])
        assert count >= 1 and len(listed) == count
    finally:
        worker.close()
        thread.join(10)
