"""Latency and start-up phases of bench/throughput.py, for every system in the run.

* latency: one worker (the system's best concurrency from the throughput runs) is started and
  warmed with one job; then a producer adds jobs one by one at a steady rate (`--rates`, default
  50 and 200 jobs/s, for `--latency-s` seconds); each job's add → start latency is what the
  adapters' `mark()` records (the job body runs first thing, so start ≈ finish). p50/p90/p99/max.
* startup: one job is enqueued, then a worker process is launched; launch → that job finished
  (imports, connection, first fetch): the worker's start-up as a user sees it.
Imported by throughput.py, which owns the private Redis and the adapters.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import time
from typing import Any


def _records(ctx: Any) -> list[tuple[float, float]]:
    if not ctx.DONE.exists():
        return []
    out = []
    for line in ctx.DONE.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.append((float(parts[0]), float(parts[1])))
    return out


def _wait_for(ctx: Any, count: int, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ctx.DONE.exists() and ctx.DONE.stat().st_size >= count * ctx.REC:
            return True
        time.sleep(0.005)
    return False


def latency_run(ctx: Any, system: str, conc: int, rate: float, seconds: float) -> None:
    ctx.flush()
    worker = ctx.start_worker(ctx.port, system, conc, f"{system}-lat")
    rec: dict[str, Any] = dict(kind="latency", sys=system, conc=conc, rep=ctx.rep, rate=rate)
    try:
        ctx.run_enqueue(ctx.port, system, "single", 1, ctx.rep, record=False)  # warm-up job
        if not _wait_for(ctx, 1, 60):
            rec["error"] = "the warm-up job did not finish within 60 s"
            ctx.log(rec)
            return
        n = int(rate * seconds)
        p = subprocess.run(ctx.adapter(system, "produce", ["--rate", str(rate), "--n", str(n)]),
                           env=ctx.env(ctx.port), capture_output=True, text=True, timeout=seconds * 4 + 60)
        _wait_for(ctx, n + 1, 60)
    finally:
        ctx.stop_worker(worker)
    lat = sorted(r[1] * 1000 for r in _records(ctx)[1:])
    rec.update(n=n, done=len(lat))
    res = [line for line in p.stdout.splitlines() if line.startswith("QBRESULT ")]
    if res:
        rec["producer_s"] = json.loads(res[-1][9:])["seconds"]
    if p.returncode or len(lat) < n:
        rec["error"] = (p.stderr or "")[-500:] or f"only {len(lat)}/{n} finished"
    if lat:
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        rec.update(p50_ms=statistics.median(lat), p90_ms=q[89], p99_ms=q[98], max_ms=lat[-1])
    ctx.log(rec)


def startup_run(ctx: Any, system: str, conc: int) -> None:
    ctx.flush()
    if not ctx.run_enqueue(ctx.port, system, "single", 1, ctx.rep, record=False):
        return
    t0 = time.time()
    worker = ctx.start_worker(ctx.port, system, conc, f"{system}-startup")
    ok = _wait_for(ctx, 1, 60)
    ctx.stop_worker(worker)
    rec: dict[str, Any] = dict(kind="startup", sys=system, conc=conc, rep=ctx.rep)
    recs = _records(ctx)
    if not ok or not recs:
        rec["error"] = "the job did not finish within 60 s of the launch"
    else:
        rec["launch_to_first_job_s"] = recs[0][0] - t0
    ctx.log(rec)


def report(records: list[dict], systems: list[str], labels: dict[str, str], spread: Any) -> list[str]:
    lat = [r for r in records if r.get("kind") == "latency" and not r.get("error")]
    start = [r for r in records if r.get("kind") == "startup" and not r.get("error")]
    out: list[str] = []
    if lat:
        out += ["## Latency: add → start under a steady load", "",
                "One worker (best concurrency) warmed with one job; a producer adds jobs one by one at the "
                "rate shown; latency = job start − the add call's time, from each job's own record.", "",
                "| system | c | jobs/s | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|"]
        for rate in sorted({r["rate"] for r in lat}):
            for system in systems:
                rs = [r for r in lat if r["sys"] == system and r["rate"] == rate]
                if rs:
                    cells = " | ".join(spread([r[k] for r in rs], 1) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
                    out.append(f"| {labels[system]} | {rs[0]['conc']} | {rate:g} | {cells} |")
        out.append("")
    if start:
        out += ["## Start-up: worker launch → first job finished", "",
                "| system | c | seconds |", "|---|---|---|"]
        for system in systems:
            rs = [r for r in start if r["sys"] == system]
            if rs:
                seconds = spread([r["launch_to_first_job_s"] for r in rs], 3)
                out.append(f"| {labels[system]} | {rs[0]['conc']} | {seconds} |")
        out.append("")
    return out
