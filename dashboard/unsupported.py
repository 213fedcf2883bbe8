"""BullMQ job options a Bullpen worker does not carry out yet, and the warning it gives.

A job added by Node BullMQ may ask for things our worker does not do (today: a custom backoff
type, which is code in a Node worker's settings; jitter and flows are carried out). The job
still runs and its result is recorded as BullMQ records it; what our worker does not do is
named in a clear warning, once per queue and option, and every key and field it does not
handle is left exactly as it is. This module performs no I/O besides logging.
"""

from __future__ import annotations

import logging
import threading

from .job import Job

log = logging.getLogger("dashboard.worker")

#: Option (as BullMQ stores it in ``opts``) -> what a Bullpen worker does not do about it (none
#: today; a custom ``backoff.type`` is checked apart, inside the backoff option).
UNSUPPORTED: dict[str, str] = {}


class UnsupportedOptions:
    """Warns once per option for one queue (thread-safe: handler threads call it)."""

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def check(self, job: Job) -> None:
        """Log a warning for each option of ``job`` this worker does not carry out, the first
        time this queue meets it."""
        found = [name for name in job.opts if name in UNSUPPORTED and name not in self._seen]
        backoff = job.opts.get("backoff")
        custom = isinstance(backoff, dict) and backoff.get("type") not in ("fixed", "exponential")
        if custom and "backoff.type" not in self._seen:
            found.append("backoff.type")
        if not found:
            return
        with self._lock:
            fresh = [name for name in found if name not in self._seen]
            self._seen.update(fresh)
        for name in fresh:
            what = UNSUPPORTED.get(name, "a custom backoff strategy lives in a Node worker's settings: a "
                                         "Bullpen worker retries such a job after the backoff's delay, as 'fixed'")
            log.warning("queue=%s job=%s: option %r is not carried out by Bullpen workers yet (%s); the job "
                        "runs, and BullMQ's keys and fields for it are left as they are. Warned once per queue.",
                        self.queue_name, job.id, name, what)
