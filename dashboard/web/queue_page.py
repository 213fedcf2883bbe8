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
from ..queue import Queue
from . import formatting
from .overview import QueueSummary

#: Schedulers listed on a queue page, and recent actions (from the audit trail).
SCHEDULERS = 20
ACTIONS = 10


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
    """"Why isn't this draining?": the facts that hold jobs back, most decisive first, then the
    rate at which the backlog goes down (from BullMQ's per-minute metrics)."""
    c = q.counts
    ready = c.waiting + c.prioritized
    facts: list[str] = []
    if c.paused:
        facts.append("Paused: workers take no new jobs from this queue until it is resumed.")
    if q.workers == 0 and ready:
        facts.append(f"No worker is connected: nothing takes the {ready:,} jobs ready to run.")
    cap = _safe(queue.global_concurrency)
    if cap and c.active >= cap:
        facts.append(f"Global concurrency cap reached: {c.active:,} jobs active, at most {cap:,} at a time.")
    if throttled_ms > 0:
        facts.append(f"Rate-limited now: the limiter holds jobs back for another {formatting.duration(throttled_ms)}.")
    if c.delayed:
        facts.append(f"{c.delayed:,} jobs are delayed: scheduled for later, or backing off before a retry.")
    if c.waiting_children:
        facts.append(f"{c.waiting_children:,} jobs wait for their children to finish.")
    if q.oldest_waiting:
        facts.append(f"The oldest waiting job has waited {formatting.age(q.oldest_waiting)}.")
    per_minute = queue.finished_per_minute(now_ms)
    if ready and per_minute is not None:
        if per_minute > 0:
            facts.append(f"At the rate of the last 5 minutes ({per_minute:,.0f} jobs a minute) the ready jobs drain "
                         f"in about {formatting.duration(ready / per_minute * 60_000)}.")
        else:
            facts.append("No job finished in the last 5 minutes.")
    return facts


def _safe(read: Any) -> Any:
    try:
        return read()
    except ResponseError:  # another tool's key of the wrong type: the fact is left out
        return None
