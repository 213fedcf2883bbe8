"""Chaos: worker processes SIGKILLed at random and Redis crash-restarted while thousands of jobs run.

What the test does
------------------
N jobs (attempts=1, each sleeping 10-70 ms, one in 300 sleeping 2.5 s, past its lock) go to
one queue served by a pool of worker processes (``tests/chaos/chaos_worker.py``: lock 2 s,
stalled check every 1 s, max stalled count 1000 so no job fails for stalling). Every 1-2 s
(random, seeded) one worker is SIGKILLed and a fresh one started, as long as jobs are
waiting. When half the jobs are complete, Redis (append-only file, ``appendfsync always``,
private data dir and port) is SIGKILLed and restarted on the same port and dir 2.5 s later,
so every lock held at the crash has expired by then; the oldest worker is spared from kills
until the next crash, so some runs can only be explained by the crash. Once nothing is
waiting or running, the workers get SIGTERM.

What it asserts
---------------
* 0 lost: every job 1..N is completed, none failed; wait, active, delayed, prioritized empty.
* Acknowledged writes survive the crash: the completed count after each restart is at least
  the one read just before the kill.
* No garbage: the ``stalled`` set is empty and no finished job still has a ``:lock`` key.
* The bookkeeping adds up for every job: ``ats == stc + 1`` (every extra take followed a
  stalled recovery), the events stream has ``stc`` ``stalled`` events for it, no two runs
  share a lock token, and the run whose token the return value carries is the last take
  (its ``ats`` is the job's final ``ats``).
* Every duplicate run is explained by a lost lock (below); worker logs hold no ERROR and
  every worker that was not killed exits 0.

"Explained by a lost lock"
--------------------------
A job runs again only after the stalled check put it back in wait, and the check moves only
a job whose ``:lock`` key is gone. A live worker connected to Redis renews its locks every
second (lock 2 s), so it loses one only when it cannot reach Redis. Hence each run whose
result Redis did not keep (a "loser": every run but the one the return value names) must be:

* killed: in a process the test SIGKILLed, and the job's next run started after the kill
  (nothing renewed the lock, so it expired at least a second after the kill), or
* cut off by the Redis crash: in a live worker that logged the loss for that job
  (``job=<id>: lock lost while running`` or ``job=<id>: ... result discarded``) and started
  between ``OUTAGE_LEAD`` seconds before a crash and the restart's end (jobs last 2.5 s at
  most, so an older run was finished and its result sent before the crash).

Any other loser fails the test: e.g. a stalled check that ignored a live lock, or a worker
that stopped renewing a running job (the long jobs would then never finish either). A worker
also logs "lock lost" for some jobs it has just finished normally: a false alarm, counted in
the summary and pinned by test_worker_locks.py.
Takes that left no run at all (the reply to ``move_to_active`` lost in the crash, or the
worker killed before the handler started) are counted as orphan takes; they too only come
back via a stalled recovery, so ``ats == stc + 1`` covers them.

Modes: ``BULLPEN_CHAOS=long`` runs more jobs and workers, kills faster and restarts Redis
three times. ``BULLPEN_CHAOS_SEED=<int>`` replays a schedule; the seed is in every message.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard import Queue
from dashboard.codec import text
from dashboard.keys import Keys, worker_client_name
from dashboard.redis_server import EmbeddedRedis, find_redis_server, free_port, port_is_free
from tests.polling import wait_for
from tests.test_stalled import ROOT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    jobs: int
    workers: int
    concurrency: int
    job_ms: tuple[int, int]  # each job sleeps a random whole number of ms in this range
    kill_every: tuple[float, float]  # seconds between SIGKILLs, uniform in this range
    restart_at: tuple[float, ...]  # crash Redis when this fraction of the jobs is complete
    redis_down: float  # seconds between the crash and the restart
    deadline: float  # seconds for everything to finish before the test gives up


PLANS = {
    "short": Plan(3000, 3, 4, (10, 70), (1.0, 2.0), (0.5,), 2.5, 90),
    "long": Plan(20000, 4, 4, (10, 70), (0.5, 1.5), (0.25, 0.5, 0.75), 2.5, 480),
}
MODE = os.environ.get("BULLPEN_CHAOS", "").strip().lower() or "short"
if MODE not in PLANS:
    raise ValueError(f"BULLPEN_CHAOS={MODE!r}: use 'long' or leave it unset")
PLAN = PLANS[MODE]
SEED = int(os.environ.get("BULLPEN_CHAOS_SEED") or random.SystemRandom().randrange(1 << 31))

QUEUE = "chaos"
K = Keys("bull", QUEUE)
#: One job in LONG_ODDS sleeps LONG_MS, longer than the 2 s lock.
LONG_ODDS, LONG_MS = 300, 2500
#: A run that started this many seconds before a Redis crash may still hold its lock then.
OUTAGE_LEAD = 5.0
WORKER = Path(__file__).with_name("chaos_worker.py")
LOST_LOCK = re.compile(r"job=(\S+): (?:lock lost while running|\w+ result discarded)")

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(int(PLAN.deadline) + 60),
    pytest.mark.skipif(find_redis_server() is None, reason="no redis-server binary"),
]


def job_ms(rng: random.Random) -> int:
    """How long one job runs: mostly ``PLAN.job_ms``; one in LONG_ODDS runs LONG_MS, past its
    lock, so it is finished only if its worker keeps renewing the lock."""
    return LONG_MS if rng.random() < 1 / LONG_ODDS else rng.randint(*PLAN.job_ms)


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range: while Redis is down, no outgoing
    connection on this machine can be given it as its local port and block the restart."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randrange(20000, max(low, 20001))
        if port_is_free(port):
            return port
    return free_port()


def redis_at(port: int, data: Path) -> EmbeddedRedis:
    """Our private server: every acknowledged write is fsynced to the append-only file."""
    return EmbeddedRedis(port=port, data_dir=data, extra_args=["--appendfsync", "always", "--save", ""])


@dataclass
class Fleet:
    """The worker processes: started, SIGKILLed, replaced, stopped; each logs to its own file."""

    url: str
    out: Path
    logs: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_of: dict[int, Path] = field(default_factory=dict)
    killed: dict[int, float] = field(default_factory=dict)  # pid -> wall-clock time of its SIGKILL
    spared: set[int] = field(default_factory=set)  # the last Redis crash's witness: not killed

    def spawn(self) -> int:
        path = self.logs / f"worker-{len(self.procs) + 1}.log"
        with open(path, "wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), "--redis", self.url, "--queue", QUEUE, "--out", str(self.out),
                 "--concurrency", str(PLAN.concurrency), "--lock-duration", "2", "--stalled-interval", "1",
                 "--max-stalled", "1000"],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
        self.procs[proc.pid], self.log_of[proc.pid] = proc, path
        return proc.pid

    def alive(self) -> list[int]:
        return [pid for pid, p in self.procs.items() if p.poll() is None]

    def kill_one(self, rng: random.Random) -> int:
        pid = rng.choice(sorted(set(self.alive()) - self.spared))
        self.killed[pid] = time.time()
        self.procs[pid].send_signal(signal.SIGKILL)
        self.procs[pid].wait(10)
        return pid

    def ready(self, client: redis.Redis) -> bool:
        """True once every live worker shows its named connection (its signal handlers are set)."""
        names = {str(w.get("name", "")) for w in Queue(QUEUE, connection=client).workers()}
        return all(worker_client_name("bull", QUEUE, f"chaos-{pid}") in names for pid in self.alive())

    def stop(self, client: redis.Redis) -> dict[int, int | None]:
        """SIGTERM every live worker once it is ready, wait for each; the exit code of every
        worker not killed (a worker still starting up would die of the signal's default action)."""
        wait_for(lambda: self.ready(client), "every live worker to connect", 30)
        for pid in self.alive():
            self.procs[pid].send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(40)
            except subprocess.TimeoutExpired:
                pass
        return {pid: p.poll() for pid, p in self.procs.items() if pid not in self.killed}

    def cleanup(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)


def counts(client: redis.Redis) -> dict[str, int] | None:
    """Queue sizes, or None while Redis is down or loading."""
    try:
        with client.pipeline(transaction=False) as p:
            p.llen(K.wait)
            p.llen(K.active)
            for key in (K.delayed, K.prioritized, K.completed, K.failed):
                p.zcard(key)
            values = p.execute()
    except (redis.ConnectionError, redis.TimeoutError):  # BusyLoadingError is a ConnectionError
        return None
    return dict(zip(("wait", "active", "delayed", "prioritized", "completed", "failed"), values))


def finished(c: dict[str, int] | None) -> bool:
    return c is not None and c["wait"] == c["active"] == c["delayed"] == c["prioritized"] == 0 \
        and c["completed"] + c["failed"] == PLAN.jobs


@dataclass
class Chaos:
    """What the run did, for the analysis and the report."""

    kills: list[int] = field(default_factory=list)
    durability: list[tuple[int, int]] = field(default_factory=list)  # completed before crash, after restart
    outages: list[tuple[float, float]] = field(default_factory=list)  # wall-clock crash and back-up times
    seconds: float = 0.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[list[EmbeddedRedis]]:
    """A private append-only Redis; a one-element list so the test can swap in the restarted one."""
    holder = [redis_at(quiet_port(), tmp_path / "redis").start()]
    yield holder
    holder[0].stop()


def test_kills_and_a_redis_crash_lose_no_job_and_explain_every_rerun(server: list[EmbeddedRedis],
                                                                     tmp_path: Path) -> None:
    rng = random.Random(SEED)
    out, logs = tmp_path / "runs", tmp_path / "logs"
    out.mkdir()
    logs.mkdir()
    url, port, data = server[0].url, server[0].port, server[0].data_dir
    assert data is not None
    client = redis.Redis.from_url(url, socket_timeout=10)
    client.hset(K.meta, "opts.maxLenEvents", PLAN.jobs * 20)  # keep every event for the stalled count
    ids = [j.id for j in Queue(QUEUE, connection=client).add_bulk(
        [("c", {"ms": job_ms(rng)}, {"attempts": 1}) for _ in range(PLAN.jobs)])]
    fleet, chaos = Fleet(url, out, logs), Chaos()
    started = time.monotonic()
    try:
        for _ in range(PLAN.workers):
            fleet.spawn()
        restarts = list(PLAN.restart_at)
        next_kill = time.monotonic() + rng.uniform(*PLAN.kill_every)
        while not finished(c := counts(client)):
            if time.monotonic() - started > PLAN.deadline:
                raise AssertionError(f"seed {SEED}: not finished after {PLAN.deadline:g} s: {c}, {chaos}")
            if restarts and c is not None and c["completed"] >= restarts[0] * PLAN.jobs:
                restarts.pop(0)
                before, crashed = c["completed"], time.time()
                # spare the oldest live worker (busy, surely) until the next crash: its reruns
                # must then be explained by the crash alone
                fleet.spared = {fleet.alive()[0]}
                os.kill(server[0].pid or 0, signal.SIGKILL)
                wait_for(lambda: not server[0].running, "redis-server to die", 10)
                server[0].stop()
                time.sleep(PLAN.redis_down)
                server[0] = redis_at(port, data).start()
                after = counts(client) or counts(client)  # the first call may meet the dead connection
                assert after is not None, f"seed {SEED}: Redis unreachable after its restart"
                assert after["completed"] >= before, \
                    f"seed {SEED}: the crash lost acknowledged writes: {before} completed before, {after} after"
                chaos.durability.append((before, after["completed"]))
                chaos.outages.append((crashed, time.time()))
            if time.monotonic() >= next_kill and c is not None and c["wait"]:  # no kills in the tail
                chaos.kills.append(fleet.kill_one(rng))
                fleet.spawn()
                next_kill = time.monotonic() + rng.uniform(*PLAN.kill_every)
            time.sleep(0.1)
        chaos.seconds = time.monotonic() - started
        codes = fleet.stop(client)
    finally:
        fleet.cleanup()
    summary, problems = analyse(client, ids, fleet, chaos, codes)
    client.close()
    log.info("chaos (%s, seed %s): %s", MODE, SEED, json.dumps(summary))
    assert not restarts, f"seed {SEED}: the Redis restarts did not all happen: {summary}"
    assert problems == [], f"seed {SEED}: {len(problems)} problem(s), first ones: {problems[:20]}\n{summary}"


def read_runs(out: Path) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(out.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            runs[record["id"]].append(record)
    return runs


def read_logs(fleet: Fleet) -> tuple[dict[int, set[str]], list[str]]:
    """Per worker pid, the job ids it reported losing the lock of; and every ERROR line."""
    lost: dict[int, set[str]] = {}
    errors: list[str] = []
    for pid, path in fleet.log_of.items():
        content = path.read_text(errors="replace")
        lost[pid] = set(LOST_LOCK.findall(content))
        errors += [f"worker {pid}: {line}" for line in content.splitlines()
                   if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")]
    return lost, errors


def analyse(client: redis.Redis, ids: list[str], fleet: Fleet, chaos: Chaos,
            codes: dict[int, int | None]) -> tuple[dict[str, Any], list[str]]:
    """Check the end state against the module docstring's rules; return a summary and the problems."""
    problems: list[str] = []
    c = counts(client)
    if not finished(c) or c is None or c["failed"]:
        problems.append(f"end state {c}")
    completed = {text(m) for m in client.zrange(K.completed, 0, -1)}
    problems += [f"job {i} not completed" for i in ids if i not in completed]
    if client.exists(K.stalled):
        problems.append(f"stalled set left behind: {client.smembers(K.stalled)}")
    with client.pipeline(transaction=False) as p:
        for i in ids:
            p.exists(K.lock(i))
            p.hgetall(K.job(i))
        replies = p.execute()
    locks, hashes = replies[0::2], replies[1::2]
    problems += [f"job {i}: lock key left behind" for i, n in zip(ids, locks) if n]
    stalled_events = Counter(text(f[b"jobId"]) for _, f in client.xrange(K.events) if f.get(b"event") == b"stalled")
    runs = read_runs(fleet.out)
    lost, errors = read_logs(fleet)
    problems += errors
    problems += [f"worker {pid} exited with {code}" for pid, code in codes.items() if code != 0]
    why: Counter[str] = Counter()
    for i, raw in zip(ids, hashes):
        h = {text(k): text(v) for k, v in raw.items()}
        if not h:
            problems.append(f"job {i}: hash missing")
            continue
        ats, stc = int(h.get("ats", 0)), int(h.get("stc", 0))
        kept = json.loads(h.get("returnvalue", "null")) or {}
        mine = runs.get(i, [])
        why["orphan takes"] += ats - len(mine)
        if ats != stc + 1:
            problems.append(f"job {i}: ats={ats} but stc={stc}")
        if stalled_events[i] != stc:
            problems.append(f"job {i}: stc={stc} but {stalled_events[i]} stalled events")
        if len({r["token"] for r in mine}) != len(mine) or len(mine) > ats:
            problems.append(f"job {i}: {len(mine)} runs for {ats} takes: {mine}")
        winners = [r for r in mine if r["token"] == kept.get("token")]
        if len(winners) != 1 or winners[0]["pid"] != kept.get("pid") or winners[0]["ats"] != ats:
            problems.append(f"job {i}: kept result {kept} is not the last take's run: {mine}")
        for r in mine:
            if r["token"] == kept.get("token"):
                continue
            later = [x["t"] for x in mine if x["ats"] > r["ats"]]  # the winner at least
            killed = r["pid"] in fleet.killed and min(later, default=0) > fleet.killed[r["pid"]]
            cut_off = i in lost.get(r["pid"], set()) and any(
                down - OUTAGE_LEAD <= r["t"] <= up for down, up in chaos.outages)
            if not (killed or cut_off):
                problems.append(f"job {i}: run {r} lost its result, but its worker was not killed "
                                f"and did not lose the lock to a Redis crash (kept: {kept})")
            why["reruns"] += 1
            why["explained: killed"] += killed and not cut_off
            why["explained: cut off by the Redis crash"] += cut_off and not killed
            why["explained: both"] += killed and cut_off
        # a report about a job by a worker whose only run of it is the kept one is a false alarm
        why["false lock-loss alarms"] += sum(
            1 for pid, jobs in lost.items() if i in jobs and [r["pid"] for r in mine].count(pid) == 1
            and pid == kept.get("pid"))
    summary = {
        "mode": MODE, "seed": SEED, "jobs": len(ids), "seconds": round(chaos.seconds, 1),
        "kills": len(chaos.kills), "workers started": len(fleet.procs),
        "redis restarts (completed before, after)": chaos.durability,
        "runs": sum(len(v) for v in runs.values()), **why,
        "stalled recoveries": sum(stalled_events.values()),
        "jobs stalled": sum(1 for v in stalled_events.values() if v), "most stalls of one job": max(
            stalled_events.values(), default=0),
        "lock-loss reports": sum(len(v) for v in lost.values()),
    }
    if chaos.outages and not why["explained: cut off by the Redis crash"]:
        problems.append("no run of a surviving worker was cut off by a Redis crash: that path went unchecked")
    return summary, problems
