"""``add()``'s keywords turned into BullMQ's ``opts`` and their JSON, worked out once per set of keywords.

A producer adds job after job with the same options (most often none), so validating them
and writing their JSON each time is a third of an add's Python time. :func:`job_options`
remembers the answer for keywords whose values are plain, hashable values, keyed by each
value's type too (``True`` is not ``1``: ``priority=True`` must still be refused), and only
when the answer holds no nested dict or list, so each job gets a copy of its own. Anything
else (a ``deduplication`` dict, a backoff dict) is worked out afresh. This module writes
nothing to Redis and must not import Flask.
"""

from __future__ import annotations

from typing import Any

from .codec import dumps
from .dedup import dedup_opts
from .job import build_opts

#: Sets of keywords remembered at most (then forgotten all at once: a producer uses a few).
REMEMBERED = 256

_seen: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}


def job_options(options: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``(opts, opts JSON)`` for ``add()``'s keywords (``deduplication`` included). Raises
    ``ValueError`` for an invalid or unknown option, as :func:`~dashboard.job.build_opts` and
    :func:`~dashboard.dedup.dedup_opts` do; ``options`` itself is left as it was."""
    try:
        key: tuple[Any, ...] | None = tuple((name, type(value), value) for name, value in options.items())
        hit = _seen.get(key)  # type: ignore[arg-type]
    except TypeError:  # a dict or list among the values
        key, hit = None, None
    if hit is not None:
        return dict(hit[0]), hit[1]
    rest = dict(options)
    de = dedup_opts(rest.pop("deduplication", None))
    try:
        opts = build_opts(**rest) | de
    except TypeError as exc:
        raise ValueError(f"unknown job option: {exc}") from None
    text = dumps(opts, "job options")
    if key is not None and not any(isinstance(v, (dict, list)) for v in opts.values()):
        if len(_seen) >= REMEMBERED:
            _seen.clear()
        _seen[key] = (dict(opts), text)
    return opts, text
