"""The producer side of job schedulers (BullMQ 6 repeatable jobs): upsert, remove, list.

:class:`JobSchedulers` is mixed into :class:`~dashboard.queue.Queue`. It writes schedulers
exactly as Node BullMQ 6.7.0's ``Queue.upsertJobScheduler`` does (the ``repeat`` zset, the
``repeat:<id>`` hash, the first job ``repeat:<id>:<ms>`` with ``rjk``), so that Node workers
and ours serve them alike; the next iterations are added by the workers (:mod:`dashboard.schedulers`).
This module must not import Flask or decide web concerns.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from . import cron, gather, scripts
from .clients import Client
from .codec import dumps, text, to_ms
from .errors import script_error
from .gather import Read, checked
from .job import Job
from .keys import Keys

#: BullMQ's codes from adding a scheduler.
ADD_ERRORS = {-10: "a job with the scheduler's next id exists already",
              -11: "the scheduler's next 32 slots are all taken by existing jobs"}


def _date(value: dt.datetime | int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"{what} must be a datetime or ms since the epoch, got {type(value).__name__}")


class JobSchedulers:
    """Job scheduler methods of a queue (needs ``client``, ``keys``, ``scripts``, ``clock``)."""

    client: Client
    keys: Keys
    scripts: scripts.Scripts
    name: str

    clock: Callable[[], int]
    _register: Callable[[], None]

    def upsert_job_scheduler(
        self,
        scheduler_id: str,
        *,
        every: float | timedelta | None = None,
        pattern: str | None = None,
        tz: str | None = None,
        start_date: dt.datetime | int | None = None,
        end_date: dt.datetime | int | None = None,
        limit: int | None = None,
        immediately: bool = False,
        offset: float | timedelta | None = None,
        name: str | None = None,
        data: Any = None,
        opts: dict[str, Any] | None = None,
    ) -> Job | None:
        """Create or replace scheduler ``scheduler_id`` (``every`` seconds, or a cron ``pattern``
        of 5 or 6 fields with seconds first, in ``tz``, else in this host's zone as Node's
        cron-parser: ``TZ`` or ``/etc/localtime``); returns its first job, or None when
        ``limit`` allows no run. ``name`` (default: the id), ``data`` and ``opts`` (BullMQ job
        option names, e.g. ``{"attempts": 3}``) are the template of every job. Dates are
        datetimes (naive = UTC) or ms. As BullMQ: ``every`` jobs start now (or at
        ``start_date``), cron jobs at the next fire time (now with ``immediately``)."""
        if not isinstance(scheduler_id, str) or not scheduler_id:
            raise ValueError("scheduler_id must be a non-empty string")
        if (every is None) == (pattern is None):
            raise ValueError("give exactly one of every (seconds) and pattern (cron)")
        every_ms = None if every is None else to_ms(every, "every")  # seconds, stored in ms as BullMQ does
        if every_ms is not None and every_ms < 1:
            raise ValueError(f"every must be at least a millisecond, got {every!r}")
        offset_ms = None if offset is None else to_ms(offset, "offset")
        if immediately and start_date is not None:
            raise ValueError("immediately and start_date cannot both be given")
        if opts is not None and ("debounce" in opts or not isinstance(opts, dict)):
            raise ValueError("opts must be a dict of BullMQ job options (no 'debounce')")
        start, end = _date(start_date, "start_date"), _date(end_date, "end_date")
        now = self.clock()
        if end is not None and end < now:
            raise ValueError("end_date must be in the future")
        if limit is not None and limit < 1:
            return None
        job_name = scheduler_id if name is None else name
        data = {} if data is None else data
        data_json = dumps(data, f"scheduler data for {scheduler_id!r}")
        next_ms: int | None = None
        if pattern:
            cron.zone_of(tz)
            next_ms = now if immediately else cron.next_fire_ms(pattern, max(start or 0, now), tz, end)
            if next_ms is None:
                return None
            next_ms = max(next_ms, now)
        new_offset = offset_ms if every_ms and offset_ms else None
        repeat: dict[str, Any] = {k: v for k, v in dict(
            every=every_ms, pattern=pattern, tz=tz, limit=limit, startDate=start, endDate=end,
            offset=new_offset).items() if v is not None}
        repeat["count"] = 1
        job_opts: dict[str, Any] = {**(opts or {}), "repeat": repeat, "timestamp": now, "repeatJobKey": scheduler_id}
        if next_ms is not None:
            job_opts["prevMillis"] = next_ms
        sched = {k: v for k, v in dict(name=job_name, startDate=start, endDate=end, tz=tz, pattern=pattern,
                                       every=every_ms, limit=limit, offset=new_offset).items() if v is not None}
        call = scripts.add_job_scheduler(self.keys, scheduler_id, "" if next_ms is None else next_ms,
                                         json.dumps(sched), data_json, dumps(opts or {}, "scheduler opts"),
                                         dumps(job_opts, "scheduler opts"), now)
        self._register()
        result = self.scripts.run(call)
        if isinstance(result, int):
            if result in ADD_ERRORS:
                raise RuntimeError(f"scheduler {scheduler_id!r}: {ADD_ERRORS[result]}")
            raise script_error(result, scheduler_id, "upsert_job_scheduler")
        job_id, delay = text(result[0]), int(result[1])
        job_opts.update(jobId=job_id, delay=delay)
        return Job(id=job_id, name=job_name, data=data, opts=job_opts, timestamp=now, delay=delay,
                   priority=int(job_opts.get("priority") or 0), _queue=self)  # type: ignore[arg-type]

    def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Delete a scheduler and its pending delayed job; False when there was none."""
        return bool(self.scripts.run(scripts.remove_job_scheduler(self.keys, scheduler_id)) == 0)

    def _drop_schedulers(self) -> None:
        """For obliterate: delete every scheduler (hash and pending job) a batch at a time, as BullMQ does."""
        for _ in range(100_000):
            if text(self.client.type(self.keys.repeat)) != "zset":
                return
            ids: list[Any] = list(self.client.zrange(self.keys.repeat, 0, 999))
            if not ids:
                return
            self.scripts.batch([scripts.remove_job_scheduler(self.keys, i) for i in ids])

    def job_schedulers(self, start: int = 0, end: int = 99) -> list[dict[str, Any]]:
        """Schedulers, latest next run first (as Node's ``getJobSchedulers``), ``start..end``
        inclusive: dicts with BullMQ's names (key, name, next, iterationCount, every or pattern,
        tz, limit, startDate, endDate, offset, template {data, opts})."""
        return gather.one(self.client, self.read_job_schedulers(start, end))

    def read_job_schedulers(self, start: int = 0, end: int = 99) -> Read[list[dict[str, Any]]]:
        """:meth:`job_schedulers` as a :class:`~dashboard.gather.Read` (the hashes in a second
        step, only when there are schedulers)."""
        def hashes(entries: list[Any]) -> Read[list[dict[str, Any]]] | list[dict[str, Any]]:
            if not entries:
                return []

            def describe(replies: list[Any]) -> list[dict[str, Any]]:
                found = []
                for (member, score), raw in zip(entries, checked(replies)):
                    fields = {text(k): text(v) for k, v in raw.items()}
                    if fields:
                        found.append(_describe(text(member), int(score), fields))
                return found
            return Read(lambda pipe: [pipe.hgetall(self.keys.scheduler(text(m))) for m, _ in entries],
                        len(entries), describe)
        return Read(lambda pipe: pipe.zrevrange(self.keys.repeat, start, end, withscores=True), 1,
                    lambda replies: hashes(list(checked(replies)[0])))


def _describe(key: str, next_ms: int, f: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "name": f.get("name"), "next": next_ms}
    for field, shown in (("ic", "iterationCount"), ("limit", "limit"), ("startDate", "startDate"),
                         ("endDate", "endDate"), ("every", "every"), ("offset", "offset")):
        if f.get(field) and f[field].lstrip("-").isdigit():
            out[shown] = int(f[field])
    for field in ("tz", "pattern"):
        if f.get(field):
            out[field] = f[field]
    template: dict[str, Any] = {}
    for field in ("data", "opts"):
        if f.get(field):
            try:
                template[field] = json.loads(f[field])
            except ValueError:
                template[field] = f[field]
    if template:
        out["template"] = template
    return out

