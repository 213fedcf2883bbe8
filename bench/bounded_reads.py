#!/usr/bin/env python3
"""Cost of the dashboard's job reads on big jobs: listing, job page, logs (a measurement, not a test).

    python bench/bounded_reads.py            # 60 failed jobs of 5 MB data, one job of 10 MB traces + 50 MB logs
    python bench/bounded_reads.py --reps 3 --redis /path/to/redis-server

What it does:
  * starts its own redis-server (dashboard.redis_server.EmbeddedRedis: free port, 127.0.0.1,
    no persistence) and stops it at the end; it never talks to any other Redis;
  * seeds queue ``big`` with 60 failed jobs whose ``data`` is 5 MB of JSON (failedReason, three
    small traces), and job ``fat`` (failed) with 1,000 log lines of 50 KB and 10 stack traces of 1 MB;
    queue ``mid`` with 60 failed jobs of 200 KB data (short enough to be cut inside Redis);
  * times each read in this process (wall clock, ``time.perf_counter``) and, during each read,
    watches Redis with a separate probe process that PINGs every 5 ms on its own connection
    (longest round trip = the longest stall another client saw) and with SLOWLOG (threshold 0,
    longest single command, PING excluded);
  * reports what each read returned (bytes of data / traces / log text handed to the caller).

Rows the code does not have yet (the bounded API) are skipped, so the same script measures
the code before and after the change.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from app import create_app
from dashboard.config import Settings
from dashboard.queue import Queue
from dashboard.redis_server import EmbeddedRedis

try:
    from dashboard.reads import DETAIL as detail
except ImportError:  # the code before bounded reads
    detail = None

JOBS = 60
DATA_MB = 5


def probe(port: int, samples: Any, stop: Any) -> None:
    """PING every ~5 ms; append (wall time, round trip ms)."""
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=60)
    while not stop.is_set():
        wall, t = time.time(), time.perf_counter()
        r.ping()
        samples.append((wall, (time.perf_counter() - t) * 1000))
        time.sleep(0.005)


def seed_failed(r: redis.Redis, queue: str, data_bytes: int) -> None:
    blob = json.dumps({"to": "x@example.com", "attachment": "A" * data_bytes})
    trace = json.dumps(["Traceback (most recent call last):\n  File \"job.py\", line 1\nValueError: bad"] * 3)
    now = int(time.time() * 1000)
    pipe = r.pipeline(transaction=False)
    for i in range(1, JOBS + 1):
        pipe.hset(f"bull:{queue}:{i}", mapping={
            "name": "send", "data": blob, "opts": '{"attempts":3}', "timestamp": now, "delay": 0,
            "priority": 0, "processedOn": now, "finishedOn": now, "atm": 3, "ats": 3,
            "failedReason": "ValueError: bad", "stacktrace": trace})
        pipe.zadd(f"bull:{queue}:failed", {str(i): now + i})
        if i % 10 == 0:
            pipe.execute()
    pipe.execute()


def seed(r: redis.Redis) -> None:
    r.flushall()
    seed_failed(r, "big", DATA_MB * 1024 * 1024)
    seed_failed(r, "mid", 200 * 1024)
    now = int(time.time() * 1000)
    one_mb = ("Traceback (most recent call last):\n" + "  File \"deep.py\", line 9, in f\n    f()\n" * 30_000)
    traces = [one_mb[:1024 * 1024] for _ in range(10)]
    r.hset("bull:big:fat", mapping={
        "name": "fat", "data": json.dumps({"n": 1}), "opts": "{}", "timestamp": now, "finishedOn": now,
        "failedReason": "RecursionError", "stacktrace": json.dumps(traces), "atm": 1})
    r.zadd("bull:big:failed", {"fat": 1})
    line = "L" * (50 * 1024)
    for start in range(0, 1000, 100):
        r.rpush("bull:big:fat:logs", *[f"{n} {line}" for n in range(start, start + 100)])


def measure(r: redis.Redis, samples: Any, label: str, fn: Callable[[], Any], size: Callable[[Any], int],
            reps: int) -> dict[str, Any]:
    times, stalls, slow = [], [], []
    out = None
    for _ in range(reps):
        r.slowlog_reset()
        time.sleep(0.02)
        n0, t0w = len(samples), time.time()
        t0 = time.perf_counter()
        out = fn()
        elapsed = (time.perf_counter() - t0) * 1000
        time.sleep(0.02)  # let the probe's in-flight PING land
        t1w = time.time()
        pings = [rtt for wall, rtt in list(samples)[max(0, n0 - 2):] if t0w - 0.01 <= wall <= t1w]
        entries = [e for e in r.slowlog_get(10_000) if not str(e["command"]).upper().startswith(("PING", "SLOWLOG"))]
        times.append(elapsed)
        stalls.append(max(pings, default=0.0))
        slow.append(max((e["duration"] for e in entries), default=0) / 1000)
    row = dict(label=label, ms=statistics.median(times), ms_max=max(times), stall=max(stalls),
               slowlog=max(slow), returned=size(out))
    print(f"{label:58s} {row['ms']:8.1f} ms (max {row['ms_max']:7.1f})  stall {row['stall']:6.1f} ms  "
          f"slowlog max {row['slowlog']:6.2f} ms  returned {row['returned'] / 1024:10.1f} KB", flush=True)
    return row


def text_size(value: Any) -> int:
    return len(value if isinstance(value, str) else json.dumps(value, default=str))


def listing_size(jobs: list[Any]) -> int:
    return sum(text_size(j.data) + len(j.failed_reason or "") + text_size(j.opts) for j in jobs)


def job_size(job: Any) -> int:
    return text_size(job.data) + text_size(job.returnvalue) + sum(len(t) for t in job.stacktrace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--redis", default=None, help="redis-server binary (default: as the tests find it)")
    args = parser.parse_args()
    with EmbeddedRedis(binary=args.redis) as server:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        print(f"redis-server {server.version} ({r.info('memory')['mem_allocator']}) on port {server.port}; "
              "seeding ...", flush=True)
        seed(r)
        r.config_set("slowlog-log-slower-than", 0)
        r.config_set("slowlog-max-len", 100_000)
        q = Queue("big", connection=redis.Redis(host="127.0.0.1", port=server.port))
        q.jobs("failed", 0, 0)  # load scripts, warm the connection
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            samples, stop = manager.list(), manager.Event()
            proc = ctx.Process(target=probe, args=(server.port, samples, stop), daemon=True)
            proc.start()
            time.sleep(0.5)
            mid = Queue("mid", connection=q.client)
            rows = [measure(r, samples, "idle (probe noise floor)", lambda: time.sleep(0.05), lambda _: 0, args.reps)]
            rows.append(measure(r, samples, f"jobs('failed', 0, {JOBS - 1}, summary=True) [{JOBS} x {DATA_MB} MB]",
                                lambda: q.jobs("failed", 0, JOBS - 1, summary=True), listing_size, args.reps))
            rows.append(measure(r, samples, f"jobs('failed', 0, {JOBS - 1}, summary=True) [{JOBS} x 200 KB]",
                                lambda: mid.jobs("failed", 0, JOBS - 1, summary=True), listing_size, args.reps))
            rows.append(measure(r, samples, "job('1')  (5 MB data, full)", lambda: q.job("1"), job_size, args.reps))
            rows.append(measure(r, samples, "job('fat')  (10 x 1 MB traces, full)", lambda: q.job("fat"), job_size,
                                args.reps))
            rows.append(measure(r, samples, "logs('fat')  (1,000 x 50 KB, full)", lambda: q.logs("fat"),
                                lambda lines: sum(len(x) for x in lines), args.reps))
            if detail is not None:
                rows.append(measure(r, samples, "job('1', caps=DETAIL)", lambda: q.job("1", caps=detail),
                                    job_size, args.reps))
                rows.append(measure(r, samples, "job('fat', caps=DETAIL)", lambda: q.job("fat", caps=detail),
                                    job_size, args.reps))
            if hasattr(q, "log_page"):
                rows.append(measure(r, samples, "log_page('fat', -100, 100)  (lines capped)",
                                    lambda: q.log_page("fat", -100, 100),
                                    lambda page: sum(len(x) for x in page.lines), args.reps))
            if hasattr(q, "job_field"):
                rows.append(measure(r, samples, "job_field('1', 'data')  (download, full)",
                                    lambda: q.job_field("1", "data"), lambda v: len(v or b""), args.reps))
            app = create_app(Settings(redis_url=f"redis://127.0.0.1:{server.port}/0", secret_key="bench"))
            page = app.test_client()  # in-process: the time is the server's own
            rows.append(measure(r, samples, f"GET /queues/big?state=failed (page, {JOBS} x {DATA_MB} MB)",
                                lambda: page.get("/queues/big?state=failed&per=100"),
                                lambda resp: len(resp.get_data()), args.reps))
            rows.append(measure(r, samples, "GET /queues/big/jobs/fat (job page)",
                                lambda: page.get("/queues/big/jobs/fat"), lambda resp: len(resp.get_data()), args.reps))
            stop.set()
            proc.join(10)
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
