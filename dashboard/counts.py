"""Counting a queue's jobs per state: the reads behind ``Queue.counts`` and the overview.

Plain pipelined reads (LLEN/ZCARD/HEXISTS), O(1) per queue; a key of the wrong type, written
by another tool, is reported in :attr:`Counts.problems` and counted as 0. This module makes
no state change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .clients import Client
from .codec import text
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
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """The counts keyed as Node BullMQ 6's ``getJobCounts()`` keys them (its ``waiting``
        leaves out the legacy ``paused`` list, which it reports as ``paused``)."""
        return {
            "waiting": self.waiting - self.legacy_paused, "prioritized": self.prioritized,
            "delayed": self.delayed, "active": self.active, "completed": self.completed, "failed": self.failed,
            "waiting-children": self.waiting_children, "paused": self.legacy_paused,
        }

    @property
    def total(self) -> int:
        return (self.waiting + self.prioritized + self.delayed + self.active + self.completed + self.failed
                + self.waiting_children)


_COUNTED = ("wait", "paused", "prioritized", "delayed", "active", "completed", "failed", "waiting-children", "meta")


def _count_commands(pipe: Any, k: Keys) -> None:
    pipe.llen(k.wait).llen(k.paused).zcard(k.prioritized).zcard(k.delayed).llen(k.active)
    pipe.zcard(k.completed).zcard(k.failed).zcard(k.waiting_children).hexists(k.meta, "paused")


def _parse(raw: list[Any], k: Keys) -> Counts:
    counts = Counts()
    values: list[int] = []
    for suffix, value in zip(_COUNTED, raw):
        if isinstance(value, Exception):
            counts.problems.append(f"{k.base}{suffix}: {value}")
            value = 0
        values.append(int(value))
    (wait, legacy_paused, counts.prioritized, counts.delayed, counts.active, counts.completed,
     counts.failed, counts.waiting_children, paused) = values
    counts.waiting = wait + legacy_paused
    counts.legacy_paused = legacy_paused
    counts.paused = bool(paused)
    return counts


def summarize(client: Client, queues: list[Keys], oldest: bool = True) -> list[tuple[Counts, int | None]]:
    """Counts of several queues in one round trip, and with ``oldest`` the creation time (ms)
    of each one's next waiting job in a second one."""
    pipe = client.pipeline(transaction=False)
    for k in queues:
        _count_commands(pipe, k)
        if oldest:
            pipe.lindex(k.wait, -1)
    raw = pipe.execute(raise_on_error=False)
    step = len(_COUNTED) + (1 if oldest else 0)
    counts = [_parse(raw[i * step:i * step + len(_COUNTED)], k) for i, k in enumerate(queues)]
    stamps: list[int | None] = [None] * len(queues)
    if oldest:
        heads = [raw[(i + 1) * step - 1] for i in range(len(queues))]
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
