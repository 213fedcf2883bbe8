"""The audit trail: who did what to which queue and jobs, when, and what came of it.

Every action taken from the dashboard (or any tool that records here) becomes one entry in a
capped Redis stream for the whole prefix and one in a capped stream for its queue, at
:func:`~dashboard.keys.audit_key` (outside every queue's namespace, so BullMQ never reads
it and no job id can take it), and one log line. Reading costs O(entries shown). Entries
never hold secrets: the caller passes a user name, never a password. This module must not
import Flask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError, ResponseError

from . import gather
from .codec import text
from .gather import Read, checked
from .keys import audit_key

log = logging.getLogger(__name__)

#: Entries kept for the whole prefix, and per queue (approximate: XADD MAXLEN ~).
KEEP_ALL = 10_000
KEEP_PER_QUEUE = 1_000
_FIELDS = ("actor", "remote", "action", "queue", "target", "count", "result", "ok")


@dataclass
class AuditEntry:
    """One action as recorded."""

    at_ms: int
    actor: str
    remote: str
    action: str
    queue: str
    target: str
    count: int | None
    result: str
    ok: bool


class AuditLog:
    """The audit streams under one key prefix."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def record(self, *, actor: str, remote: str, action: str, queue: str = "", target: str = "",
               count: int | None = None, result: str = "", ok: bool = True) -> None:
        """Add one entry (and its log line). A Redis error is logged, never raised: the
        action itself has already happened."""
        fields = {"actor": actor, "remote": remote, "action": action, "queue": queue, "target": target[:500],
                  "count": "" if count is None else str(count), "result": result[:1000], "ok": "1" if ok else "0"}
        log.info("audit: actor=%s remote=%s action=%s queue=%s target=%s count=%s ok=%s result=%s", actor, remote,
                 action, queue or "-", target[:200] or "-", fields["count"] or "-", ok, result[:300])
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(audit_key(self.prefix), fields, maxlen=KEEP_ALL, approximate=True)
            if queue:
                pipe.xadd(audit_key(self.prefix, queue), fields, maxlen=KEEP_PER_QUEUE, approximate=True)
            pipe.execute()
        except RedisError as exc:
            log.warning("audit: could not record %s on %s: %s", action, queue or "-", exc)

    def auto_resumed(self, queue: str, by: str) -> None:
        """Record that ``by`` (a dashboard process or a worker) resumed ``queue`` because its
        pause reached the end time it was given."""
        self.record(actor=by, remote="", action="resume", queue=queue,
                    result=f"Resumed {queue} automatically: its pause reached its end time.")

    def entries(self, queue: str | None = None, count: int = 50) -> list[AuditEntry]:
        """The newest ``count`` entries, newest first (of one queue, or of all)."""
        return gather.one(self.client, self.read_entries(queue, count))

    def read_entries(self, queue: str | None = None, count: int = 50) -> Read[list[AuditEntry]]:
        """:meth:`entries` as a :class:`~dashboard.gather.Read` (a stream of another type is
        logged and reads as no entries)."""
        key = audit_key(self.prefix, queue)

        def parse(replies: list[Any]) -> list[AuditEntry]:
            if isinstance(replies[0], ResponseError):  # another tool wrote something else there
                log.warning("audit: %s cannot be read: %s", key, replies[0])
                return []
            return [_entry(entry_id, values) for entry_id, values in checked(replies)[0]]
        return Read(lambda pipe: pipe.xrevrange(key, "+", "-", count=count), 1, parse)


def _entry(entry_id: Any, values: dict[Any, Any]) -> AuditEntry:
    f = {text(k): text(v) for k, v in values.items()}
    stamp = text(entry_id).split("-", 1)[0]
    count_text = f.get("count", "")
    return AuditEntry(int(stamp) if stamp.isdigit() else 0, f.get("actor", ""), f.get("remote", ""),
                      f.get("action", ""), f.get("queue", ""), f.get("target", ""),
                      int(count_text) if count_text.isdigit() else None, f.get("result", ""), f.get("ok") == "1")
