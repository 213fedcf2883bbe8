"""Command line: run a worker process.

    python -m dashboard worker --queue NAME --handler package.module:function [--concurrency N] [--burst]
        [--lock-duration S] [--stalled-interval S] [--max-stalled-count N] [--shutdown-timeout S] [--name NAME]

Redis comes from ``--redis-url``, else ``REDIS_URL``, else 127.0.0.1:6379; the URL may name any
node of a Redis Cluster (the worker then uses a cluster client, and waits at start-up until
Redis answers, so that it knows which kind it is talking to). Exit status: 0
after a graceful shutdown (SIGTERM or SIGINT: running jobs get up to ``--shutdown-timeout``)
and also after a second signal, which stops at once and leaves running jobs active for the
stalled check; 2 for invalid arguments (argparse), a queue without a hash tag on Redis Cluster
included. Never imports Flask.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import time
from collections.abc import Callable

from .clients import DEFAULT_URL, cluster_mode
from .config import Settings
from .errors import ClusterHashTagMissing
from .handlers import load_handler
from .worker import Worker


def _number(kind: Callable[[str], float], minimum: float, what: str) -> Callable[[str], float]:
    """An argparse type: ``kind(text)``, finite and at least ``minimum``."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


SECONDS = _number(float, 0, "a number of seconds >= 0")
POSITIVE_SECONDS = _number(float, 0.001, "a number of seconds > 0 (at least 0.001)")
COUNT = _number(int, 0, "an integer >= 0")
AT_LEAST_ONE = _number(int, 1, "an integer >= 1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="process jobs of one queue")
    w.add_argument("--queue", required=True)
    w.add_argument("--handler", required=True, help="package.module:function called with each Job")
    w.add_argument("--concurrency", type=AT_LEAST_ONE, default=1)
    w.add_argument("--burst", action="store_true", help="exit once nothing is left to do")
    w.add_argument("--redis-url")
    w.add_argument("--lock-duration", type=POSITIVE_SECONDS, default=30.0,
                   help="seconds a job's lock lasts unless renewed (renewed every half of it)")
    w.add_argument("--stalled-interval", type=POSITIVE_SECONDS, default=30.0,
                   help="seconds between stalled-job checks (shared by all workers of the queue)")
    w.add_argument("--max-stalled-count", type=COUNT, default=1,
                   help="times a job may stall (lose its lock) and be retried before it is failed")
    w.add_argument("--shutdown-timeout", type=SECONDS, default=30.0,
                   help="seconds running jobs get to finish after SIGTERM/SIGINT (a second signal stops at once)")
    w.add_argument("--name", help="worker name, shown to BullMQ as processedBy")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        handler = load_handler(args.handler)
    except (ValueError, ImportError) as exc:
        parser.error(f"--handler: {exc}")
    url = args.redis_url or settings.redis_url or DEFAULT_URL
    old = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM while waiting: exit 0
    try:
        _wait_for_redis(url)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, old)
    try:
        worker = Worker(
            args.queue, handler, url, prefix=settings.prefix,
            concurrency=int(args.concurrency), lock_duration=args.lock_duration, stalled_interval=args.stalled_interval,
            max_stalled_count=int(args.max_stalled_count), shutdown_timeout=args.shutdown_timeout, name=args.name,
        )
    except ClusterHashTagMissing as exc:
        parser.error(f"--queue: {exc}")
    worker.run(burst=args.burst)
    return 0


def _wait_for_redis(url: str) -> None:
    """Return once Redis answers and says whether it is a cluster node (logged once while not)."""
    wait, since = 0.1, time.monotonic()
    while cluster_mode(url) is None:
        if wait == 0.1:
            logging.getLogger("dashboard.worker").warning("Redis unreachable; waiting for it before starting")
        time.sleep(wait)
        wait = min(wait * 2, 5.0)
    if wait > 0.1:
        logging.getLogger("dashboard.worker").warning("Redis answers after %.1fs", time.monotonic() - since)


if __name__ == "__main__":
    raise SystemExit(main())
