"""Counting a queue's jobs per state: the reads behind ``Queue.counts`` and the overview.

Plain pipelined reads (LLEN/ZCARD/HEXISTS), O(1) per queue; a key of the wrong type, written
by another tool, is reported in :attr:`Counts.problems` and counted as 0. This module makes
no state change. :class:`QueueCleanCount` (mixed into :class:`~dashboard.queue.Queue`) counts
what a clean would delete, with one ZCOUNT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .clients import Client
from .codec import text, to_ms
from .keys import Keys


@dataclass
class Counts:
    """Jobs per state (BullMQ's names), whether the queue is paused, and read problems."""

    waiting: int = 0
    prioritized: int = 0
    delayed: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    waiting_children: int = 0
    paused: bool = False
    #: ids in the ``paused`` list BullMQ <= 5 used; counted in ``waiting`` too (6.x resume moves them)
    legacy_paused: int = 0
    #: True for a legacy Bull 3/4 queue (npm ``bull``; see :mod:`dashboard.bull`)
    bull: bool = False
    #: Bull only: ids in its ``priority`` zset. Bull keeps them in ``wait``/``paused`` too, so
    #: they are counted in ``waiting`` (``prioritized`` stays 0, as Bull has no such state)
    priority: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """The counts keyed as Node BullMQ 6's ``getJobCounts()`` keys them (its ``waiting``
        leaves out the legacy ``paused`` list, which it reports as ``paused``). For a Bull queue
        ``waiting`` keeps the ``paused`` list, as its waiting tab lists it (Bull's own shape:
        :meth:`as_bull`)."""
        return {
            "waiting": self.waiting - (0 if self.bull else self.legacy_paused), "prioritized": self.prioritized,
            "delayed": self.delayed, "active": self.active, "completed": self.completed, "failed": self.failed,
            "waiting-children": self.waiting_children, "paused": self.legacy_paused,
        }

    def as_bull(self) -> dict[str, int]:
        """The counts keyed as Bull 3/4's ``getJobCounts()`` keys them (``waiting`` is the
        ``wait`` list alone, ``paused`` the ``paused`` list)."""
        return {"waiting": self.waiting - self.legacy_paused, "active": self.active, "completed": self.completed,
                "failed": self.failed, "delayed": self.delayed, "paused": self.legacy_paused}

    @property
    def total(self) -> int:
        return (self.waiting + self.prioritized + self.delayed + self.active + self.completed + self.failed
                + self.waiting_children)


_COUNTED = ("wait", "paused", "prioritized", "delayed", "active", "completed", "failed", "waiting-children", "meta")


#: What a Bull queue's count reads put in place of ``prioritized`` and ``waiting-children``.
_BULL_COUNTED = ("wait", "paused", "priority", "delayed", "active", "completed", "failed", "meta-paused", "meta")


def _count_commands(pipe: Any, k: Keys, bull: bool = False) -> None:
    pipe.llen(k.wait).llen(k.paused)
    pipe.zcard(k.priority if bull else k.prioritized).zcard(k.delayed).llen(k.active).zcard(k.completed)
    pipe.zcard(k.failed)
    pipe.exists(k.meta_paused) if bull else pipe.zcard(k.waiting_children)
    pipe.hexists(k.meta, "paused")


def _parse(raw: list[Any], k: Keys, bull: bool = False) -> Counts:
    counts = Counts(bull=bull)
    values: list[int] = []
    for suffix, value in zip(_BULL_COUNTED if bull else _COUNTED, raw):
        if isinstance(value, Exception):
            counts.problems.append(f"{k.base}{suffix}: {value}")
            value = 0
        values.append(int(value))
    wait, legacy_paused, ranked, counts.delayed, counts.active, counts.completed, counts.failed, eighth, paused = values
    counts.waiting = wait + legacy_paused
    counts.legacy_paused = legacy_paused
    if bull:  # Bull has no prioritized or waiting-children state; isPaused() is meta-paused or meta.paused
        counts.priority = ranked
        counts.paused = bool(eighth) or bool(paused)
    else:
        counts.prioritized, counts.waiting_children, counts.paused = ranked, eighth, bool(paused)
    return counts


def summarize(client: Client, queues: list[Keys], oldest: bool = True,
              bull: list[bool] | None = None) -> list[tuple[Counts, int | None]]:
    """Counts of several queues in one round trip, and with ``oldest`` the creation time (ms)
    of each one's next waiting job in a second one. ``bull`` says which queues are legacy Bull
    3/4 queues (their ``priority`` zset and ``meta-paused`` flag are read instead)."""
    flags = bull or [False] * len(queues)
    pipe = client.pipeline(transaction=False)
    for k, is_bull in zip(queues, flags):
        _count_commands(pipe, k, is_bull)
        if oldest:
            pipe.lindex(k.wait, -1)
            pipe.lindex(k.paused, -1)
    raw = pipe.execute(raise_on_error=False)
    step = len(_COUNTED) + (2 if oldest else 0)
    counts = [_parse(raw[i * step:i * step + len(_COUNTED)], k, b) for i, (k, b) in enumerate(zip(queues, flags))]
    stamps: list[int | None] = [None] * len(queues)
    if oldest:  # the next job to run is at wait's tail, or at paused's (a paused legacy queue)
        heads = [raw[(i + 1) * step - 2] if isinstance(raw[(i + 1) * step - 2], (bytes, str))
                 else raw[(i + 1) * step - 1] for i in range(len(queues))]
        asked = [i for i, job_id in enumerate(heads) if isinstance(job_id, (bytes, str))]
        pipe = client.pipeline(transaction=False)
        for i in asked:
            head = heads[i]
            pipe.hget(queues[i].job(text(head)), "timestamp")
        for i, value in zip(asked, pipe.execute(raise_on_error=False) if asked else []):
            try:
                stamps[i] = int(value) if isinstance(value, (bytes, str)) else None
            except ValueError:
                stamps[i] = None
    return list(zip(counts, stamps))


class QueueCleanCount:
    """How many jobs a clean would delete, for :class:`~dashboard.queue.Queue`."""

    client: Any
    keys: Keys
    clock: Callable[[], int]

    def clean_count(self, state: str, grace: float | timedelta = 0, limit: int | None = None) -> int:
        """Completed or failed jobs that finished more than ``grace`` seconds ago (the ones
        ``clean`` would delete), at most ``limit`` (None: all): one ZCOUNT, O(log n)."""
        if state not in ("completed", "failed"):
            raise ValueError(f"clean takes 'completed' or 'failed', not {state!r}")
        key = self.keys.completed if state == "completed" else self.keys.failed
        found = int(self.client.zcount(key, "-inf", self.clock() - to_ms(grace, "grace")))
        return found if limit is None else min(found, limit)
