"""Rate limits and per-minute metrics, in BullMQ 6's keys and semantics.

:class:`Limiter` is a worker's side: its own limiter (``limiter=(max, duration)``, sent to
``move_to_active``, which applies it with the queue's global limit in meta ``max`` and
``duration`` exactly as BullMQ's moveToActive does) and how long the worker must not fetch
after a rate-limited reply. :class:`QueueLimits` gives :class:`~dashboard.queue.Queue` the
admin side: ``set_global_rate_limit`` / ``remove_global_rate_limit`` / ``rate_limit_ttl``
(BullMQ's setGlobalRateLimit / removeGlobalRateLimit / getRateLimitTtl), the global concurrency
(``set_global_concurrency`` / ``remove_global_concurrency``) and ``metrics``
(BullMQ's getMetrics). The counting itself happens in Lua. This module must not import Flask.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis.exceptions import ResponseError

from . import gather, scripts
from .clients import Client
from .codec import to_ms
from .gather import Read, checked
from .keys import Keys

#: Per-minute data points a worker keeps by default: two weeks, as BullMQ's docs recommend.
METRICS_DATA_POINTS = 20160
#: Longest a worker sleeps on one rate-limited reply (BullMQ's maximumRateLimitDelay).
MAX_RATE_LIMIT_DELAY_MS = 30_000


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    return value


def metrics_arg(metrics: int | None) -> str:
    """The ``move_to_finished`` argument for a worker's ``metrics`` option: data points to
    keep, or '' for none (``metrics=None``)."""
    return "" if metrics is None else str(_positive_int(metrics, "metrics"))


class Limiter:
    """A worker's rate limiter and the time until which it must not fetch."""

    def __init__(self, limiter: tuple[int, float | timedelta] | None) -> None:
        self.max: int | None = None
        self.duration_ms = 0
        if limiter is not None:
            try:
                max_jobs, duration = limiter
            except (TypeError, ValueError):
                raise ValueError(f"limiter must be (max, duration_seconds), got {limiter!r}") from None
            self.max = _positive_int(max_jobs, "limiter max")
            self.duration_ms = to_ms(duration, "limiter duration")
            if self.duration_ms < 1:
                raise ValueError("limiter duration must be at least 1 ms")
        self._until = 0.0  # time.monotonic() before which the worker does not fetch

    def fetch_args(self) -> tuple[str, str]:
        """``move_to_active``'s limiter arguments (max, duration ms), or ('', '') for none."""
        return ("", "") if self.max is None else (str(self.max), str(self.duration_ms))

    @property
    def max_arg(self) -> str:
        return "" if self.max is None else str(self.max)

    def note(self, ttl_ms: Any) -> None:
        """A fetch (or a job put back) said the queue is limited for ``ttl_ms`` (0: it is not);
        the wait is capped as BullMQ caps it, so due delayed jobs are still promoted."""
        ttl = int(ttl_ms or 0)
        self._until = time.monotonic() + min(ttl, MAX_RATE_LIMIT_DELAY_MS) / 1000 if ttl > 0 else 0.0

    def blocked(self) -> bool:
        return self._until > time.monotonic()

    def remaining(self) -> float:
        """Seconds until the worker may fetch again (inf when it is not limited)."""
        left = self._until - time.monotonic()
        return left if left > 0 else math.inf


@dataclass(frozen=True)
class Metrics:
    """What BullMQ's ``queue.getMetrics(type, start, end)`` returns."""

    meta: dict[str, int]  # count, prevTS, prevCount
    data: list[int | float]  # jobs per minute, newest minute first
    count: int  # data points stored in all


def _int(raw: Any) -> int:
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return 0


def _number(raw: Any) -> int | float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return 0
    if not math.isfinite(value):
        return 0
    return int(value) if value.is_integer() else value


class QueueLimits:
    """The queue's rate limit and metrics; mixed into :class:`~dashboard.queue.Queue`."""

    client: Client
    keys: Keys
    scripts: scripts.Scripts

    def set_global_rate_limit(self, max_jobs: int, duration_seconds: float | timedelta) -> None:
        """At most ``max_jobs`` jobs start per ``duration_seconds`` across every worker of the
        queue (meta ``max`` and ``duration`` in ms, as BullMQ's setGlobalRateLimit writes)."""
        duration = to_ms(duration_seconds, "duration_seconds")
        if duration < 1:
            raise ValueError("duration_seconds must be at least 1 ms")
        self.scripts.run(scripts.rate_limit(self.keys, "set", _positive_int(max_jobs, "max_jobs"), duration))

    def remove_global_rate_limit(self) -> None:
        """Drop the global rate limit (BullMQ's removeGlobalRateLimit)."""
        self.scripts.run(scripts.rate_limit(self.keys, "remove"))

    def global_rate_limit(self) -> tuple[int, int] | None:
        """The global rate limit as (max jobs, duration ms), or None when none is set."""
        return gather.one(self.client, self.read_global_rate_limit())

    def read_global_rate_limit(self) -> Read[tuple[int, int] | None]:
        """:meth:`global_rate_limit` as a :class:`~dashboard.gather.Read`."""
        def parse(replies: list[Any]) -> tuple[int, int] | None:
            max_jobs, duration = checked(replies)[0]
            return None if max_jobs is None else (_int(max_jobs), _int(duration))
        return Read(lambda pipe: pipe.hmget(self.keys.meta, ["max", "duration"]), 1, parse)

    def set_global_concurrency(self, concurrency: int) -> None:
        """At most ``concurrency`` jobs of the queue active at once across every worker (meta
        ``concurrency``, BullMQ's setGlobalConcurrency)."""
        self.scripts.run(scripts.global_concurrency(self.keys, _positive_int(concurrency, "concurrency")))

    def remove_global_concurrency(self) -> None:
        """Drop the global concurrency cap (BullMQ's removeGlobalConcurrency)."""
        self.scripts.run(scripts.global_concurrency(self.keys, None))

    def global_concurrency(self) -> int | None:
        """The queue's global concurrency cap (meta ``concurrency``, BullMQ's
        setGlobalConcurrency), or None when there is none."""
        return gather.one(self.client, self.read_global_concurrency())

    def read_global_concurrency(self) -> Read[int | None]:
        """:meth:`global_concurrency` as a :class:`~dashboard.gather.Read`."""
        def parse(replies: list[Any]) -> int | None:
            raw = checked(replies)[0]
            return _int(raw) or None if raw is not None else None
        return Read(lambda pipe: pipe.hget(self.keys.meta, "concurrency"), 1, parse)

    def rate_limit_ttl(self, max_jobs: int | None = None) -> int:
        """What BullMQ's getRateLimitTtl(maxJobs) returns, value for value: with a max
        (``max_jobs``, else meta ``max``), the milliseconds until the limiter lets jobs start
        again, 0 when it is not limited; with neither, the limiter key's raw PTTL, so -2 when
        there is no limiter key and -1 when it has no expiry (test for ``> 0`` for "limited")."""
        arg = "0" if max_jobs is None else str(_positive_int(max_jobs, "max_jobs"))
        return int(self.scripts.run(scripts.rate_limit(self.keys, "ttl", arg)))

    def metrics(self, status: str, start: int = 0, end: int = -1) -> Metrics:
        """Per-minute counts of ``completed`` or ``failed`` jobs (``data[0]`` is the newest
        minute), as BullMQ's getMetrics returns them."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.metrics(status), ["count", "prevTS", "prevCount"])
        pipe.lrange(self.keys.metrics(status, data=True), int(start), int(end))
        pipe.llen(self.keys.metrics(status, data=True))
        meta, data, count = pipe.execute()
        return Metrics(dict(zip(("count", "prevTS", "prevCount"), (_int(v) for v in meta))),
                       [_number(v) for v in data], int(count))

    def finished_per_minute(self, now_ms: int) -> float | None:
        """Jobs finished (completed + failed) per minute over the 5 minutes before ``now_ms``,
        from the metrics workers record; None when no worker records metrics for this queue.
        A metrics key of the wrong type (another tool's) is left out."""
        total, recorded = 0.0, False
        for status in ("completed", "failed"):
            try:
                metrics = self.metrics(status, 0, 3)
            except ResponseError:
                continue
            if not metrics.meta.get("prevTS"):
                continue
            recorded = True
            if now_ms - metrics.meta["prevTS"] > 5 * 60_000:
                continue  # nothing finished lately
            current_minute = max(0, metrics.meta.get("count", 0) - metrics.meta.get("prevCount", 0))
            total += sum(metrics.data[:4]) + current_minute
        return total / 5 if recorded else None
