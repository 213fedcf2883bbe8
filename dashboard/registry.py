"""The queue registry and worker discovery: which queues exist under a prefix, who serves them.

BullMQ keeps no list of queues, so Bullpen keeps one: a set at :func:`~dashboard.keys.registry_key`
that every producer and worker of ours adds its queue to, and that :func:`discover` fills for
queues only other tools have touched, with a bounded ``SCAN`` (never ``KEYS``) of the server,
or of every primary of a Redis Cluster. Workers are found the way BullMQ finds them: each
names one connection, listed by ``CLIENT LIST`` (on a cluster, of the node holding the queue).
This module changes nothing but the registry set and must not import Flask.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import ResponseError

from .clients import client_lists, node_of, primaries
from .codec import text
from .keys import Keys, is_queue_name, registry_key, worker_client_name, worker_client_queue

log = logging.getLogger(__name__)


def queue_names(client: Any, prefix: str) -> list[str]:
    """Queue names known under ``prefix``, sorted (entries that are not queue names skipped)."""
    return read(client, prefix)[0]


def read(client: Any, prefix: str) -> tuple[list[str], list[str]]:
    """The registry's queue names, sorted, and what is wrong with it (entries that are not
    queue names, such as ``""`` or ``a:b`` written by another tool, or a registry key of the
    wrong type): those are logged and skipped, never fatal."""
    key = registry_key(prefix)
    try:
        raw = client.smembers(key)
    except ResponseError as exc:  # e.g. WRONGTYPE: another tool wrote a string there
        problem = f"the queue registry {key} cannot be read ({exc}); queues are not listed"
        log.warning("%s", problem)
        return [], [problem]
    names, problems = [], []
    for entry in raw:
        name = text(entry)
        round_trips = isinstance(entry, str) or entry == name.encode()  # not UTF-8: cannot be addressed
        if is_queue_name(name) and round_trips:
            names.append(name)
        else:
            problems.append(f"the queue registry {key} holds {name!r}, which is not a queue name; skipped")
    for problem in problems:
        log.warning("%s", problem)
    return sorted(names), problems


def register(client: Any, prefix: str, name: str) -> bool:
    """Add ``name`` to the registry (idempotent). A registry key of the wrong type (written by
    another tool) is logged and left alone: producing and working never fail for it."""
    try:
        client.sadd(registry_key(prefix), name)
    except ResponseError as exc:
        log.warning("queue=%s: cannot add it to the queue registry %s (%s); the dashboard will not list "
                    "it until that key is a set again", name, registry_key(prefix), exc)
        return False
    return True


def is_registered(client: Any, prefix: str, name: str) -> bool:
    """Whether the registry lists ``name``: one SISMEMBER."""
    return bool(client.sismember(registry_key(prefix), name))


def unregister(client: Any, prefix: str, name: str) -> None:
    """Drop ``name`` from the registry (after obliterate)."""
    client.srem(registry_key(prefix), name)


def discover(client: Any, prefix: str, scan_count: int = 1000, max_calls: int = 10_000) -> list[str]:
    """Find queues written by other tools with SCAN, never KEYS, and add them to the
    registry: on Redis Cluster, SCAN of every primary. Each SCAN call is bounded (``COUNT``;
    at most ``max_calls`` per node); run it at start-up or on demand, not per page view.
    Returns the names found."""
    # BullMQ's `meta`, and the `id` counter and `meta-paused` flag of legacy Bull queues (an
    # unpaused Bull queue has no `meta`); the glob lets a few other keys through, filtered here
    pattern = _glob_escape(prefix) + ":*:[im][de]*"
    found: set[str] = set()
    for _node, node_client in primaries(client):
        cursor, calls = 0, 0
        while True:
            cursor, keys = node_client.scan(cursor=cursor, match=pattern, count=scan_count)
            calls += 1
            for key in keys:
                stem, _, suffix = text(key)[len(prefix) + 1:].rpartition(":")
                if suffix in ("meta", "id", "meta-paused") and stem and ":" not in stem:
                    found.add(stem)
            if cursor == 0 or calls >= max_calls:
                break
    if found:
        client.sadd(registry_key(prefix), *sorted(found))
    return sorted(found)


def connected_workers(client: Any, prefix: str, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The worker connections of each queue in ``names``, from one ``CLIENT LIST`` (one per
    primary on Redis Cluster, where a worker counts on the node holding its queue: its named
    client may also have idle connections to other nodes). Like BullMQ, every worker (ours or
    Node's) names exactly one connection ``<prefix>:<base64(queue)>[:w:<name>]``, and it closes
    with the worker."""
    by_client_name = {worker_client_name(prefix, n): n for n in names}
    homes = {n: node_of(client, Keys(prefix, n).marker) for n in names}
    found: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for node, listed in client_lists(client):
        for entry in listed:
            queue = by_client_name.get(str(entry.get("name", "")).split(":w:", 1)[0])
            if queue is not None and homes[queue] == node:
                found[queue].append(entry)
    return found


def worker_connections(client: Any, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """Every worker connection under ``prefix`` as (queue name, ``CLIENT LIST`` entry), whether
    or not the registry lists the queue: each is named ``<prefix>:<base64(queue)>[:w:<name>]``
    (names that do not decode to a queue name are not workers of ours or BullMQ's); one
    ``CLIENT LIST`` (one per primary on Redis Cluster)."""
    found = []
    for node, listed in client_lists(client):
        for entry in listed:
            queue = worker_client_queue(prefix, str(entry.get("name", "")))
            # on Redis Cluster a worker counts on the node holding its queue (see connected_workers)
            if queue is not None and node_of(client, Keys(prefix, queue).marker) == node:
                found.append((queue, entry))
    return found


def _glob_escape(pattern: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in pattern)
