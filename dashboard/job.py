"""The Job record: BullMQ's job hash fields to and from Python, plus option validation.

A :class:`Job` is read from (or about to be written to) ``<prefix>:<queue>:<id>``. This
module performs no I/O of its own: ``update_progress`` and ``log`` delegate to the queue
the job came from. Malformed hashes written by other tools never raise here: a field that
does not parse is kept as text and named in :attr:`Job.problems`; a field a bounded read cut
(see :mod:`dashboard.reads`) is kept as its cut text and named in :attr:`Job.truncated`. The
problems a worker cannot
run a job with (numbers that are not integers, JSON that does not parse or nests too deeply,
options of the wrong shape, text that is not UTF-8) are listed by :func:`fatal_problems`.
The option readers (:func:`keep_policy`, :func:`~dashboard.backoff.backoff_ms`, :attr:`Job.attempts` ...)
never raise, whatever an option holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol

from .backoff import backoff_option
from .codec import counted, text, to_ms
from .family import JobFamily
from .keys import not_a_job

#: BullMQ refuses priorities above this (keeps scores below 2^53).
MAX_PRIORITY = 2**21 - 1
#: How many stack traces a job keeps when its options do not say.
DEFAULT_STACK_TRACE_LIMIT = 10
#: Numeric hash fields; each must hold an integer Redis can count with (signed 64-bit).
INT_FIELDS = ("timestamp", "delay", "priority", "processedOn", "finishedOn", "atm", "attemptsMade", "ats", "stc")
#: Text fields a handler reads: a worker fails the job when one is not UTF-8 (or, but for
#: ``name``, not JSON).
STRICT_FIELDS = ("name", "data", "opts", "progress")
#: How much of a bad value a problem quotes.
SHOWN_CHARS = 100


class JobOwner(Protocol):
    """What a job needs from the queue it came from (a :class:`~dashboard.queue.Queue`)."""

    def update_progress(self, job_id: str | bytes, progress: Any) -> None: ...

    def add_log(self, job_id: str | bytes, line: str, keep: int = 0) -> int: ...


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
    keep_logs: int | None = None,
) -> dict[str, Any]:
    """Validate add() options and return BullMQ's compact ``opts`` dict (``keep_logs``: the
    newest log lines a job keeps, BullMQ's keepLogs, stored as ``kl``)."""
    opts: dict[str, Any] = {"attempts": _whole(attempts, "attempts", 0)}
    delay_ms = to_ms(delay, "delay")
    opts["delay"] = delay_ms
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be an integer from 0 to {MAX_PRIORITY}, got {priority!r}")
    if priority:
        opts["priority"] = priority
    if backoff is not None:
        opts["backoff"] = backoff_option(backoff)
    if job_id is not None:
        opts["jobId"] = validate_job_id(job_id)
    if lifo:
        opts["lifo"] = True
    for name, value in (("removeOnComplete", remove_on_complete), ("removeOnFail", remove_on_fail)):
        if value is not None:
            opts[name] = _keep_option(value, name)
    if stack_trace_limit is not None:
        opts["stackTraceLimit"] = _whole(stack_trace_limit, "stack_trace_limit", 0)
    if keep_logs is not None:
        opts["kl"] = _whole(keep_logs, "keep_logs", 1)
    return opts


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


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

    keep count -1 keeps every job, 0 deletes the job at once. A value of the wrong shape
    keeps every job; this never raises.
    """
    if option is True:
        return 0, 0
    if counted(option):
        return option, 0
    if isinstance(option, dict):
        return _whole_or(option.get("count"), -1), _whole_or(option.get("age"), 0)
    return -1, 0


def _whole_or(value: Any, default: int) -> int:
    return int(value) if counted(value, False) else default


def shown(raw: Any) -> str:
    """A raw value for a message: repr of its text (of its bytes when not UTF-8), clipped."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError:
            pass
    out = repr(raw)
    return out if len(out) <= SHOWN_CHARS else out[:SHOWN_CHARS - 3] + "..."


def _keep_ok(v: Any) -> bool:
    return isinstance(v, bool) or counted(v) or (
        isinstance(v, dict) and all(v.get(k) is None or counted(v[k], False) for k in ("age", "count", "limit")))


def _backoff_ok(v: Any) -> bool:
    if isinstance(v, dict):
        return isinstance(v.get("type", ""), str) and (v.get("delay") is None or counted(v["delay"], False))
    return v is None or counted(v, False)


#: The options a worker reads, and what each must look like for the job to run.
OPTION_CHECKS: dict[str, Callable[[Any], bool]] = {
    "attempts": counted, "stackTraceLimit": counted, "kl": counted,
    "priority": lambda v: counted(v) and v <= MAX_PRIORITY,
    "removeOnComplete": _keep_ok, "removeOnFail": _keep_ok, "backoff": _backoff_ok,
}


def fatal_problems(job: Job) -> list[str]:
    """What stops a worker from running ``job`` as read by :meth:`Job.from_hash`, each as
    ``field = raw value`` (``opts.<name> = value`` for an option); empty when it can run."""
    return list(job.fatal.values())


@dataclass
class Job(JobFamily):
    """One job, as stored in its hash (flow reads: :class:`JobFamily`). Times are integer ms since the epoch."""

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
    parent_key: str | None = None  # a flow child's parent (its full key)
    state: JobState | None = None
    problems: list[str] = field(default_factory=list)
    #: The problems a worker cannot run the job with, by field (see :func:`fatal_problems`).
    fatal: dict[str, str] = field(default_factory=dict, repr=False)
    #: Fields a bounded read cut, with their full length in bytes. The attribute holds the cut
    #: text as a string (``opts``, which must be a dict, is then ``{}``). Keys are hash field
    #: names (``stacktrace`` whenever the traces are not all there whole) and ``stacktrace.<i>``
    #: (bytes of the whole trace) when ``stacktrace[i]`` was cut.
    truncated: dict[str, int] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)
    #: The id exactly as Redis holds it, when read from a reply (see :attr:`key_id`).
    raw_id: bytes | None = field(default=None, repr=False, compare=False)
    _queue: JobOwner | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_hash(cls, job_id: str | bytes, raw: Mapping[Any, Any], queue: JobOwner | None = None,
                  cut: Mapping[str, int] | None = None) -> Job:
        """Build a Job from HGETALL output (bytes or str). Never raises: each malformed field
        is named in :attr:`problems` (and, when a worker cannot run the job, in :attr:`fatal`).
        A bytes ``job_id`` is kept as :attr:`raw_id` (ids need not be UTF-8). ``cut`` names
        fields whose value in ``raw`` was cut on purpose (field -> full length): they are kept
        as text, not parsed, and recorded in :attr:`truncated`, not in problems."""
        job = cls(id=text(job_id), raw_id=job_id if isinstance(job_id, bytes) else None, _queue=queue,
                  truncated=dict(cut or {}))
        try:  # the usual case at full speed: every field is UTF-8
            if raw and isinstance(next(iter(raw)), bytes):
                f = {k.decode("utf-8", "replace"): v.decode() for k, v in raw.items()}
            else:
                f = {text(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in raw.items()}
        except (UnicodeDecodeError, AttributeError):
            f = {}
            for k, v in raw.items():
                name = text(k)
                try:
                    f[name] = v.decode() if isinstance(v, bytes) else str(v)
                except UnicodeDecodeError:
                    f[name] = v.decode("utf-8", "replace")
                    job._flag(name, v, "is not UTF-8; shown with replacement characters",
                              name in STRICT_FIELDS or name in INT_FIELDS, " (not UTF-8)")
        job.name = f.get("name", "")
        job.data = job._json(f, "data", {}, fatal=True)
        opts = job._json(f, "opts", {}, fatal=True)
        if isinstance(opts, dict):
            job.opts = opts
            for option, ok in OPTION_CHECKS.items():
                if option in opts and not ok(opts[option]):
                    job._flag(f"opts.{option}", opts[option], "has the wrong shape", True)
        elif "opts" in f and "opts" not in job.fatal and "opts" not in job.truncated:
            job._flag("opts", f["opts"], "is not a JSON object; ignored", True)
        ints: dict[str, int | None] = {}
        for name in INT_FIELDS:
            value = f.get(name)
            if value is not None:  # plain digits (the usual case) at full speed, the rest checked
                ints[name] = int(value) if len(value) < 19 and value.isdigit() and value.isascii() else \
                    job._int(value, name)
        job.timestamp = ints.get("timestamp")
        job.delay = ints.get("delay") or 0
        job.priority = ints.get("priority") or 0
        job.processed_on = ints.get("processedOn")
        job.finished_on = ints.get("finishedOn")
        job.attempts_made = ints.get("atm") or ints.get("attemptsMade") or 0
        job.attempts_started = ints.get("ats") or 0
        job.stalled_counter = ints.get("stc") or 0
        job.progress = job._json(f, "progress", None, fatal=True)
        job.returnvalue = job._json(f, "returnvalue", None, fatal=False)
        job.failed_reason = f.get("failedReason")
        traces = job._json(f, "stacktrace", [], fatal=False)
        job.stacktrace = [str(t) for t in traces] if isinstance(traces, list) else [str(traces)]
        job.deferred_failure = f.get("defa")
        job.processed_by, job.parent_key = f.get("pb"), f.get("parentKey")
        return job

    def _flag(self, name: str, raw: Any, problem: str, fatal: bool, why: str = "") -> None:
        self.problems.append(f"field {name!r} {problem}")
        if fatal and name.partition(".")[0] not in self.fatal:
            self.fatal[name] = f"{name} = {shown(raw)}{why}"

    def _int(self, raw: str, name: str) -> int | None:
        digits = raw[1:] if raw[:1] == "-" else raw
        if 0 < len(digits) <= 19 and digits.isascii() and digits.isdigit():
            value = int(raw)
            if -(2**63) <= value < 2**63:
                return value
        self._flag(name, raw, "is not an integer", True)
        try:
            return int(float(raw)) if len(raw) < 400 else None
        except (ValueError, OverflowError):
            return None

    def _json(self, fields: dict[str, str], name: str, default: Any, fatal: bool) -> Any:
        raw = fields.get(name)
        if raw is None:
            return default
        if name in self.truncated:
            return raw
        try:
            return json.loads(raw)
        except RecursionError:
            self._flag(name, raw, "nests too deeply; shown as text", fatal, " (nested too deeply)")
        except ValueError:
            self._flag(name, raw, "is not valid JSON; shown as text", fatal, " (invalid JSON)")
        return raw

    @property
    def key_id(self) -> str | bytes:
        """The id to address Redis with: the raw bytes a worker fetched (an id need not be
        UTF-8, while :attr:`id` replaces what is not), else :attr:`id`."""
        return self.raw_id if self.raw_id is not None else self.id

    @property
    def attempts(self) -> int:
        """Attempts allowed by the job's options (BullMQ: 0 and 1 both mean one)."""
        value = self.opts.get("attempts", 0)
        return value if counted(value) else 0

    @property
    def stack_trace_limit(self) -> int:
        """How many stack traces the job keeps (its ``stackTraceLimit`` option when usable)."""
        value = self.opts.get("stackTraceLimit", DEFAULT_STACK_TRACE_LIMIT)
        return value if counted(value) else DEFAULT_STACK_TRACE_LIMIT

    def update_progress(self, progress: Any) -> None:
        """Store progress (a number or any JSON value) and emit a ``progress`` event."""
        self._require_queue().update_progress(self.key_id, progress)

    def log(self, line: str) -> int:
        """Append a line to the job's log; returns the number of lines."""
        keep = self.opts.get("kl") or 0
        return self._require_queue().add_log(self.key_id, line, keep=keep if counted(keep) else 0)

    def _require_queue(self) -> JobOwner:
        if self._queue is None:
            raise RuntimeError(f"job {self.id} is not attached to a queue")
        return self._queue
