"""What the overview page shows for every queue, read once and shared by every open tab.

:class:`Overview` reads, through the runtime's :class:`~dashboard.catalog.Catalog`, the
queue names from the registry (never ``KEYS``), every queue's counts and oldest waiting job
in two round trips, the worker connections with a single ``CLIENT LIST`` for all queues, and
each queue's jobs completed and failed per minute over the last hour (BullMQ's metrics, one
round trip of bounded reads); from those it tells which rows need attention, and why, in words.
The snapshot is cached for a short time so that N tabs polling cost about one set of reads.
This module must not import Flask or change any state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..catalog import Catalog
from ..catalog import QueueSummary as Summary
from ..codec import now_ms
from ..series import SeriesCache, Throughput
from . import charts, formatting

#: Minutes of per-minute history each overview row charts, and the "failing now" window.
HOUR = 60
RECENT = 5


@dataclass
class QueueSummary(Summary):
    """One overview row: the runtime's summary of a queue, its last hour and why it needs attention."""

    throughput: Throughput | None = None  # the last hour, per minute
    attention: list[str] = field(default_factory=list)  # why the row needs attention, in words
    chart: charts.Chart | None = None  # the last hour, drawn once per snapshot (None: no metrics)

    @property
    def failed_recently(self) -> int:
        """Jobs failed in the last :data:`RECENT` minutes (0 when no worker records metrics)."""
        return self.throughput.failed_last(RECENT) if self.throughput else 0


class Overview:
    """Cached overview snapshots for one Redis and key prefix."""

    def __init__(self, catalog: Catalog, ttl: float = 1.0, oldest_alert_ms: int = 300_000,
                 clock: Callable[[], int] = now_ms) -> None:
        self.catalog = catalog
        #: Milliseconds since the epoch: which minute is "now" for the charts.
        self.clock = clock
        self.ttl = ttl
        #: A row needs attention when its oldest waiting job has waited longer than this.
        self.oldest_alert_ms = oldest_alert_ms
        self._lock = threading.Lock()
        self._cached: tuple[float, list[QueueSummary]] | None = None
        #: Each queue's last chart and the series it was drawn from: an unchanged series (a
        #: quiet queue) is not drawn again, a changed one only in the bars that changed
        #: (within a minute, the current one): 50 charts are 6,000 bars.
        self._charts: dict[str, tuple[tuple[list[int], list[int]], charts.Chart]] = {}
        #: Each queue's last hour as last read (read again when its metrics moved on: see series).
        self._series: SeriesCache = {}
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

    def row(self, name: str, history: bool = True) -> QueueSummary:
        """One queue's summary: from the snapshot while it is fresh, else read now for this
        queue alone (a queue page costs the same whatever the number of queues). Without
        ``history``, a row read now has no last hour (no chart, no "failing now"): a round trip
        less, for pages that show neither."""
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            for row in cached[1]:
                if row.name == name:
                    return row
        return self._read([name], history)[0]

    def _read(self, names: list[str] | None = None, history: bool = True) -> list[QueueSummary]:
        summaries, problems = self.catalog.overview(names)
        if names is None:
            self.problems = problems
        names = [summary.name for summary in summaries]
        now = self.clock()
        throughput: list[Throughput | None] = (list(self.catalog.throughput(names, HOUR, now, self._series))
                                               if history else [None] * len(names))
        rows = [QueueSummary(s.name, s.counts, s.workers, s.oldest_waiting, tp)
                for s, tp in zip(summaries, throughput)]
        drawn: dict[str, tuple[tuple[list[int], list[int]], charts.Chart]] = {}
        for row in rows:
            row.attention = attention(row, now, self.oldest_alert_ms)
            if row.throughput and row.throughput.recorded:
                series = (row.throughput.completed, row.throughput.failed)
                last = self._charts.get(row.name)
                row.chart = last[1] if last is not None and last[0] == series else charts.bars(
                    *series, 120, 24, what=f"{row.name}, last hour", previous=last[1] if last else None)
                drawn[row.name] = (series, row.chart)
        if names is None or len(names) > 1:  # the whole overview: forget queues gone from it
            self._charts = drawn
        else:
            self._charts.update(drawn)
        return rows


def attention(row: QueueSummary, now_ms: int, oldest_alert_ms: int) -> list[str]:
    """Why a row needs attention now, most urgent first, in words (never colour alone)."""
    reasons = []
    if row.failed_recently:
        reasons.append(f"failing now: {row.failed_recently:,} failed in the last {RECENT} min")
    ready = row.counts.waiting + row.counts.prioritized
    if row.workers == 0 and ready:
        reasons.append(f"{ready:,} waiting, no worker")
    if row.counts.paused:
        reasons.append("paused")
    if row.oldest_waiting and now_ms - row.oldest_waiting > oldest_alert_ms:
        reasons.append(f"oldest waiting {formatting.age(row.oldest_waiting)} "
                       f"(over {formatting.duration(oldest_alert_ms)})")
    return reasons
