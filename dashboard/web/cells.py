"""The text of each row of the long tables (job lists, the overview), worked out once per page.

A 100-row job list has about 900 cells with a formatted value; each call from a template
costs several times what the formatting does (Jinja's ``Context.call``), so the rows are
prepared here in one call per page and the templates only print attributes. Everything is
plain ``str`` from :mod:`dashboard.web.formatting` (never ``Markup``); the overview's rows are
escaped by autoescaping, a job list's rows here, once per value (:func:`job_rows`). This module
reads nothing and renders no HTML; it builds URLs as :mod:`dashboard.web.urls` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import url_for

from ..job import Job
from . import formatting as fmt
from . import urls
from .formatting import html as esc
from .overview import QueueSummary

#: The time a job list shows beside "Created", per state (None: no second time column).
WHEN = {"delayed": "Runs", "active": "Started", "completed": "Finished", "failed": "Failed"}


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job list row, every cell already escaped for HTML (plain ``str``, see :func:`job_rows`)."""

    id: str
    url: str  # the job page's path
    name: str
    preview: str
    #: (exact time, relative time) of creation and of the state's own time; None: not known.
    created: tuple[str, str] | None
    at: tuple[str, str] | None
    attempts: str  # attempts made
    allowed: str  # "/3" when more than one attempt is allowed, else ""
    reason_title: str  # the failed reason's first line, up to 1,000 characters
    reason: str  # ... up to formatting.REASON_LIMIT


def _when(ms: int | None, now: int) -> tuple[str, str] | None:
    return (esc(fmt.exact(ms)), esc(fmt.ago(ms, now))) if ms else None


def job_rows(jobs: Sequence[Job], state: str, job_url: Callable[..., str]) -> list[JobRow]:
    """The rows of a list of jobs in ``state`` (the value of a :class:`~dashboard.job.JobState`).

    Each value is escaped here, once, exactly as autoescaping would (:func:`formatting.html`):
    the row template prints them with autoescaping off, since a job's id alone appears in seven
    places of its row and escaping each was a fifth of a 100-row page's time."""
    now = int(time.time() * 1000)
    rows = []
    failed = state == "failed"
    for job in jobs:
        if state == "delayed":
            at = (job.timestamp or 0) + job.delay
        elif state == "active":
            at = job.processed_on or 0
        else:
            at = job.finished_on or 0
        rows.append(JobRow(esc(job.id), esc(job_url(job.id)), esc(job.name), esc(fmt.preview(job.data)),
                           _when(job.timestamp, now), _when(at, now) if state in WHEN else None,
                           str(job.attempts_made), f"/{job.attempts}" if job.attempts > 1 else "",
                           esc(fmt.one_line(job.failed_reason, 1000)) if failed else "",
                           esc(fmt.one_line(job.failed_reason)) if failed else ""))
    return rows


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One overview row: the queue's summary, its page URL, and its cells as text."""

    q: QueueSummary
    url: str
    #: (state, count as text, count is 0) for each state column, in ``states`` order.
    counts: list[tuple[str, str, bool]]
    oldest: tuple[str, str] | None  # (exact creation time, age) of the oldest waiting job
    failed_recently: str  # "" when none


def queue_rows(rows: Sequence[QueueSummary], states: Sequence[str]) -> list[QueueRow]:
    """The overview's rows; ``states`` are the count columns. One ``url_for`` per page."""
    base = url_for("bullpen.queue_view", name="-")[:-1]  # the route ends with the name's segment
    shown = [s for s in states if s != "waiting-children"]
    out = []
    for row in rows:
        counts = row.counts.as_dict()
        oldest = row.oldest_waiting
        out.append(QueueRow(row, base + urls.segment(row.name),
                            [(s, fmt.number(counts[s]), not counts[s]) for s in shown],
                            (fmt.exact(oldest), fmt.age(oldest)) if oldest else None,
                            fmt.number(row.failed_recently) if row.failed_recently else ""))
    return out
