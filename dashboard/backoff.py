"""Retry backoff in BullMQ 6.7.0's terms: the ``backoff`` option ``add()`` stores
(:func:`backoff_option`) and the delay a worker waits before the next attempt (:func:`backoff_ms`,
BullMQ's Backoffs.calculate for ``fixed`` and ``exponential``, jitter included). No I/O here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Any

from .codec import counted, to_ms

#: Longest backoff a job's options can ask for (about 35 years).
MAX_BACKOFF_MS = 2**40


def backoff_ms(opts: Mapping[str, Any], attempts_made: int, rand: Callable[[], float] = random.random) -> int:
    """Delay before the next attempt, BullMQ's rule; ``attempts_made`` counts the one that failed.
    With ``backoff.jitter`` (0..1) the delay is drawn as BullMQ draws it: uniformly from
    ``delay * (1 - jitter)`` up to ``delay`` (``rand`` gives [0, 1)). An unusable backoff option
    means no delay, and an unusable jitter none; this never raises."""
    spec = opts.get("backoff")
    kind: Any = spec.get("type") if isinstance(spec, dict) else "fixed"
    delay: Any = (spec.get("delay") or 0) if isinstance(spec, dict) else spec
    if not counted(delay, False):
        return 0
    if kind == "exponential":
        exponent = max(attempts_made - 1, 0)
        delay = round(2**exponent * delay) if exponent < 64 else MAX_BACKOFF_MS
    delay = min(delay, MAX_BACKOFF_MS)
    jitter: Any = spec.get("jitter") if isinstance(spec, dict) else None
    if counted(jitter, False) and 0 < jitter <= 1:
        return int(min(math.floor(rand() * delay * jitter + delay * (1 - jitter)), MAX_BACKOFF_MS))
    return int(round(delay))


def backoff_option(value: Any) -> dict[str, Any]:
    """``("exponential", 2.0)``, ``("fixed", 5)``, either with a jitter (0..1) third, seconds
    for fixed, or a BullMQ dict (ms; ``type``, ``delay``, ``jitter``)."""
    if isinstance(value, dict):
        kind, delay = value.get("type", "fixed"), value.get("delay", 0)
        if kind not in ("fixed", "exponential") or not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError(f"backoff {value!r}: type must be fixed or exponential, delay ms >= 0")
        _jitter(value.get("jitter", 0))
        return dict(value)
    if isinstance(value, tuple) and len(value) in (2, 3):
        kind, seconds = value[:2]
        if kind not in ("fixed", "exponential"):
            raise ValueError(f"backoff type must be 'fixed' or 'exponential', got {kind!r}")
        out = {"type": kind, "delay": to_ms(seconds, "backoff delay")}
        if len(value) == 3 and _jitter(value[2]):
            out["jitter"] = value[2]
        return out
    return {"type": "fixed", "delay": to_ms(value, "backoff")}


def _jitter(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"backoff jitter must be a number from 0 to 1, got {value!r}")
    return value
