"""Job schedulers (BullMQ 6 repeatable jobs) across Node BullMQ 6.7.0 and Bullpen.

A scheduler's next job is created by the worker that takes the current one. These tests check
that our worker keeps Node's schedulers going with BullMQ's ids, opts and timing (``every`` and
cron ``pattern``), that Node workers serve schedulers we create, and that our next fire times
for cron patterns equal Node's own (cron-parser) on ordinary and daylight-saving days.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, Worker
from dashboard.codec import text
from dashboard.cron import next_fire_ms
from tests.interop.harness import read_records, wait_until
from tests.interop.test_node_bullmq import HERE, NODE, node_cli, node_worker, pytestmark  # noqa: F401

QUEUE = "sched"


@pytest.fixture
def our_worker(redis_url: str) -> Iterator[list[dict[str, Any]]]:
    """A Bullpen Worker on QUEUE in a thread; yields the list of runs it records (id, data, opts)."""
    runs: list[dict[str, Any]] = []

    def handler(job: Job) -> Any:
        runs.append({"id": job.id, "name": job.name, "data": job.data, "opts": job.opts})
        return None

    worker = Worker(QUEUE, handler, redis_url=redis_url, drain_delay=0.2)
    thread = threading.Thread(target=worker.run, name="sched-worker", daemon=True)
    thread.start()
    yield runs
    worker.close()
    thread.join(10)


def millis_of(job_id: str, scheduler: str) -> int:
    head, _, ms = job_id.rpartition(":")
    assert head == f"repeat:{scheduler}", job_id
    return int(ms)


def test_our_worker_keeps_a_node_every_scheduler_going(redis_url: str, r: redis.Redis,
                                                       our_worker: list[dict[str, Any]]) -> None:
    """Node upserts an `every` scheduler; only our worker runs: iterations keep coming, each at a
    later slot of the scheduler (first + k * every), with BullMQ's ids, count and the scheduler's `ic`."""
    made = node_cli(redis_url, QUEUE, "upsert-scheduler",
                    stdin={"id": "every-300", "repeat": {"every": 300}, "name": "tick", "data": {"a": 1}})
    first = millis_of(made["id"], "every-300")
    wait_until(lambda: len(our_worker) >= 4, 20, "four iterations of the every scheduler on our worker")
    runs = list(our_worker)
    millis = [millis_of(run["id"], "every-300") for run in runs]
    assert millis[0] == first
    # each the next free slot of the scheduler (a slow turn may skip one, as in BullMQ)
    assert all(b > a and (b - a) % 300 == 0 for a, b in zip(millis, millis[1:])), millis
    assert [run["opts"]["repeat"]["count"] for run in runs[:4]] == [1, 2, 3, 4]
    assert all(run["name"] == "tick" and run["data"] == {"a": 1} for run in runs)
    assert all(run["opts"]["repeatJobKey"] == "every-300" for run in runs)
    # Node reads the scheduler as BullMQ left it: next run = the newest iteration's slot
    listed = node_cli(redis_url, QUEUE, "schedulers")["schedulers"]
    (sched,) = listed
    assert sched["key"] == "every-300" and sched["every"] == 300
    assert sched["iterationCount"] >= 4 and (sched["next"] - first) % 300 == 0
    assert r.hget(f"bull:{QUEUE}:repeat:every-300:{sched['next']}", "rjk") == b"every-300"


def test_our_worker_keeps_a_node_cron_scheduler_going(redis_url: str, our_worker: list[dict[str, Any]]) -> None:
    """Node upserts a cron scheduler (6 fields, seconds first, a time zone); only our worker runs:
    iterations keep coming at the pattern's fire times, with prevMillis and count as Node writes."""
    made = node_cli(redis_url, QUEUE, "upsert-scheduler",
                    stdin={"id": "each-second", "name": "cron",
                           "repeat": {"pattern": "* * * * * *", "tz": "Europe/Berlin"}})
    first = millis_of(made["id"], "each-second")
    wait_until(lambda: len(our_worker) >= 3, 20, "three iterations of the cron scheduler on our worker")
    runs = list(our_worker)
    millis = [millis_of(run["id"], "each-second") for run in runs]
    assert millis[0] == first and all(ms % 1000 == 0 for ms in millis)
    assert all(b > a for a, b in zip(millis, millis[1:])), millis
    for run, ms in zip(runs, millis):
        assert run["opts"]["prevMillis"] == ms
        assert run["opts"]["repeat"]["pattern"] == "* * * * * *" and run["opts"]["repeat"]["tz"] == "Europe/Berlin"
    assert [run["opts"]["repeat"]["count"] for run in runs[:3]] == [1, 2, 3]


# --- next fire times: ours vs Node's cron-parser ----------------------------------------------

PATTERNS = [
    "*/5 * * * * *", "0 */15 * * * *", "30 2 * * *", "0 3 * * *", "15 1 * * *", "0 * * * *",
    "*/20 1-3 * * *", "0 0 1 * *", "0 9 * * 1-5", "0 30 2 * * *", "0 0 2-3 * * 0", "5 4 * * SUN",
    "0 12 1,15 * *", "59 23 31 12 *", "0 0 29 2 *", "*/7 */3 * * *", "0 1-2 * * *", "30 1-3/2 * * *",
    "*/30 2 * * *", "45 23 * * *", "0 0 L * *", "0 0 * * 5L", "0 0 * * 1#2", "0 0 ? * MON",
    "0 0 1 JAN,JUL *", "@daily", "@weekly", "0 5/15 * * *",
]
ZONES = [None, "Europe/Berlin", "America/New_York"]
#: Days around the 2026 changes: Berlin Mar 29 / Oct 25, New York Mar 8 / Nov 1 (plus from inside them).
STARTS = ["2026-03-07T00:00:00", "2026-03-28T00:00:00", "2026-03-29T00:40:00", "2026-10-24T00:00:00",
          "2026-10-25T00:40:00", "2026-10-25T01:10:00", "2026-10-31T12:00:00"]


def test_cron_next_times_equal_nodes() -> None:
    """For every pattern x zone x start, the next 50 fire times (each from the one before, as a
    worker schedules them) equal those of BullMQ 6.7.0's own getNextMillis."""
    cases: list[dict[str, Any]] = [{"pattern": p, "tz": tz, "n": 50,
              "from": int(dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC).timestamp() * 1000) + 1234}
             for p in PATTERNS for tz in ZONES for s in STARTS]
    proc = subprocess.run([NODE, str(HERE / "cron_next.js")], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=60, check=True)
    node = json.loads(proc.stdout)["times"]
    wrong = []
    for case, theirs in zip(cases, node, strict=True):
        ours, at = [], case["from"]
        for _ in range(case["n"]):
            at = next_fire_ms(case["pattern"], at, case["tz"])
            ours.append(at)
        if ours != theirs:
            i = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
            wrong.append(f"{case['pattern']!r} tz={case['tz']} from={case['from']}: #{i} "
                         f"ours {ours[i]} node {theirs[i]}")
    assert not wrong, f"{len(wrong)} of {len(cases)} cases differ:\n" + "\n".join(wrong[:20])


# --- our producer -> Node workers ----------------------------------------------------------------


def test_node_worker_serves_schedulers_we_create(redis_url: str, spawn, tmp_path: Path) -> None:
    """We upsert an `every` and a cron scheduler; only a Node worker runs: it finds them as its
    own (getJobSchedulers) and keeps both going, at least 3 iterations each, with BullMQ's ids."""
    q = Queue(QUEUE, redis_url=redis_url)
    first = q.upsert_job_scheduler("every-300", every=0.3, name="tick", data={"a": 1}, opts={"attempts": 2})
    cron_first = q.upsert_job_scheduler("each-second", pattern="* * * * * *", tz="America/New_York", name="cron")
    assert first is not None and cron_first is not None
    assert first.id == f"repeat:every-300:{millis_of(first.id, 'every-300')}"
    listed = {s["key"]: s for s in node_cli(redis_url, QUEUE, "schedulers")["schedulers"]}
    assert listed == {s["key"]: s for s in q.job_schedulers()}
    assert listed["every-300"]["template"] == {"data": {"a": 1}, "opts": {"attempts": 2}}
    out = tmp_path / "node.jsonl"
    node_worker(spawn, redis_url, QUEUE, out)

    def runs(scheduler: str) -> list[dict[str, Any]]:
        return [rec for rec in read_records(out) if rec["id"].startswith(f"repeat:{scheduler}:")]

    wait_until(lambda: len(runs("every-300")) >= 4 and len(runs("each-second")) >= 3, 20,
               "Node to run our schedulers' iterations")
    millis = [millis_of(rec["id"], "every-300") for rec in runs("every-300")]
    assert millis[0] == millis_of(first.id, "every-300")
    assert all(b > a and (b - a) % 300 == 0 for a, b in zip(millis, millis[1:])), millis
    assert all(rec["data"] == {"a": 1} and rec["name"] == "tick" for rec in runs("every-300"))
    seconds = [millis_of(rec["id"], "each-second") for rec in runs("each-second")]
    assert seconds[0] == millis_of(cron_first.id, "each-second") and all(ms % 1000 == 0 for ms in seconds)
    assert q.remove_job_scheduler("every-300") and not q.remove_job_scheduler("every-300")
    assert [s["key"] for s in q.job_schedulers()] == ["each-second"]


@pytest.mark.parametrize("repeat", [
    {"every": 60_000},
    {"every": 60_000, "offset": 1_234, "limit": 5},
    {"pattern": "0 30 2 * * *", "tz": "Europe/Berlin", "endDate": 4_102_444_800_000},
    {"pattern": "*/10 * * * *", "startDate": 4_000_000_000_000},
])
def test_our_scheduler_is_written_as_nodes(redis_url: str, r: redis.Redis, repeat: dict[str, Any]) -> None:
    """The same upsert by Node and by us writes the same scheduler hash and the same first job
    (fields and opts), but for the instants (timestamps, and ids / offsets derived from now)."""
    template: dict[str, Any] = {"name": "t", "data": {"x": [1, "/"]},
                                "opts": {"attempts": 3, "backoff": {"type": "fixed", "delay": 5}}}
    made = node_cli(redis_url, QUEUE, "upsert-scheduler", stdin={"id": "node", "repeat": repeat, **template})
    q = Queue(QUEUE, redis_url=redis_url)
    kw = {"every": "every", "pattern": "pattern", "tz": "tz", "limit": "limit", "offset": "offset",
          "startDate": "start_date", "endDate": "end_date"}
    seconds = ("every", "offset")  # durations are seconds in our API, ms in BullMQ's
    ours = q.upsert_job_scheduler("ours", **{kw[k]: v / 1000 if k in seconds else v for k, v in repeat.items()},
                                  **template)
    assert ours is not None

    def read(key: str) -> dict[str, Any]:
        got: dict[str, Any] = {text(k): text(v) for k, v in r.hgetall(key).items()}
        for name in ("opts", "data"):
            if name in got:
                got[name] = json.loads(got[name])
        return got

    theirs_s, ours_s = read(f"bull:{QUEUE}:repeat:node"), read(f"bull:{QUEUE}:repeat:ours")
    if "every" in repeat and "offset" not in repeat:  # now % every
        theirs_s.pop("offset"), ours_s.pop("offset")
    assert ours_s == theirs_s
    theirs_j, ours_j = read(f"bull:{QUEUE}:{made['id']}"), read(f"bull:{QUEUE}:{ours.id}")
    assert ours_j.pop("rjk") == "ours" and theirs_j.pop("rjk") == "node"
    for job in (ours_j, theirs_j):
        job.pop("timestamp")
        opts = job["opts"]
        opts.pop("timestamp")
        assert opts.pop("jobId").endswith(str(opts.pop("prevMillis", "")))
        opts.pop("repeatJobKey")
        assert int(job.pop("delay")) == opts.pop("delay")  # due - now
    if "pattern" in repeat:
        assert millis_of(ours.id, "ours") == millis_of(made["id"], "node")
    assert ours_j == theirs_j


@pytest.mark.parametrize("repeat", [{"every": 250, "limit": 10}, {"pattern": "* * * * * *", "tz": "Europe/Berlin"}])
def test_next_iteration_by_our_worker_is_written_as_nodes(redis_url: str, r: redis.Redis, spawn, tmp_path: Path,
                                                          repeat: dict[str, Any]) -> None:
    """Node upserts the same scheduler on two queues; a Node worker serves one, ours the other:
    the second iteration's job (fields and opts) and the scheduler hash are the same."""
    spec = {"id": "s", "repeat": repeat, "name": "t", "data": {"k": 1}, "opts": {"attempts": 2}}
    node_cli(redis_url, "by-node", "upsert-scheduler", stdin=spec)
    node_cli(redis_url, QUEUE, "upsert-scheduler", stdin=spec)
    node_worker(spawn, redis_url, "by-node", tmp_path / "node.jsonl")
    worker = Worker(QUEUE, lambda job: None, redis_url=redis_url, drain_delay=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()

    def iteration(queue: str, n: int) -> dict[str, Any] | None:
        for key in r.scan_iter(f"bull:{queue}:repeat:s:*"):
            if not text(key).rpartition(":")[2].isdigit():  # <id>:lock
                continue
            got: dict[str, Any] = {text(k): text(v) for k, v in r.hgetall(key).items()}
            got["opts"] = json.loads(got["opts"])
            if got["opts"]["repeat"]["count"] == n:
                return got
        return None

    try:
        theirs, ours = wait_until(lambda: (lambda a, b: (a, b) if a and b else None)(
            iteration("by-node", 2), iteration(QUEUE, 2)), 20, "a second iteration on both queues")
    finally:
        worker.close()
        thread.join(10)
    for job in (theirs, ours):
        for name in ("timestamp", "delay", "processedOn", "finishedOn", "atm", "ats", "returnvalue", "pb"):
            job.pop(name, None)
        for name in [n for n in job if n.startswith("bpAttempt:")]:  # our worker's attempt record (BullMQ ignores it)
            job.pop(name)
        for name in ("timestamp", "delay", "jobId", "prevMillis"):
            job["opts"].pop(name, None)
    assert ours == theirs
    # the iteration count moves on while the Node worker keeps serving: compare the other fields
    assert set(r.hgetall(f"bull:{QUEUE}:repeat:s")) - {b"ic"} == set(r.hgetall("bull:by-node:repeat:s")) - {b"ic"}


def test_mixed_fleet_keeps_a_scheduler_going(redis_url: str, r: redis.Redis, spawn, tmp_path: Path,
                                             our_worker: list[dict[str, Any]]) -> None:
    """The reported bug: a Node worker and ours share a queue with a Node `every` scheduler;
    whichever takes an iteration adds the next, so iterations keep coming, each run once."""
    out = tmp_path / "node.jsonl"
    node_worker(spawn, redis_url, QUEUE, out)
    node_cli(redis_url, QUEUE, "upsert-scheduler", stdin={"id": "fleet", "repeat": {"every": 200}, "name": "f"})

    def ids() -> list[str]:
        return [rec["id"] for rec in read_records(out)] + [run["id"] for run in our_worker]

    wait_until(lambda: len(ids()) >= 10, 30, "ten iterations across the fleet")
    got = ids()
    assert len(got) == len(set(got)), "an iteration ran twice"
    millis = sorted(millis_of(i, "fleet") for i in got)
    assert all(b > a and (b - a) % 200 == 0 for a, b in zip(millis, millis[1:])), millis
