"""The overview's strip: jobs completed and failed per minute across all queues, last hour or 24 h.

Built from the runtime's per-minute metrics reads (:meth:`~dashboard.catalog.Catalog.throughput`):
the last hour reuses the rows' own series; the last 24 hours reads 1,440 points per queue in one
round trip and draws them 15 minutes a bar. The range is the query parameter ``range`` (``1h``,
the default, or ``24h``). This module renders nothing and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request

from ..catalog import Catalog
from ..series import Throughput
from . import charts, htmx
from .extension import current
from .overview import QueueSummary
from .params import choice

WIDTH, HEIGHT = 720, 64


@dataclass(frozen=True)
class Strip:
    """What ``partials/_strip.html`` shows."""

    range: str  # a key of charts.RANGES
    chart: charts.Chart
    completed: int
    failed: int
    queues: int
    per: str  # what one bar counts: "minute", "15 min"
    span: str  # "the last hour"


def strip(catalog: Catalog, rows: list[QueueSummary], range_key: str, now_ms: int) -> Strip:
    """The strip for ``range_key`` ("1h" or "24h") over the queues in ``rows``."""
    minutes, per_bar, words = charts.RANGES[range_key]
    if minutes == 60 and all(row.throughput for row in rows):
        series = [row.throughput for row in rows if row.throughput]
    else:
        series = catalog.throughput([row.name for row in rows], minutes, now_ms)
    completed, failed = _sum(series, minutes)
    per = "minute" if per_bar == 1 else f"{per_bar} min"
    chart = charts.bars(charts.bucket(completed, per_bar), charts.bucket(failed, per_bar), WIDTH, HEIGHT,
                        what=f"All queues, {words}", per=per)
    return Strip(range_key, chart, sum(completed), sum(failed), len(rows), per, words)


def range_arg() -> str:
    """The request's ``range`` (``1h`` or ``24h``; anything else is a 400)."""
    return choice(request.args.get("range", "1h"), charts.RANGES, "range")


def page_context(rows: list[QueueSummary]) -> dict[str, Any]:
    """What the overview's full page adds for the strip (nothing for its polled partial)."""
    if htmx.is_partial():
        return {}
    return {"strip": strip(current().catalog, rows, range_arg(), current().overview.clock())}


def _sum(series: list[Throughput], minutes: int) -> tuple[list[int], list[int]]:
    if not series:
        return [0] * minutes, [0] * minutes
    return ([sum(column) for column in zip(*(one.completed[:minutes] for one in series))],
            [sum(column) for column in zip(*(one.failed[:minutes] for one in series))])
