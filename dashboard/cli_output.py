"""What the command line prints: aligned tables for people, stable JSON shapes for scripts.

People get plain-text tables (:func:`table`) and ``key: value`` blocks whose every cell is
made safe for a terminal (:func:`cell`: control characters from Redis, such as an ANSI escape
in a job name, are shown escaped, never sent to the terminal). Scripts get ``--json``: one
JSON document on stdout, built by the ``*_shape`` functions below, whose keys are part of the
interface (``docs/cli.md`` lists them). Times are integer milliseconds since the epoch;
durations are milliseconds unless a key says otherwise (durations given on the command line
are read by :func:`dashboard.codec.parse_duration`). It does no I/O but writing to stdout, and
never talks to Redis.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from .audit import AuditEntry
from .catalog import QueueSummary
from .job import Job
from .pausing import PauseInfo
from .reads import LogPage

#: Characters of a cell in a table (job data, reasons): the rest is shown as "...".
CELL_LIMIT = 60
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


# --- text for people ---------------------------------------------------------------------

def cell(value: Any, limit: int | None = CELL_LIMIT) -> str:
    """``value`` as one line of terminal-safe text, cut to ``limit`` characters."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
    if limit is not None and len(text) > limit:
        return text[:limit - 3] + "..."
    return text


def block(text: str) -> str:
    """Several lines of text (a stack trace, a log line) with every control character but the
    newline and tab escaped."""
    return "\n".join(cell(line.replace("\t", "    "), None) for line in text.splitlines())


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[str] = ()) -> str:
    """Columns aligned to their widest cell; columns named in ``numeric`` right-aligned."""
    shown = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in shown)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if headers[i] in numeric else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in shown)])


def pairs(items: Iterable[tuple[str, Any]]) -> str:
    """``key: value`` lines with the values aligned (values already made safe by the caller)."""
    items = list(items)
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in items)


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as ``2026-12-01 16:05:03 UTC`` (``-`` for none)."""
    if ms is None:
        return "-"
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return f"{ms} (not a time in milliseconds)"


def duration(ms: float | None) -> str:
    """A span of milliseconds as ``850ms``, ``12.3s``, ``4m05s``, ``3h02m``, ``2d04h``."""
    if ms is None:
        return "-"
    ms = abs(ms)
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def ago(ms: int | None, now_ms: int) -> str:
    """``5m02s ago`` or ``in 3m00s``."""
    if ms is None:
        return "-"
    return f"{duration(now_ms - ms)} ago" if ms <= now_ms else f"in {duration(ms - now_ms)}"


def emit(value: Any) -> None:
    """One JSON document on stdout (for ``--json``)."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def job_text(found: Job, page: LogPage, lock: int | None, now: int) -> str:
    """The ``job`` command's page for people: ``key: value`` lines, the last stack trace, the log page."""
    cut = {k: f" (cut: {v:,} bytes in all)" for k, v in found.truncated.items()}
    out = [pairs([
        ("id", cell(found.id, None)), ("name", cell(found.name, None)), ("state", str(found.state)),
        ("created", f"{when(found.timestamp)} ({ago(found.timestamp, now)})"),
        *([("delay", duration(found.delay))] if found.delay else []),
        *([("priority", str(found.priority))] if found.priority else []),
        ("attempts", f"{found.attempts_made} made of {max(found.attempts, 1)}"),
        ("started", when(found.processed_on)), ("finished", when(found.finished_on)),
        *([("lock", f"{duration(lock)} left")] if lock is not None else []),
        *([("worker", cell(found.processed_by))] if found.processed_by else []),
        ("progress", cell(found.progress)),
        ("data", cell(found.data, 2000) + cut.get("data", "")),
        ("options", cell(found.opts, 2000) + cut.get("opts", "")),
        *([("return value", cell(found.returnvalue, 2000) + cut.get("returnvalue", ""))]
          if found.returnvalue is not None else []),
        *([("failed reason", cell(found.failed_reason, 2000) + cut.get("failedReason", ""))]
          if found.failed_reason else []),
        *(("problem", cell(p, None)) for p in found.problems),
    ])]
    if found.stacktrace:
        out.append(f"\nstack trace (the last of {len(found.stacktrace)}):\n{block(found.stacktrace[-1])}")
    if page.lines or page.problem:
        out.append(f"\nlog (lines {page.start + 1:,}-{page.start + len(page.lines):,} of {page.total:,}):")
        out.append(block("\n".join(page.lines)) if not page.problem else f"cannot be read: {cell(page.problem)}")
    return "\n".join(out)


# --- JSON shapes -------------------------------------------------------------------------

def pause_shape(info: PauseInfo | None) -> dict[str, Any] | None:
    """``{"reason", "by", "since", "until"}`` (times in ms; ``until`` null: until resumed)."""
    if info is None:
        return None
    return {"reason": info.reason, "by": info.by, "since": info.since, "until": info.until}


def summary_shape(row: QueueSummary) -> dict[str, Any]:
    """One queue in ``queues`` (and the start of ``info``): ``name``, ``counts`` (BullMQ's
    ``getJobCounts()`` keys), ``paused`` (bool), ``workers`` (connections), ``oldest_waiting``
    (ms, the next waiting job's creation time), ``stuck`` and ``problems``."""
    return {"name": row.name, "counts": row.counts.as_dict(), "paused": row.counts.paused, "workers": row.workers,
            "oldest_waiting": row.oldest_waiting, "stuck": row.stuck, "problems": list(row.counts.problems)}


def job_shape(job: Job, detail: bool = False) -> dict[str, Any]:
    """A job as ``jobs`` lists it (``detail``: as ``job`` shows it, adding ``opts``,
    ``returnvalue``, ``stacktrace``, ``processed_by``, ``attempts_started``,
    ``stalled_counter``). ``truncated`` names the fields cut inside Redis, with their full
    size in bytes (the cut text is the field's value then)."""
    out: dict[str, Any] = {
        "id": job.id, "name": job.name, "state": str(job.state) if job.state else None, "data": job.data,
        "timestamp": job.timestamp, "delay": job.delay, "priority": job.priority,
        "processed_on": job.processed_on, "finished_on": job.finished_on, "attempts_made": job.attempts_made,
        "attempts": job.attempts, "progress": job.progress, "failed_reason": job.failed_reason,
        "truncated": dict(job.truncated), "problems": list(job.problems),
    }
    if detail:
        out.update(opts=job.opts, returnvalue=job.returnvalue, stacktrace=list(job.stacktrace),
                   processed_by=job.processed_by, attempts_started=job.attempts_started,
                   stalled_counter=job.stalled_counter)
    return out


def log_shape(page: LogPage) -> dict[str, Any]:
    """A page of a job's log: ``total`` lines, ``start`` (index of the first shown), ``lines``
    (each cut to 2 KB inside Redis) and ``problem`` (null, or why the log cannot be read)."""
    return {"total": page.total, "start": page.start, "lines": list(page.lines), "problem": page.problem}


def worker_shape(queue: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A worker connection: ``queue``, ``name`` (the worker's own name, or null), ``addr``,
    ``age`` and ``idle`` (seconds), from ``CLIENT LIST`` (nothing else of it)."""
    name = str(entry.get("name", ""))
    return {"queue": queue, "name": name.split(":w:", 1)[1] if ":w:" in name else None,
            "addr": str(entry.get("addr", "")), "age": _int(entry.get("age")), "idle": _int(entry.get("idle"))}


def audit_shape(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry: ``at`` (ms), ``actor``, ``action``, ``queue``, ``target``, ``count``,
    ``result``, ``ok``."""
    return {"at": entry.at_ms, "actor": entry.actor, "action": entry.action, "queue": entry.queue,
            "target": entry.target, "count": entry.count, "result": entry.result, "ok": entry.ok}


def _int(raw: Any) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None
