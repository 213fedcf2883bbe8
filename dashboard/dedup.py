"""Deduplication in BullMQ 6's keys and semantics: the producer's option, the queue's reads.

:func:`dedup_opts` validates ``add(..., deduplication={...})`` and turns it into BullMQ's
``opts.de`` (ttl in ms). The slot ``de:<id>`` and a kept add ``dn:<id>`` are written by
``lua/add_job.lua`` (with ``lua/_dedup.lua``); ``move_to_finished`` releases the slot and
re-adds the kept add in the same call, as BullMQ's moveToFinished does.
:class:`QueueDeduplication` gives :class:`~dashboard.queue.Queue` BullMQ's
getDeduplicationJobId / removeDeduplicationKey. This module must not import Flask.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import scripts
from .clients import Client
from .codec import text, to_ms
from .job import Job
from .keys import Keys

#: Python option name -> BullMQ's name in ``opts.de`` (booleans).
FLAGS = {"extend": "extend", "replace": "replace", "keep_last_if_active": "keepLastIfActive",
         "reschedule": "reschedule"}


def dedup_opts(value: Any) -> dict[str, Any]:
    """``{"de": {...}}`` for ``add()``'s ``deduplication`` option, ``{}`` for None.

    ``value``: a dict with ``id`` (a non-empty string) and optionally ``ttl`` (seconds, int,
    float or timedelta, > 0), ``extend``, ``replace``, ``keep_last_if_active``, ``reschedule``
    (booleans; reschedule: a still-delayed holder takes the new add's delay, from now).
    Raises ``ValueError`` for anything else (before anything is written)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"deduplication must be a dict with an 'id', got {value!r}")
    unknown = sorted(str(k) for k in value if k not in ("id", "ttl", *FLAGS))
    if unknown:
        raise ValueError(f"unknown deduplication option(s) {unknown}; allowed: id, ttl, {', '.join(FLAGS)}")
    dedup_id = value.get("id")
    if not isinstance(dedup_id, str) or not dedup_id:
        raise ValueError(f"deduplication id must be a non-empty string, got {dedup_id!r}")
    de: dict[str, Any] = {"id": dedup_id}
    ttl: float | timedelta | None = value.get("ttl")
    if ttl is not None:
        de["ttl"] = to_ms(ttl, "deduplication ttl")
        if de["ttl"] < 1:
            raise ValueError(f"deduplication ttl must be at least 1 ms, got {ttl!r}")
    for name, bullmq in FLAGS.items():
        flag = value.get(name, False)
        if not isinstance(flag, bool):
            raise ValueError(f"deduplication {name} must be True or False, got {flag!r}")
        if flag:
            de[bullmq] = True
    return {"de": de}


def dedup_id(job: Job) -> str | None:
    """The deduplication id a job was added with (``opts.de.id``, BullMQ's ``deid``), or None."""
    de = job.opts.get("de") if isinstance(job.opts, dict) else None
    found = de.get("id") if isinstance(de, dict) else None
    if isinstance(found, bool) or not isinstance(found, (str, int)) or found == "":
        return None
    return str(found)


class QueueDeduplication:
    """Reads and drops deduplication slots; mixed into :class:`~dashboard.queue.Queue`."""

    client: Client
    keys: Keys
    scripts: scripts.Scripts

    def deduplication_job_id(self, dedup_id: str) -> str | None:
        """The id of the job holding deduplication slot ``dedup_id``, or None (BullMQ's
        getDeduplicationJobId)."""
        raw = self.client.get(self.keys.dedup(dedup_id))
        return None if raw is None else text(raw)

    def remove_deduplication_key(self, dedup_id: str) -> int:
        """Drop the slot so the next add with this id is stored (BullMQ's removeDeduplicationKey:
        a kept keepLastIfActive add is left in place). Returns 1 when a slot was removed, else 0."""
        return int(self.scripts.run(scripts.remove_deduplication_key(self.keys, dedup_id)))
