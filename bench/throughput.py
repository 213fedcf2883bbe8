#!/usr/bin/env python3
"""Throughput benchmark: Bullpen vs Node BullMQ 6.7.0 vs huey on one private Redis.

    python bench/throughput.py                       # full run: N=20,000, 3 repetitions (~6-8 min)
    python bench/throughput.py --quick               # smoke run: N=5,000, 1 repetition, short sweep
    python bench/throughput.py --only bullpen,node --reps 1
    python bench/throughput.py --profile             # plus one Bullpen drain under py-spy

What it does (see bench/README.md for the method and what each number means):
  * starts its own redis-server (dashboard.redis_server.EmbeddedRedis: free port, 127.0.0.1,
    no persistence) and stops it at the end; it never talks to any other Redis;
  * on first run creates bench/.work/v-huey (pinned requirements/huey.txt) and finds or
    installs Node BullMQ 6.7.0 + ioredis 6.0.0 (tests/interop/node_modules when it has
    exactly those, else `npm ci` into bench/.work/node from node/package-lock.json);
  * per repetition, systems interleaved: enqueue N jobs one by one (timed), drain them with
    one worker process at concurrency 1; then for each further concurrency setting enqueue
    N with the bulk API (timed; huey has none, so single again) and drain;
  * `CONFIG RESETSTAT` before each enqueue and each drain, `INFO all` after: commands, Lua
    calls, socket reads and Redis CPU per job;
  * writes results/throughput.jsonl (raw, one line per measurement) and
    results/throughput.md (medians), and prints the tables.
Only the standard library, redis-py and dashboard.redis_server are used here.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import features  # noqa: E402  (bench/features.py: rate-limit and scheduler-lateness phases)
import latency  # noqa: E402  (bench/latency.py: add -> start latency and start-up phases)
import redis  # noqa: E402

from dashboard.redis_server import EmbeddedRedis  # noqa: E402

WORK = Path(os.environ.get("QB_WORK", HERE / ".work"))
DONE = WORK / "done.log"
REC = 32  # bytes per mark() record
NODE_PINS = {"bullmq": "6.7.0", "ioredis": "6.0.0"}
PYSPY_PIN = "py-spy==0.4.3"
HIREDIS_PIN = "hiredis==3.5.0"

SYSTEMS = {  # key -> label, native bulk add?
    "bullpen": dict(label="Bullpen", bulk=True),
    "node": dict(label="BullMQ (Node)", bulk=True),
    "huey": dict(label="huey (RedisHuey)", bulk=False),
}

R: redis.Redis  # admin client of the private server (set in main)
OUT: Path
RAW: Path


# ------------------------------------------------------------------------------- setup
def sh(cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kw)


def venv(name: str, requirements: list[str]) -> Path:
    """bench/.work/v-<name> with exactly `requirements` installed (re-installs on change)."""
    path = WORK / f"v-{name}"
    py = path / "bin" / "python"
    stamp = path / ".bench-requirements"
    want = "\n".join(requirements)
    if not py.exists():
        sh([sys.executable, "-m", "venv", str(path)])
    if not stamp.exists() or stamp.read_text() != want:
        sh([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements])
        stamp.write_text(want)
    return path


def huey_python() -> str:
    reqs = [line.strip() for line in (HERE / "requirements" / "huey.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    return str(venv("huey", reqs) / "bin" / "python")


def _node_ok(modules: Path) -> bool:
    for pkg, version in NODE_PINS.items():
        try:
            if json.loads((modules / pkg / "package.json").read_text())["version"] != version:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return True


def node_modules() -> Path:
    for candidate in (ROOT / "tests" / "interop" / "node_modules", WORK / "node" / "node_modules"):
        if _node_ok(candidate):
            return candidate
    if not shutil.which("npm"):
        raise SystemExit("node/npm not found: install Node 20 + npm, or run with --only bullpen,huey")
    dest = WORK / "node"
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(HERE / "node" / f, dest / f)
    sh(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=dest)
    if not _node_ok(dest / "node_modules"):
        raise SystemExit(f"npm ci did not give {NODE_PINS}")
    return dest / "node_modules"


# ------------------------------------------------------------------------------- adapters
PY: dict[str, str] = {}
NODE_PATH = ""


def adapter(system: str, cmd: str, args: list[str]) -> list[str]:
    if system == "node":
        return ["node", str(HERE / "node" / "qb.js"), cmd, *args]
    return [PY[system], str(HERE / "py" / "qb.py"), system, cmd, *args]


def env(port: int) -> dict[str, str]:
    return dict(os.environ, QB_DONE_FILE=str(DONE), QB_REDIS_PORT=str(port), NODE_PATH=NODE_PATH,
                PYTHONPATH=os.pathsep.join([str(HERE / "py"), str(ROOT)]), PYTHONUNBUFFERED="1")


# ------------------------------------------------------------------------------- redis stats
LUA_CMDS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")
OWN_CMDS = ("info", "config|resetstat", "config", "flushall", "ping")


def snapshot() -> tuple[dict[str, int], dict]:
    info = R.info("all")
    calls = {k[8:]: v["calls"] for k, v in info.items() if k.startswith("cmdstat_")}
    return calls, info


def reset() -> tuple[dict[str, int], dict]:
    R.config_resetstat()
    return snapshot()


def stat_delta(before, after, n: int) -> dict:
    (c0, i0), (c1, i1) = before, after
    d = {k: c1.get(k, 0) - c0.get(k, 0) for k in set(c0) | set(c1)}
    d = {k: v for k, v in d.items() if v > 0 and k not in OWN_CMDS}
    lua = sum(v for k, v in d.items() if k.split("|")[0] in LUA_CMDS)
    cpu = lambda i: float(i["used_cpu_user"]) + float(i["used_cpu_sys"])  # noqa: E731
    reads = int(i1["total_reads_processed"]) - int(i0["total_reads_processed"]) - 1  # minus our INFO
    top = sorted(d.items(), key=lambda kv: -kv[1])[:12]
    return dict(cmds_per_job=sum(d.values()) / n, lua_per_job=lua / n, reads_per_job=max(reads, 0) / n,
                redis_cpu_us_per_job=(cpu(i1) - cpu(i0)) * 1e6 / n,
                top={k: round(v / n, 3) for k, v in top})


# ------------------------------------------------------------------------------- measurements
def log(rec: dict) -> dict:
    rec["ts"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    rec["loadavg1"] = float(Path("/proc/loadavg").read_text().split()[0])
    with open(RAW, "a") as f:
        f.write(json.dumps(rec) + "\n")
    keys = ("kind", "sys", "mode", "conc", "rep", "jobs_per_s", "cmds_per_job", "lua_per_job",
            "reads_per_job", "redis_cpu_us_per_job", "worker_cpu_ms_per_job", "error")
    print("  " + " ".join(f"{k}={round(rec[k], 2) if isinstance(rec[k], float) else rec[k]}"
                          for k in keys if k in rec), flush=True)
    return rec


def flush() -> None:
    R.flushall()
    if DONE.exists():
        DONE.unlink()


def run_enqueue(port: int, system: str, mode: str, n: int, rep: int, record: bool = True) -> bool:
    before = reset()
    p = subprocess.run(adapter(system, "enqueue", ["--mode", mode, "--n", str(n)]),
                       env=env(port), capture_output=True, text=True, timeout=900)
    if not record:
        if p.returncode:
            print(f"  enqueue {system} failed: {(p.stderr or p.stdout)[-400:]}", flush=True)
        return p.returncode == 0
    after = snapshot()
    res = [line for line in p.stdout.splitlines() if line.startswith("QBRESULT ")]
    if p.returncode or not res:
        log(dict(kind="enqueue", sys=system, mode=mode, n=n, rep=rep, error=(p.stderr or p.stdout)[-800:]))
        return False
    r = json.loads(res[-1][9:])
    log(dict(kind="enqueue", sys=system, mode=mode, n=n, rep=rep, seconds=r["seconds"],
             jobs_per_s=n / r["seconds"], **stat_delta(before, after, n)))
    return True


def finish_times() -> list[float]:
    if not DONE.exists():
        return []
    return sorted(float(line.split()[0]) for line in DONE.read_text().splitlines() if line.strip())


def _reap(p: subprocess.Popen, timeout: float):
    """wait4() the worker (its own CPU + waited-for children, max RSS); None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return usage
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def stop_worker(p: subprocess.Popen):
    """SIGINT (warm shutdown) to the worker's session; SIGKILL if it hangs."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGINT, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        usage = _reap(p, wait)
        if usage is not None:
            return usage
    return None


def start_worker(port: int, system: str, conc: int, tag: str) -> subprocess.Popen:
    logf = open(WORK / f"worker-{tag}.log", "w")  # noqa: SIM115 - child keeps it
    return subprocess.Popen(adapter(system, "worker", ["--conc", str(conc)]), env=env(port), stdout=logf,
                            stderr=subprocess.STDOUT, start_new_session=True)


def run_drain(port: int, system: str, conc: int, n: int, rep: int, timeout: float, kind: str = "drain",
              on_start=None) -> dict:
    """One worker process drains n pre-enqueued jobs; jobs/s = (n-1) / (last - first finish)."""
    tag = f"{system}-c{conc}"
    before = reset()
    t_start = time.time()
    p = start_worker(port, system, conc, tag)
    extra = on_start(p) if on_start else None
    after, ok = None, False
    while time.time() - t_start < timeout:
        if DONE.exists() and DONE.stat().st_size >= n * REC:
            after, ok = snapshot(), True
            break
        if p.poll() is not None:
            break
        time.sleep(0.005)
    if after is None:
        after = snapshot()
    usage = stop_worker(p)
    rec = dict(kind=kind, sys=system, conc=conc, n=n, rep=rep, worker_rc=p.returncode)
    if usage is not None:
        cpu = usage.ru_utime + usage.ru_stime
        rec.update(worker_cpu_s=cpu, worker_cpu_ms_per_job=cpu * 1000 / n, worker_max_rss_mb=usage.ru_maxrss / 1024)
    fin = finish_times()
    rec["done"] = len(fin)
    if extra is not None:
        rec["extra"] = extra
    if not ok:
        tail = (WORK / f"worker-{tag}.log").read_text()[-600:]
        rec["error"] = f"only {len(fin)}/{n} jobs finished within {timeout:.0f}s (rc={p.returncode}): {tail}"
        return log(rec)
    rec.update(first_job_after_s=fin[0] - t_start, drain_s=fin[-1] - fin[0],
               jobs_per_s=(n - 1) / max(fin[-1] - fin[0], 1e-9), **stat_delta(before, after, n))
    return log(rec)


# ------------------------------------------------------------------------------- plan
def drain_plan(system: str, args) -> list[int]:
    if system == "bullpen":
        return args.bullpen_conc
    if system == "node":
        return args.node_conc
    return args.huey_conc


def steps(system: str, args) -> list[int]:
    """A system's drains in the order they run: concurrency 1 first (after the single enqueue),
    then the others from the highest concurrency down."""
    plan = drain_plan(system, args)
    return [plan[0], *sorted(plan[1:], reverse=True)]


def main_phase(port: int, args) -> None:
    """Step by step, every system in turn (the starting one rotating per repetition): step 1 is
    each system's single enqueue and concurrency-1 drain, back to back, step 2 its bulk enqueue
    and highest-concurrency drain, and so on, so that the runs a ratio compares are minutes
    closer than if each system ran all its steps before the next (the machine's speed drifts)."""
    systems = args.only
    for rep in range(1, args.reps + 1):
        order = systems[(rep - 1) % len(systems):] + systems[:(rep - 1) % len(systems)]
        print(f"== repetition {rep}/{args.reps}: {', '.join(order)}", flush=True)
        plans = {system: steps(system, args) for system in order}
        for j in range(max(map(len, plans.values()))):
            for system in order:
                if j >= len(plans[system]):
                    continue
                mode = "bulk" if j > 0 and SYSTEMS[system]["bulk"] else "single"
                flush()
                if run_enqueue(port, system, mode, args.n, rep):
                    run_drain(port, system, plans[system][j], args.n, rep, args.timeout)


def later_phases(port: int, args, best: dict[str, int]) -> None:
    """After the throughput runs, each system at its best concurrency, interleaved per
    repetition: add -> start latency at steady loads and launch -> first job (bench/latency.py,
    every system), then a drain under a global rate limit and scheduler lateness
    (bench/features.py, Bullpen and Node BullMQ)."""
    systems = list(args.only)
    for rep in range(1, args.reps + 1):
        for system in systems[(rep - 1) % len(systems):] + systems[:(rep - 1) % len(systems)]:
            ctx = argparse.Namespace(port=port, rep=rep, R=R, adapter=adapter, env=env, log=log, flush=flush,
                                     run_enqueue=run_enqueue, run_drain=run_drain, finish_times=finish_times,
                                     start_worker=start_worker, stop_worker=stop_worker, DONE=DONE, REC=REC)
            conc = best.get(system, 1)
            for rate in args.rates:
                latency.latency_run(ctx, system, conc, rate, args.latency_s)
            if args.startup:
                latency.startup_run(ctx, system, conc)
            if system not in ("bullpen", "node"):
                continue
            if args.rate_limit:
                features.rate_limit_phase(ctx, system, conc, args.rate_limit, args.rate_limit * 5)
            if args.lateness:
                features.lateness_phase(ctx, system, conc, args.lateness)


def best_concurrency(records: list[dict]) -> dict[str, int]:
    """Per system, the drain concurrency with the highest median jobs/s."""
    drains: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in records:
        if r["kind"] == "drain" and "jobs_per_s" in r:
            drains[(r["sys"], r["conc"])].append(r["jobs_per_s"])
    best: dict[str, int] = {}
    for (system, conc), xs in drains.items():
        if system not in best or med(xs) > med(drains[(system, best[system])]):
            best[system] = conc
    return best


def profile_phase(port: int, conc: int, args) -> None:
    """One Bullpen drain with py-spy attached (--gil: only the thread holding the GIL is
    sampled, i.e. where the worker's Python CPU goes). Writes results/profile-bullpen.txt."""
    spy = venv("tools", [PYSPY_PIN]) / "bin" / "py-spy"
    raw = WORK / "profile-bullpen.raw"
    if raw.exists():
        raw.unlink()
    flush()
    if not run_enqueue(port, "bullpen", "bulk", args.n, 0):
        return
    holder = {}

    def attach(p):
        holder["spy"] = subprocess.Popen([str(spy), "record", "--pid", str(p.pid), "--rate", "1000", "--gil",
                                          "--nonblocking", "--format", "raw", "-o", str(raw)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return None

    rec = run_drain(port, "bullpen", conc, args.n, 0, args.timeout, kind="profile", on_start=attach)
    try:
        holder["spy"].wait(30)
    except subprocess.TimeoutExpired:
        holder["spy"].send_signal(signal.SIGINT)
        holder["spy"].wait(10)
    if not raw.exists():
        print("py-spy wrote no profile (ptrace not permitted?)", flush=True)
        return
    self_t, incl, total = fold_pyspy(raw)
    lines = [f"# Bullpen worker, concurrency={conc}, N={args.n}: py-spy --gil samples (GIL holder only)",
             f"# drain: {rec.get('jobs_per_s', 0):.0f} jobs/s, worker CPU {rec.get('worker_cpu_ms_per_job', 0):.3f}"
             f" ms/job; {total} samples at 1000 Hz (start-up imports included)", "", "## self time (top 25)"]
    lines += [f"{100 * v / total:5.1f}%  {k}" for k, v in self_t.most_common(25)]
    lines += ["", "## inclusive time (top 40)"]
    lines += [f"{100 * v / total:5.1f}%  {k}" for k, v in incl.most_common(40)]
    (OUT / "profile-bullpen.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:45]), flush=True)


# ------------------------------------------------------------------------------- report
def fold_pyspy(raw: Path) -> tuple[Counter, Counter, int]:
    """py-spy's collapsed stacks -> (self samples, inclusive samples per frame, total samples)."""
    self_t: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():  # e.g. a line cut off when py-spy was stopped
            continue
        c = int(count)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [f.replace(str(ROOT) + "/", "").replace(sys.prefix, "<py>") for f in frames]
        total += c
        self_t[frames[-1]] += c
        for f in set(frames):
            incl[f] += c
    return self_t, incl, total


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def spread(xs, digits=0):
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(med(xs), digits)} [{fmt(min(xs), digits)}–{fmt(max(xs), digits)}]"


def report(records: list[dict], args, meta: dict) -> str:
    enq = defaultdict(list)
    drains = defaultdict(list)
    for r in records:
        if r.get("error"):
            continue
        if r["kind"] == "enqueue":
            enq[(r["sys"], r["mode"])].append(r)
        elif r["kind"] == "drain":
            drains[(r["sys"], r["conc"])].append(r)
    col = lambda rs, k: [r[k] for r in rs if k in r]  # noqa: E731
    best = {}
    for system in args.only:
        confs = [(c, med(col(rs, "jobs_per_s"))) for (s, c), rs in drains.items() if s == system]
        confs = [x for x in confs if x[1] is not None]
        if confs:
            best[system] = max(confs, key=lambda x: x[1])[0]

    out = ["# Throughput: Bullpen vs Node BullMQ vs huey", "",
           f"Measured {meta['date']} by `python bench/throughput.py {' '.join(meta['argv'])}` "
           f"(N={args.n:,} jobs, {args.reps} repetition(s), systems interleaved; medians [min–max]).",
           f"{meta['machine']}; load average (1 min) during the run: median {meta['load_med']:.2f}, "
           f"max {meta['load_max']:.2f}.",
           f"Redis {meta['redis']} (private, no persistence), Python {meta['python']}, Node {meta['node']}; "
           f"{meta['versions']}.", ""]

    out += ["## Summary", "",
            "| system | enqueue jobs/s: single · bulk | process jobs/s: c=1 | process jobs/s: best (c) "
            "| add: cmds (Lua) /job | process at best: cmds (Lua) /job | reads/job | Redis CPU µs/job "
            "| worker CPU ms/job |",
            "|---|---|---|---|---|---|---|---|---|"]
    for system in args.only:
        single, bulk = enq.get((system, "single"), []), enq.get((system, "bulk"), [])
        c1 = drains.get((system, 1), [])
        b = best.get(system)
        bs = drains.get((system, b), []) if b is not None else []
        bulk_s = spread(col(bulk, "jobs_per_s")) if SYSTEMS[system]["bulk"] else "n/a (no bulk API)"
        out.append(
            f"| {SYSTEMS[system]['label']} | {spread(col(single, 'jobs_per_s'))} · {bulk_s} "
            f"| {spread(col(c1, 'jobs_per_s'))} | **{spread(col(bs, 'jobs_per_s'))}** (c={b}) "
            f"| {fmt(med(col(single, 'cmds_per_job')), 1)} ({fmt(med(col(single, 'lua_per_job')), 2)}) "
            f"| {fmt(med(col(bs, 'cmds_per_job')), 1)} ({fmt(med(col(bs, 'lua_per_job')), 2)}) "
            f"| {fmt(med(col(bs, 'reads_per_job')), 2)} | {fmt(med(col(bs, 'redis_cpu_us_per_job')))} "
            f"| {fmt(med(col(bs, 'worker_cpu_ms_per_job')), 3)} |")
    out.append("")

    # ratios, as ratio of medians and the per-repetition range
    def per_rep(system, conc):
        return {r["rep"]: r["jobs_per_s"] for r in drains.get((system, conc), [])}

    def ratio_line(name, a, b, target):
        if a[1] is None or b[1] is None:
            return None
        ra, rb = per_rep(*a), per_rep(*b)
        ma, mb = med(list(ra.values())), med(list(rb.values()))
        if not ma or not mb:
            return None
        reps = [ra[k] / rb[k] for k in ra if k in rb]
        rng = f" [{min(reps):.2f}–{max(reps):.2f} per repetition]" if len(reps) > 1 else ""
        met = "met" if target is not None and ma / mb >= target else "**not met**"
        verdict = "" if target is None else f" — target ≥ {target:.1f}×: {met}"
        return f"* {name}: **{ma / mb:.2f}×**{rng}{verdict}"

    lines = [ratio_line("Bullpen best / Node BullMQ best", ("bullpen", best.get("bullpen")),
                        ("node", best.get("node")), 1.0),
             ratio_line("Bullpen best / huey best", ("bullpen", best.get("bullpen")), ("huey", best.get("huey")), 3.0),
             ratio_line("Bullpen c=1 / Node BullMQ c=1", ("bullpen", 1), ("node", 1), None),
             ratio_line("Bullpen c=1 / huey c=1", ("bullpen", 1), ("huey", 1), None)]
    def enqueues_per_rep(rs):
        reps = defaultdict(list)
        for r in rs:
            reps[r["rep"]].append(r["jobs_per_s"])
        return {rep: med(values) for rep, values in reps.items()}

    def enqueue_ratio(name, a, b, target):
        ra, rb = enqueues_per_rep(enq.get(a, [])), enqueues_per_rep(enq.get(b, []))  # several per repetition
        if not ra or not rb:
            return None
        ma, mb = med(col(enq[a], "jobs_per_s")), med(col(enq[b], "jobs_per_s"))
        reps = [ra[k] / rb[k] for k in ra if k in rb]
        rng = f" [{min(reps):.2f}–{max(reps):.2f} per repetition]" if len(reps) > 1 else ""
        met = "met" if ma / mb >= target else "**not met**"
        return f"* {name}: **{ma / mb:.2f}×**{rng} — target ≥ {target:.1f}×: {met}"

    lines += [enqueue_ratio("Bullpen single add / Node BullMQ add", ("bullpen", "single"), ("node", "single"), 1.2),
              enqueue_ratio("Bullpen single add / huey", ("bullpen", "single"), ("huey", "single"), 1.0),
              enqueue_ratio("Bullpen add_bulk / Node BullMQ addBulk", ("bullpen", "bulk"), ("node", "bulk"), 2.0)]
    lines = [line for line in lines if line]
    if lines:
        out += ["## Ratios (jobs/s, ratio of medians)", "", *lines, ""]

    out += ["## Every drain configuration", "",
            "| system | c | process jobs/s | cmds/job | Lua calls/job | reads/job | Redis CPU µs/job "
            "| worker CPU ms/job | worker max RSS MB | top commands per job |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for (system, conc), rs in sorted(drains.items(), key=lambda kv: (args.only.index(kv[0][0]), kv[0][1])):
        top = rs[-1].get("top", {})
        top_s = ", ".join(f"{k} {v:g}" for k, v in list(top.items())[:6])
        out.append(f"| {SYSTEMS[system]['label']} | {conc} | {spread(col(rs, 'jobs_per_s'))} "
                   f"| {fmt(med(col(rs, 'cmds_per_job')), 1)} | {fmt(med(col(rs, 'lua_per_job')), 2)} "
                   f"| {fmt(med(col(rs, 'reads_per_job')), 2)} | {fmt(med(col(rs, 'redis_cpu_us_per_job')))} "
                   f"| {fmt(med(col(rs, 'worker_cpu_ms_per_job')), 3)} | {fmt(med(col(rs, 'worker_max_rss_mb')))} "
                   f"| {top_s} |")
    out += ["", "## Enqueue", "",
            "| system | mode | jobs/s | cmds/job | Lua calls/job | reads/job | Redis CPU µs/job |",
            "|---|---|---|---|---|---|---|"]
    for (system, mode), rs in sorted(enq.items(), key=lambda kv: (args.only.index(kv[0][0]), kv[0][1] != "single")):
        out.append(f"| {SYSTEMS[system]['label']} | {mode} | {spread(col(rs, 'jobs_per_s'))} "
                   f"| {fmt(med(col(rs, 'cmds_per_job')), 1)} | {fmt(med(col(rs, 'lua_per_job')), 2)} "
                   f"| {fmt(med(col(rs, 'reads_per_job')), 2)} | {fmt(med(col(rs, 'redis_cpu_us_per_job')))} |")
    out += ["", *latency.report(records, args.only, {k: v["label"] for k, v in SYSTEMS.items()}, spread)]
    out += [*features.report(records, args.only, {k: v["label"] for k, v in SYSTEMS.items()}, spread)]
    errors = [r for r in records if r.get("error")]
    out += [f"Failures: {len(errors)}." + "".join(f"\n* {e['kind']} {e['sys']} c={e.get('conc', '-')} "
                                                       f"rep {e['rep']}: {e['error'][:200]}" for e in errors)]
    out += ["", "cmds/job counts every command Redis executed (commands run inside Lua scripts included), "
            "minus the harness's own INFO/CONFIG/FLUSHALL; reads/job ≈ network round trips; Redis CPU = "
            "`used_cpu_user+sys` delta / N; worker CPU = user+sys of the worker process from wait4() "
            "(start-up included) / N. Raw data: `results/throughput.jsonl`. Method: `bench/README.md`.", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------- main
def versions(args, server: EmbeddedRedis) -> dict:
    v = dict(redis=server.version, python=platform.python_version(), node="n/a", versions="")
    parts = []
    if "node" in args.only:
        v["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        where = Path(NODE_PATH)
        where = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
        parts.append(f"bullmq {NODE_PINS['bullmq']} + ioredis {NODE_PINS['ioredis']} ({where})")
    if "huey" in args.only:
        hv = subprocess.run([PY["huey"], "-c", "import huey, redis; print(huey.__version__, redis.__version__)"],
                            capture_output=True, text=True).stdout.split()
        parts.append(f"huey {hv[0]} (redis-py {hv[1]})")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    runtime = ["dashboard/worker.py", "dashboard/queue.py", "dashboard/scripts.py", "dashboard/job.py",
               "dashboard/keys.py", "dashboard/lua"]
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", *runtime], capture_output=True,
                           text=True).stdout.strip()
    bp = subprocess.run([PY["bullpen"], "-c", "import redis, importlib.util as u; "
                         "print(redis.__version__, 'hiredis' if u.find_spec('hiredis') else 'no hiredis')"],
                        capture_output=True, text=True).stdout.strip()
    interp = "" if PY["bullpen"] == sys.executable else f", interpreter {PY['bullpen']}"
    parts.insert(0, f"Bullpen at {commit or '?'}{' + uncommitted runtime changes' if dirty else ''} "
                    f"(redis-py {bp}{interp})")
    v["versions"] = "; ".join(parts)
    return v


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, help="jobs per enqueue and per drain (default 20000; --quick 5000)")
    ap.add_argument("--reps", type=int, help="repetitions (default 3; --quick 1)")
    ap.add_argument("--only", default="bullpen,node,huey", help="comma-separated: bullpen,node,huey")
    ap.add_argument("--quick", action="store_true", help="smoke run: N=5000, 1 rep, Bullpen sweep 1,32")
    ap.add_argument("--bullpen-conc", help="Bullpen concurrency sweep (default 1,8,32,100,200)")
    ap.add_argument("--node-conc", help="Node BullMQ concurrency sweep (default 1,100,200; 100 was its best in "
                                        "the baselines, 200 level with it on a fast machine)")
    ap.add_argument("--huey-conc", default="1,2", help="huey thread counts (baselines: 1 beat 2)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds allowed per drain")
    ap.add_argument("--profile", action="store_true",
                    help="after the runs, one Bullpen drain at its best concurrency under py-spy --gil")
    ap.add_argument("--profile-only", type=int, metavar="C", help="only the py-spy drain, at concurrency C")
    ap.add_argument("--bullpen-python", default=sys.executable,
                    help="interpreter for the Bullpen adapter (default: this one), e.g. a venv with hiredis")
    ap.add_argument("--hiredis", action="store_true",
                    help="experiment: run the Bullpen adapter in bench/.work/v-bullpen-hiredis (the project's "
                         "redis pin + hiredis " + HIREDIS_PIN.split("==")[1] + ")")
    ap.add_argument("--rates", default="50,200", help="latency phase loads in jobs/s ('' skips the phase)")
    ap.add_argument("--latency-s", type=float, default=10, help="seconds of steady load per latency run")
    ap.add_argument("--no-startup", dest="startup", action="store_false", help="skip launch -> first job")
    ap.add_argument("--rate-limit", type=int, default=1000,
                    help="jobs/s of the global-rate-limit phase (5 s of jobs; default 1000; 0 skips it)")
    ap.add_argument("--lateness", type=int, default=60,
                    help="scheduler iterations (every 1 s) in the lateness phase (default 60; 0 skips it)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    args.n = args.n or (5000 if args.quick else 20000)
    args.reps = args.reps or (1 if args.quick else 3)
    args.bullpen_conc = [int(c) for c in (args.bullpen_conc or ("1,32" if args.quick else "1,8,32,100,200")).split(",")]
    if 1 not in args.bullpen_conc:
        args.bullpen_conc.insert(0, 1)
    args.node_conc = [int(c) for c in (args.node_conc or ("1,100" if args.quick else "1,100,200")).split(",")]
    if 1 not in args.node_conc:
        args.node_conc.insert(0, 1)
    args.huey_conc = [int(c) for c in args.huey_conc.split(",")]
    if 1 not in args.huey_conc:
        args.huey_conc.insert(0, 1)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.rates = [float(x) for x in args.rates.split(",") if x.strip()]
    for s in args.only:
        if s not in SYSTEMS:
            ap.error(f"--only: unknown system {s!r} (choose from {', '.join(SYSTEMS)})")
    if args.profile_only:
        args.only = ["bullpen"]
    return args


def compile_bullpen() -> None:
    """Byte-compile the repo's package as pip does for an installed one (huey, redis-py): a worker
    launched from a source tree where PYTHONDONTWRITEBYTECODE is set would otherwise compile every
    module at each launch, which the start-up row would count and a deployment never pays."""
    sh([PY["bullpen"], "-m", "compileall", "-q", str(ROOT / "dashboard")])


def main() -> None:
    global R, OUT, RAW, NODE_PATH
    args = parse_args()
    OUT = Path(args.out)
    OUT.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    PY["bullpen"] = args.bullpen_python
    if args.hiredis:
        pin = next(line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                   if line.strip().startswith("redis=="))
        PY["bullpen"] = str(venv("bullpen-hiredis", [pin, HIREDIS_PIN]) / "bin" / "python")
    if "huey" in args.only:
        PY["huey"] = huey_python()
    if "node" in args.only:
        NODE_PATH = str(node_modules())
    compile_bullpen()
    with EmbeddedRedis() as server:  # free port, persistence off; stopped on exit
        print(f"private redis-server {server.version} on port {server.port} (pid {server.pid})", flush=True)
        R = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            if args.profile_only:
                RAW = WORK / "profile.jsonl"
                profile_phase(server.port, args.profile_only, args)
                return
            RAW = OUT / "throughput.jsonl"
            RAW.write_text("")  # one run per file: medians never mix runs
            main_phase(server.port, args)
            records = [json.loads(line) for line in RAW.read_text().splitlines() if line.strip()]
            later_phases(server.port, args, best_concurrency(records))
            records = [json.loads(line) for line in RAW.read_text().splitlines() if line.strip()]
            loads = [r["loadavg1"] for r in records]
            meta = dict(date=time.strftime("%Y-%m-%d %H:%M"), argv=sys.argv[1:],
                        machine=f"{os.cpu_count()} CPUs ({platform.machine()})",
                        load_med=med(loads) or 0, load_max=max(loads or [0]), **versions(args, server))
            md = report(records, args, meta)
            (OUT / "throughput.md").write_text(md)
            print("\n" + md, flush=True)
            if args.profile:
                drains = defaultdict(list)
                for r in records:
                    if r["kind"] == "drain" and r["sys"] == "bullpen" and "jobs_per_s" in r:
                        drains[r["conc"]].append(r["jobs_per_s"])
                conc = max(drains, key=lambda c: med(drains[c])) if drains else 32
                profile_phase(server.port, conc, args)
        finally:
            R.close()
            flush_file = DONE
            if flush_file.exists():
                flush_file.unlink()
    print(f"done in {time.time() - t0:.0f} s; results: {OUT / 'throughput.md'}", flush=True)


if __name__ == "__main__":
    main()
