"""What a queue page shows besides its job table: job schedulers and the rate limit.

Bounded reads through the runtime's ``Queue`` only: the first :data:`SCHEDULERS` schedulers
(next run first), the global rate limit from the queue's meta and the limiter's time left.
Another tool's key of the wrong type is shown as a problem, never a failed page. This module
renders nothing.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from ..audit import AuditLog
from ..catalog import Catalog
from ..queue import Queue
from . import formatting
from .overview import QueueSummary

#: Schedulers listed on a queue page, and recent actions (from the audit trail).
SCHEDULERS = 20
ACTIONS = 10
#: Minutes of metrics the drain rate is measured over.
RATE_MINUTES = 5


def extras(queue: Queue, audit: AuditLog) -> dict[str, Any]:
    """Template values: ``schedulers`` (list), ``rate_limit`` ((max, duration ms) or None),
    ``throttled_ms`` (ms the limiter still holds fetches back, 0 when not), ``actions`` (the
    queue's newest audit entries) and ``extra_problems``."""
    problems: list[str] = []
    schedulers: list[dict[str, Any]] = []
    rate_limit: tuple[int, int] | None = None
    throttled = 0
    try:
        schedulers = [dict(s, job_id=f"repeat:{s['key']}:{s['next']}") for s in queue.job_schedulers(0, SCHEDULERS - 1)]
    except ResponseError as exc:
        problems.append(f"job schedulers cannot be read: {exc}")
    try:
        rate_limit = queue.global_rate_limit()
        throttled = max(0, queue.rate_limit_ttl()) if rate_limit else 0  # -2: the limit went meanwhile
    except ResponseError as exc:
        problems.append(f"the rate limit cannot be read: {exc}")
    return dict(schedulers=schedulers, rate_limit=rate_limit, throttled_ms=throttled, extra_problems=problems,
                actions=audit.entries(queue.name, ACTIONS), pause_info=_safe(queue.pause_info))


def pause_message(name: str, reason: str, until: int) -> str:
    """What a pause did, for the toast and the audit trail."""
    for_how_long = f" for {formatting.duration(until * 1000)}" if until else ""
    why = f" Reason: {reason}" if reason else ""
    return f"Paused {name}{for_how_long}: workers take no new jobs from it.{why}"


def drain_facts(queue: Queue, q: QueueSummary, throttled_ms: int, now_ms: int) -> list[str]:
    """"Why isn't this draining?": the facts that hold jobs back, most decisive first, then how
    fast jobs arrive and finish (BullMQ's per-minute metrics) and what that does to the backlog."""
    c = q.counts
    ready = c.waiting + c.prioritized
    catalog = Catalog(queue.client, queue.prefix)
    facts: list[str] = []
    if c.paused:
        facts.append(_paused(queue, now_ms))
    if q.workers == 0 and ready:
        facts.append(f"No worker is connected: nothing takes the {ready:,} jobs ready to run.")
    if ready and q.workers:
        facts += _busy(catalog, queue.name, q.workers, c.active)
    cap = _safe(queue.global_concurrency)
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
    if ready:
        facts += _rates(catalog, queue.name, ready, now_ms)
    return facts


def _paused(queue: Queue, now_ms: int) -> str:
    info = _safe(queue.pause_info)
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
    beats = [b for b in _safe(lambda: catalog.heartbeats()[0]) or [] if b.queue == name]
    slots = sum(b.concurrency for b in beats)
    if len(beats) < connected or not slots or active < slots:
        return []
    return [f"All workers busy: {active:,} jobs active, and the concurrency of the {len(beats)} connected "
            f"worker{'s' if len(beats) != 1 else ''} adds up to {slots:,}."]


def _rates(catalog: Catalog, name: str, ready: int, now_ms: int) -> list[str]:
    """How fast jobs finish (the last 5 minutes of metrics) and arrive, and what it means for
    the ``ready`` backlog: "drains in about 12 min" or "growing by 340/min"."""
    throughput = _safe(lambda: catalog.throughput([name], RATE_MINUTES, now_ms)[0])
    if throughput is None or not throughput.recorded:
        return []  # no worker records metrics for this queue
    minutes = RATE_MINUTES - 1 + (now_ms % 60_000) / 60_000  # the current minute is not over
    finished = (sum(throughput.completed) + sum(throughput.failed)) / minutes
    arriving = _safe(lambda: catalog.arrivals_per_minute(name, now_ms))
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


def _safe(read: Any) -> Any:
    try:
        return read()
    except ResponseError:  # another tool's key of the wrong type: the fact is left out
        return None
