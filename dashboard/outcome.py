"""What running one job produced, and the script calls that record it in Redis.

:func:`run_handler` calls the user's handler on a job (in a worker's handler thread) and
never raises: a return value becomes ``completed``, an exception ``retry`` (attempts and
backoff allowing) or ``failed``. :func:`finish_calls` turns a batch of outcomes into one
``move_to_finished`` call plus one ``retry_job`` per retry. This module sends nothing to
Redis itself and must not import Flask.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import scripts
from .codec import dumps
from .errors import Unrecoverable
from .handlers import Handler
from .job import DEFAULT_STACK_TRACE_LIMIT, Job, backoff_ms, keep_policy
from .keys import Keys


@dataclass
class Outcome:
    """What running one job produced, waiting to be written to Redis."""

    job: Job
    status: str  # completed | failed | retry
    value: str  # return value JSON, or the failed reason
    trace: str = ""
    backoff: int = 0
    elapsed_ms: float = 0.0


def run_handler(handler: Handler, job: Job) -> Outcome:
    """Run ``handler(job)`` (awaiting it if it is a coroutine) and say what came of it."""
    started = time.perf_counter()
    if job.deferred_failure:
        return Outcome(job, "failed", job.deferred_failure, f"Unrecoverable: {job.deferred_failure}")
    try:
        result = handler(job)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        value = dumps(result, f"return value of job {job.id}")
        return Outcome(job, "completed", value, elapsed_ms=(time.perf_counter() - started) * 1000)
    except BaseException as exc:  # noqa: BLE001 - a job's failure must never kill the worker
        elapsed = (time.perf_counter() - started) * 1000
        reason = str(exc) or type(exc).__name__
        trace = "".join(traceback.format_exception(exc))
        made = job.attempts_made + 1
        if not isinstance(exc, Unrecoverable) and made < job.attempts:
            return Outcome(job, "retry", reason, trace, backoff_ms(job.opts, made), elapsed)
        return Outcome(job, "failed", reason, trace, elapsed_ms=elapsed)


def finish_calls(keys: Keys, pending: Sequence[Outcome], now: int, remove_on_complete: Any = None,
                 remove_on_fail: Any = None) -> list[scripts.Call]:
    """One ``move_to_finished`` call for every final outcome (first), then one ``retry_job``
    per retry. ``remove_on_*`` are the worker's defaults for jobs whose options say nothing."""
    finals: list[list[scripts.Arg]] = []
    calls: list[scripts.Call] = []
    for o in pending:
        job = o.job
        limit = job.opts.get("stackTraceLimit", DEFAULT_STACK_TRACE_LIMIT)
        limit = limit if isinstance(limit, int) else DEFAULT_STACK_TRACE_LIMIT
        if o.status == "retry":
            calls.append(scripts.retry_job(keys, [job.id, job.token or "", now, o.backoff, o.value, o.trace,
                                                  limit, "1" if job.opts.get("lifo") else "0"]))
            continue
        option = job.opts.get("removeOnComplete" if o.status == "completed" else "removeOnFail")
        if option is None:
            option = remove_on_complete if o.status == "completed" else remove_on_fail
        keep, age = keep_policy(option)
        finals.append([job.id, job.token or "", o.status, o.value, o.trace, limit, keep, age, job.attempts])
    return ([scripts.move_to_finished(keys, now, finals)] if finals else []) + calls
