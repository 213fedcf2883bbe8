"""Every queue under one key prefix on one Redis, as one object: the API for "all queues".

The dashboard (and any tool that looks at a whole deployment) holds a :class:`Catalog`
instead of a Redis client: it names the queues (:mod:`dashboard.registry`), makes a
:class:`~dashboard.queue.Queue` for each, reads all their counts in two round trips and
their workers in one, their per-minute throughput in one, the heartbeats of Bullpen's workers,
and pauses or resumes them all. Costs are O(number of queues), never O(jobs). A legacy Bull
3/4 queue (npm ``bull``) is recognised from its keys and handed out as a
:class:`~dashboard.bull.BullQueue`, which manages it by Bull's rules. On Redis Cluster it finds
queues on every primary, and a queue whose keys would not share one slot (no ``{hash tag}``) is
still listed and counted, with :meth:`Catalog.cluster_problem` saying why it cannot be acted on.
This module must not import Flask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from . import bull, heartbeat, registry, series
from .audit import AuditLog
from .clients import Client, is_cluster, ping_all
from .counts import Counts, Reading, read_many
from .gather import Read
from .heartbeat import WorkerBeat
from .keys import Keys, cluster_slot_problem
from .queue import Queue
from .series import Throughput

#: Seconds a queue's kind (Bull or BullMQ), once its keys told it, is trusted by :meth:`Catalog.summaries`.
KIND_TTL = 30.0


@dataclass
class QueueSummary:
    """One queue at a glance: its counts, connected workers and oldest waiting job."""

    name: str
    counts: Counts
    workers: int
    oldest_waiting: int | None  # ms since the epoch

    @property
    def stuck(self) -> bool:
        """Jobs are waiting, the queue is not paused, and no worker is connected."""
        return self.workers == 0 and not self.counts.paused and (self.counts.waiting + self.counts.prioritized) > 0


class Catalog:
    """The queues under ``prefix`` on ``client``."""

    def __init__(self, client: Client, prefix: str = "bull") -> None:
        self.client = client
        self.prefix = prefix
        self._kinds: dict[str, tuple[float, bool]] = {}

    def __repr__(self) -> str:
        return f"Catalog(prefix={self.prefix!r})"

    def queue(self, name: str) -> Queue:
        """A :class:`Queue` for ``name`` on the shared client, a :class:`~dashboard.bull.BullQueue`
        when its keys say Bull 3/4 wrote it (one script call, made afresh: actions rely on it)."""
        queue = Queue(name, connection=self.client, prefix=self.prefix)
        kind = bull.kinds(self.client, [queue.keys])[0]
        if kind is not None:
            self._kinds[name] = (time.monotonic(), kind)
        return bull.BullQueue.adopt(queue) if kind else queue

    def bull_flags(self, names: list[str]) -> list[bool]:
        """Which of ``names`` are legacy Bull 3/4 queues: one round trip for those not told in
        the last :data:`KIND_TTL` seconds (a queue whose keys tell nothing yet is asked again)."""
        now = time.monotonic()
        ask = [n for n in names if (n not in self._kinds or now - self._kinds[n][0] > KIND_TTL)
               and self.cluster_problem(n) is None]  # a script on keys of several slots fails
        if ask:
            for name, kind in zip(ask, bull.kinds(self.client, [Keys(self.prefix, n) for n in ask], strict=False)):
                if kind is None:
                    self._kinds.pop(name, None)
                else:
                    self._kinds[name] = (now, kind)
        return [n in self._kinds and self._kinds[n][1] for n in names]

    def names(self) -> list[str]:
        """Queue names known under the prefix (see :meth:`discover` for others' queues)."""
        return registry.queue_names(self.client, self.prefix)

    def names_and_problems(self) -> tuple[list[str], list[str]]:
        """:meth:`names`, and what is wrong with the registry (bad entries, wrong key type) or,
        on Redis Cluster, with a queue that has no hash tag (see :meth:`cluster_problem`)."""
        names, problems = registry.read(self.client, self.prefix)
        return names, problems + [p for p in map(self.cluster_problem, names) if p is not None]

    def cluster_problem(self, name: str) -> str | None:
        """On Redis Cluster, why queue ``name`` cannot be worked or acted on (its keys would
        not share one slot: no hash tag); None when it can, and always None on one server."""
        return cluster_slot_problem(self.prefix, name) if is_cluster(self.client) else None

    def discover(self) -> list[str]:
        """Add queues only other tools have written to the registry (bounded SCAN)."""
        return registry.discover(self.client, self.prefix)

    def ping(self) -> bool:
        """True when Redis (every primary of a cluster) answers; raises ``redis.RedisError``
        when it does not."""
        return ping_all(self.client)

    def summaries(self, names: list[str]) -> list[tuple[Counts, int | None]]:
        """Each queue's counts and its oldest waiting job's creation time (ms), in one round
        trip whatever the number of queues (see :meth:`readings`)."""
        return [(r.counts, r.oldest) for r in self.readings(names)]

    def readings(self, names: list[str]) -> list[Reading]:
        """Each queue's counts, oldest waiting job and metrics totals: one script call per queue,
        all in one round trip (plus one for queues whose kind is not known yet). On Redis
        Cluster a queue without a hash tag is read with plain commands (counted too)."""
        return read_many(self.client, [Keys(self.prefix, n) for n in names], self.bull_flags(names),
                         [self.cluster_problem(n) is None for n in names])

    def overview(self, names: list[str] | None = None) -> tuple[list[QueueSummary], list[str]]:
        """A :class:`QueueSummary` of each queue in ``names`` (None: every known queue), and what
        is wrong with the registry (when it was read). A timed pause that has reached its end is
        resumed on the way (exactly one caller does it). Three or four round trips plus one
        ``CLIENT LIST``, whatever the number of jobs."""
        problems: list[str] = []
        if names is None:
            names, problems = self.names_and_problems()
        workers = self.workers(names)
        summaries = self.summaries(names)
        resumed = [n for n, (counts, _) in zip(names, summaries)
                   if counts.paused and self.cluster_problem(n) is None
                   and self.queue(n).resume_if_due()]  # a pause that reached its end
        if resumed:
            for name in resumed:
                AuditLog(self.client, self.prefix).auto_resumed(name, "automatic")
            summaries = self.summaries(names)
        rows = [QueueSummary(name, counts, len(workers[name]), oldest)
                for name, (counts, oldest) in zip(names, summaries)]
        return rows, problems

    def newest_failure_ms(self, name: str) -> int | None:
        """When the queue's most recent failure happened (ms), from the failed set's top score:
        one ZREVRANGE. None when nothing failed (or the set cannot be read)."""
        try:
            top = self.client.zrevrange(Keys(self.prefix, name).failed, 0, 0, withscores=True)
        except ResponseError:
            return None
        return int(top[0][1]) if top else None

    def workers(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Each queue's worker connections (ours and BullMQ's), from one ``CLIENT LIST``."""
        return registry.connected_workers(self.client, self.prefix, names)

    def actionable(self) -> list[str]:
        """:meth:`names` less the queues that cannot be acted on here (:meth:`cluster_problem`)."""
        return [n for n in self.names() if self.cluster_problem(n) is None]

    def worker_connections(self) -> list[tuple[str, dict[str, Any]]]:
        """Every worker connection under the prefix, ours and BullMQ's, as (queue, ``CLIENT LIST``
        entry), registered queue or not: one ``CLIENT LIST``."""
        return registry.worker_connections(self.client, self.prefix)

    def throughput(self, names: list[str], minutes: int, now_ms: int,
                   cache: series.SeriesCache | None = None) -> list[Throughput]:
        """Each queue's completed and failed jobs per minute over the last ``minutes`` minutes,
        from BullMQ's metrics keys: one round trip of bounded reads (:mod:`dashboard.series`;
        with ``cache``, lists are read only for queues whose metrics moved on since the last call)."""
        return series.per_minute(self.client, [Keys(self.prefix, n) for n in names], minutes, now_ms, cache)

    def read_throughput(self, name: str, minutes: int, now_ms: int) -> Read[list[Throughput]]:
        """:meth:`throughput` of one queue, uncached, as a :class:`~dashboard.gather.Read`."""
        return series.read_per_minute([Keys(self.prefix, name)], minutes, now_ms)

    def read_arrivals(self, name: str, now_ms: int) -> Read[float | None]:
        """About how many jobs a minute arrive in the queue, when a backlog lets it be told
        (:func:`dashboard.series.read_arrivals`), as a :class:`~dashboard.gather.Read`."""
        return series.read_arrivals(Keys(self.prefix, name), now_ms)

    def heartbeats(self, limit: int = heartbeat.LIMIT) -> tuple[list[WorkerBeat], list[str]]:
        """The heartbeats of Bullpen workers alive under the prefix, and what could not be read."""
        return heartbeat.live(self.client, self.prefix, limit)

    def pause_all(self) -> int:
        """Pause every known queue (on Redis Cluster, those with a hash tag); returns how many."""
        names = self.actionable()
        for name in names:
            self.queue(name).pause()
        return len(names)

    def resume_all(self) -> int:
        """Resume every known queue (on Redis Cluster, those with a hash tag); returns how many."""
        names = self.actionable()
        for name in names:
            self.queue(name).resume()
        return len(names)
