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
        throttled = queue.rate_limit_ttl() if rate_limit else 0
    except ResponseError as exc:
        problems.append(f"the rate limit cannot be read: {exc}")
    return dict(schedulers=schedulers, rate_limit=rate_limit, throttled_ms=throttled, extra_problems=problems,
                actions=audit.entries(queue.name, ACTIONS))
