"""What the job page shows, read at a bounded cost whatever the job's size.

The job comes from ``Queue.job(id, caps=DETAIL)``: each field is cut inside Redis (data and
return value 64 KB, reason 8 KB, 16 KB per stack trace) and its full size kept in
``Job.truncated``. The log is read one page at a time (:data:`LOG_PAGE` lines, each cut to
2 KB). Every cut value is one click away whole, as a download (:data:`DOWNLOADS`). This
module reads through the runtime's ``Queue`` only and renders nothing.
"""

from __future__ import annotations

from typing import Any

from flask import request

from ..codec import now_ms
from ..family import ChildRef
from ..history import attempts
from ..job import Job, JobState
from ..queue import Queue
from ..redrive import mark_of
from . import audit, formatting
from .extension import current

#: Log lines per page of the job page.
LOG_PAGE = 100
#: Children shown per group (unprocessed, processed, ignored, failed) on a parent's page.
CHILDREN_SHOWN = 20
#: What can be downloaded whole: name in the URL -> (job hash field, or "" for the log; MIME type).
DOWNLOADS = {
    "data": ("data", "application/json"),
    "returnvalue": ("returnvalue", "application/json"),
    "stacktrace": ("stacktrace", "application/json"),
    "failedReason": ("failedReason", "text/plain"),
    "logs": ("", "text/plain"),
}
TERMINAL = (JobState.COMPLETED, JobState.FAILED)


def context(queue: Queue, job: Job, log_start: int | None) -> dict[str, Any]:
    """Template values of the job page; ``log_start`` None shows the newest log lines."""
    data, data_cut, data_len = _shown(job, "data", job.data)
    returnvalue, return_cut, return_len = _shown(job, "returnvalue", job.returnvalue)
    lock_ttl = queue.lock_ttl_ms(job.id) if job.state is JobState.ACTIVE else None
    page = queue.log_page(job.id, -LOG_PAGE if log_start is None else log_start, LOG_PAGE)
    if page.problem:
        job.problems.append(f"the job's log cannot be read: {page.problem}")
    end = page.start + len(page.lines)
    traces = [(trace, job.truncated.get(f"stacktrace.{i}")) for i, trace in enumerate(job.stacktrace)]
    return dict(
        queue=queue, job=job, terminal=job.state in TERMINAL, lock_ttl=lock_ttl,
        data=data, data_cut=data_cut, data_len=data_len,
        returnvalue=returnvalue, return_cut=return_cut, return_len=return_len,
        opts=formatting.full_json(job.opts), traces=traces, traces_len=job.truncated.get("stacktrace"),
        reason_len=job.truncated.get("failedReason"),
        log=page, log_start=log_start, log_end=end, redrive=mark_of(queue, job.id),
        retried_by_hand=_retried_by_hand(queue, job.id),
        attempts=attempts(queue.client, queue.keys, job.id, job.stacktrace),
        log_older=max(0, page.start - LOG_PAGE) if page.start > 0 else None,
        log_newer=end if end < page.total else None, **family(queue, job))


def family(queue: Queue, job: Job) -> dict[str, Any]:
    """A flow's links: the job's parent (linked when it is under this dashboard's prefix) and
    its first children per group, grouped by queue, with the counts (one bounded read)."""
    parent = job.parent if "parentKey" not in job.truncated else None
    children = queue.children(job.id, CHILDREN_SHOWN)
    by_queue: dict[str, list[ChildRef]] = {}
    for child in children.shown:
        by_queue.setdefault(child.queue if child.prefix == queue.prefix and child.queue else "", []).append(child)
    return dict(parent=parent, parent_here=parent is not None and parent.prefix == queue.prefix,
                children=children, children_by_queue=sorted(by_queue.items()), children_shown=CHILDREN_SHOWN)


#: How many of the queue's newest audit entries the job page looks through for retries by hand.
AUDIT_LOOKBACK = 200


def _retried_by_hand(queue: Queue, job_id: str) -> list[tuple[int, str]]:
    """(when ms, who) of each "retry job" on this job in the queue's newest audit entries, newest first."""
    entries = current().audit.entries(queue.name, count=AUDIT_LOOKBACK)
    found = [(e.at_ms, e.actor) for e in entries if e.target == job_id and e.action == "retry job" and e.ok]
    args = request.view_args or {}
    if (request.method == "POST" and request.endpoint == "bullpen.job_action" and args.get("action") == "retry"
            and args.get("name") == queue.name and args.get("job_id") == job_id):
        # this request is that retry: its audit entry is written after the answer is rendered
        found.insert(0, (now_ms(), audit.actor()))
    return found


def _shown(job: Job, name: str, value: Any) -> tuple[str, bool, int]:
    """(text to show, whether it is cut, full length) of a JSON field."""
    if name in job.truncated:
        text = value if isinstance(value, str) else ""
        return text, True, job.truncated[name]
    return formatting.pretty(value)
