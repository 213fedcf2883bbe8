"""The command line's actions: retry, promote, remove, clean, pause, resume, add.

Each makes the same runtime call as the dashboard's button for it (``Queue.retry``,
``retry_all``, ``promote_all``, ``clean``, ``pause`` ...) and writes the same audit entry, by
``cli:<user>@<host>``, refusals included. Bulk actions run in the runtime's bounded batches
and show a progress bar only when stdout is a terminal (never with ``--json``). Actions on
several ids go on past a failed one; the exit code then says the worst that happened (1 over
3). Every action prints one JSON object with ``--json``: ``queue``, ``action``, ``ok``,
``count``, ``message`` and, for actions on ids, ``results`` (``id``, ``ok``, ``exit``,
``message`` each). This module must not import the web room or Flask.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import click
from redis.exceptions import ResponseError

from . import reads
from .cli import EXIT_ERROR, EXIT_NOT_FOUND, Env, NotFound, common, failure, operator
from .cli_output import cell, duration, emit, when
from .codec import parse_duration
from .errors import BullpenError
from .queue import Queue

#: The dashboard's audit wording for each per-job action.
DONE = {"retry": "Retried", "promote": "Promoted", "remove": "Removed"}


class Duration(click.ParamType[float]):
    """Seconds, or a number with ``ms``, ``s``, ``m``, ``h`` or ``d`` (as seconds, a float)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class JsonValue(click.ParamType[Any]):
    """A JSON document (``--data``), or for ``keep`` options ``true``, ``false``, a count or an object."""

    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except RecursionError:
            self.fail("nests too deeply", param, ctx)
        except ValueError as exc:
            self.fail(f"not valid JSON ({exc}): {value[:80]!r}", param, ctx)


def _done(env: Env, queue: str, action: str, message: str, count: int | None = None, **extra: Any) -> None:
    env.record(action, queue, str(extra.get("id", "")), count, message)
    if env.json:
        emit({"queue": queue, "action": action, "ok": True, "count": count, "message": message, **extra})
    else:
        click.echo(cell(message, None))


def _refused(env: Env, queue: str, action: str, target: str = "") -> Callable[[click.ClickException], None]:
    def record(exc: click.ClickException) -> None:
        env.record(action, queue, target, None, f"refused (exit {exc.exit_code}): {exc.message}", ok=False)
    return record


def _queue(env: Env, name: str, action: str) -> Queue:
    """The queue (exit 3 when there is none, recorded as a refusal, as the dashboard records its 404)."""
    try:
        return env.queue(name)
    except NotFound as exc:
        _refused(env, name, action)(exc)
        raise


def _per_job(env: Env, q: Queue, action: str, ids: tuple[str, ...], act: Callable[[str], None]) -> None:
    """Act on each id in turn, an audit entry each; a refusal does not stop the others."""
    results: list[dict[str, Any]] = []
    for job_id in ids:
        try:
            act(job_id)
        except (BullpenError, ResponseError) as exc:
            mapped = failure(exc, "")
            assert mapped is not None
            _refused(env, q.name, f"{action} job", job_id)(mapped)
            results.append({"id": job_id, "ok": False, "exit": mapped.exit_code, "message": mapped.message})
            continue
        message = f"{DONE[action]} job {job_id} in {q.name}."
        env.record(f"{action} job", q.name, job_id, None, message)
        results.append({"id": job_id, "ok": True, "exit": 0, "message": message})
    failed = [r for r in results if not r["ok"]]
    code = 0 if not failed else EXIT_ERROR if any(r["exit"] == EXIT_ERROR for r in failed) else EXIT_NOT_FOUND
    if env.json:
        emit({"queue": q.name, "action": f"{action} job", "ok": not failed, "count": len(results) - len(failed),
              "message": f"{DONE[action]} {len(results) - len(failed)} of {len(results)} jobs.", "results": results})
    else:
        for r in results:
            click.echo(cell(r["message"], None) if r["ok"] else f"Error: {cell(r['message'], None)}", err=not r["ok"])
    if code:
        raise click.exceptions.Exit(code)


def _bulk(env: Env, q: Queue, action: str, label: str, expected: int, work: Callable[[Any], int]) -> None:
    """A bulk action in the runtime's batches, with a progress bar on a terminal; one audit entry."""
    started, done = time.monotonic(), [0]

    def note(total: int) -> None:
        done[0] = total

    try:
        if env.json or not click.get_text_stream("stdout").isatty():
            count = work(note)
        else:
            with click.progressbar(length=max(expected, 1), label=label, show_pos=True) as bar:
                def progress(total: int) -> None:
                    bar.update(total - done[0])
                    note(total)
                count = work(progress)
    except (BullpenError, ResponseError, KeyboardInterrupt) as exc:
        why = str(exc) or "interrupted"
        env.record(action, q.name, "", done[0], f"{label} on {q.name} stopped after {done[0]:,} jobs: {why}", ok=False)
        raise
    _done(env, q.name, action, f"{label} on {q.name}: done, {count:,} jobs in "
                               f"{duration((time.monotonic() - started) * 1000)}.", count)


def _ids_or_all(ids: tuple[str, ...], all_: bool) -> None:
    if bool(ids) == all_:
        raise click.UsageError("give job ids or --all (not both)")


@click.command()
@click.argument("queue")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Retry every failed job.")
@common
@click.pass_obj
def retry(env: Env, queue: str, ids: tuple[str, ...], all_: bool) -> None:
    """Retry failed (or completed) jobs.

    Moves them back to waiting, attempts reset."""
    _ids_or_all(ids, all_)
    q = _queue(env, queue, "retry all" if all_ else "retry job")
    if all_:
        _bulk(env, q, "retry all", "Retry all failed", q.counts().failed, lambda p: q.retry_all("failed", progress=p))
    else:
        _per_job(env, q, "retry", ids, q.retry)


@click.command()
@click.argument("queue")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Promote every delayed job.")
@common
@click.pass_obj
def promote(env: Env, queue: str, ids: tuple[str, ...], all_: bool) -> None:
    """Move delayed jobs to waiting now."""
    _ids_or_all(ids, all_)
    q = _queue(env, queue, "promote all" if all_ else "promote job")
    if all_:
        _bulk(env, q, "promote all", "Promote all delayed", q.counts().delayed, lambda p: q.promote_all(progress=p))
    else:
        _per_job(env, q, "promote", ids, q.promote)


@click.command()
@click.argument("queue")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@common
@click.pass_obj
def remove(env: Env, queue: str, ids: tuple[str, ...]) -> None:
    """Delete jobs (in any state but active and locked by a worker)."""
    q = _queue(env, queue, "remove job")
    _per_job(env, q, "remove", ids, q.remove)


@click.command()
@click.argument("queue")
@click.argument("state", type=click.Choice(["completed", "failed"]), metavar="STATE")
@click.option("--grace", type=Duration(), required=True,
              help="Only jobs that finished longer ago than this (e.g. 0, 90s, 1h, 7d).")
@click.option("--limit", type=click.IntRange(1, 10**9), help="At most this many, oldest first (default: all).")
@common
@click.pass_obj
def clean(env: Env, queue: str, state: str, grace: float, limit: int | None) -> None:
    """Delete finished jobs older than --grace.

    STATE: completed or failed. Oldest first, in batches."""
    q = _queue(env, queue, "clean")
    expected = min(q.counts().as_dict()[state], limit or 10**9)
    _bulk(env, q, "clean", f"Clean {state}", expected, lambda p: q.clean(state, grace, limit, progress=p))


@click.command()
@click.argument("queue")
@click.option("--reason", default="", help="Why (shown on the dashboard; at most 500 characters).")
@click.option("--for", "for_", type=Duration(), help="Resume by itself after this long (e.g. 15m, 4h).")
@common
@click.pass_obj
def pause(env: Env, queue: str, reason: str, for_: float | None) -> None:
    """Stop workers (ours and BullMQ's) from taking jobs of a queue."""
    q = _queue(env, queue, "pause")
    q.pause(reason.strip(), until=for_ or None, by=operator())
    info = q.pause_info()
    until = info.until if info is not None else None
    span = f" for {duration(for_ * 1000)} (until {when(until)})" if for_ else ""
    why = f" Reason: {reason.strip()[:500]}" if reason.strip() else ""
    _done(env, q.name, "pause", f"Paused {q.name}{span}: workers take no new jobs from it.{why}", paused=True,
          until=until, reason=reason.strip()[:500])


@click.command()
@click.argument("queue")
@common
@click.pass_obj
def resume(env: Env, queue: str) -> None:
    """Let workers take jobs of a queue again."""
    q = _queue(env, queue, "resume")
    q.resume()
    _done(env, q.name, "resume", f"Resumed {q.name}.", paused=False)


@click.command()
@click.argument("queue")
@click.argument("name")
@click.option("--data", type=JsonValue(), default="{}", show_default=True, help="The job's data, as JSON.")
@click.option("--delay", type=Duration(), help="Run no sooner than this from now (e.g. 30s, 2h).")
@click.option("--priority", type=int, default=0, help="1 (first) to 2097151; 0: none.")
@click.option("--attempts", type=int, default=0, help="Attempts in all before the job fails for good.")
@click.option("--backoff", help="Between attempts: SECONDS, fixed:DURATION, exponential:DURATION, or BullMQ's JSON.")
@click.option("--job-id", help="A custom id (a job of that id already there: nothing is added).")
@click.option("--lifo", is_flag=True, help="Put the job at the front of the line.")
@click.option("--remove-on-complete", type=JsonValue(), metavar="KEEP",
              help='true, false, a count, or {"age": seconds, "count": n}.')
@click.option("--remove-on-fail", type=JsonValue(), metavar="KEEP", help="As --remove-on-complete.")
@click.option("--stack-trace-limit", type=int, help="Stack traces to keep.")
@click.option("--dedup-id", help="Deduplication id: while a job holds it, adds return that job.")
@click.option("--dedup-ttl", type=Duration(), help="How long the deduplication id is held (default: until done).")
@common
@click.pass_obj
def add(env: Env, queue: str, name: str, data: Any, delay: float | None, priority: int, attempts: int,
        backoff: str | None, job_id: str | None, lifo: bool, remove_on_complete: Any, remove_on_fail: Any,
        stack_trace_limit: int | None, dedup_id: str | None, dedup_ttl: float | None) -> None:
    """Add a job NAME to a queue (created if new)."""
    try:
        q = env.catalog.queue(queue)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="QUEUE") from None
    dedup = None if dedup_id is None else {"id": dedup_id, **({"ttl": dedup_ttl} if dedup_ttl else {})}
    if dedup_ttl is not None and dedup_id is None:
        raise click.UsageError("--dedup-ttl needs --dedup-id")
    holder = q.deduplication_job_id(dedup_id) if dedup_id else None
    existed = job_id is not None and q.job(job_id, caps=reads.LISTING) is not None
    try:
        added = q.add(name, data, delay=delay, priority=priority, attempts=attempts, backoff=_backoff(backoff),
                      job_id=job_id, lifo=lifo, remove_on_complete=remove_on_complete, remove_on_fail=remove_on_fail,
                      stack_trace_limit=stack_trace_limit, deduplication=dedup)
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None
    new = not existed and added.id != holder
    what = "id" if existed else "deduplication id"
    message = (f"Added job {added.id} ({name}) to {q.name}." if new else
               f"Nothing added: job {added.id} already holds that {what} in {q.name}.")
    _done(env, q.name, "add job", message, None, id=added.id, added=new, delay=added.delay)


def _backoff(raw: str | None) -> Any:
    """``--backoff`` as ``Queue.add`` takes it: seconds, (type, seconds), or BullMQ's dict (ms)."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        if text.startswith("{"):
            return JsonValue().convert(text, None, None)
        kind, _, span = text.rpartition(":")
        return (kind, parse_duration(span)) if kind else parse_duration(span)
    except (ValueError, click.BadParameter) as exc:
        raise click.BadParameter(str(getattr(exc, "message", exc)), param_hint="'--backoff'") from None


#: The commands this module adds to the group.
ACTIONS = [retry, promote, remove, clean, pause, resume, add]
