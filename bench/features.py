"""BullMQ-feature phases of bench/throughput.py: a drain under a global rate limit, and the
lateness of job-scheduler iterations, for Bullpen and Node BullMQ side by side.

Both phases use each system's own API through its adapter (`limit`, `schedule` commands of
bench/py/systems/bullpen.py and bench/node/qb.js) and read the results the same way for both:
finish times from the adapters' done file (rate limit) and the jobs' own `processedOn` against
the iteration time in their ids `repeat:<scheduler>:<millis>` (lateness). Imported by
throughput.py, which owns the private Redis; nothing here starts or touches another server.
"""
from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

SCHEDULER_ID = "bench-every"


def _adapter_run(ctx: Any, system: str, cmd: str, args: list[str]) -> bool:
    p = subprocess.run(ctx.adapter(system, cmd, args), env=ctx.env(ctx.port), capture_output=True,
                       text=True, timeout=120)
    if p.returncode:
        ctx.log(dict(kind=cmd, sys=system, rep=ctx.rep, error=(p.stderr or p.stdout)[-800:]))
        return False
    return True


def held_rate(times: list[float], limit: int) -> float:
    """Jobs per second after the first limiter window: a limit of L per second lets L jobs
    run at once, then L more each second, so n jobs span (n - L) / L seconds."""
    return (len(times) - limit) / max(times[-1] - times[0], 1e-9)


def rate_limit_phase(ctx: Any, system: str, conc: int, limit: int, n: int) -> None:
    """Enqueue n jobs in bulk, set a global limit of `limit` jobs per second, drain at `conc`."""
    ctx.flush()
    if not ctx.run_enqueue(ctx.port, system, "bulk", n, ctx.rep, record=False):  # set-up, not a measurement
        return
    if not _adapter_run(ctx, system, "limit", ["--rate", str(limit)]):
        return
    ctx.run_drain(ctx.port, system, conc, n, ctx.rep, timeout=n / limit * 3 + 30, kind="ratelimit")
    fin = ctx.finish_times()
    if len(fin) == n:
        rec2 = dict(kind="ratelimit-held", sys=system, conc=conc, rep=ctx.rep, limit=limit,
                    jobs_per_s=held_rate(fin, limit), drain_s=fin[-1] - fin[0])
        ctx.log(rec2)


def lateness_phase(ctx: Any, system: str, conc: int, iterations: int) -> None:
    """A scheduler every 1 s made with the system's own API; one worker runs `iterations`
    iterations; lateness = processedOn - the iteration's time in its id."""
    ctx.flush()
    worker = ctx.start_worker(ctx.port, system, conc, f"{system}-sched")
    try:
        time.sleep(1.0)  # worker up before the first iteration is due
        if not _adapter_run(ctx, system, "schedule", []):
            return
        deadline = time.time() + iterations + 15
        while time.time() < deadline and _completed(ctx.R, system) < iterations:
            time.sleep(0.25)
    finally:
        ctx.stop_worker(worker)
    late = _lateness_ms(ctx.R)[:iterations]
    rec = dict(kind="lateness", sys=system, conc=conc, rep=ctx.rep, iterations=len(late))
    if len(late) < iterations:
        rec["error"] = f"only {len(late)}/{iterations} iterations completed"
    else:
        q = statistics.quantiles(late, n=100, method="inclusive")
        rec.update(p50_ms=statistics.median(late), p99_ms=q[98], max_ms=max(late), min_ms=min(late))
    ctx.log(rec)


def _completed(r: Any, system: str) -> int:
    return int(r.zcard("bull:qb:completed"))


def _lateness_ms(r: Any) -> list[float]:
    ids = [i.decode() for i in r.zrange("bull:qb:completed", 0, -1)]
    ids = sorted((i for i in ids if i.startswith(f"repeat:{SCHEDULER_ID}:")), key=lambda i: int(i.rsplit(":", 1)[1]))
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(f"bull:qb:{job_id}", "processedOn")
    started = pipe.execute()
    return [float(s) - int(i.rsplit(":", 1)[1]) for i, s in zip(ids, started) if s is not None]


def report(records: list[dict], systems: list[str], labels: dict[str, str],
           spread: Callable[..., str]) -> list[str]:
    """Markdown rows for the two phases (medians [min–max] over repetitions)."""
    out: list[str] = []
    rate = [r for r in records if r.get("kind") == "ratelimit-held" and not r.get("error")]
    late = [r for r in records if r.get("kind") == "lateness" and not r.get("error")]
    if rate:
        limit = rate[0]["limit"]
        out += [f"## Under a global rate limit of {limit:,} jobs/s", "",
                "Each system sets the limit with its own API (`set_global_rate_limit`, `setGlobalRateLimit`) "
                "on 5 s worth of pre-enqueued jobs; one worker at its best concurrency drains them. "
                "Held rate = (jobs − limit) / (last − first finish): the first window's jobs run at once, "
                "then `limit` more per second; a system holding the limit shows about the limit.", "",
                "| system | c | held jobs/s | drain s |", "|---|---|---|---|"]
        for system in systems:
            rs = [r for r in rate if r["sys"] == system]
            if rs:
                out.append(f"| {labels[system]} | {rs[0]['conc']} | {spread([r['jobs_per_s'] for r in rs])} "
                           f"| {spread([r['drain_s'] for r in rs], 2)} |")
        out.append("")
    if late:
        out += ["## Job scheduler lateness (every 1 s)", "",
                "A scheduler made with each system's own API (`upsert_job_scheduler`, `upsertJobScheduler`); "
                "lateness = the job's `processedOn` − the iteration time in its id; one idle worker.", "",
                "| system | iterations | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
        for system in systems:
            rs = [r for r in late if r["sys"] == system]
            if rs:
                out.append(f"| {labels[system]} | {rs[0]['iterations']} | {spread([r['p50_ms'] for r in rs], 1)} "
                           f"| {spread([r['p99_ms'] for r in rs], 1)} | {spread([r['max_ms'] for r in rs], 1)} |")
        out.append("")
    return out
