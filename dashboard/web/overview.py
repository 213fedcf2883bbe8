"""What the overview page shows for every queue, read once and shared by every open tab.

:class:`Overview` reads, through the runtime's :class:`~dashboard.catalog.Catalog`, the
queue names from the registry (never ``KEYS``), every queue's counts and oldest waiting job
in two round trips, and the worker connections with a single ``CLIENT LIST`` for all queues.
The snapshot is cached for a short time so that N tabs polling cost about one set of reads.
This module must not import Flask or change any state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..catalog import Catalog
from ..counts import Counts


@dataclass
class QueueSummary:
    """One overview row."""

    name: str
    counts: Counts
    workers: int
    oldest_waiting: int | None  # ms since the epoch

    @property
    def stuck(self) -> bool:
        """Jobs are waiting, the queue is not paused, and no worker is connected."""
        return self.workers == 0 and not self.counts.paused and (self.counts.waiting + self.counts.prioritized) > 0


class Overview:
    """Cached overview snapshots for one Redis and key prefix."""

    def __init__(self, catalog: Catalog, ttl: float = 1.0) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[QueueSummary]] | None = None
        #: What was wrong with the queue registry at the last full read (shown on the page).
        self.problems: list[str] = []

    def invalidate(self) -> None:
        """Forget the cached snapshot (after an action changed something)."""
        self._cached = None

    def snapshot(self) -> list[QueueSummary]:
        """Every queue's summary, at most ``ttl`` seconds old."""
        with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            rows = self._read()
            self._cached = (time.monotonic(), rows)
            return rows

    def row(self, name: str) -> QueueSummary:
        """One queue's summary: from the snapshot, or read now for a queue not registered."""
        for row in self.snapshot():
            if row.name == name:
                return row
        return self._read([name])[0]

    def _read(self, names: list[str] | None = None) -> list[QueueSummary]:
        if names is None:
            names, self.problems = self.catalog.names_and_problems()
        workers = self.catalog.workers(names)
        summaries = self.catalog.summaries(names)
        resumed = [n for n, (counts, _) in zip(names, summaries)  # a pause that reached its end
                   if counts.paused and self.catalog.cluster_problem(n) is None
                   and self.catalog.queue(n).resume_if_due()]
        if resumed:
            summaries = self.catalog.summaries(names)
        return [QueueSummary(name, counts, len(workers[name]), oldest)
                for name, (counts, oldest) in zip(names, summaries)]
