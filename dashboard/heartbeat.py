"""Worker heartbeats: what each Bullpen worker is, and is doing, for the dashboard's workers page.

A running :class:`~dashboard.worker.Worker` publishes a heartbeat every few seconds: a JSON
string with a TTL at :func:`~dashboard.keys.heartbeat_key` (host, pid, concurrency, the ids of
the jobs it runs, bounded, when it started, its version) and its id in the sorted set
:func:`~dashboard.keys.heartbeats_key`, scored by when the heartbeat expires. Both live under
``<prefix>::``, where BullMQ never looks. A graceful stop removes them; a worker that dies
leaves a heartbeat that expires by itself (the index entry is pruned later by any worker).
Readers (:func:`live`) list the index by score, never ``KEYS``, and read each heartbeat:
O(workers). Each write is one command that stands alone (``SET ... PX``, ``ZADD``), so a
crash between them leaves nothing that does not expire or get skipped. This module must not
import Flask.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from .codec import now_ms, text
from .keys import heartbeat_key, heartbeats_key

#: Bullpen's version, as heartbeats report it.
VERSION = "0.1.0"
#: Longest time between two heartbeats of a worker (shorter when its locks renew more often).
BEAT_SECONDS = 5.0
#: Running job ids a heartbeat lists (the others are only counted), and the length kept of each.
RUNNING_LISTED = 50
ID_CHARS = 200
#: Index entries whose heartbeat expired longer ago than this are pruned by the next beat.
PRUNE_MS = 3_600_000
#: Clock difference between hosts that readers tolerate when they pick live entries by score.
SKEW_MS = 60_000
#: Most heartbeats a reader lists.
LIMIT = 1000


@dataclass(frozen=True)
class WorkerBeat:
    """One worker's last heartbeat, as a reader sees it."""

    id: str
    queue: str
    name: str
    host: str
    pid: int
    concurrency: int
    running: list[str]
    running_count: int
    started: int  # ms since the epoch
    beat: int  # ms since the epoch
    version: str
    client_id: int | None = None  # CLIENT ID of its named connection, to match CLIENT LIST


class Heartbeat:
    """One worker's heartbeat: :meth:`publish` it (again and again), :meth:`remove` it once."""

    def __init__(self, client: Any, prefix: str, queue: str, worker_id: str, *, concurrency: int,
                 ttl_ms: int, name: str | None = None, client_id: int | None = None) -> None:
        self.client = client
        self.key = heartbeat_key(prefix, worker_id)
        self.index = heartbeats_key(prefix)
        self.worker_id = worker_id
        self.ttl_ms = max(1, int(ttl_ms))
        self.started = now_ms()
        self._static = dict(id=worker_id, queue=queue, name=name or "", host=socket.gethostname(), pid=os.getpid(),
                            concurrency=concurrency, started=self.started, client_id=client_id,
                            version=f"bullpen {VERSION} (Python {platform.python_version()})")
        self._lock = threading.Lock()
        self._removed = False

    def publish(self, running: Iterable[bytes | str]) -> None:
        """Say this worker is alive and runs ``running`` (job ids): one round trip. Raises
        ``redis.RedisError`` (the caller logs it; the next beat tries again)."""
        ids = [text(i)[:ID_CHARS] for i in running]
        now = now_ms()
        value = json.dumps({**self._static, "running": ids[:RUNNING_LISTED], "running_count": len(ids), "beat": now})
        with self._lock:
            if self._removed:
                return  # the worker has stopped: a late beat must not bring it back
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self.key, value, px=self.ttl_ms)
            pipe.zadd(self.index, {self.worker_id: now + self.ttl_ms})
            pipe.zremrangebyscore(self.index, "-inf", now - PRUNE_MS)
            pipe.execute()

    def remove(self) -> None:
        """The worker stopped: its heartbeat goes at once (no later :meth:`publish` writes it)."""
        with self._lock:
            self._removed = True
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(self.key)
            pipe.zrem(self.index, self.worker_id)
            pipe.execute()


def live(client: Any, prefix: str, limit: int = LIMIT, now: int | None = None) -> tuple[list[WorkerBeat], list[str]]:
    """The heartbeats of workers alive under ``prefix`` (at most ``limit``), sorted by queue,
    host and pid, and what could not be read (an index or heartbeat of the wrong type, or text
    that is not a heartbeat, written by another tool): two round trips, O(workers)."""
    now = now_ms() if now is None else now
    index = heartbeats_key(prefix)
    try:
        ids = [text(i) for i in client.zrangebyscore(index, now - SKEW_MS, "+inf", start=0, num=limit)]
    except ResponseError as exc:
        return [], [f"the workers index {index} cannot be read: {exc}"]
    pipe = client.pipeline(transaction=False)
    for worker_id in ids:
        pipe.get(heartbeat_key(prefix, worker_id))
    beats, problems = [], []
    for worker_id, raw in zip(ids, pipe.execute(raise_on_error=False) if ids else []):
        if raw is None:
            continue  # expired: the worker died (or stopped while the index was read)
        beat = _parse(worker_id, raw)
        if beat is None:
            problems.append(f"{heartbeat_key(prefix, worker_id)} is not a heartbeat Bullpen can read; skipped")
        else:
            beats.append(beat)
    return sorted(beats, key=lambda b: (b.queue, b.host, b.pid, b.id)), problems


def _parse(worker_id: str, raw: Any) -> WorkerBeat | None:
    if isinstance(raw, Exception):
        return None
    try:
        data = json.loads(text(raw))
        running = [str(i) for i in data.get("running", [])][:RUNNING_LISTED]
        client_id = data.get("client_id")
        return WorkerBeat(id=worker_id, queue=str(data["queue"]), name=str(data.get("name") or ""),
                          host=str(data.get("host", "")), pid=int(data.get("pid", 0)),
                          concurrency=int(data.get("concurrency", 0)), running=running,
                          running_count=int(data.get("running_count", len(running))),
                          started=int(data.get("started", 0)), beat=int(data.get("beat", 0)),
                          version=str(data.get("version", "")),
                          client_id=client_id if isinstance(client_id, int) else None)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
