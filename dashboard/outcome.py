"""What running one job produced, and the script calls that record it in Redis.

:func:`run_handler` calls the user's handler on a job (in a worker's handler thread) and
never raises: a malformed job (:func:`~dashboard.job.fatal_problems`) is ``failed`` at once
without running, a return value becomes ``completed``, :class:`~dashboard.errors.RateLimited`
``limited`` (back to wait), :class:`~dashboard.errors.Delayed` ``delayed``, another exception
``retry`` (attempts and backoff allowing) or ``failed``. :func:`finish_calls` turns a batch of
outcomes into one ``move_to_finished`` call (which also releases deduplication slots and re-adds
kept adds) plus one ``retry_job`` per retry, ``move_limited_to_wait`` per limited job and
``move_to_delayed`` per delayed job, and never raises either.
This module sends nothing to Redis itself and must not import Flask.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import scripts
from .backoff import backoff_ms
from .codec import dumps, safe_text, shown_id
from .errors import Delayed, RateLimited, Unrecoverable
from .handlers import Handler
from .job import DEFAULT_STACK_TRACE_LIMIT, Job, fatal_problems, keep_policy
from .keys import Keys
from .unsupported import UnsupportedOptions

log = logging.getLogger(__name__)

#: How a malformed job's failedReason starts; the problems follow, e.g. ``timestamp = 'inf'``.
MALFORMED = "malformed job: "
#: Longest failedReason given to a malformed job.
MAX_REASON = 400


@dataclass
class Outcome:
    """What running one job produced, waiting to be written to Redis."""

    job: Job
    status: str  # completed | failed | retry | limited | delayed
    value: str  # return value JSON, or the failed reason
    trace: str = ""
    backoff: int = 0  # retry: backoff ms; limited: the rate limit delay ms; delayed: the delay ms
    elapsed_ms: float = 0.0


def malformed(job: Job, problems: Sequence[str]) -> Outcome:
    """The failure of a job that cannot be run: no retries, a reason naming what is wrong."""
    reason = MALFORMED + "; ".join(problems)
    return Outcome(job, "failed", reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 3] + "...")


def run_handler(handler: Handler, job: Job, unsupported: UnsupportedOptions | None = None) -> Outcome:
    """Run ``handler(job)`` (awaiting it if it is a coroutine) and say what came of it;
    ``unsupported`` names (once per queue) the job's options a Bullpen worker does not carry out."""
    started = time.perf_counter()
    problems = fatal_problems(job)
    if problems:
        return malformed(job, problems)
    if unsupported is not None:
        unsupported.check(job)
    if job.deferred_failure:
        return Outcome(job, "failed", job.deferred_failure, f"Unrecoverable: {job.deferred_failure}")
    try:
        result = handler(job)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        value = dumps(result, f"return value of job {job.id}")
        return Outcome(job, "completed", value, elapsed_ms=(time.perf_counter() - started) * 1000)
    except RateLimited as exc:
        return Outcome(job, "limited", str(exc), backoff=exc.delay_ms,
                       elapsed_ms=(time.perf_counter() - started) * 1000)
    except Delayed as exc:
        return Outcome(job, "delayed", str(exc), backoff=exc.delay_ms,
                       elapsed_ms=(time.perf_counter() - started) * 1000)
    except BaseException as exc:  # noqa: BLE001 - a job's failure must never kill the worker
        elapsed = (time.perf_counter() - started) * 1000
        reason, trace = _describe(exc)
        made = job.attempts_made + 1
        if not isinstance(exc, Unrecoverable) and made < job.attempts:
            return Outcome(job, "retry", reason, trace, backoff_ms(job.opts, made), elapsed)
        return Outcome(job, "failed", reason, trace, elapsed_ms=elapsed)


def _describe(exc: BaseException) -> tuple[str, str]:
    """An exception's message and traceback as text Redis takes, even when ``str(exc)`` fails."""
    try:
        reason = str(exc) or type(exc).__name__
    except Exception:  # noqa: BLE001 - a handler's exception class may break str()
        reason = f"{type(exc).__name__} (its message could not be read)"
    try:
        trace = "".join(traceback.format_exception(exc))
    except Exception:  # noqa: BLE001
        trace = ""
    return safe_text(reason), safe_text(trace)


def finish_calls(keys: Keys, pending: Sequence[Outcome], now: int, remove_on_complete: Any = None,
                 remove_on_fail: Any = None, metrics: str = "", limiter_max: str = "") -> list[scripts.Call]:
    """One ``move_to_finished`` call for every final outcome (first), then one ``retry_job``
    per retry, ``move_limited_to_wait`` per limited or ``move_to_delayed`` per delayed job, in
    order. ``remove_on_*`` are the worker's defaults for jobs whose options say nothing;
    ``metrics`` and ``limiter_max`` go to ``move_to_finished``. Options a handler spoiled are
    logged and replaced by defaults: this never raises."""
    finals: list[list[scripts.Arg]] = []
    calls: list[scripts.Call] = []
    for o in pending:
        job = o.job
        if o.status == "limited":
            calls.append(scripts.move_limited_to_wait(keys, job.key_id, job.token or "", o.backoff))
            continue
        if o.status == "delayed":
            calls.append(scripts.move_to_delayed(keys, job.key_id, job.token or "", o.backoff, now))
            continue
        try:
            limit, lifo = job.stack_trace_limit, "1" if job.opts.get("lifo") else "0"
            option = job.opts.get("removeOnComplete" if o.status == "completed" else "removeOnFail")
            attempts = job.attempts
        except Exception:  # e.g. a handler replaced job.opts: record the job anyway
            log.exception("queue=%s job=%s: options unreadable; recording the %s with defaults", keys.queue,
                          shown_id(job.key_id), o.status)
            limit, lifo, option, attempts = DEFAULT_STACK_TRACE_LIMIT, "0", None, 0
        if o.status == "retry":
            calls.append(scripts.retry_job(keys, [job.key_id, job.token or "", now, o.backoff, o.value, o.trace,
                                                  limit, lifo]))
            continue
        if option is None:
            option = remove_on_complete if o.status == "completed" else remove_on_fail
        keep, age = keep_policy(option)
        finals.append([job.key_id, job.token or "", o.status, o.value, o.trace, limit, keep, age, attempts])
    return ([scripts.move_to_finished(keys, now, finals, metrics, limiter_max)] if finals else []) + calls
