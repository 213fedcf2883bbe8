"""Job schedulers (BullMQ 6 repeatable jobs): the next iteration when a worker takes one's job.

A scheduler is the ``repeat`` zset entry (score = next run ms) plus the ``repeat:<id>`` hash;
each iteration is an ordinary job ``repeat:<id>:<ms>`` whose hash has ``rjk = <id>``. BullMQ
creates the next iteration on the worker side, when a worker takes the current one: so must
we, or a scheduler served by our worker runs once and never again. The limit / end-date checks
and cron arithmetic (:mod:`dashboard.cron`) run here, as BullMQ runs them in Node; the write
is one script (``add_next_scheduled``) that the worker sends with its next fetch.
This module must not import Flask or decide web concerns.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from . import cron, scripts
from .keys import Keys

log = logging.getLogger(__name__)


def legacy_shape(key: str) -> bool:
    """True for ids shaped like a BullMQ 5 repeat key ``name:id:endDate:tz:<cron or every>``."""
    parts = key.split(":", 4)
    if len(parts) < 5 or not parts[4]:
        return False
    if parts[2] and not parts[2].isdigit():
        return False
    return " " in parts[4] or parts[4].isdigit()


def date_ms(value: Any) -> int | None:
    """A startDate / endDate as BullMQ reads it (``new Date(x).getTime()``): ms, or None."""
    if value is None or value is False or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def next_run(keys: Keys, job_id: str, fields: Mapping[Any, Any], now: int) -> scripts.Call | None:
    """The ``add_next_scheduled`` call for a scheduler's job just taken, or None (not a
    scheduler's job, its limit or end date reached, no next cron time, unreadable opts)."""
    get = {(_text(k) or ""): v for k, v in fields.items()}
    scheduler_id = _text(get.get("rjk"))
    raw_opts = _text(get.get("opts"))
    if not scheduler_id or raw_opts is None:
        return None
    try:
        opts = json.loads(raw_opts)
    except ValueError:
        return None
    if not isinstance(opts, dict):
        return None
    found = opts.get("repeat")
    rep: dict[str, Any] = found if isinstance(found, dict) else {}
    every, pattern = rep.get("every"), rep.get("pattern")
    if bool(every) == bool(pattern):
        log.warning("scheduler %s: job %s has %s; no next iteration", scheduler_id, job_id,
                    "both every and pattern" if every else "neither every nor pattern")
        return None
    count = rep.get("count")
    iteration = count + 1 if isinstance(count, int) and count else 1
    limit = rep.get("limit")
    if isinstance(limit, (int, float)) and iteration > limit:
        return None
    end = date_ms(rep.get("endDate"))
    if end and now > end:
        return None
    prev = opts.get("prevMillis")
    start_from = max(now, prev) if isinstance(prev, (int, float)) and not isinstance(prev, bool) else now
    next_ms: int | None = None
    if pattern:
        start = date_ms(rep.get("startDate"))
        try:
            next_ms = cron.next_fire_ms(str(pattern), max(start or 0, int(start_from)), rep.get("tz"), end)
        except ValueError as exc:
            log.warning("scheduler %s: %s; no next iteration", scheduler_id, exc)
            return None
        if next_ms is None:
            return None
        next_ms = max(next_ms, int(start_from))
    new_rep = {k: v for k, v in rep.items() if k not in ("immediately", "offset", "startDate", "endDate")}
    if every and rep.get("offset"):
        new_rep["offset"] = rep["offset"]
    new_rep["count"] = iteration
    for name in ("startDate", "endDate"):
        if date_ms(rep.get(name)):
            new_rep[name] = date_ms(rep.get(name))
    new_opts = {k: v for k, v in opts.items() if k not in ("jobId", "delay", "prevMillis")}
    new_opts.update(repeat=new_rep, repeatJobKey=scheduler_id, timestamp=now)
    new_opts.setdefault("attempts", 0)
    if next_ms is not None:
        new_opts["prevMillis"] = next_ms
    return scripts.add_next_scheduled(keys, scheduler_id, job_id, "" if next_ms is None else next_ms, now,
                                      json.dumps(new_opts, separators=(",", ":")),
                                      legacy_shape(scheduler_id))


def next_runs(keys: Keys, taken: Sequence[Any], now: int) -> list[scripts.Call]:
    """The calls for the scheduler jobs among a fetch's ``taken`` (id, token, fields list)*."""
    calls = []
    for i in range(0, len(taken), 3):
        raw = taken[i + 2]
        if b"rjk" not in raw and "rjk" not in raw:
            continue
        job_id = _text(taken[i])
        call = next_run(keys, job_id, dict(zip(raw[::2], raw[1::2])), now) if job_id else None
        if call is not None:
            calls.append(call)
    return calls


def report(queue_name: str, results: Sequence[Any]) -> None:
    """Log the ``add_next_scheduled`` calls that failed (the scheduler misses that iteration)."""
    for result in results:
        if isinstance(result, Exception):
            log.error("queue=%s: could not add a job scheduler's next iteration: %s", queue_name, result)
