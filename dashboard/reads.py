"""Bounded reads for the dashboard: jobs and log pages with every long value cut inside Redis.

A job listing or job page must cost about the same whether a job's data is 100 bytes or
500 MB. Job fields are read by the read-only ``read_job_fields`` script, which cuts each
field to a cap (:class:`Caps`) inside Redis and returns its full length; log pages by
``read_log``. Redis has no HGETRANGE: to cut a field, the script must first copy all of it
into Lua, which costs 0.06 ms per MB on Redis 6.2 (glibc malloc) but 1.1 to 2.4 ms per MB on
Debian's Redis 7.0 (jemalloc hands back the memory, so every copy page-faults; see
``bench/bounded_reads.py``). So a page is read in two passes: one round trip reads every
job's short fields and only the lengths of the long ones; then each long field of at most
:attr:`Caps.copy_limit` bytes is cut by a call of its own, in round trips that copy at most
:data:`COPY_BUDGET` bytes in all. A field longer than ``copy_limit`` is not read at all: the
job holds an empty text for it and its length in :attr:`Job.truncated`. Whole values
(downloads) are read here too, one field at a time. This module never changes state and
must not import Flask.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis
from redis.exceptions import NoScriptError, ResponseError

from . import scripts
from .clients import Client, direct_line
from .codec import text
from .job import Job, JobOwner, JobState
from .keys import Keys

logger = logging.getLogger(__name__)

#: Bytes the long fields cut in one round trip may add up to (a field longer than this gets
#: a round trip of its own), so that other clients wait at most about a millisecond.
COPY_BUDGET = 1024 * 1024
#: Cap (bytes) of one log line in a log page.
LOG_LINE_CAP = 2048
#: Jobs one ``read_job_fields`` call reads in the first pass (a page of 100 is one call: with the
#: listing's caps it copies at most about 1.5 MB inside Redis).
JOBS_PER_CALL = 25
#: Bytes of whole log lines one log page reads at most inside Redis (at least one line):
#: 100 lines of up to 10 KB fit; of 50 KB lines a page holds about 20.
LOG_PAGE_BUDGET = 1024 * 1024
#: Lines read per round trip by :func:`log_lines` (a full-log download).
LOG_CHUNK = 1000
#: The job fields holding JSON arrays of strings, cut element by element (see ``read_job_fields``).
ARRAY_FIELDS = frozenset({"stacktrace"})

_NUMBERS = ("timestamp", "delay", "priority", "processedOn", "finishedOn", "atm", "ats", "stc", "attemptsMade")


@dataclass(frozen=True)
class Caps:
    """Which job fields a bounded read returns and at most how many bytes of each (-1: all).

    A field longer than its cap is cut inside Redis only when it is at most ``copy_limit``
    bytes long; a longer one is not read (empty text, length in ``Job.truncated``). For
    ``stacktrace`` the cap applies to each trace: a field longer than the cap and at most
    ``decode_limit`` bytes is split into its newest ``traces`` traces, each cut to the cap;
    a longer one is cut as text, which shows the head of its oldest traces.
    """

    fields: Mapping[str, int]
    copy_limit: int = 256 * 1024
    traces: int = 20
    decode_limit: int = 1024 * 1024


#: A job list row: about 1 KB of data, no return value, no stack traces; fields over 256 KB
#: show no preview (on Redis 7.0 cutting one costs about 0.3 ms, 60 of them 17 ms).
LISTING = Caps({"name": 256, "data": 1024, "opts": 8192, "failedReason": 1024, "progress": 1024,
                "defa": 1024, "pb": 256, "parentKey": 1024, **dict.fromkeys(_NUMBERS, 64)})
#: The job page: 64 KB of data and of return value, 8 KB of reason, 16 KB per stack trace;
#: fields of up to 1 MB are cut (1 to 2.5 ms of Redis time each on Redis 7.0); longer ones are
#: a download away (pass ``Caps(DETAIL.fields, copy_limit=...)`` to preview more).
DETAIL = Caps({**LISTING.fields, "data": 65536, "returnvalue": 65536, "opts": 65536, "failedReason": 8192,
               "progress": 8192, "defa": 8192, "stacktrace": 16384}, copy_limit=1024 * 1024)


@dataclass
class LogPage:
    """One page of a job's log, oldest line first; line ``i`` of the page is line ``start + i``
    of the log (0 = the oldest)."""

    lines: list[str]
    total: int
    start: int
    #: Index in ``lines`` -> full length in bytes of a line that was cut.
    cut: dict[int, int] = field(default_factory=dict)
    problem: str | None = None


@dataclass
class _Read:
    exists: bool
    values: dict[str, Any] = field(default_factory=dict)  # bytes/str, a split array (list), or None
    lengths: dict[str, int] = field(default_factory=dict)
    whole: bool = False  # every field read whole: ``values`` is the hash's, ``lengths`` not needed


def load_jobs(run: scripts.Scripts, keys: Keys, ids: Sequence[str], caps: Caps,
              owner: JobOwner | None = None) -> list[Job | None]:
    """The jobs with these ids, each field cut as ``caps`` says (None: no such job). A key of
    the wrong type gives a job in state ``unknown`` with a problem, never an exception.
    Round trips: one for the first pass (:data:`JOBS_PER_CALL` jobs per script call), plus one
    per :data:`COPY_BUDGET` bytes of long fields to cut, each cut by a script call of its own."""
    names = list(caps.fields)
    spec = [(f, cap, "a" if f in ARRAY_FIELDS else "s") for f, cap in caps.fields.items()]
    chunks = [ids[i:i + JOBS_PER_CALL] for i in range(0, len(ids), JOBS_PER_CALL)]
    calls = [_call(keys, chunk, 0, caps, spec) for chunk in chunks]
    reads: list[_Read | Exception] = []
    jobs: list[Job | None] = []
    later: list[int] = []  # jobs with fields for the second pass: built after it
    todo: list[tuple[int, str, int]] = []
    for call, chunk, reply in zip(calls, chunks, _each(run, calls)):
        if isinstance(reply, NoScriptError):  # Redis lost its scripts: batch loads them again
            reply = run.batch([call])[0]
        # the whole call failed: every job of it is unreadable
        got = [reply] * len(chunk) if isinstance(reply, Exception) else [_parse(r, names) for r in reply]
        for read in got:
            n = len(reads)
            reads.append(read)
            cuts = [] if not isinstance(read, _Read) or read.whole else \
                [(n, f, read.lengths[f]) for f, v in read.values.items()
                 if v is None and 0 < read.lengths[f] <= caps.copy_limit]
            todo += cuts
            if cuts:
                later.append(n)
            jobs.append(None if cuts else _job(ids[n], read, caps, owner))
    for group in _by_budget(todo):
        replies = run.batch([_call(keys, [ids[n]], caps.copy_limit, caps, spec, [[names.index(f)]])
                             for n, f, _ in group])
        for (n, f, _), reply in zip(group, replies):
            done = reads[n]
            if not isinstance(done, _Read):
                continue
            again = reply if isinstance(reply, Exception) else _parse(reply[0], [f])
            if isinstance(again, Exception):  # the key changed type between the passes
                reads[n] = again
                continue
            done.values.update(again.values)
            done.lengths.update(again.lengths)
    for n in later:
        jobs[n] = _job(ids[n], reads[n], caps, owner)
    return jobs


def _each(run: scripts.Scripts, calls: list[scripts.Call]) -> Iterator[Any]:
    """The first pass's replies in order: streamed on the client's spare connection when it has one
    (:meth:`DirectLine.stream`: Redis reads the next jobs while these are built), else one batch."""
    line = direct_line(run.client) if len(calls) > 1 else None
    streamed = line.stream(cast(redis.Redis, run.client), [run.command(c) for c in calls]) if line else None
    return streamed if streamed is not None else iter(run.batch(calls))


def _call(keys: Keys, job_ids: Sequence[str], copy_limit: int, caps: Caps, spec: list[tuple[str, int, str]],
          picks: list[list[int]] | None = None) -> scripts.Call:
    return scripts.read_job_fields(keys, job_ids, copy_limit, caps.decode_limit, caps.traces, spec, picks)


def _parse(reply: list[Any], names: Sequence[str]) -> _Read | ResponseError:
    """One job's entry of the script's reply: {0}, {-1, error}, {2, value, ...} (every field
    whole) or {1, value, length, ...}."""
    kind = int(reply[0])
    if kind < 0:
        return ResponseError(text(reply[1]))
    if kind == 2:
        return _Read(exists=True, values=dict(zip(names, reply[1:])), whole=True)
    read = _Read(exists=bool(kind))
    for name, value, length in zip(names, reply[1::2], reply[2::2]):
        read.values[name] = value
        read.lengths[name] = int(length)
    return read


def _by_budget(todo: list[tuple[int, str, int]]) -> Iterator[list[tuple[int, str, int]]]:
    """Split the second pass into round trips that copy at most COPY_BUDGET bytes (or one field)."""
    group: list[tuple[int, str, int]] = []
    size = 0
    for item in todo:
        if group and size + item[2] > COPY_BUDGET:
            yield group
            group, size = [], 0
        group.append(item)
        size += item[2]
    if group:
        yield group


def _job(job_id: str, read: _Read | Exception, caps: Caps, owner: JobOwner | None) -> Job | None:
    if isinstance(read, Exception):
        job = Job(id=job_id, state=JobState.UNKNOWN, _queue=owner)
        what = "job key is not a hash" if str(read).startswith("WRONGTYPE") else "job could not be read"
        job.problems.append(f"{what}: {read}")
        return job
    if not read.exists:
        return None
    if read.whole:  # the usual row: the hash's values as they are
        return Job.from_hash(job_id, {k: v for k, v in read.values.items() if v is not None}, owner)
    raw: dict[str, str] = {}
    cut: dict[str, int] = {}
    traces: list[Any] | None = None
    for name, value in read.values.items():
        length, cap = read.lengths[name], caps.fields[name]
        if value is None:
            if length > 0:  # longer than copy_limit: not read
                raw[name], cut[name] = "", length
            continue
        if isinstance(value, list):
            traces = value
            continue
        raw[name] = text(value)
        if 0 <= cap < length:
            cut[name] = length
    cut_trace = raw.pop("stacktrace") if "stacktrace" in cut else None
    job = Job.from_hash(job_id, raw, owner, cut)
    if traces is not None:
        cap = caps.fields["stacktrace"]
        job.stacktrace = [text(v) for v in traces[1::2]]
        cut_traces = {f"stacktrace.{i}": int(n) for i, n in enumerate(traces[2::2]) if int(n) > cap}
        if cut_traces or int(traces[0]) > len(job.stacktrace):
            job.truncated.update(cut_traces, stacktrace=read.lengths["stacktrace"])
    elif cut_trace is not None:
        job.stacktrace = partial_strings(cut_trace) or ([cut_trace] if cut_trace else [])
    return job


def log_page(run: scripts.Scripts, keys: Keys, job_id: str, start: int, count: int,
             line_cap: int = LOG_LINE_CAP, budget: int = LOG_PAGE_BUDGET) -> LogPage:
    """Up to ``count`` lines of a job's log from line ``start`` (0 = oldest; negative: from
    the newest end, so ``-100`` is the newest 100 lines), oldest first, each cut to
    ``line_cap`` bytes (-1: whole), with the log's total line count. Fewer lines come back
    when the whole lines read would pass ``budget`` bytes: a page from the newest end keeps
    its newest lines (``start`` tells where it begins), any other its oldest. One script call."""
    if count <= 0:
        raise ValueError(f"count must be > 0, got {count}")
    try:
        reply = run.run(scripts.read_log(keys, job_id, start, count, line_cap, budget))
    except ResponseError as exc:
        if not str(exc).startswith("WRONGTYPE"):
            raise
        return LogPage([], 0, 0, problem=f"log key is not a list: {exc}")
    total, first, pairs = int(reply[0]), int(reply[1]), reply[2:]
    cut = {i: int(n) for i, n in enumerate(pairs[1::2]) if 0 <= line_cap < int(n)}
    return LogPage([text(v) for v in pairs[0::2]], total, first, cut)


def log_lines(client: Client, keys: Keys, job_id: str, chunk: int = LOG_CHUNK) -> Iterator[str]:
    """Every line of a job's log, oldest first, read ``chunk`` lines per round trip (for a
    download; lines trimmed meanwhile by a keep-N log may be skipped or repeated)."""
    start = 0
    while True:
        lines = client.lrange(keys.logs(job_id), start, start + chunk - 1)
        yield from (text(line) for line in lines)
        if len(lines) < chunk:
            return
        start += chunk


def field_value(client: Client, keys: Keys, job_id: str, name: str) -> bytes | None:
    """The whole raw value of one job field (for a download), or None when the job or the
    field does not exist or the job key is not a hash."""
    try:
        value = client.hget(keys.job(job_id), name)
    except ResponseError as exc:
        if not str(exc).startswith("WRONGTYPE"):
            raise
        logger.info("job %s field %s not read: %s", job_id, name, exc)
        return None
    return value.encode() if isinstance(value, str) else value


def partial_strings(head: str) -> list[str]:
    """The strings of a JSON array of strings cut anywhere: the whole ones, then the part of
    the cut one (``'["a", "bc'`` -> ``["a", "bc"]``). Anything else gives ``[]``."""
    decoder = json.JSONDecoder()
    out: list[str] = []
    s = head.lstrip()
    if not s.startswith("["):
        return []
    i = 1
    while True:
        while i < len(s) and s[i] in " \t\r\n,":
            i += 1
        if i >= len(s) or s[i] != '"':
            return out
        try:
            value, i = decoder.raw_decode(s, i)
        except ValueError:
            out.append(_unterminated(s[i + 1:]))
            return out
        out.append(str(value))


def _unterminated(body: str) -> str:
    """Decode the body of a JSON string whose end was cut (a cut escape is dropped)."""
    for drop in range(0, 7):
        try:
            return str(json.loads('"' + body[:len(body) - drop] + '"'))
        except ValueError:
            continue
    return body
