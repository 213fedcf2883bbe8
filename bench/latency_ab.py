"""add -> start latency of one checkout's worker, in-process, for A/B runs of two checkouts.

    python bench/latency_ab.py ROOT [--rate 50] [--n 250] [--concurrency 100]

Starts a private redis-server, a worker of ROOT's Bullpen (a no-op handler at the given
concurrency) in a thread, warms it with one job, then adds jobs one by one at ``--rate`` per
second from this process and prints p50/p90/p99/max of job start minus the add call's time (each
job's own record) and which threads ran the jobs. Run it alternately for two checkouts (``git
worktree add /tmp/before <commit>``): the medians are comparable within such a series only; the
side-by-side numbers with peers are ``bench/throughput.py``'s.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
import threading
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("root", type=Path)
ap.add_argument("--rate", type=float, default=50)
ap.add_argument("--n", type=int, default=250)
ap.add_argument("--concurrency", type=int, default=100)
args = ap.parse_args()
sys.path.insert(0, str(args.root.resolve()))

from dashboard import Job, Queue, Worker  # noqa: E402
from dashboard.redis_server import EmbeddedRedis  # noqa: E402

with EmbeddedRedis() as server:
    url = f"redis://127.0.0.1:{server.port}/0"
    q = Queue("latency", redis_url=url)
    lags: list[float] = []
    threads: collections.Counter[str] = collections.Counter()

    def handler(job: Job) -> None:
        lags.append(time.time() - job.data["t"])
        threads[threading.current_thread().name] += 1

    w = Worker("latency", handler, redis_url=url, concurrency=args.concurrency)
    t = threading.Thread(target=w.run)
    t.start()
    q.add("warm", {"t": time.time()})
    time.sleep(0.5)
    lags.clear()
    threads.clear()
    t0 = time.perf_counter()
    for i in range(args.n):
        pause = t0 + i / args.rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        q.add("x", {"t": time.time()})
    time.sleep(0.5)
    w.close()
    t.join(10)
    ms = sorted(lag * 1000 for lag in lags)
    at = {p: ms[min(len(ms) - 1, int(p * len(ms)))] for p in (0.9, 0.99)}
    print(f"{args.root}: {len(ms)} jobs at {args.rate:g}/s, c={args.concurrency}: p50 {statistics.median(ms):.2f} "
          f"p90 {at[0.9]:.2f} p99 {at[0.99]:.2f} max {ms[-1]:.2f} ms; run by {dict(threads.most_common(3))}")
