"""Values to and from Redis: reply bytes as text, JSON for fields, seconds as milliseconds,
and durations people type ("90", "15m", "1h30m") as seconds, read the same way by the command
line and the dashboard.

Every module that reads a reply or writes a JSON field uses these, so decoding and
serialization behave the same everywhere. This module performs no I/O and imports nothing
from the rest of the package.
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from typing import Any


def text(raw: Any) -> str:
    """A Redis reply as text, whether the client decodes responses or not."""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def shown_id(raw: Any) -> str:
    """A job id for messages: its text, with bytes that are not UTF-8 shown as ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)


def safe_text(value: str) -> str:
    """``value`` with anything UTF-8 cannot encode (lone surrogates) escaped, so Redis takes it."""
    try:
        value.encode()
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode()


def as_bytes(raw: Any) -> bytes:
    """A job id or token from a reply (or a Job) as bytes, whatever the client decodes."""
    return raw if isinstance(raw, bytes) else str(raw).encode()


_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode  # built once, not per call


def dumps(value: Any, what: str) -> str:
    """Compact JSON, or ``TypeError`` naming what could not be serialized."""
    try:
        return _ENCODE(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable: {exc}") from None


def to_ms(value: float | int | timedelta | None, what: str) -> int:
    """Seconds (int, float or timedelta) to whole milliseconds; ``ValueError`` if negative."""
    if value is None:
        return 0
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be seconds (int, float or timedelta), got {value!r}")
    else:
        seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return int(round(seconds * 1000))


_DURATION_PART = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(ms|min|s|m|h|d)?")
_DURATION_UNITS = {"d": 86400, "h": 3600, "min": 60, "m": 60, "s": 1, "ms": 0.001}
#: Longest duration :func:`parse_duration` takes (about 317 years).
MAX_DURATION = 10**10


def parse_duration(raw: str) -> float:
    """``"90"`` (seconds), ``"90s"``, ``"500ms"``, ``"15m"`` (or ``"15min"``), ``"2h"``, ``"7d"``,
    or parts from the largest unit down (``"1h30m"``, ``"1d 12h"``) as seconds, a float >= 0.
    ``ValueError`` with a message for anything else (a bare number only alone, each unit once)."""
    text, seconds, pos, last = raw.strip(), 0.0, 0, math.inf
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        unit = match[2] if match else None
        size = _DURATION_UNITS[unit] if unit else 1
        if match is None or (unit is None and pos > 0) or (unit is None and match.end() < len(text)) or size >= last:
            raise ValueError(f"{raw[:40]!r} is not a duration: use seconds, or numbers with ms, s, m, h or d "
                             "(e.g. 90, 15m, 2h, 7d, 1h30m)")
        seconds, pos, last = seconds + float(match[1]) * size, match.end(), size
    if not text:
        raise ValueError("an empty text is not a duration: use seconds, or numbers with ms, s, m, h or d")
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError(f"{raw[:40]!r} is too long a duration")
    return seconds


def now_ms() -> int:
    """The wall clock in integer milliseconds, as BullMQ stores times."""
    import time

    return int(time.time() * 1000)


def counted(value: Any, whole: bool = True) -> bool:
    """True for a number an option may hold: not a bool, finite, from 0 to below 2**53
    (``whole``: an int only)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**53
    return not whole and isinstance(value, float) and 0 <= value < 2**53  # nan compares False
