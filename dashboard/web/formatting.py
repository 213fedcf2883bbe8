"""Template filters: times, counts, one-line previews and pretty JSON, all as plain text.

Everything here returns ``str`` (never ``Markup``), so Jinja's autoescaping still applies
to whatever came from Redis; :func:`html` escapes as autoescaping does, for the few places that
print with it off. Templates reach them as ``fmt.<name>(...)`` (a context variable of the blueprint's, so
nothing is added to a host app's Jinja filters). This
module must not import Flask request state or talk to Redis.
"""

from __future__ import annotations

import functools
import json
import math
import time
from datetime import UTC, datetime
from typing import Any

#: Pretty JSON longer than this is cut on the job page, with a link to see all of it.
PRETTY_LIMIT = 10_000
#: Characters of a one-line data preview in job lists.
PREVIEW_LIMIT = 120
#: Characters of a failed reason in job lists.
REASON_LIMIT = 160


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(value: int | None) -> str:
    """``1234567`` -> ``1,234,567``."""
    if value is None:
        return "–"
    return f"{value:,}" if _finite(value) else str(value)


def exact(ms: int | None) -> str:
    """Milliseconds since the epoch as ``2024-05-01 12:03:04.123 UTC`` (a value that is no
    time at all, such as microseconds or a negative number from another tool, as itself)."""
    if ms is None:
        return ""
    if type(ms) is int and 0 <= ms < 253402300800000:  # the usual case: the second's text is cached
        return f"{_second(ms // 1000)}.{ms % 1000:03d} UTC"
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return f"{ms} (not a time in milliseconds)"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    """A span of milliseconds as ``850 ms``, ``12.3 s``, ``4 min 5 s``, ``3 h 2 min``, ``2 d 4 h``."""
    if ms is None:
        return ""
    if not _finite(ms):
        return str(ms)
    ms = abs(ms)
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def ago(ms: int | None, now_ms: int | None = None) -> str:
    """Relative time: ``12 s ago`` or ``in 3 min`` (for delayed jobs)."""
    if ms is None:
        return "–"
    if not _finite(ms):
        return str(ms)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    delta = now_ms - ms
    if abs(delta) < 1000:
        return "just now"
    text = _coarse(abs(delta))
    return f"{text} ago" if delta > 0 else f"in {text}"


def _coarse(ms: float) -> str:
    seconds = int(ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def age(ms: int | None) -> str:
    """How long ago ``ms`` was, without the word "ago" (for "oldest waiting")."""
    if ms is None:
        return "–"
    if not _finite(ms):
        return str(ms)
    return duration(max(0, int(time.time() * 1000) - ms))


def html(text: str) -> str:
    """``text`` escaped for HTML exactly as Jinja's autoescaping (markupsafe) escapes it, as a
    plain ``str``: for values printed where autoescaping is off (:func:`cells.job_rows`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        "'", "&#39;").replace('"', "&#34;")


def one_line(text: Any, limit: int = REASON_LIMIT) -> str:
    """First line of ``text``, cut to ``limit`` characters with an ellipsis."""
    if text is None:
        return ""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def last_line(text: Any, limit: int = REASON_LIMIT) -> str:
    """Last non-empty line of ``text`` (a traceback's exception line), cut to ``limit``."""
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    return one_line(lines[-1] if lines else "", limit)


def preview(data: Any, limit: int = PREVIEW_LIMIT) -> str:
    """Compact one-line JSON of job data, cut to ``limit`` characters."""
    text = data if isinstance(data, str) else _json(data, None)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def pretty(data: Any, limit: int = PRETTY_LIMIT) -> tuple[str, bool, int]:
    """Indented JSON (raw text stays as is): ``(text cut to limit, was cut, full length)``."""
    text = data if isinstance(data, str) else _json(data, 2)
    if len(text) <= limit:
        return text, False, len(text)
    return text[:limit], True, len(text)


def full_json(data: Any) -> str:
    """The whole value as indented JSON (for the "see all" view)."""
    return data if isinstance(data, str) else _json(data, 2)


def size(chars: int) -> str:
    """A length in characters as ``812 B`` / ``12.4 KB`` / ``1.2 MB`` (one byte per char, roughly)."""
    if chars < 1024:
        return f"{chars} B"
    if chars < 1024 * 1024:
        return f"{chars / 1024:.1f} KB"
    return f"{chars / 1024 / 1024:.1f} MB"


#: json.dumps(value, indent=..., ensure_ascii=False, separators=..., default=str), the encoders
#: built once (json.dumps builds one per call when given options: most of a row preview's time).
_ENCODERS = {indent: json.JSONEncoder(indent=indent, ensure_ascii=False, default=str,
                                      separators=(",", ": ") if indent else (",", ":")).encode
             for indent in (None, 2)}


def _json(value: Any, indent: int | None) -> str:
    try:
        return _ENCODERS[indent](value)
    except (TypeError, ValueError, RecursionError):
        return str(value)


