"""What monitoring needs to know about every queue, read in a fixed number of round trips.

:func:`read` gathers, for every queue of a :class:`~dashboard.catalog.Catalog`: jobs per state
and the paused flag, the creation time of the next waiting job, the connected workers, and
the running totals of completed and failed jobs that BullMQ's per-minute metrics keep
(``metrics:completed`` / ``metrics:failed``, field ``count``; only where a worker records
metrics, which ours do by default). It costs five round trips whatever the number of queues
(registry, counts, oldest job, ``CLIENT LIST``, metrics totals), each a pipeline of O(1)
commands per queue. The web layer formats the result (Prometheus ``/metrics``). This module
makes no state change (a due timed pause is not resumed here) and must not import Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog
from .codec import now_ms
from .counts import Counts
from .keys import Keys

STATUSES = ("completed", "failed")


@dataclass(frozen=True)
class QueueGauges:
    """One queue's facts at one moment."""

    name: str
    counts: Counts
    workers: int
    #: Creation time (ms) of the next job to run from ``wait``, None when nothing waits.
    oldest_waiting_ms: int | None
    #: Jobs completed and failed since metrics were first recorded (None: never recorded).
    completed_total: int | None
    failed_total: int | None

    def oldest_waiting_seconds(self, now: int) -> float:
        """How long the next waiting job has waited, in seconds (0 when none waits)."""
        return max(0, now - self.oldest_waiting_ms) / 1000 if self.oldest_waiting_ms is not None else 0.0


@dataclass(frozen=True)
class Snapshot:
    """Every queue's facts, the time they were read (ms), and the registry's problems."""

    queues: list[QueueGauges]
    at_ms: int
    problems: list[str]


def read(catalog: Catalog) -> Snapshot:
    """Every queue's :class:`QueueGauges` (see the module docstring for the cost)."""
    names, problems = catalog.names_and_problems()
    summaries = catalog.summaries(names)
    workers = catalog.workers(names)
    totals = _totals(catalog, names)
    queues = [QueueGauges(name, counts, len(workers[name]), oldest, *totals[i])
              for i, (name, (counts, oldest)) in enumerate(zip(names, summaries))]
    return Snapshot(queues, now_ms(), problems)


def _totals(catalog: Catalog, names: list[str]) -> list[tuple[int | None, int | None]]:
    """(completed, failed) ``count`` of each queue's metrics hashes, in one round trip; None
    where there is no hash, or it holds no whole number (or is a key of another type)."""
    if not names:
        return []
    pipe = catalog.client.pipeline(transaction=False)
    for name in names:
        keys = Keys(catalog.prefix, name)
        for status in STATUSES:
            pipe.hget(keys.metrics(status), "count")
    raw = pipe.execute(raise_on_error=False)
    values = [_whole(v) for v in raw]
    return [(values[2 * i], values[2 * i + 1]) for i in range(len(names))]


def _whole(raw: object) -> int | None:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 20:
        return int(raw)
    return None
