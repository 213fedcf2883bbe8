"""Counting a queue's jobs per state: the reads behind ``Queue.counts``, the overview and /metrics.

Reads are O(1) per queue (LLEN/ZCARD/HEXISTS): plain pipelined commands (:func:`summarize`),
or for many queues at once one ``read_queue_counts`` script call per queue, which also reads
the next waiting job's creation time and BullMQ's metrics totals (:func:`read_many`: one round
trip, a dozen times fewer replies for the client to parse). A key of the wrong type, written
by another tool, is reported in :attr:`Counts.problems` and counted as 0. This module makes
no state change. :class:`QueueCleanCount` (mixed into :class:`~dashboard.queue.Queue`) counts
what a clean would delete, with one ZCOUNT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from redis.exceptions import ResponseError

from . import scripts
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


@dataclass(frozen=True)
class Reading:
    """One queue's counts, its next waiting job's creation time (ms) and BullMQ's metrics totals
    (the ``count`` field of ``metrics:completed`` / ``metrics:failed`` as stored, None when absent)."""

    counts: Counts
    oldest: int | None
    completed_total: bytes | str | None
    failed_total: bytes | str | None


def read_many(client: Client, queues: list[Keys], bull: list[bool], scripted: list[bool]) -> list[Reading]:
    """:class:`Reading` of each queue: one ``read_queue_counts`` call per queue where ``scripted``
    (its keys share a hash slot), all in one round trip; the others (on Redis Cluster, a queue
    without a hash tag) by plain reads, in two or three more."""
    run = scripts.Scripts(client)
    asked = [i for i, ok in enumerate(scripted) if ok]
    replies = run.batch([scripts.read_queue_counts(queues[i], bull[i]) for i in asked])
    out: list[Reading | None] = [None] * len(queues)
    for i, reply in zip(asked, replies):
        if isinstance(reply, Exception):  # the script itself could not run: read plainly below
            continue
        raw = [value if isinstance(value, int) else ResponseError(text(value)) for value in reply[:9]]
        oldest = None
        if isinstance(reply[9], (bytes, str)):
            try:
                oldest = int(reply[9])
            except ValueError:
                oldest = None
        out[i] = Reading(_parse(raw, queues[i], bull[i]), oldest, reply[10], reply[11])
    plain = [i for i, found in enumerate(out) if found is None]
    if plain:
        summaries = summarize(client, [queues[i] for i in plain], bull=[bull[i] for i in plain])
        pipe = client.pipeline(transaction=False)
        for i in plain:
            for status in ("completed", "failed"):
                pipe.hget(queues[i].metrics(status), "count")
        totals = pipe.execute(raise_on_error=False)
        for n, (i, (counts, oldest)) in enumerate(zip(plain, summaries)):
            done, failed = (v if isinstance(v, (bytes, str)) else None for v in totals[2 * n:2 * n + 2])
            out[i] = Reading(counts, oldest, done, failed)
    return [r for r in out if r is not None]
