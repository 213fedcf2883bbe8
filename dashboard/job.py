"""The Job record: BullMQ's job hash fields to and from Python, plus option validation.

A :class:`Job` is read from (or about to be written to) ``<prefix>:<queue>:<id>``. This
module performs no I/O of its own: ``update_progress`` and ``log`` delegate to the queue
the job came from. Malformed hashes written by other tools never raise here: a field that
does not parse is kept as text and named in :attr:`Job.problems`. A field a bounded read cut
(see :mod:`dashboard.reads`) is kept as its cut text and named in :attr:`Job.truncated`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol

from .codec import text, to_ms
from .keys import not_a_job

#: BullMQ refuses priorities above this (keeps scores below 2^53).
MAX_PRIORITY = 2**21 - 1
#: How many stack traces a job keeps when its options do not say.
DEFAULT_STACK_TRACE_LIMIT = 10


class JobOwner(Protocol):
    """What a job needs from the queue it came from (a :class:`~dashboard.queue.Queue`)."""

    def update_progress(self, job_id: str, progress: Any) -> None: ...

    def add_log(self, job_id: str, line: str, keep: int = 0) -> int: ...


class JobState(StrEnum):
    """Where a job is. Values are the names BullMQ's ``getState`` returns."""

    WAITING = "waiting"
    PRIORITIZED = "prioritized"
    DELAYED = "delayed"
    ACTIVE = "active"
    WAITING_CHILDREN = "waiting-children"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: The Redis key suffix holding each listable state, and whether it is a list or a zset.
STATE_KEYS: dict[JobState, tuple[str, str]] = {
    JobState.WAITING: ("wait", "list"),
    JobState.PRIORITIZED: ("prioritized", "zset"),
    JobState.DELAYED: ("delayed", "zset"),
    JobState.ACTIVE: ("active", "list"),
    JobState.WAITING_CHILDREN: ("waiting-children", "zset"),
    JobState.COMPLETED: ("completed", "zset"),
    JobState.FAILED: ("failed", "zset"),
}






def validate_job_id(job_id: str) -> str:
    """Apply BullMQ's custom id rules (Node's ``Job.validateOptions``)."""
    if not isinstance(job_id, str) or job_id == "":
        raise ValueError(f"job_id must be a non-empty string, got {job_id!r}")
    if job_id.lstrip("-").isdigit():
        raise ValueError(f"job_id {job_id!r}: custom ids cannot be integers (they would collide with the id counter)")
    if job_id == "0" or job_id.startswith("0:"):
        raise ValueError(f"job_id {job_id!r} is reserved")
    if ":" in job_id and len(job_id.split(":")) != 3:
        raise ValueError(f"job_id {job_id!r}: ':' is only allowed in ids of exactly three parts")
    reason = not_a_job(job_id)
    if reason is not None:  # e.g. "meta": the job would overwrite the queue's own key
        raise ValueError(f"job_id {job_id!r} is reserved: {reason}")
    return job_id


def build_opts(
    *,
    delay: float | timedelta | None = None,
    priority: int = 0,
    attempts: int = 0,
    backoff: Any = None,
    job_id: str | None = None,
    lifo: bool = False,
    remove_on_complete: Any = None,
    remove_on_fail: Any = None,
    stack_trace_limit: int | None = None,
) -> dict[str, Any]:
    """Validate add() options and return BullMQ's compact ``opts`` dict."""
    opts: dict[str, Any] = {"attempts": _whole(attempts, "attempts", 0)}
    delay_ms = to_ms(delay, "delay")
    opts["delay"] = delay_ms
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be an integer from 0 to {MAX_PRIORITY}, got {priority!r}")
    if priority:
        opts["priority"] = priority
    if backoff is not None:
        opts["backoff"] = _backoff(backoff)
    if job_id is not None:
        opts["jobId"] = validate_job_id(job_id)
    if lifo:
        opts["lifo"] = True
    for name, value in (("removeOnComplete", remove_on_complete), ("removeOnFail", remove_on_fail)):
        if value is not None:
            opts[name] = _keep_option(value, name)
    if stack_trace_limit is not None:
        opts["stackTraceLimit"] = _whole(stack_trace_limit, "stack_trace_limit", 0)
    return opts


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _backoff(value: Any) -> dict[str, Any]:
    """``("exponential", 2.0)``, ``("fixed", 5)``, seconds for fixed, or a BullMQ dict (ms)."""
    if isinstance(value, dict):
        kind, delay = value.get("type", "fixed"), value.get("delay", 0)
        if kind not in ("fixed", "exponential") or not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError(f"backoff {value!r}: type must be fixed or exponential, delay ms >= 0")
        return dict(value)
    if isinstance(value, tuple) and len(value) == 2:
        kind, seconds = value
        if kind not in ("fixed", "exponential"):
            raise ValueError(f"backoff type must be 'fixed' or 'exponential', got {kind!r}")
        return {"type": kind, "delay": to_ms(seconds, "backoff delay")}
    return {"type": "fixed", "delay": to_ms(value, "backoff")}


def _keep_option(value: Any, what: str) -> Any:
    """bool, a count, or {"age": seconds, "count": n}: stored as BullMQ stores it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, dict) and set(value) <= {"age", "count", "limit"}:
        out: dict[str, int] = {}
        for k, v in value.items():
            seconds = v.total_seconds() if isinstance(v, timedelta) else v
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
                raise ValueError(f"{what}.{k} must be a number >= 0, got {v!r}")
            out[k] = int(seconds)
        return out
    raise ValueError(f"{what} must be a bool, a count >= 0 or a dict with age/count, got {value!r}")


def keep_policy(option: Any) -> tuple[int, int]:
    """A removeOnComplete/removeOnFail value as (keep count, keep age s) for the finish script.

    keep count -1 keeps every job, 0 deletes the job at once.
    """
    if option is True:
        return 0, 0
    if option is None or option is False:
        return -1, 0
    if isinstance(option, int):
        return option, 0
    if isinstance(option, dict):
        count = option.get("count")
        return (int(count) if isinstance(count, (int, float)) else -1), int(option.get("age") or 0)
    return -1, 0


def backoff_ms(opts: dict[str, Any], attempts_made: int) -> int:
    """Delay before the next attempt, BullMQ's rule; ``attempts_made`` counts the one that failed."""
    spec = opts.get("backoff")
    if spec is None:
        return 0
    if isinstance(spec, (int, float)):
        return max(0, int(spec))
    if not isinstance(spec, dict):
        return 0
    delay = spec.get("delay") or 0
    if not isinstance(delay, (int, float)):
        return 0
    if spec.get("type") == "exponential":
        return int(round(2 ** max(attempts_made - 1, 0) * delay))
    return int(delay)




def _int(fields: dict[str, str], name: str) -> int | None:
    raw = fields.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        try:
            return int(float(raw))
        except (ValueError, OverflowError):
            return None


@dataclass
class Job:
    """One job, as stored in its hash. Times are integer milliseconds since the epoch."""

    id: str
    name: str = ""
    data: Any = None
    opts: dict[str, Any] = field(default_factory=dict)
    timestamp: int | None = None
    delay: int = 0
    priority: int = 0
    processed_on: int | None = None
    finished_on: int | None = None
    attempts_made: int = 0
    attempts_started: int = 0
    stalled_counter: int = 0
    progress: Any = None
    returnvalue: Any = None
    failed_reason: str | None = None
    stacktrace: list[str] = field(default_factory=list)
    deferred_failure: str | None = None
    processed_by: str | None = None
    state: JobState | None = None
    problems: list[str] = field(default_factory=list)
    #: Fields a bounded read cut, with their full length in bytes. The attribute holds the cut
    #: text as a string (``opts``, which must be a dict, is then ``{}``). Keys are hash field
    #: names (``stacktrace`` whenever the traces are not all there whole) and ``stacktrace.<i>``
    #: (bytes of the whole trace) when ``stacktrace[i]`` was cut.
    truncated: dict[str, int] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)
    _queue: JobOwner | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_hash(cls, job_id: str, raw: dict[Any, Any], queue: JobOwner | None = None,
                  cut: Mapping[str, int] | None = None) -> Job:
        """Build a Job from HGETALL output (bytes or str), tolerating malformed fields.

        ``cut`` names fields whose value in ``raw`` was cut on purpose (field -> full length):
        they are kept as text, not parsed, and recorded in :attr:`truncated`, not in problems."""
        if raw and isinstance(next(iter(raw)), bytes):
            f = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}
        else:
            f = {text(k): text(v) for k, v in raw.items()}
        job = cls(id=job_id, name=f.get("name", ""), _queue=queue, truncated=dict(cut or {}))
        job.data = job._json(f, "data", {})
        opts = job._json(f, "opts", {})
        job.opts = opts if isinstance(opts, dict) else {}
        job.timestamp = _int(f, "timestamp")
        job.delay = _int(f, "delay") or 0
        job.priority = _int(f, "priority") or 0
        job.processed_on = _int(f, "processedOn")
        job.finished_on = _int(f, "finishedOn")
        job.attempts_made = _int(f, "atm") or _int(f, "attemptsMade") or 0
        job.attempts_started = _int(f, "ats") or 0
        job.stalled_counter = _int(f, "stc") or 0
        job.progress = job._json(f, "progress", None)
        job.returnvalue = job._json(f, "returnvalue", None)
        job.failed_reason = f.get("failedReason")
        traces = job._json(f, "stacktrace", [])
        job.stacktrace = [str(t) for t in traces] if isinstance(traces, list) else [str(traces)]
        job.deferred_failure = f.get("defa")
        job.processed_by = f.get("pb")
        return job

    def _json(self, fields: dict[str, str], name: str, default: Any) -> Any:
        raw = fields.get(name)
        if raw is None:
            return default
        if name in self.truncated:
            return raw
        try:
            return json.loads(raw)
        except ValueError:
            self.problems.append(f"field {name!r} is not valid JSON; shown as text")
            return raw

    @property
    def attempts(self) -> int:
        """Attempts allowed by the job's options (BullMQ: 0 and 1 both mean one)."""
        value = self.opts.get("attempts", 0)
        return value if isinstance(value, int) else 0

    def update_progress(self, progress: Any) -> None:
        """Store progress (a number or any JSON value) and emit a ``progress`` event."""
        self._require_queue().update_progress(self.id, progress)

    def log(self, line: str) -> int:
        """Append a line to the job's log; returns the number of lines."""
        return self._require_queue().add_log(self.id, line, keep=int(self.opts.get("kl") or 0))

    def _require_queue(self) -> JobOwner:
        if self._queue is None:
            raise RuntimeError(f"job {self.id} is not attached to a queue")
        return self._queue
