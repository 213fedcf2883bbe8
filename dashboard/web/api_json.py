"""What the JSON API answers: queues, jobs, tasks and errors as plain JSON values.

Field names follow BullMQ's own JSON (``attemptsMade``, ``failedReason``, ``waiting-children``
...); times are milliseconds since the epoch. A job field that the read cut inside Redis holds
its cut text, and ``truncated`` gives its full length in bytes. Every resource carries its
``url``, built with the blueprint's segment encoding, so clients never have to encode a queue
name or job id themselves. Values another tool wrote that JSON cannot carry (``NaN``,
``Infinity``) are sent as strings. This module renders no page and reaches no Redis.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Response, url_for

from ..audit import AuditEntry
from ..failures import Cluster
from ..job import Job
from ..pausing import PauseInfo
from .bulk import summary
from .overview import QueueSummary
from .tasks import Task
from .urls import segment


def respond(body: Any, status: int = 200) -> Response:
    """``body`` as an ``application/json`` response (strict JSON: no NaN or Infinity)."""
    try:
        text = json.dumps(body, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(body), allow_nan=False)
    return Response(text + "\n", status, mimetype="application/json")


def error(status: int, message: str) -> Response:
    """The body of every API error: ``{"error": {"status": ..., "message": ...}}``."""
    return respond({"error": {"status": status, "message": message}}, status)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def queue_url(name: str) -> str:
    return url_for("bullpen.api.queue_view", name=name)


def job_url(queue: str, job_id: str) -> str:
    """Equal to ``url_for("bullpen.api.job_view", ...)``, at a fraction of its cost per row."""
    return queue_url(queue) + "/jobs/" + segment(job_id)


def queue_summary(row: QueueSummary) -> dict[str, Any]:
    """One queue as the overview sees it."""
    return {"name": row.name, "url": queue_url(row.name), "counts": row.counts.as_dict(),
            "paused": row.counts.paused, "workers": row.workers, "oldestWaitingTimestamp": row.oldest_waiting,
            "stuck": row.stuck, "problems": list(row.counts.problems)}


def pause(info: PauseInfo | None) -> dict[str, Any] | None:
    """Why a queue is paused (who, why, since, until), or None."""
    if info is None:
        return None
    return {"reason": info.reason, "by": info.by, "since": info.since, "until": info.until}


def action(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry."""
    return {"at": entry.at_ms, "actor": entry.actor, "action": entry.action, "queue": entry.queue,
            "target": entry.target, "count": entry.count, "result": entry.result, "ok": entry.ok}


def job(queue: str, found: Job, detail: bool = False) -> dict[str, Any]:
    """A job row (``detail``: also its return value, stack traces and options whole, as cut)."""
    out: dict[str, Any] = {
        "id": found.id, "url": job_url(queue, found.id), "name": found.name,
        "state": found.state.value if found.state else "unknown", "data": found.data, "opts": found.opts,
        "timestamp": found.timestamp, "delay": found.delay, "priority": found.priority,
        "processedOn": found.processed_on, "finishedOn": found.finished_on, "attemptsMade": found.attempts_made,
        "attemptsStarted": found.attempts_started, "stalledCounter": found.stalled_counter,
        "progress": found.progress, "failedReason": found.failed_reason, "processedBy": found.processed_by,
        "truncated": dict(found.truncated), "problems": list(found.problems)}
    if detail:
        out.update(returnvalue=found.returnvalue, stacktrace=list(found.stacktrace),
                   deferredFailure=found.deferred_failure)
    return out


def task(found: Task) -> dict[str, Any]:
    """A bulk action's progress; ``summary`` once it has finished."""
    return {"id": found.id, "url": url_for("bullpen.api.task_view", task_id=found.id), "queue": found.queue,
            "label": found.label, "expected": found.expected, "done": found.done, "percent": found.percent,
            "finished": found.finished, "error": found.error, "startedAt": int(found.started * 1000),
            "endedAt": int(found.ended * 1000) if found.ended else None,
            "summary": summary(found) if found.finished else None}


def cluster(queue: str, found: Cluster) -> dict[str, Any]:
    """One failure cluster: what groups its jobs, how many, when, and a sample job."""
    return {"id": found.id, "type": found.type, "message": found.message, "frame": found.frame, "line": found.line,
            "count": found.count, "failedAgain": found.again, "firstSeen": found.first_ms,
            "lastSeen": found.last_ms, "sample": job_url(queue, found.sample_id) if found.sample_id else None}
