"""Command line: ``python -m dashboard COMMAND``: run a worker, or look at and act on queues.

    python -m dashboard worker --queue NAME --handler package.module:function [--concurrency N] [--burst]
        [--lock-duration S] [--stalled-interval S] [--max-stalled-count N] [--shutdown-timeout S] [--name NAME]
    python -m dashboard [--redis-url URL] [--prefix P] [--json] queues | info | jobs | job | retry | promote
        | remove | clean | pause | resume | add | schedulers | workers ...   (see --help; dashboard/cli.py)

Redis comes from ``--redis-url``, else ``REDIS_URL``, else 127.0.0.1:6379; the URL may name any
node of a Redis Cluster (a cluster client is used; the worker waits at start-up until Redis
answers, so that it knows which kind it is talking to). The worker exits 0 after a graceful
shutdown (SIGTERM or SIGINT: running jobs get up to ``--shutdown-timeout``) and also after a
second signal, which stops at once and leaves running jobs active for the stalled check; 2 for
invalid arguments (a queue without a hash tag on Redis Cluster included); 1 for a legacy Bull
queue. The other commands exit 0 ok, 1 error, 2 usage, 3 not found. Never imports Flask.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Callable
from typing import Any

import click

from .cli import Env, cli
from .cli_actions import ACTIONS
from .clients import DEFAULT_URL, cluster_mode
from .errors import NotSupportedOnBull
from .handlers import load_handler
from .worker import Worker

__all__ = ["cli", "main", "worker"]


class Number(click.ParamType[float]):
    """``kind(text)``, finite and at least ``minimum`` (Click's ranges let ``nan`` and ``inf`` through)."""

    def __init__(self, kind: Callable[[str], float], minimum: float, what: str) -> None:
        self.kind, self.minimum, self.what = kind, minimum, what
        self.name = "integer" if kind is int else "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        try:
            number = self.kind(str(value))
        except ValueError:
            self.fail(f"{value!r} is not {self.what}", param, ctx)
        if not math.isfinite(number) or number < self.minimum:
            self.fail(f"{value!r} is not {self.what}", param, ctx)
        return number


SECONDS = Number(float, 0, "a number of seconds >= 0")
POSITIVE_SECONDS = Number(float, 0.001, "a number of seconds > 0 (at least 0.001)")
COUNT = Number(int, 0, "an integer >= 0")
AT_LEAST_ONE = Number(int, 1, "an integer >= 1")


@click.command()
@click.option("--queue", required=True, help="The queue to take jobs from.")
@click.option("--handler", required=True, help="package.module:function called with each Job.")
@click.option("--concurrency", type=AT_LEAST_ONE, default=1, show_default=True)
@click.option("--burst", is_flag=True, help="Exit once nothing is left to do.")
@click.option("--redis-url", help="Redis to use (default: REDIS_URL).")
@click.option("--lock-duration", type=POSITIVE_SECONDS, default=30.0, show_default=True,
              help="Seconds a job's lock lasts unless renewed (renewed every half of it).")
@click.option("--stalled-interval", type=POSITIVE_SECONDS, default=30.0, show_default=True,
              help="Seconds between stalled-job checks (shared by all workers of the queue).")
@click.option("--max-stalled-count", type=COUNT, default=1, show_default=True,
              help="Times a job may stall (lose its lock) and be retried before it is failed.")
@click.option("--shutdown-timeout", type=SECONDS, default=30.0, show_default=True,
              help="Seconds running jobs get to finish after SIGTERM/SIGINT (a second signal stops at once).")
@click.option("--name", help="Worker name, shown to BullMQ as processedBy.")
@click.pass_obj
def worker(env: Env, queue: str, handler: str, concurrency: int, burst: bool, redis_url: str | None,
           lock_duration: float, stalled_interval: float, max_stalled_count: int, shutdown_timeout: float,
           name: str | None) -> None:
    """Process jobs of one queue.

    Runs until SIGTERM or SIGINT (or, with --burst, until none are left)."""
    settings = env.settings
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        function = load_handler(handler)
    except (ValueError, ImportError) as exc:
        raise click.BadParameter(str(exc), param_hint="'--handler'") from None
    url = redis_url or env.url or settings.redis_url or DEFAULT_URL
    old = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM while waiting: exit 0
    try:
        _wait_for_redis(url)
    except KeyboardInterrupt:
        return
    finally:
        signal.signal(signal.SIGTERM, old)
    try:
        process = Worker(
            queue, function, url, prefix=env.prefix or settings.prefix,
            concurrency=int(concurrency), lock_duration=lock_duration, stalled_interval=stalled_interval,
            max_stalled_count=int(max_stalled_count), shutdown_timeout=shutdown_timeout, name=name,
        )
    except ValueError as exc:  # a queue name that can be no queue, and the like
        raise click.UsageError(str(exc)) from None
    try:
        process.run(burst=burst)
    except NotSupportedOnBull as exc:  # a legacy Bull 3/4 queue: said in one line, exit 1
        raise click.ClickException(str(exc)) from None


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


cli.add_command(worker)
for _command in ACTIONS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns 0, or raises ``SystemExit`` with the exit code after printing
    the error on one line (1 error, 2 usage, 3 not found)."""
    try:
        result = cli.main(args=argv, prog_name="python -m dashboard", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        raise SystemExit(1) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    code = result if isinstance(result, int) else 0
    if code:
        raise SystemExit(code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
