"""What monitoring needs to know about every queue, read in a fixed number of round trips.

:func:`read` gathers, for every queue of a :class:`~dashboard.catalog.Catalog`: jobs per state
and the paused flag, the creation time of the next waiting job, the connected workers, and
the running totals of completed and failed jobs that BullMQ's per-minute metrics keep
(``metrics:completed`` / ``metrics:failed``, field ``count``; only where a worker records
metrics, which ours do by default). It costs three round trips whatever the number of queues
(registry, ``CLIENT LIST``, and one script call per queue that reads its counts, oldest job and
metrics totals: see :meth:`Catalog.readings`), plus one when a queue's kind (Bull or BullMQ)
is not known yet. The web layer formats the result (Prometheus ``/metrics``). This module
makes no state change (a due timed pause is not resumed here) and must not import Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog
from .codec import now_ms
from .counts import Counts


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
    readings = catalog.readings(names)
    workers = catalog.workers(names)
    queues = [QueueGauges(name, r.counts, len(workers[name]), r.oldest, _whole(r.completed_total),
                          _whole(r.failed_total)) for name, r in zip(names, readings)]
    return Snapshot(queues, now_ms(), problems)


def _whole(raw: object) -> int | None:
    """A metrics ``count`` as a whole number; None where there is none, or it is not one."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 20:
        return int(raw)
    return None
