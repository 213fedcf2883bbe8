"""What the overview page shows for every queue, read once and shared by every open tab.

:class:`Overview` reads the queue names from the registry (never ``KEYS``), each queue's
counts and oldest waiting job through :class:`~dashboard.queue.Queue`, and the worker
connections with a single ``CLIENT LIST`` for all queues (``Queue.workers()`` would run
one per queue). The snapshot is cached for a short time so that N tabs polling cost
about one set of reads. This module must not import Flask or change any state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from .keys import worker_client_name
from .counts import Counts
from .queue import Queue

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

    def __init__(self, client: redis.Redis, prefix: str, queue: Callable[[str], Queue],
                 ttl: float = 1.0) -> None:
        self.client = client
        self.prefix = prefix
        self.queue = queue
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[QueueSummary]] | None = None

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
        names = Queue.names(self.client, self.prefix) if names is None else names
        workers = self._worker_counts(names)
        summaries = Queue.summarize([self.queue(name) for name in names])
        return [QueueSummary(name, counts, workers.get(name, 0), oldest)
                for name, (counts, oldest) in zip(names, summaries)]

    def _worker_counts(self, names: list[str]) -> dict[str, int]:
        """Workers per queue: like BullMQ, every worker (ours or Node's) names exactly one
        connection ``<prefix>:<base64(queue)>[:w:<name>]``, and it closes with the worker."""
        by_client_name = {worker_client_name(self.prefix, n): n for n in names}
        counts: dict[str, int] = {}
        for entry in self.client.client_list():
            queue = by_client_name.get(str(entry.get("name", "")).split(":w:", 1)[0])
            if queue is not None:
                counts[queue] = counts.get(queue, 0) + 1
        return counts
