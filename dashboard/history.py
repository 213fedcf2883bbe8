"""A job's history: the attempts Bullpen workers recorded, and the job's retries by hand.

Each attempt a Bullpen worker finishes is a job hash field ``bpAttempt:<started ms>:<ats>`` =
``"<finished ms> <outcome>"`` (``lua/_attempts.lua``; ats, the attempts-started count, keeps two
attempts started in the same millisecond apart; earlier records have no ``:<ats>``). BullMQ's
workers record none, so a job run by them shows no attempts here. Read with a bounded HSCAN of
the job hash (never the whole hash's values). This module must not import Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from .codec import text
from .keys import Keys

#: Attempts shown at most (the newest).
LIMIT = 100
_PREFIX = "bpAttempt:"


@dataclass
class Attempt:
    """One attempt: when it started and finished (ms), and how it ended (completed, failed,
    retried: failed with attempts left); ``trace`` is its stack trace when it can be told."""

    started: int
    finished: int | None
    outcome: str
    trace: str | None = None
    number: int = 0  #: the job's attempts-started count when it ran (0: not recorded)


def attempts(client: Any, keys: Keys, job_id: str, traces: list[str] | None = None) -> list[Attempt]:
    """The newest :data:`LIMIT` recorded attempts of a job, oldest first. ``traces`` (the
    job's newest stack traces, oldest first) are matched to its failed attempts from the
    newest back (a worker appends one trace per failure)."""
    found: list[Attempt] = []
    cursor: Any = 0
    try:
        for _ in range(20):  # a job hash has a few dozen fields; this bounds a hostile one
            cursor, fields = client.hscan(keys.job(job_id), cursor, match=_PREFIX + "*", count=500)
            for name, value in fields.items():
                attempt = _parse(text(name), text(value))
                if attempt is not None:
                    found.append(attempt)
            if int(cursor) == 0:
                break
    except ResponseError:  # not a hash: the page says so elsewhere
        return []
    found = sorted(found, key=lambda a: (a.started, a.number))[-LIMIT:]
    failed = [a for a in reversed(found) if a.outcome in ("failed", "retried")]
    for attempt, trace in zip(failed, reversed(traces or [])):
        attempt.trace = trace
    return found


def _parse(name: str, value: str) -> Attempt | None:
    started, _, number = name.partition(":")[2].partition(":")
    rest = value.split(" ", 1)
    if not started.isdigit() or not (number == "" or number.isdigit()) or len(rest) != 2:
        return None
    finished = int(rest[0]) if rest[0].isdigit() else None
    return Attempt(int(started), finished, rest[1][:20], number=int(number or 0))
