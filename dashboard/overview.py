"""What the overview page shows for every queue, read once and shared by every open tab.

:class:`Overview` reads the queue names from the registry (never ``KEYS``), each queue's
counts and oldest waiting job through :class:`~dashboard.queue.Queue`, and the worker
connections with a single ``CLIENT LIST`` for all queues (``Queue.workers()`` would run
one per queue); a worker's second, blocking connection is not counted. The snapshot is cached for a short time so that N tabs polling cost
about one set of reads. This module must not import Flask or change any state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from .keys import worker_client_name
from .queue import Counts, Queue


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

    def _read(self) -> list[QueueSummary]:
        names = Queue.names(self.client, self.prefix)
        workers = self._worker_counts(names)
        rows = []
        for name in names:
            q = self.queue(name)
            counts = q.counts()
            oldest = q.oldest_waiting_timestamp() if counts.waiting else None
            rows.append(QueueSummary(name, counts, workers.get(name, 0), oldest))
        return rows

    def _worker_counts(self, names: list[str]) -> dict[str, int]:
        by_client_name = {worker_client_name(self.prefix, n): n for n in names}
        counts: dict[str, int] = {}
        for entry in self.client.client_list():
            client_name = str(entry.get("name", ""))
            base = client_name.split(":w:", 1)[0]
            queue = by_client_name.get(base)
            # A worker holds two named connections; the one blocked on the marker is not counted.
            if queue is not None and not str(entry.get("cmd", "")).startswith("bzpop"):
                counts[queue] = counts.get(queue, 0) + 1
        return counts
