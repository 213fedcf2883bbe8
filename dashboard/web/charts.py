"""Small bar charts as SVG geometry: jobs completed and failed per minute, for server-side SVG.

:func:`bars` turns per-minute counts into one SVG path per series (completed below, failed
stacked on top), scaled to a box, plus a sentence that says what the chart shows for screen
readers and for anyone who cannot tell the colours apart. Templates draw the paths with
classes styled in ``static/`` (no inline style: the CSP is ``default-src 'self'``). Pure
arithmetic: this module reads nothing and renders no HTML.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

#: The ranges the overview's strip offers: (minutes shown, minutes per bar, words).
RANGES = {"1h": (60, 1, "the last hour"), "24h": (1440, 15, "the last 24 hours")}


@dataclass(frozen=True)
class Chart:
    """What a template needs to draw one chart."""

    width: int
    height: int
    paths: list[tuple[str, str]]  # (CSS class, SVG path data), drawn in this order
    peak: int  # the tallest bar, in jobs
    label: str  # the chart in words
    #: What the bars were drawn from, and each bar's path data ("" for none), per series: a
    #: later chart of the same box and scale reuses the bars whose values did not change.
    drawn: tuple[float, list[int], list[int], list[str], list[str]] | None = field(
        default=None, repr=False, compare=False)


def bucket(values: list[int], size: int) -> list[int]:
    """Sums of ``size`` consecutive values (the last group ends with the last value)."""
    if size <= 1:
        return list(values)
    start = len(values) % size
    head = [sum(values[:start])] if start else []
    return head + [sum(values[i:i + size]) for i in range(start, len(values), size)]


def bars(completed: list[int], failed: list[int], width: int, height: int, *, what: str, per: str = "minute",
         floor: int = 1, previous: Chart | None = None) -> Chart:
    """Stacked bars, one per entry (oldest first), in a ``width`` x ``height`` box. The scale
    is the tallest bar, at least ``floor`` jobs, so a quiet queue does not look busy. ``what``
    and ``per`` go into the label ("the last hour", "minute"). With ``previous`` (the same
    series drawn earlier: the overview redraws each queue's chart every snapshot), bars whose
    values, place and scale did not change are taken from it instead of being drawn again."""
    n = max(len(completed), len(failed), 1)
    done = list(completed) + [0] * (n - len(completed))
    bad = list(failed) + [0] * (n - len(failed))
    peak = max([c + f for c, f in zip(done, bad)] + [0])
    scale = (height - 1) / max(peak, floor)
    step = width / n
    gap = 0.2 * step if step >= 3 else 0.0
    paths: list[tuple[str, str]] = []
    # What is the same for every bar is formatted once (its left edge, width and way back), and
    # heights come from a table of tenths of a pixel: 50 charts of 60 bars are 6,000 bars a snapshot.
    lefts = [f"M{_n(i * step)} " for i in range(n)]
    across, back = f"h{_n(step - gap)}v", f"h{_n(gap - step)}z"
    tenths = _tenths(height)
    old = previous.drawn if previous is not None and (previous.width, previous.height) == (width, height) else None
    if old is not None and (old[0] != scale or len(old[1]) != n):
        old = None
    drawn: list[list[str]] = []
    for s, (cls, values, below) in enumerate((("completed", done, None), ("failed", bad, done))):
        parts = []
        kept = None if old is None else (old[3] if s == 0 else old[4])
        for i, value in enumerate(values):
            if value <= 0:
                parts.append("")
                continue
            if old is not None and kept is not None and old[1][i] == done[i] and old[2][i] == bad[i]:
                parts.append(kept[i])  # same values at the same place and scale: the same bar
                continue
            tall = value * scale
            if tall < 1.0:
                tall = 1.0
            top = (height - below[i] * scale if below else height) - tall
            parts.append(f"{lefts[i]}{tenths[round(top * 10)] if top >= 0 else _n(top)}{across}"
                         f"{tenths[round(tall * 10)]}{back}")
        drawn.append(parts)
        d = "".join(parts)
        if d:
            paths.append((cls, d))
    total_done, total_bad = sum(done), sum(bad)
    label = (f"{what}: {total_done:,} completed, {total_bad:,} failed; at most {peak:,} a {per}"
             if total_done or total_bad else f"{what}: no job finished")
    return Chart(width, height, paths, peak, label, (scale, done, bad, drawn[0], drawn[1]))


@functools.lru_cache(maxsize=16)
def _tenths(height: int) -> list[str]:
    """``_n(k / 10)`` for k = 0 .. 10 * height (+1 for a value that rounds up past it)."""
    return [_n(k / 10) for k in range(10 * height + 2)]


def _n(value: float) -> str:
    """A coordinate, short: one decimal, integers without a decimal point."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
        return "0" if text == "-0" else text
    return text
