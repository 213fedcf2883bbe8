"""Command line: run a worker process.

    python -m dashboard worker --queue NAME --handler package.module:function [--concurrency N] [--burst]

Redis comes from ``--redis-url``, else ``REDIS_URL``, else 127.0.0.1:6379. Exits 0 after a
graceful shutdown (SIGTERM or SIGINT). Never imports Flask.
"""

from __future__ import annotations

import argparse
import logging

from .config import Settings
from .handlers import load_handler
from .worker import Worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="process jobs of one queue")
    w.add_argument("--queue", required=True)
    w.add_argument("--handler", required=True, help="package.module:function called with each Job")
    w.add_argument("--concurrency", type=int, default=1)
    w.add_argument("--burst", action="store_true", help="exit once nothing is left to do")
    w.add_argument("--redis-url")
    w.add_argument("--lock-duration", type=float, default=30.0, help="seconds")
    w.add_argument("--stalled-interval", type=float, default=30.0, help="seconds")
    w.add_argument("--shutdown-timeout", type=float, default=30.0, help="seconds")
    w.add_argument("--name", help="worker name, shown to BullMQ as processedBy")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        handler = load_handler(args.handler)
    except (ValueError, ImportError) as exc:
        parser.error(f"--handler: {exc}")
    worker = Worker(
        args.queue, handler, args.redis_url or settings.redis_url, prefix=settings.prefix,
        concurrency=args.concurrency, lock_duration=args.lock_duration, stalled_interval=args.stalled_interval,
        shutdown_timeout=args.shutdown_timeout, name=args.name,
    )
    worker.run(burst=args.burst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
