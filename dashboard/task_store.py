"""Progress of long bulk actions (retry all, clean ...), kept in Redis so any process can read it.

A web process that starts a bulk action writes its progress after every batch to a small
hash with a TTL at :func:`~dashboard.keys.task_key`, outside every queue's namespace; any
other process (another gunicorn worker, the CLI) reads it back. Values are flat strings;
what they mean is the caller's business. This module must not import Flask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .codec import text
from .keys import task_key

#: How long a task's progress stays readable after its last update.
TASK_TTL_SECONDS = 3600


class TaskStore:
    """Task progress hashes under one key prefix."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def save(self, task_id: str, values: Mapping[str, str], ttl: int = TASK_TTL_SECONDS) -> None:
        """Write (or overwrite) one task's fields and restart its TTL, in one round trip."""
        key = task_key(self.prefix, task_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping=dict(values))
        pipe.expire(key, ttl)
        pipe.execute()

    def load(self, task_id: str) -> dict[str, str] | None:
        """One task's fields, or None when no process recorded it (or it expired)."""
        raw = self.client.hgetall(task_key(self.prefix, task_id))
        return {text(k): text(v) for k, v in raw.items()} if raw else None
