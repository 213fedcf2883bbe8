"""Bulk actions (retry all failed, promote all delayed, clean), started the same way from the
pages and the JSON API: the same counts, the same runtime calls, the same audit entries.

Each action is described by a :class:`Bulk` (label, jobs expected, the work) and started as a
background :class:`~dashboard.web.tasks.Task` by :func:`start`, which notes the start for the
request's audit entry and records one more entry when the task finishes. How the answer looks
(a page, a fragment, JSON) is the caller's business. This module reaches Redis only through
the runtime's ``Queue`` and the dashboard state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import request

from ..queue import Queue
from . import audit, formatting
from .extension import current
from .params import clean_args
from .tasks import Progress, Task


@dataclass(frozen=True)
class Bulk:
    """One bulk action about to start."""

    queue: Queue
    label: str
    expected: int
    work: Callable[[Progress], int]


def retry_all(queue: Queue) -> Bulk:
    """Retry every failed job."""
    return Bulk(queue, "Retry all failed", queue.counts().failed,
                lambda progress: queue.retry_all("failed", progress=progress))


def promote_all(queue: Queue) -> Bulk:
    """Move every delayed job to waiting now."""
    return Bulk(queue, "Promote all delayed", queue.counts().delayed, lambda p: queue.promote_all(progress=p))


def clean(queue: Queue) -> Bulk:
    """Delete completed or failed jobs as the request's ``state``, ``grace`` and ``limit`` say."""
    state, grace, limit = clean_args()
    expected = queue.clean_count(state, grace, limit)
    return Bulk(queue, f"Clean {state}", expected, lambda p: queue.clean(state, grace, limit, progress=p))


def start(bulk: Bulk) -> Task:
    """Start ``bulk`` in the background (or find the same action already running)."""
    audit.note(f"{bulk.label}: started ({bulk.expected:,} jobs expected)", bulk.expected)
    log, who, where, name = current().audit, audit.actor(), request.remote_addr or "", bulk.queue.name

    def record_finish(task: Task) -> None:  # runs in the task's thread, after the request
        log.record(actor=who, remote=where, action=f"{bulk.label.lower()} finished", queue=name, count=task.done,
                   result=summary(task), ok=task.error is None)

    task = current().tasks.start(name, bulk.label, bulk.expected, bulk.work, on_done=record_finish)
    current().overview.invalidate()
    return task


def summary(task: Task) -> str:
    """What a finished task did, in one sentence."""
    if task.error:
        return f"{task.label} on {task.queue} stopped after {task.done:,} jobs: {task.error}"
    return f"{task.label} on {task.queue}: done, {task.done:,} jobs in {formatting.duration(task.seconds * 1000)}."
