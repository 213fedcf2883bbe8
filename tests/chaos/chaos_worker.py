"""One worker process for the chaos test, run as ``python tests/chaos/chaos_worker.py``.

Usage: python tests/chaos/chaos_worker.py --redis URL --queue NAME --out DIR
           [--concurrency N] [--lock-duration S] [--stalled-interval S] [--max-stalled N]

The handler appends one JSON line per run to ``DIR/<pid>.jsonl`` with a single ``write``
on an ``O_APPEND`` descriptor (so a SIGKILL leaves whole lines only), *before* doing the
work: ``{"id", "ats" (attempts started, this run included), "pid", "token", "t"}``. It then
sleeps ``job.data["ms"]`` milliseconds and returns ``{"pid", "token", "ats"}``, so the test
can tell which run's result Redis kept. The worker is named ``chaos-<pid>``: once that name
shows in ``CLIENT LIST`` its SIGTERM handler is installed. Logs go to stderr at WARNING: lock losses and
discarded results are what the test reads there. Exits 0 after SIGTERM (graceful).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dashboard import Job, Worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--out", required=True, help="directory for <pid>.jsonl run records")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lock-duration", type=float, default=2.0, help="seconds")
    parser.add_argument("--stalled-interval", type=float, default=1.0, help="seconds")
    parser.add_argument("--max-stalled", type=int, default=1000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    pid = os.getpid()
    fd = os.open(Path(args.out) / f"{pid}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def handler(job: Job) -> Any:
        record = {"id": job.id, "ats": job.attempts_started, "pid": pid, "token": job.token, "t": time.time()}
        os.write(fd, (json.dumps(record) + "\n").encode())
        time.sleep(int(job.data.get("ms", 0)) / 1000)
        return {"pid": pid, "token": job.token, "ats": job.attempts_started}

    worker = Worker(args.queue, handler, redis_url=args.redis, concurrency=args.concurrency,
                    lock_duration=args.lock_duration, stalled_interval=args.stalled_interval,
                    max_stalled_count=args.max_stalled, name=f"chaos-{pid}")
    worker.run()  # until SIGTERM; running jobs finish first
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
