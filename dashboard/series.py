"""Jobs finished per minute, and jobs arriving, read from what BullMQ keeps: for charts and rates.

Workers that record metrics (ours by default, Node's with ``metrics: {maxDataPoints}``) keep,
per queue and per status, a hash ``metrics:<status>`` (``count``, ``prevCount``, ``prevTS``) and
a list ``metrics:<status>:data`` of jobs per minute, newest first, where entry ``i`` is the
minute ``i + 1`` before the minute of ``prevTS``; the minute of ``prevTS`` itself is still
being counted (``count - prevCount``), and minutes after it, up to now, had no finished job.
:func:`per_minute` lines that up with the clock for many queues in one round trip of bounded
reads (``LRANGE 0 minutes``), never O(jobs). :func:`read_arrivals` estimates how fast jobs
arrive from the age of the ``sample``-th newest waiting job: two O(1) reads. This module
changes nothing and must not import Flask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from . import gather
from .codec import text
from .gather import Read
from .keys import Keys

MINUTE_MS = 60_000
#: Waiting jobs an arrival estimate spans (fewer waiting: no estimate, see read_arrivals).
ARRIVAL_SAMPLE = 100
STATUSES = ("completed", "failed")


@dataclass(frozen=True)
class Throughput:
    """One queue's finished jobs per minute, oldest minute first; the last entry is the
    current minute so far."""

    completed: list[int]
    failed: list[int]
    recorded: bool  # some worker records metrics for this queue
    problems: tuple[str, ...] = ()

    def failed_last(self, minutes: int) -> int:
        """Jobs failed in the last ``minutes`` minutes (the current one included)."""
        return sum(self.failed[-minutes:]) if minutes > 0 else 0


#: What :func:`per_minute` read last per (queue base key, minutes): what it depends on, and the result.
SeriesCache = dict[tuple[str, int], tuple[Any, "Throughput"]]


def per_minute(client: Any, queues: list[Keys], minutes: int, now_ms: int,
               cache: SeriesCache | None = None) -> list[Throughput]:
    """Each queue's completed and failed jobs for each of the last ``minutes`` minutes (the
    current one included), from BullMQ's metrics keys: one round trip, O(queues x minutes).

    With ``cache`` (kept by the caller between calls) the first round trip reads only the two
    hashes of each queue: a queue whose hashes and current minute are as they were gives its
    last answer again, since BullMQ pushes to the per-minute lists only when a new minute
    begins and moves ``prevTS`` in the same script. The lists of the others are read in a
    second round trip."""
    if cache is None:
        return gather.one(client, read_per_minute(queues, minutes, now_ms))
    pipe = client.pipeline(transaction=False)
    for k in queues:
        for status in STATUSES:
            pipe.hmget(k.metrics(status), ["count", "prevCount", "prevTS"])
    metas = pipe.execute(raise_on_error=False) if queues else []
    found: list[Throughput | None] = []
    todo: list[int] = []
    minute = now_ms // MINUTE_MS
    for n, k in enumerate(queues):
        done, failed = metas[2 * n], metas[2 * n + 1]
        hit = cache.get((k.base, minutes))
        if not isinstance(done, Exception) and not isinstance(failed, Exception) and hit is not None \
                and hit[0] == (tuple(done), tuple(failed), minute):
            found.append(hit[1])
        else:
            found.append(None)
            todo.append(n)
    if todo:
        pipe = client.pipeline(transaction=False)
        for n in todo:
            for status in STATUSES:
                pipe.lrange(queues[n].metrics(status, data=True), 0, minutes)
        lists = pipe.execute(raise_on_error=False)
        if len(cache) > 2 * len(queues) + 1000:  # queues gone: start afresh
            cache.clear()
        for i, n in enumerate(todo):
            k, done, failed = queues[n], metas[2 * n], metas[2 * n + 1]
            one = _throughput(k, [done, lists[2 * i], failed, lists[2 * i + 1]], minutes, now_ms)
            found[n] = one
            if not one.problems:
                cache[(k.base, minutes)] = ((tuple(done), tuple(failed), minute), one)
    return [one for one in found if one is not None]


def _throughput(k: Keys, raw: list[Any], minutes: int, now_ms: int) -> Throughput:
    """One queue's Throughput from its replies: meta and list of completed, then of failed."""
    series: dict[str, list[int]] = {}
    recorded, problems = False, []
    for s, status in enumerate(STATUSES):
        meta, data = raw[2 * s], raw[2 * s + 1]
        for key, value in ((k.metrics(status), meta), (k.metrics(status, True), data)):
            if isinstance(value, Exception):
                problems.append(f"{key}: {value}")
        meta = [None, None, None] if isinstance(meta, Exception) else meta
        data = [] if isinstance(data, Exception) else data
        series[status], seen = _line_up(meta, data, minutes, now_ms)
        recorded = recorded or seen
    return Throughput(series["completed"], series["failed"], recorded, tuple(problems))


def _line_up(meta: list[Any], data: list[Any], minutes: int, now_ms: int) -> tuple[list[int], bool]:
    out = [0] * minutes
    count, prev_count, prev_ts = (_count(v) for v in meta)
    if not prev_ts:
        return out, False
    first = now_ms // MINUTE_MS - minutes + 1  # the minute out[0] stands for
    at = prev_ts // MINUTE_MS - first  # where the minute of prevTS goes in out
    if 0 <= at < minutes:
        out[at] = max(0, count - prev_count)
    # data[i] is the minute before that one, i + 1 minutes back: out[at - 1 - i], when in range
    first_i, last_i = max(0, at - minutes), min(len(data), at)
    if first_i < last_i:
        out[at - last_i:at - first_i] = _counts(data[first_i:last_i])[::-1]
    return out, True


def _counts(raw: list[Any]) -> list[int]:
    """:func:`_count` of each value; whole numbers as workers write them at full speed."""
    try:
        values = list(map(int, raw))
    except (TypeError, ValueError):
        return [_count(v) for v in raw]
    if values and (min(values) < 0 or max(values) >= 2**53):  # not a count a worker wrote
        return [_count(v) for v in raw]
    return values


def _count(raw: Any) -> int:
    """A count as a worker wrote it; anything else another tool left there counts as 0."""
    if isinstance(raw, bytes) and len(raw) < 19 and raw.isdigit():  # the usual case at full speed
        return int(raw)
    try:
        value = float(text(raw)) if raw is not None else 0.0
    except ValueError:
        return 0
    return int(value) if math.isfinite(value) and value > 0 else 0


def read_per_minute(queues: list[Keys], minutes: int, now_ms: int) -> Read[list[Throughput]]:
    """:func:`per_minute` without a cache, as a :class:`~dashboard.gather.Read`."""
    def send(pipe: Any) -> None:
        for k in queues:
            for status in STATUSES:
                pipe.hmget(k.metrics(status), ["count", "prevCount", "prevTS"])
                pipe.lrange(k.metrics(status, data=True), 0, minutes)  # one extra for a clock ahead of ours
    return Read(send, 4 * len(queues), lambda raw: [_throughput(k, raw[4 * n:4 * n + 4], minutes, now_ms)
                                                    for n, k in enumerate(queues)])


def read_arrivals(keys: Keys, now_ms: int, sample: int = ARRIVAL_SAMPLE) -> Read[float | None]:
    """About how many jobs a minute arrive in ``wait``: ``sample`` jobs over the time since the
    ``sample``-th newest waiting job was added. None when fewer than ``sample`` jobs wait (the
    workers keep up, so the finished rate says more) or its time cannot be read. A
    :class:`~dashboard.gather.Read` of two steps (the job's id, then its timestamp)."""
    def rate(replies: list[Any]) -> float | None:
        if isinstance(replies[0], ResponseError):  # a key of the wrong type, written by another tool
            return None
        added = _count(replies[0])
        return sample * MINUTE_MS / max(now_ms - added, 1_000) if added else None

    def stamp(replies: list[Any]) -> Read[float | None] | None:
        job_id = replies[0]
        if job_id is None or isinstance(job_id, ResponseError):
            return None
        return Read(lambda pipe: pipe.hget(keys.job(text(job_id)), "timestamp"), 1, rate)
    return Read(lambda pipe: pipe.lindex(keys.wait, sample - 1), 1, stamp)
