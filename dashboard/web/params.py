"""Reading numbers, choices, names and redirect targets from a request, strictly.

Every value a view takes from the query string or a form goes through here; a bad one
aborts with 400 and a message naming the parameter, never a 500. A POST's fields come from
its form body, or (JSON API clients) from a JSON object body, read the same way
(:func:`form`). This module must not talk to Redis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from flask import abort, request

from ..codec import parse_duration
from ..job import JobState

#: How long a pause form can pause for (seconds, 0: until resumed), and the durations a clean
#: form suggests for its grace (it takes any duration: "90s", "1h30m" ...).
PAUSE_FOR = [(0, "until resumed"), (900, "15 minutes"), (3600, "1 hour"), (14400, "4 hours")]
GRACE_CHOICES = [("0", "any age"), ("1m", "1 minute"), ("15m", "15 minutes"), ("1h", "1 hour"), ("1d", "1 day"),
                 ("7d", "7 days")]
#: The grace a clean form starts with.
GRACE_DEFAULT = "1h"
#: Rows per page a queue page offers.
PER_PAGE = (20, 50, 100)
MAX_PAGE = 1_000_000
_DIGITS = re.compile(r"[0-9]{1,12}")
#: Backslash, whitespace and control characters, raw or percent-encoded.
_UNSAFE_IN_PATH = re.compile(r"[\\\s\x00-\x1f\x7f]|%(?:[01][0-9a-fA-F]|7[fF]|5[cC]|20)")


def list_args(states: Sequence[JobState], default: str = "waiting") -> tuple[JobState, int, int]:
    """``state`` (``default`` when absent), ``page`` and ``per`` from the query string (or a
    form re-rendering the list)."""
    values = request.values
    state = JobState(choice(values.get("state", default), [s.value for s in states], "state"))
    page = whole(values.get("page", "1"), "page", 1, MAX_PAGE)
    per = whole(values.get("per", str(PER_PAGE[0])), "per", 1, PER_PAGE[-1])
    if per not in PER_PAGE:
        abort(400, f"per must be one of {', '.join(map(str, PER_PAGE))}.")
    return state, page, per


def form() -> Mapping[str, str]:
    """A POST's fields: its form, or its body when that is a JSON object (values: strings or
    whole numbers, passed on as text to the same checks); anything else in a JSON body is 400."""
    if not request.is_json:
        return request.form
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "The request body must be a JSON object of fields.")
    fields: dict[str, str] = {}
    for name, value in body.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            abort(400, f"{name[:40]!r} must be a string or a whole number.")
        fields[name] = str(value)
    return fields


def pause_args() -> tuple[str, int]:
    """A pause form's ``reason`` (cut to 500 characters) and ``until`` (seconds, 0: until resumed)."""
    values = form()
    until = choice(values.get("until", "0"), [str(s) for s, _ in PAUSE_FOR], "until")
    return values.get("reason", "").strip()[:500], int(until)


def clean_args(values: Mapping[str, str] | None = None) -> tuple[str, float, int | None]:
    """A clean form's ``state`` (completed or failed), ``grace`` (seconds: plain seconds or a
    duration such as ``15m`` or ``1h30m``) and ``limit`` (None: all), from ``values`` (default:
    the POST's fields)."""
    values = form() if values is None else values
    state = choice(values.get("state", ""), ("completed", "failed"), "state")
    grace = duration(values.get("grace") or "0", "grace")
    limit = whole(values.get("limit") or "0", "limit", 0, 10**8) or None
    return state, grace, limit


def duration(raw: str, what: str) -> float:
    """``raw`` as seconds: ``90``, ``90s``, ``15m``, ``2h``, ``7d``, ``1h30m`` ..., or 400."""
    try:
        return parse_duration(raw)
    except ValueError as exc:
        abort(400, f"{what}: {exc}.")


def whole(raw: str, what: str, low: int, high: int) -> int:
    """``raw`` as an int from ``low`` to ``high``, or 400."""
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        abort(400, f"{what} must be a whole number from {low:,} to {high:,}, got {raw[:40]!r}.")
    return int(raw)


def choice(raw: str, allowed: Iterable[str], what: str) -> str:
    """``raw`` if it is one of ``allowed``, or 400."""
    allowed = list(allowed)
    if raw not in allowed:
        abort(400, f"{what} must be one of {', '.join(allowed)}, got {raw[:40]!r}.")
    return raw


def safe_next() -> str | None:
    """The form's ``next`` URL when it is a path on this site: starts with one ``/``, and
    holds no backslash, whitespace or control character (browsers drop tabs and newlines, so
    ``/\t/evil.example`` would become ``//evil.example``)."""
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//") or _UNSAFE_IN_PATH.search(target):
        return None
    return target
