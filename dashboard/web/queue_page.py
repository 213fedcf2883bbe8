"""What a queue page shows besides its job table: job schedulers, the rate limit, recent
actions, the pause record and why the queue is not draining.

Bounded reads through the runtime's API only, all sent in one round trip
(:func:`dashboard.gather.gather`): the first :data:`SCHEDULERS` schedulers (next run first),
the global rate limit and concurrency cap from the queue's meta, the limiter's time left, the
newest audit entries, the last minutes of metrics. Another tool's key of the wrong type is
shown as a problem or leaves its fact out, never a failed page. This module renders nothing.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from ..audit import AuditLog
from ..catalog import Catalog
from ..gather import Answer, gather
from ..pausing import PauseInfo
from ..queue import Queue
from ..series import Throughput
from . import formatting
from .overview import QueueSummary

#: Schedulers listed on a queue page, and recent actions (from the audit trail).
SCHEDULERS = 20
ACTIONS = 10
#: Minutes of metrics the drain rate is measured over.
RATE_MINUTES = 5


def extras(queue: Queue, audit: AuditLog, q: QueueSummary, now_ms: int) -> dict[str, Any]:
    """Template values: ``schedulers`` (list), ``rate_limit`` ((max, duration ms) or None),
    ``throttled_ms`` (ms the limiter still holds fetches back, 0 when not), ``actions`` (the
    queue's newest audit entries), ``pause_info``, ``facts`` (:func:`drain_facts`) and
    ``extra_problems``. Their reads go in one round trip (a second for the schedulers' hashes
    and the arrival estimate's job, a third only when a rate limit is set)."""
    catalog = Catalog(queue.client, queue.prefix)
    answers = dict(zip(READS, gather(queue.client, [
        queue.read_job_schedulers(0, SCHEDULERS - 1), queue.read_global_rate_limit(),
        audit.read_entries(queue.name, ACTIONS), queue.read_pause_info(), queue.read_global_concurrency(),
        catalog.read_throughput(queue.name, RATE_MINUTES, now_ms), catalog.read_arrivals(queue.name, now_ms)])))
    problems: list[str] = []
    schedulers: list[dict[str, Any]] = []
    rate_limit: tuple[int, int] | None = None
    throttled = 0
    try:
        schedulers = [dict(s, job_id=f"repeat:{s['key']}:{s['next']}") for s in answers["schedulers"].get()]
    except ResponseError as exc:
        problems.append(f"job schedulers cannot be read: {exc}")
    try:
        rate_limit = answers["rate_limit"].get()
        throttled = max(0, queue.rate_limit_ttl()) if rate_limit else 0  # -2: the limit went meanwhile
    except ResponseError as exc:
        problems.append(f"the rate limit cannot be read: {exc}")
    read = {name: _value(answer) for name, answer in answers.items()}
    return dict(schedulers=schedulers, rate_limit=rate_limit, throttled_ms=throttled, extra_problems=problems,
                actions=read["actions"] or [], pause_info=read["pause_info"],
                facts=drain_facts(catalog, q, throttled, now_ms, read))


#: What :func:`extras` reads, in the order of its reads.
READS = ("schedulers", "rate_limit", "actions", "pause_info", "concurrency", "throughput", "arrivals")


def pause_message(name: str, reason: str, until: int) -> str:
    """What a pause did, for the toast and the audit trail."""
    for_how_long = f" for {formatting.duration(until * 1000)}" if until else ""
    why = f" Reason: {reason}" if reason else ""
    return f"Paused {name}{for_how_long}: workers take no new jobs from it.{why}"


def drain_facts(catalog: Catalog, q: QueueSummary, throttled_ms: int, now_ms: int, read: dict[str, Any]) -> list[str]:
    """"Why isn't this draining?": the facts that hold jobs back, most decisive first, then how
    fast jobs arrive and finish (BullMQ's per-minute metrics) and what that does to the backlog.
    ``read``: what :func:`extras` read (None where a key of another type stood in the way)."""
    c = q.counts
    ready = c.waiting + c.prioritized
    facts: list[str] = []
    if c.paused:
        facts.append(_paused(read["pause_info"], now_ms))
    if q.workers == 0 and ready:
        facts.append(f"No worker is connected: nothing takes the {ready:,} jobs ready to run.")
    if ready and q.workers:
        facts += _busy(catalog, q.name, q.workers, c.active)
    cap = read["concurrency"]
    if cap and c.active >= cap:
        facts.append(f"Global concurrency cap reached: {c.active:,} jobs active, at most {cap:,} at a time.")
    if throttled_ms > 0:
        facts.append(f"Rate-limited now: the limiter holds jobs back for another {formatting.duration(throttled_ms)}.")
    if c.delayed:
        facts.append(f"{c.delayed:,} {'job is' if c.delayed == 1 else 'jobs are'} delayed: scheduled for later, "
                     "or backing off before a retry.")
    if c.waiting_children:
        facts.append("1 job waits for its children to finish." if c.waiting_children == 1 else
                     f"{c.waiting_children:,} jobs wait for their children to finish.")
    if q.oldest_waiting:
        facts.append(f"The oldest waiting job has waited {formatting.age(q.oldest_waiting)}.")
    if ready and read["throughput"]:
        facts += _rates(read["throughput"][0], read["arrivals"], ready, now_ms)
    return facts


def _paused(info: PauseInfo | None, now_ms: int) -> str:
    fact = "Paused: workers take no new jobs from this queue until it is resumed"
    if info is None:
        return fact + "."
    if info.by:
        fact += f". Paused by {info.by}"
    if info.since:
        fact += f" {formatting.ago(info.since, now_ms)}"
    if info.reason:
        fact += f": “{info.reason}”"
    if info.until:
        fact += f". It resumes by itself {formatting.ago(info.until, now_ms)}"
    return fact + "."


def _busy(catalog: Catalog, name: str, connected: int, active: int) -> list[str]:
    """"All workers busy" when every connected worker is ours (so its concurrency is known)
    and the jobs active fill all their slots."""
    try:
        beats = [b for b in catalog.heartbeats()[0] if b.queue == name]
    except ResponseError:  # another tool's key of the wrong type: the fact is left out
        return []
    slots = sum(b.concurrency for b in beats)
    if len(beats) < connected or not slots or active < slots:
        return []
    return [f"All workers busy: {active:,} jobs active, and the concurrency of the {len(beats)} connected "
            f"worker{'s' if len(beats) != 1 else ''} adds up to {slots:,}."]


def _rates(throughput: Throughput, arriving: float | None, ready: int, now_ms: int) -> list[str]:
    """How fast jobs finish (the last 5 minutes of metrics) and arrive, and what it means for
    the ``ready`` backlog: "drains in about 12 min" or "growing by 340/min"."""
    if not throughput.recorded:
        return []  # no worker records metrics for this queue
    minutes = RATE_MINUTES - 1 + (now_ms % 60_000) / 60_000  # the current minute is not over
    finished = (sum(throughput.completed) + sum(throughput.failed)) / minutes
    over = f"over the last {RATE_MINUTES} minutes"
    if arriving is None:
        if not finished:
            return [f"Not draining: no job finished {over}."]
        return [f"Drains in about {_minutes(ready / finished)} at the current rate: "
                f"{_rate(finished)} jobs a minute finished {over}."]
    rates = f"about {_rate(arriving)} jobs a minute arrive, {_rate(finished)} finished {over}"
    if arriving - finished >= 0.5:
        return [f"Growing by {_rate(arriving - finished)}/min: {rates}."]
    if finished - arriving >= 0.5:
        return [f"Drains in about {_minutes(ready / (finished - arriving))} at the current "
                f"rate: {rates}."]
    return [f"Not draining: as many jobs arrive as finish ({rates})."]


def _minutes(minutes: float) -> str:
    return formatting.duration(round(minutes * 60) * 1000)  # whole seconds, rounded


def _rate(per_minute: float) -> str:
    return f"{per_minute:,.0f}" if per_minute >= 10 or per_minute == int(per_minute) else f"{per_minute:,.1f}"


def _value(answer: Answer[Any]) -> Any:
    try:
        return answer.get()
    except ResponseError:  # another tool's key of the wrong type: the fact is left out
        return None
