"""The workers page: every worker on every queue, Bullpen's (from their heartbeats) and BullMQ's
(from ``CLIENT LIST``), as rows.

A Bullpen worker publishes who it is and what it runs (:mod:`dashboard.heartbeat`); its named
connection is matched by CLIENT ID and not listed twice. Any other worker connection (Node or
Python BullMQ, or a Bullpen worker that reconnected since its first heartbeat) is listed from
what Redis knows of it: address, connection age, idle time. O(workers); changes nothing and
renders nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog import Catalog


@dataclass(frozen=True)
class WorkerRow:
    """One row of the workers page; None where the worker does not say."""

    kind: str  # "Bullpen" or "BullMQ"
    queue: str
    name: str
    host: str
    pid: int | None
    concurrency: int | None
    running: list[str] = field(default_factory=list)
    running_count: int | None = None
    started: int | None = None  # ms since the epoch
    beat: int | None = None  # ms since the epoch
    version: str = ""
    connection: str = ""  # what Redis says of its named connection


def rows(catalog: Catalog, now_ms: int) -> tuple[list[WorkerRow], list[str]]:
    """Every worker under the catalog's prefix, by queue, and what could not be read."""
    beats, problems = catalog.heartbeats()
    connections = catalog.worker_connections()
    by_id = {_int(entry.get("id")): entry for _, entry in connections}
    found = []
    for b in beats:
        entry = by_id.get(b.client_id) if b.client_id is not None else None
        found.append(WorkerRow("Bullpen", b.queue, b.name, b.host, b.pid, b.concurrency, b.running, b.running_count,
                               b.started, b.beat, b.version, _described(entry) if entry else "not seen in CLIENT LIST"))
    ours = {b.client_id for b in beats if b.client_id is not None}
    for queue, entry in connections:
        if _int(entry.get("id")) in ours:
            continue
        name = str(entry.get("name", "")).partition(":w:")[2]
        age = _int(entry.get("age"))
        found.append(WorkerRow("BullMQ", queue, name, str(entry.get("addr", "")).rpartition(":")[0], None, None,
                               started=now_ms - age * 1000 if age is not None else None,
                               version="BullMQ-compatible (CLIENT LIST)", connection=_described(entry)))
    return sorted(found, key=lambda w: (w.queue, w.kind, w.host, w.pid or 0)), problems


def _described(entry: dict[str, Any]) -> str:
    return f"{entry.get('addr', '?')}, idle {entry.get('idle', '?')} s, last command {entry.get('cmd', '?')}"


def _int(raw: Any) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None
