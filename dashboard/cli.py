"""The operator's command line, ``python -m dashboard ...``: the group, its options, and the reads.

Commands look at queues through the same runtime API the dashboard's pages use
(:class:`~dashboard.catalog.Catalog`, :class:`~dashboard.queue.Queue`, the bounded reads of
:mod:`dashboard.reads`); actions live in :mod:`dashboard.cli_actions`, the worker command in
``__main__.py``, and what is printed in :mod:`dashboard.cli_output`. Every read is bounded
(O(page) in Redis, never KEYS or a whole list). Exit codes: 0 ok, 1 error (Redis unreachable
or refusing, an action not possible now), 2 usage (bad options, invalid JSON, a name that can
be no queue), 3 not found (queue or job; BullMQ's bookkeeping keys such as ``meta`` are "not a
job"). Errors are one line on stderr, never a traceback. This module must not import the web
room (``dashboard.web``) or Flask.
"""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from redis.exceptions import RedisError, ResponseError

from . import reads
from .audit import AuditLog
from .catalog import Catalog
from .cli_output import (
    ago,
    cell,
    duration,
    emit,
    job_shape,
    job_text,
    log_shape,
    pairs,
    pause_shape,
    summary_shape,
    table,
    when,
    worker_shape,
)
from .clients import DEFAULT_URL, UNAVAILABLE, connect
from .codec import now_ms
from .config import ConfigError, Settings
from .connection import describe_url
from .errors import BullpenError, JobNotFound
from .job import STATE_KEYS, JobState
from .keys import is_queue_name, not_a_job
from .queue import Queue

F = TypeVar("F", bound=Callable[..., Any])
#: States ``jobs`` lists, in lifecycle order.
LIST_STATES = [s.value for s in STATE_KEYS]
#: Most jobs or schedulers one command lists.
MAX_LIMIT = 1000
EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = 1, 2, 3


class NotFound(click.ClickException):
    """No such queue or job (exit 3)."""

    exit_code = EXIT_NOT_FOUND


class BadInput(click.ClickException):
    """Input that can never work, such as a bad environment variable (exit 2, no usage text)."""

    exit_code = EXIT_USAGE


def failure(exc: BaseException, where: str) -> click.ClickException | None:
    """The one-line error (and exit code) an exception from the runtime stands for, with any
    control character from Redis or the command line escaped; None for anything unexpected (a
    bug: that keeps its traceback)."""
    if isinstance(exc, click.ClickException):
        return exc
    mapped = _failure(exc, where)
    if mapped is not None:
        mapped.message = cell(mapped.message, None)
    return mapped


def _failure(exc: BaseException, where: str) -> click.ClickException | None:
    if isinstance(exc, UNAVAILABLE):
        return click.ClickException(f"Redis is unreachable at {where}: {exc}")
    if isinstance(exc, JobNotFound):
        return NotFound(str(exc))
    if isinstance(exc, BullpenError):
        return click.ClickException(f"not possible now: {exc}")
    if isinstance(exc, ResponseError):
        return click.ClickException(f"Redis refused a command: {exc} (a key probably holds data of another type, "
                                    "written by another tool)")
    if isinstance(exc, RedisError):
        return click.ClickException(f"Redis error at {where}: {exc}")
    if isinstance(exc, ConfigError):
        return BadInput(str(exc))
    return None


def operator() -> str:
    """Who acts, for the audit trail: ``cli:<login name>@<host>``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no password-database entry
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


@dataclass
class Env:
    """What every command shares: the global options, and the catalog made from them on first use."""

    redis_url: str | None = None
    prefix: str | None = None
    json: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _catalog: Catalog | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    @property
    def url(self) -> str | None:
        """``--redis-url``, else ``REDIS_URL``, else None (the client's default, as the worker's)."""
        return self.redis_url or self.settings.redis_url

    @property
    def where(self) -> str:
        """Where Redis is, for messages: ``host:port/db``, never a password."""
        try:
            url = self.url
        except ConfigError:
            url = self.redis_url
        return describe_url(url or DEFAULT_URL)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            prefix = self.prefix if self.prefix is not None else self.settings.prefix
            if not prefix:
                raise BadInput("--prefix must not be empty")
            # a one-shot command says "unreachable" itself, in one line: no warning from the cluster probe
            logging.getLogger("dashboard.clients").setLevel(logging.ERROR)
            self._catalog = Catalog(connect(self.url), prefix)
        return self._catalog

    def queue(self, name: str) -> Queue:
        """The queue, if the registry knows it or it holds jobs (as the dashboard decides); else exit 3."""
        if not is_queue_name(name):
            raise click.UsageError(f"{name[:200]!r} is not a queue name (a queue name is non-empty, without ':')")
        queue = self.catalog.queue(name)
        if queue.is_registered() or queue.counts().total:
            return queue
        raise NotFound(f"no queue named {name[:200]!r} under prefix {self.catalog.prefix!r} "
                       "(a queue only another tool wrote appears after `queues --discover`)")

    def record(self, action: str, queue: str = "", target: str = "", count: int | None = None, result: str = "",
               ok: bool = True) -> None:
        """One entry in the audit trail the dashboard writes to, by ``cli:<user>@<host>``."""
        AuditLog(self.catalog.client, self.catalog.prefix).record(
            actor=operator(), remote=socket.gethostname(), action=action, queue=queue, target=target, count=count,
            result=result, ok=ok)


#: What the runtime raises that :func:`failure` turns into a one-line error.
RUNTIME_ERRORS: tuple[type[Exception], ...] = (RedisError, BullpenError, ConfigError, *UNAVAILABLE)


class CliGroup(click.Group):
    """A group that turns the runtime's exceptions into one-line errors with their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RUNTIME_ERRORS as exc:
            env = ctx.find_object(Env)
            mapped = failure(exc, env.where if env is not None else describe_url(DEFAULT_URL))
            if mapped is None:
                raise
            raise mapped from None


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Option callback: a global option given before or after the command name lands in :class:`Env`."""
    if value is not None and value is not False:
        setattr(ctx.ensure_object(Env), str(param.name), value)
    return value


def common(f: F) -> F:
    """``--json``, ``--redis-url`` and ``--prefix``, accepted after the command name too."""
    f = click.option("--json", is_flag=True, default=None, expose_value=False, callback=_store,
                     help="Print JSON for scripts.")(f)
    f = click.option("--redis-url", expose_value=False, callback=_store, metavar="URL",
                     help="Redis to use (default: REDIS_URL).")(f)
    return click.option("--prefix", expose_value=False, callback=_store,
                        help="Key prefix (default: DASHBOARD_PREFIX, else bull).")(f)


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Exit codes: 0 ok, 1 error (Redis unreachable, action not possible), 2 usage, 3 not found.")
@common
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Look at and act on Bullpen / BullMQ queues, or run a worker."""
    ctx.ensure_object(Env)


def _safe(read: Callable[[], Any], problems: list[str], what: str) -> Any:
    try:
        return read()
    except ResponseError as exc:  # another tool's key of the wrong type: the fact is left out
        problems.append(f"{what} cannot be read: {exc}")
        return None


# --- reads -----------------------------------------------------------------------------

@cli.command()
@click.option("--discover", is_flag=True, help="First add queues only other tools wrote (bounded SCAN).")
@common
@click.pass_obj
def queues(env: Env, discover: bool) -> None:
    """Every queue under the prefix, with its counts."""
    if discover:
        found = env.catalog.discover()
        env.record("rescan", result=f"Rescan found {len(found)} queue(s) written by other tools.", count=len(found))
    rows, problems = env.catalog.overview()
    if env.json:
        emit({"queues": [summary_shape(row) for row in rows], "problems": problems})
        return
    now = now_ms()
    click.echo(table(
        ["QUEUE", "WAITING", "PRIORITIZED", "DELAYED", "ACTIVE", "COMPLETED", "FAILED", "PAUSED", "WORKERS",
         "OLDEST WAITING"],
        [[r.name, r.counts.waiting, r.counts.prioritized, r.counts.delayed, r.counts.active, r.counts.completed,
          r.counts.failed, "paused" if r.counts.paused else "", r.workers, ago(r.oldest_waiting, now)] for r in rows],
        numeric=("WAITING", "PRIORITIZED", "DELAYED", "ACTIVE", "COMPLETED", "FAILED", "WORKERS")))
    for problem in problems:
        click.echo(f"warning: {cell(problem, None)}", err=True)


@cli.command()
@click.argument("queue")
@common
@click.pass_obj
def info(env: Env, queue: str) -> None:
    """One queue at a glance.

    Counts, pause (who, why, until when), workers, jobs finished a minute, rate limit, oldest waiting job."""
    q = env.queue(queue)
    now = q.clock()
    row = env.catalog.overview([q.name])[0][0]
    problems = list(row.counts.problems)
    pause = _safe(q.pause_info, problems, "the pause record") if row.counts.paused else None
    workers = [worker_shape(q.name, w) for w in env.catalog.workers([q.name])[q.name]]
    rate_limit = _safe(q.global_rate_limit, problems, "the rate limit")
    throttled = max(0, _safe(q.rate_limit_ttl, problems, "the limiter") or 0) if rate_limit else 0
    concurrency = _safe(q.global_concurrency, problems, "the global concurrency")
    per_minute = q.finished_per_minute(now)
    if env.json:
        emit({**summary_shape(row), "problems": problems, "pause": pause_shape(pause), "worker_connections": workers,
              "finished_per_minute": per_minute, "global_concurrency": concurrency,
              "rate_limit": None if not rate_limit else
              {"max": rate_limit[0], "duration": rate_limit[1], "throttled": throttled or 0}})
        return
    c = row.counts
    state = "running"
    if c.paused:
        state = "paused"
        if pause is not None:
            state += f" by {cell(pause.by or 'someone')} since {when(pause.since)}"
            state += f", until {when(pause.until)} ({ago(pause.until, now)})" if pause.until else ", until resumed"
            state += f"; reason: {cell(pause.reason, 300)}" if pause.reason else ""
    names = ", ".join(cell(w["name"] or w["addr"]) for w in workers)
    rate = "no metrics recorded" if per_minute is None else f"{per_minute:,.1f} jobs a minute (last 5 minutes)"
    limit = "none" if not rate_limit else f"{rate_limit[0]:,} jobs per {duration(rate_limit[1])}" + (
        f", holding jobs back for {duration(throttled)}" if throttled else "")
    click.echo(pairs([
        ("queue", cell(q.name, None)), ("state", state),
        ("counts", ", ".join(f"{k} {v:,}" for k, v in c.as_dict().items())),
        ("workers", f"{len(workers)}" + (f" ({names})" if names else "")),
        ("oldest waiting", f"{when(row.oldest_waiting)} ({ago(row.oldest_waiting, now)})"
         if row.oldest_waiting else "-"),
        ("finished", rate), ("rate limit", limit), ("concurrency", "no cap" if not concurrency else f"{concurrency:,}"),
        *([("stuck", "jobs are ready but no worker is connected")] if row.stuck else []),
        *(("problem", cell(p, None)) for p in problems),
    ]))


@cli.command()
@click.argument("queue")
@click.argument("state", type=click.Choice(LIST_STATES), metavar="STATE")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=20, show_default=True, help="Jobs to list.")
@click.option("--offset", type=click.IntRange(0, 10**9), default=0, help="Skip this many (newest first).")
@common
@click.pass_obj
def jobs(env: Env, queue: str, state: str, limit: int, offset: int) -> None:
    """Jobs of a queue in one state.

    STATE: waiting, prioritized, delayed, active, waiting-children, completed or failed.
    Newest first (prioritized: next to run first)."""
    q = env.queue(queue)
    total = q.counts().as_dict()[state]
    found = q.jobs(state, offset, offset + limit - 1, summary=True)
    if env.json:
        emit({"queue": q.name, "state": state, "total": total, "offset": offset,
              "jobs": [job_shape(job) for job in found]})
        return
    now = q.clock()

    def detail(job: Any) -> str:
        if state == JobState.FAILED:
            return cell(job.failed_reason)
        if state == JobState.DELAYED and job.timestamp is not None:
            return f"runs {ago(job.timestamp + job.delay, now)}"
        return cell(job.data)

    click.echo(table(["ID", "NAME", "CREATED", "ATTEMPTS", "DETAIL"],
                     [[job.id, job.name, ago(job.timestamp, now), f"{job.attempts_made}/{max(job.attempts, 1)}",
                       detail(job)] for job in found]))
    shown = f"{offset + 1:,}-{offset + len(found):,}" if found else "none"
    click.echo(f"({shown} of {total:,} {state})", err=True)


@cli.command()
@click.argument("queue")
@click.argument("job_id", metavar="ID")
@click.option("--log", "log_lines", type=click.IntRange(0, 1000), default=20, show_default=True,
              help="Newest log lines to show.")
@common
@click.pass_obj
def job(env: Env, queue: str, job_id: str, log_lines: int) -> None:
    """One job in full.

    State, data, options, attempts, error and stack trace, result, newest log lines. Long values
    are cut inside Redis (JSON: the "truncated" sizes)."""
    q = env.queue(queue)
    reason = not_a_job(job_id)
    if reason is not None:
        raise NotFound(f"{reason[:300]}; Bullpen shows and changes only real jobs")
    found = q.job(job_id, caps=reads.DETAIL) if job_id else None
    if found is None:
        raise NotFound(f"no job with id {job_id[:200]!r} in queue {q.name[:200]!r}")
    page = q.log_page(found.id, -log_lines, log_lines) if log_lines else reads.LogPage([], 0, 0)
    lock = q.lock_ttl_ms(found.id) if found.state is JobState.ACTIVE else None
    if env.json:
        emit({"queue": q.name, **job_shape(found, detail=True), "lock_ttl": lock, "logs": log_shape(page)})
        return
    click.echo(job_text(found, page, lock, q.clock()))

@cli.command()
@click.argument("queue")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True)
@common
@click.pass_obj
def schedulers(env: Env, queue: str, limit: int) -> None:
    """Job schedulers (repeatable jobs) of a queue.

    Latest next run first."""
    q = env.queue(queue)
    found = q.job_schedulers(0, limit - 1)
    if env.json:
        emit({"queue": q.name, "schedulers": found})
        return
    now = q.clock()
    click.echo(table(["ID", "NAME", "EVERY / PATTERN", "TZ", "NEXT RUN", "ITERATIONS"], [
        [s["key"], s.get("name"), duration(s["every"]) if "every" in s else s.get("pattern"), s.get("tz", ""),
         f"{when(s['next'])} ({ago(s['next'], now)})", s.get("iterationCount", 0)] for s in found],
        numeric=("ITERATIONS",)))


@cli.command()
@common
@click.pass_obj
def workers(env: Env) -> None:
    """Workers connected to the queues.

    Every worker connection (ours and BullMQ's) of every queue under the prefix."""
    names = env.catalog.names()
    found = [worker_shape(name, entry) for name, entries in env.catalog.workers(names).items() for entry in entries]
    if env.json:
        emit({"workers": found})
        return
    click.echo(table(["QUEUE", "NAME", "ADDRESS", "AGE", "IDLE"], [
        [w["queue"], w["name"], w["addr"], duration(None if w["age"] is None else w["age"] * 1000),
         duration(None if w["idle"] is None else w["idle"] * 1000)] for w in found]))
