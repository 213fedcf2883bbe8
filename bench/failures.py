#!/usr/bin/env python3
"""Failure clusters benchmark: the failures page of a queue with 50,000 failed jobs.

    python bench/failures.py              # 50,000 failed jobs
    python bench/failures.py --failed 5000
    (bench/dashboard.py runs it with --json and reports its rows)

What it does:
  * starts its own redis-server (EmbeddedRedis: free port, 127.0.0.1, no persistence) and
    never talks to any other Redis;
  * seeds queue ``send-email`` with failed jobs exactly as bench/dashboard.py does (real Python
    tracebacks of five failure kinds from a fake mail application, per-job recipients in the
    messages, 3 traces per job, finishedOn spread over 4 hours);
  * serves the app in this process (Flask test client: no network; the time measured is the
    server's own time for the request) and loads /queues/send-email/failures: the first load
    (the index is built), then 10 more loads (the index is only checked), then again after
    200 more jobs failed (the index is extended) and after 500 jobs were retried by another
    tool (the index is reconciled);
  * meanwhile a separate process PINGs Redis every 5 ms (the longest round trip of each step is the
    longest stall a client saw then) and SLOWLOG records every command of 1 ms or more (the longest is reported).
The machine is shared: numbers vary from run to run; the report says the load average.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT, HERE)] + [str(HERE)]

import redis  # noqa: E402

from dashboard.queue import Queue  # noqa: E402
from dashboard.redis_server import EmbeddedRedis  # noqa: E402


def load_seeder():  # bench/dashboard.py seeds failed jobs the way our worker leaves them
    spec = importlib.util.spec_from_file_location("bench_dashboard", HERE / "dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Probe:
    """PING every 5 ms from a process of its own (a thread here would also measure this
    process's GIL); remembers the longest round trip."""

    def __init__(self, url: str) -> None:
        self._longest = multiprocessing.Value("d", 0.0)
        self._count = multiprocessing.Value("q", 0)
        self._running = multiprocessing.Value("b", 1)
        self._process = multiprocessing.Process(target=self._run, args=(url,), daemon=True)

    def start(self) -> None:
        self._process.start()

    def _run(self, url: str) -> None:
        client = redis.Redis.from_url(url)
        while self._running.value:
            t = time.perf_counter()
            client.ping()
            ms = (time.perf_counter() - t) * 1000
            with self._longest.get_lock():
                self._longest.value = max(self._longest.value, ms)
            self._count.value += 1
            time.sleep(0.005)

    @property
    def longest(self) -> float:
        return float(self._longest.value)

    @longest.setter
    def longest(self, value: float) -> None:
        self._longest.value = value

    @property
    def count(self) -> int:
        return int(self._count.value)

    def stop(self) -> None:
        self._running.value = 0
        self._process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failed", type=int, default=50_000)
    parser.add_argument("--json", help="write the rows here as JSON (bench/dashboard.py reads them) "
                                       "instead of results/failures.md")
    args = parser.parse_args()
    bd = load_seeder()
    with EmbeddedRedis() as server:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        bd.R = r
        print(f"private redis-server {server.version} on port {server.port}; seeding {args.failed:,} failed jobs ...",
              flush=True)
        seeded = bd.seed(0, args.failed, 0)
        print(f"  seeded in {seeded['seed_s']:.1f} s; trace field {seeded['trace_bytes']:,} bytes", flush=True)

        from app import create_app
        from dashboard.config import Settings

        app = create_app(Settings(redis_url=server.url, secret_key="bench"))
        client = app.test_client()
        path = f"/queues/{bd.QUEUE}/failures"
        r.config_set("slowlog-log-slower-than", 1000)
        r.config_set("slowlog-max-len", 100_000)
        r.slowlog_reset()
        probe = Probe(server.url)
        probe.start()

        complete = [True]

        def load(label: str) -> float:
            t = time.perf_counter()
            response = client.get(path)
            ms = (time.perf_counter() - t) * 1000
            assert response.status_code == 200, response.status_code
            html = response.get_data(as_text=True)
            complete[0] = 'id="index-progress"' not in html
            assert complete[0] or label in ("first", "partial"), label
            return ms

        def until_complete(label: str) -> str:
            first = load("partial")
            loads, total = 1, first
            while not complete[0]:  # what the page's 1 s poll does until the index is complete
                total += load("partial")
                loads += 1
            text = f"{first:.0f} ms" if loads == 1 else f"{first:.0f} ms, complete after {loads} loads ({total:.0f} ms)"
            print(f"  {label}: {text}", flush=True)
            return text

        rows: list[tuple[str, str, str]] = []  # measurement, result, longest PING round trip meanwhile

        def stall() -> str:  # the longest PING since the last call, then start over
            longest, probe.longest = probe.longest, 0.0
            return f"{longest:.1f} ms"

        stall()
        first = load("first")
        rows.append(("first load (index built from nothing, within the page's 0.9 s budget)",
                     f"{first:.0f} ms, {'complete' if complete[0] else 'partial'}", stall()))
        loads, total = 1, first
        while not complete[0]:  # what the page's 1 s poll does until the index is complete
            total += load("first")
            loads += 1
        rows.append(("index complete after", f"{loads} load(s), {total:.0f} ms of server time in all",
                     stall() if loads > 1 else "(the first load)"))
        print(f"  first load {first:.0f} ms; complete after {loads} loads, {total:.0f} ms", flush=True)
        again = [load("again") for _ in range(10)]
        rows.append(("repeat load, median of 10 [max]", f"{statistics.median(again):.1f} ms [{max(again):.1f}]",
                     stall()))

        q = Queue(bd.QUEUE, connection=r)
        newest = int(r.zrevrange(q.keys.failed, 0, 0, withscores=True)[0][1])
        ids = [text.decode() for text in r.zrange(q.keys.failed, 0, 199)]
        pipe = r.pipeline(transaction=False)
        for n, job_id in enumerate(ids):  # 200 of them fail again, later than all others
            pipe.zadd(q.keys.failed, {job_id: newest + 1000 + n})
        pipe.execute()
        stall()
        rows.append(("load after 200 more failures (extend)", until_complete("extend"), stall()))
        for job_id in [t.decode() for t in r.zrange(q.keys.failed, 1000, 1499)]:
            q.retry(job_id)  # retried by another path: the index must notice
        stall()
        rows.append(("load after 500 retried elsewhere (reconcile)", until_complete("reconcile"), stall()))
        again2 = [load("again") for _ in range(10)]
        rows.append(("repeat load after that, median of 10", f"{statistics.median(again2):.1f} ms", stall()))

        # A throttled re-drive of 10,000 of them (2,000 jobs/s; no workers: nothing fails again).
        from dashboard.redrive import Redrive, RedriveControl, RedrivePlan

        plan = RedrivePlan(cutoff=q.clock(), rate=2000)
        t = time.perf_counter()
        run = Redrive(q, plan, RedriveControl(r, "bull", "bench"), "bench")
        moved = 0
        target = 10_000

        def progress(n: int) -> None:
            if n >= target:
                RedriveControl(r, "bull", "bench").request("cancel", "bench")

        try:
            moved = run.run(progress)
        except Exception:  # noqa: BLE001 - the cancel that stops it at 10,000
            moved = run.moved
        seconds = time.perf_counter() - t
        rows.append(("throttled re-drive at 2,000 jobs/s (no workers: none fails again)",
                     f"{moved:,} jobs in {seconds:.2f} s ({moved / seconds:,.0f}/s)", stall()))
        pings = probe.count
        probe.stop()
        slow = r.slowlog_get(100_000)
        longest = max(slow, key=lambda e: e["duration"], default=None)
        from dashboard import scripts as bp_scripts

        names = {sha.encode(): name for name, sha in bp_scripts._SHAS.items()}
        print("slowest commands (SLOWLOG, ≥ 1 ms):")
        for e in sorted(slow, key=lambda e: -e["duration"])[:8]:
            parts = e["command"].split(b" ") if isinstance(e["command"], bytes) else [b""]
            what = names.get(parts[1], parts[1]) if parts[0].upper() == b"EVALSHA" and len(parts) > 1 else parts[0]
            print(f"  {e['duration'] / 1000:7.1f} ms  {what!r}")
        print(f"  {len(slow)} commands of 1 ms or more in all")
        if longest:
            parts = longest["command"].split(b" ") if isinstance(longest["command"], bytes) else [b""]
            command = (names.get(parts[1], "EVALSHA") if parts[0].upper() == b"EVALSHA" and len(parts) > 1
                       else parts[0].decode(errors="replace"))
            rows.append(("longest Redis command in the whole run (SLOWLOG ≥ 1 ms)",
                         f"{longest['duration'] / 1000:.1f} ms: {command}", f"{pings:,} PINGs in all"))
        else:
            rows.append(("longest Redis command in the whole run (SLOWLOG ≥ 1 ms)", "none ≥ 1 ms",
                         f"{pings:,} PINGs in all"))
        load_avg = Path("/proc/loadavg").read_text().split()[0]
        print(f"\n{args.failed:,} failed jobs; load average {load_avg} (shared 2-core machine)\n")
        lines = [f"# Failure clusters: {args.failed:,} failed jobs", "",
                 f"`python bench/failures.py --failed {args.failed}` on "
                 f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
                 f", Redis {server.version}, load average {load_avg} (a shared 2-core machine: other engineers' "
                 "tests ran meanwhile; times vary from run to run). Server time = the Flask app's own time "
                 "for the request, in this process. The last column is the longest round trip of a PING sent every "
                 "5 ms from another process during that step: the longest Redis stall a client saw.", "",
                 "| measurement | result | longest PING meanwhile |", "|---|---|---|"]
        lines += [f"| {label} | {value} | {ping} |" for label, value, ping in rows]
        print("\n".join(lines[4:]))
        if args.json:
            Path(args.json).write_text(json.dumps(dict(failed=args.failed, rows=rows, load=load_avg)))
        elif args.failed == 50_000:
            (HERE / "results" / "failures.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
