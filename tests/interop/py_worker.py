"""A Bullpen Worker process for the interop tests: the Python twin of ``bullmq_cli.js work``.

Usage: python tests/interop/py_worker.py --redis URL --queue NAME --out FILE
           [--prefix bull] [--concurrency N] [--sleep-ms MS] [--fail-names a,b]
           [--stalled-interval S] [--lock-duration S] [--limiter MAX,SECONDS] [--no-metrics]

A job whose data has an integer ``sleepMs`` sleeps that long instead of ``--sleep-ms``.

Appends one JSON line per handler call to FILE, as the Node CLI does:
``{"id", "name", "data", "attemptsMade", "startedAt" (ms), "pid"}``. Prints ``{"ready":true}``
once Redis answers and the worker starts, and ``{"done":true,"recorded":N}`` after a graceful
stop (SIGTERM/SIGINT: running jobs finish first). Exits 0 then.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dashboard import Job, Worker
from dashboard.limiter import METRICS_DATA_POINTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--prefix", default="bull")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--sleep-ms", type=int, default=0)
    parser.add_argument("--fail-names", default="")
    parser.add_argument("--stalled-interval", type=float, default=30.0, help="seconds")
    parser.add_argument("--lock-duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--limiter", help="the Worker option limiter: MAX,SECONDS")
    parser.add_argument("--no-metrics", action="store_true", help="the Worker option metrics=None")
    args = parser.parse_args(argv)

    fail_names = {n for n in args.fail_names.split(",") if n}
    lock = threading.Lock()
    recorded = 0
    out = open(args.out, "a", encoding="utf-8")  # noqa: SIM115 - open while the worker runs

    def handler(job: Job) -> Any:
        nonlocal recorded
        line = json.dumps({"id": job.id, "name": job.name, "data": job.data, "attemptsMade": job.attempts_made,
                           "startedAt": time.time() * 1000, "pid": os.getpid()})
        with lock:
            out.write(line + "\n")
            out.flush()
            recorded += 1
        sleep_ms = job.data.get("sleepMs") if isinstance(job.data, dict) else None
        sleep_ms = sleep_ms if isinstance(sleep_ms, int) else args.sleep_ms
        if sleep_ms:
            time.sleep(sleep_ms / 1000)
        if job.name in fail_names:
            raise RuntimeError(f"failed on purpose: {job.name}")
        return {"ok": True, "id": job.id}

    worker = Worker(args.queue, handler, redis_url=args.redis, prefix=args.prefix, concurrency=args.concurrency,
                    stalled_interval=args.stalled_interval, lock_duration=args.lock_duration,
                    limiter=(int(limit[0]), float(limit[1])) if (limit := (args.limiter or "").split(","))[0] else None,
                    metrics=None if args.no_metrics else METRICS_DATA_POINTS)
    worker.client.ping()
    print(json.dumps({"ready": True}), flush=True)
    worker.run()  # until SIGTERM/SIGINT; graceful
    out.close()
    print(json.dumps({"done": True, "recorded": recorded}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
