"""Next fire time of a cron pattern, as BullMQ 6.7.0 computes it for a job scheduler.

BullMQ asks its cron-parser for the first time strictly after a given instant. Patterns have
5 fields, or 6 with seconds first; ``tz`` is an IANA zone (when absent, this host's zone, as
Node's cron-parser uses its host's: ``TZ``, else ``/etc/localtime``, else UTC). croniter parses
the fields and finds the matching days; the times of day are walked here so that
daylight-saving days behave as cron-parser's do:

* When the hour field is ``*``, every instant whose wall time matches fires: times in the hour
  that a spring change skips never exist, and an autumn repeated hour fires twice.
* Otherwise, a wall time in the skipped hour fires in the hour the clock lands on (``30 2``
  fires at 03:30 in Berlin on the spring change day), and an hour the autumn change repeats
  fires only once (the first time), unless the search starts inside the repeat.

This module must not touch Redis.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from .config import host_tz

UTC = dt.UTC
#: How many matching days are tried before giving up (a pattern may never match again).
MAX_DAYS = 3 * 366


def zone_of(tz: str | None) -> dt.tzinfo:
    """The zone a pattern runs in (ValueError for a zone name that does not exist); with no
    ``tz``, this host's zone (:func:`host_zone`), as Node's cron-parser uses its host's."""
    if not tz:
        return host_zone(host_tz())
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


@functools.lru_cache(maxsize=8)
def host_zone(tz_env: str | None) -> dt.tzinfo:
    """The zone Node would run in on this host: the ``TZ`` environment variable when it names
    a zone (':' prefix allowed), else the zone ``/etc/localtime`` links to or holds, else UTC
    (as Node does for a ``TZ`` it cannot read)."""
    if tz_env is not None:
        try:
            return ZoneInfo(tz_env.removeprefix(":")) if tz_env.strip(": ") else UTC
        except (KeyError, ValueError, OSError):
            return UTC
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        with localtime.open("rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (KeyError, ValueError, OSError):
        return UTC


#: cron-parser's predefined expressions (6 fields, seconds first).
ALIASES = {"@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
           "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@hourly": "0 0 * * * *",
           "@minutely": "0 * * * * *", "@secondly": "* * * * * *", "@weekdays": "0 0 0 * * 1-5",
           "@weekends": "0 0 0 * * 0,6"}


def _split(pattern: str) -> tuple[list[int], list[int], list[int], str]:
    """(seconds, minutes, hours, 'dom month dow') of a 5- or 6-field pattern."""
    fields = ALIASES.get(pattern.strip(), pattern).split()
    if len(fields) not in (5, 6):
        raise ValueError(f"cron pattern must have 5 or 6 fields, got {pattern!r}")
    # the last <weekday> of the month: cron-parser writes 5L, croniter L5
    fields[-1] = ",".join(f"L{v[:-1]}" if len(v) == 2 and v[0].isdigit() and v[1] in "lL" else v
                          for v in fields[-1].split(","))
    pattern = " ".join(fields)
    six = len(fields) == 6
    from croniter import croniter  # imported on first use: a worker without cron schedulers starts faster

    try:
        exp = croniter(pattern, second_at_beginning=six).expanded
    except Exception as exc:
        raise ValueError(f"bad cron pattern {pattern!r}: {exc}") from exc

    def values(field: Sequence[int | str], top: int) -> list[int]:
        return list(range(top)) if field == ["*"] else sorted(int(v) for v in field)

    seconds = values(exp[5], 60) if six else [0]
    days = " ".join(fields[3:6] if six else fields[2:5])
    return seconds, values(exp[0], 60), values(exp[1], 24), days


def _days(days: str, first: dt.date) -> Iterator[dt.date]:
    """Local dates that match the day-of-month, month and day-of-week fields, from ``first`` on."""
    from croniter import croniter

    it = croniter(f"0 0 {days}", dt.datetime.combine(first, dt.time()) - dt.timedelta(seconds=1))
    for _ in range(MAX_DAYS):
        yield it.get_next(dt.datetime).date()


def _instants(day: dt.date, h: int, m: int, s: int, zone: dt.tzinfo) -> tuple[int, int] | None:
    """(first, second) ms of a wall time (equal unless the hour repeats), None if it never exists."""
    wall = dt.datetime(day.year, day.month, day.day, h, m, s)
    a = wall.replace(tzinfo=zone, fold=0)
    first = int(a.timestamp() * 1000)
    if a.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return first, int(wall.replace(tzinfo=zone, fold=1).timestamp() * 1000)


def _gap_landing(day: dt.date, zone: dt.tzinfo) -> tuple[set[int], int, int] | None:
    """On a day the clock jumps forward: (skipped hours, hour landed on, ms of the jump)."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
    if start.utcoffset() == (start + dt.timedelta(days=1)).utcoffset():
        return None
    for h in range(24):
        if _instants(day, h, 0, 0, zone) is None:
            skipped = {x for x in range(h, 24) if _instants(day, x, 0, 0, zone) is None}
            landing = max(skipped) + 1
            at = int(dt.datetime(day.year, day.month, day.day, landing, tzinfo=zone).timestamp() * 1000)
            return skipped, landing % 24, at
    return None


def next_fire_ms(pattern: str, after_ms: int, tz: str | None = None, end_ms: int | None = None) -> int | None:
    """The first fire time strictly after ``after_ms``; None when there is none (or past ``end_ms``)."""
    zone = zone_of(tz)
    seconds, minutes, hours, days = _split(pattern)
    all_hours = len(hours) == 24
    local = dt.datetime.fromtimestamp(after_ms / 1000, UTC).astimezone(zone)
    for day in _days(days, local.date()):
        day_hours = set(hours)
        gap = None if all_hours else _gap_landing(day, zone)
        if gap and gap[0] & day_hours and after_ms < gap[2]:
            day_hours.add(gap[1])
        best: int | None = None
        first_hour = max(0, local.hour - 2) if day == local.date() else 0
        for h in sorted(x for x in day_hours if x >= first_hour):
            for m in minutes:
                for s in seconds:
                    got = _instants(day, h, m, s, zone)
                    if got is None:
                        continue
                    first, second = got
                    if best is not None and first > best:
                        return best if end_ms is None or best <= end_ms else None
                    for t in (first, second) if all_hours or after_ms >= _hour_start(day, h, zone, 1) else (first,):
                        if t > after_ms and (best is None or t < best):
                            best = t
        if best is not None:
            return best if end_ms is None or best <= end_ms else None
    return None


def _hour_start(day: dt.date, h: int, zone: dt.tzinfo, fold: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, h, tzinfo=zone, fold=fold).timestamp() * 1000)
