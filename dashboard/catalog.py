"""Every queue under one key prefix on one Redis, as one object: the API for "all queues".

The dashboard (and any tool that looks at a whole deployment) holds a :class:`Catalog`
instead of a Redis client: it names the queues (:mod:`dashboard.registry`), makes a
:class:`~dashboard.queue.Queue` for each, reads all their counts in two round trips and
their workers in one, their per-minute throughput in one, the heartbeats of Bullpen's workers,
and pauses or resumes them all. Costs are O(number of queues),
never O(jobs). This module must not import Flask.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from . import heartbeat, registry, series
from .clients import Client
from .counts import Counts, summarize
from .heartbeat import WorkerBeat
from .queue import Queue
from .series import Throughput


class Catalog:
    """The queues under ``prefix`` on ``client``."""

    def __init__(self, client: Client, prefix: str = "bull") -> None:
        self.client = client
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"Catalog(prefix={self.prefix!r})"

    def queue(self, name: str) -> Queue:
        """A :class:`Queue` for ``name`` on the shared client (cheap to make)."""
        return Queue(name, connection=self.client, prefix=self.prefix)

    def names(self) -> list[str]:
        """Queue names known under the prefix (see :meth:`discover` for others' queues)."""
        return registry.queue_names(self.client, self.prefix)

    def names_and_problems(self) -> tuple[list[str], list[str]]:
        """:meth:`names`, and what is wrong with the registry (bad entries, wrong key type)."""
        return registry.read(self.client, self.prefix)

    def discover(self) -> list[str]:
        """Add queues only other tools have written to the registry (bounded SCAN)."""
        return registry.discover(self.client, self.prefix)

    def ping(self) -> bool:
        """True when Redis answers; raises ``redis.RedisError`` when it does not."""
        return bool(self.client.ping())

    def summaries(self, names: list[str]) -> list[tuple[Counts, int | None]]:
        """Each queue's counts and its oldest waiting job's creation time (ms), in two round
        trips whatever the number of queues."""
        return summarize(self.client, [self.queue(n).keys for n in names])

    def newest_failure_ms(self, name: str) -> int | None:
        """When the queue's most recent failure happened (ms), from the failed set's top score:
        one ZREVRANGE. None when nothing failed (or the set cannot be read)."""
        try:
            top = self.client.zrevrange(self.queue(name).keys.failed, 0, 0, withscores=True)
        except ResponseError:
            return None
        return int(top[0][1]) if top else None

    def workers(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Each queue's worker connections (ours and BullMQ's), from one ``CLIENT LIST``."""
        return registry.connected_workers(self.client, self.prefix, names)

    def worker_connections(self) -> list[tuple[str, dict[str, Any]]]:
        """Every worker connection under the prefix, ours and BullMQ's, as (queue, ``CLIENT LIST``
        entry), registered queue or not: one ``CLIENT LIST``."""
        return registry.worker_connections(self.client, self.prefix)

    def throughput(self, names: list[str], minutes: int, now_ms: int) -> list[Throughput]:
        """Each queue's completed and failed jobs per minute over the last ``minutes`` minutes,
        from BullMQ's metrics keys: one round trip of bounded reads (:mod:`dashboard.series`)."""
        return series.per_minute(self.client, [self.queue(n).keys for n in names], minutes, now_ms)

    def arrivals_per_minute(self, name: str, now_ms: int) -> float | None:
        """About how many jobs a minute arrive in the queue, when a backlog lets it be told."""
        return series.arrivals_per_minute(self.client, self.queue(name).keys, now_ms)

    def heartbeats(self, limit: int = heartbeat.LIMIT) -> tuple[list[WorkerBeat], list[str]]:
        """The heartbeats of Bullpen workers alive under the prefix, and what could not be read."""
        return heartbeat.live(self.client, self.prefix, limit)

    def pause_all(self) -> int:
        """Pause every known queue; returns how many."""
        names = self.names()
        for name in names:
            self.queue(name).pause()
        return len(names)

    def resume_all(self) -> int:
        """Resume every known queue; returns how many."""
        names = self.names()
        for name in names:
            self.queue(name).resume()
        return len(names)
