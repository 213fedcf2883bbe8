"""A flow's parents and children, read at a bounded cost: mixins for Queue and Job.

BullMQ keeps a parent's children in ``<parent>:dependencies`` (set of unfinished children's
full keys), ``:processed`` (child key -> return value JSON), ``:failed`` (child key -> reason,
for children with ignoreDependencyOnFailure / continueParentOnFailure) and ``:unsuccessful``
(zset of children that failed with failParentOnFailure); a child names its parent in
``parentKey``. :class:`QueueFamily` (mixed into :class:`~dashboard.queue.Queue`) reads these,
each in bounded batches; :class:`JobFamily` (mixed into :class:`~dashboard.job.Job`) gives a
handler ``job.children_values()``. Nothing here writes to Redis (the flow's writes are
``lua/add_flow.lua`` and ``lua/_parent.lua``). This module must not import Flask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .clients import Client
from .codec import text
from .keys import Keys, split_job_key

#: Most children values or failures a handler reads at once (BullMQ reads them all).
CHILDREN_LIMIT = 10_000
#: Entries asked for per HSCAN / SSCAN call.
SCAN_COUNT = 500
#: What a child's place among its parent's keys says about it.
GROUPS = ("unprocessed", "processed", "ignored", "failed")


@dataclass
class ParentRef:
    """A child's parent, from its ``parentKey``: ``<prefix>:<queue>:<id>``."""

    key: str
    prefix: str
    queue: str
    id: str


@dataclass
class ChildRef:
    """One child of a parent: where the parent files it, and (when read) its state."""

    key: str
    group: str  # one of GROUPS
    prefix: str | None = None
    queue: str | None = None
    id: str | None = None
    state: str | None = None


@dataclass
class Children:
    """The first children of a parent in each group, and how many there are in each."""

    counts: dict[str, int]
    shown: list[ChildRef]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def parent_ref(parent_key: str | None) -> ParentRef | None:
    """A ``parentKey`` field as its parts, or None when there is none or it cannot be split."""
    if not parent_key:
        return None
    parts = split_job_key(parent_key)
    return None if parts is None else ParentRef(parent_key, *parts)


@runtime_checkable
class FamilyOwner(Protocol):
    """What :class:`JobFamily` needs from the job's queue (a :class:`~dashboard.queue.Queue`)."""

    def children_values(self, job_id: str | bytes, limit: int = CHILDREN_LIMIT) -> dict[str, Any]: ...

    def ignored_children_failures(self, job_id: str | bytes, limit: int = CHILDREN_LIMIT) -> dict[str, str]: ...


class JobFamily:
    """Flow reads for a job's handler; mixed into :class:`~dashboard.job.Job`."""

    parent_key: str | None
    id: str
    raw_id: bytes | None
    _queue: Any

    def _family_owner(self) -> FamilyOwner:
        if not isinstance(self._queue, FamilyOwner):
            raise RuntimeError(f"job {self.id} is not attached to a queue")
        return self._queue

    @property
    def parent(self) -> ParentRef | None:
        """The job's parent in a flow (from ``parentKey``), or None."""
        return parent_ref(self.parent_key)

    def children_values(self, limit: int = CHILDREN_LIMIT) -> dict[str, Any]:
        """The return values of this job's completed children, by child key
        (``<prefix>:<queue>:<id>``), as BullMQ's ``getChildrenValues``; at most ``limit``."""
        return self._family_owner().children_values(self.raw_id if self.raw_id is not None else self.id, limit)

    def ignored_children_failures(self, limit: int = CHILDREN_LIMIT) -> dict[str, str]:
        """Failed reasons of children whose failure was ignored (``ignore_dependency_on_failure``
        or ``continue_parent_on_failure``), by child key; BullMQ's ``getIgnoredChildrenFailures``."""
        return self._family_owner().ignored_children_failures(
            self.raw_id if self.raw_id is not None else self.id, limit)


class QueueFamily:
    """Reads a parent's children; mixed into :class:`~dashboard.queue.Queue`."""

    client: Client
    keys: Keys

    def children_values(self, job_id: str | bytes, limit: int = CHILDREN_LIMIT) -> dict[str, Any]:
        """Return values of a parent's completed children (JSON-decoded; text when not JSON)."""
        values: dict[str, Any] = {}
        for key, raw in self._hash_entries(self.keys.job_key(job_id, ":processed"), limit):
            try:
                values[key] = json.loads(raw)
            except (ValueError, RecursionError):
                values[key] = text(raw)
        return values

    def ignored_children_failures(self, job_id: str | bytes, limit: int = CHILDREN_LIMIT) -> dict[str, str]:
        """Failed reasons of a parent's children whose failure was ignored, by child key."""
        return {key: text(raw) for key, raw in self._hash_entries(self.keys.job_key(job_id, ":failed"), limit)}

    def _hash_entries(self, key: str | bytes, limit: int) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        cursor = 0
        while len(out) < limit:
            batch: Any
            cursor, batch = self.client.hscan(key, cursor, count=SCAN_COUNT)
            out += [(text(k), v) for k, v in batch.items()]
            if int(cursor) == 0:
                break
        return out[:limit]

    def children(self, job_id: str, per_group: int = 20) -> Children:
        """A parent's children for its page: the counts per group (BullMQ's dependency counts)
        and up to ``per_group`` children of each group with their state. Bounded: one SSCAN /
        HSCAN / ZRANGE page per group, then one pipelined state lookup per child shown."""
        k = self.keys
        sub = {g: k.job_key(job_id, s) for g, s in zip(GROUPS, (":dependencies", ":processed", ":failed",
                                                               ":unsuccessful"))}
        pipe = self.client.pipeline(transaction=False)
        pipe.scard(sub["unprocessed"])
        pipe.hlen(sub["processed"])
        pipe.hlen(sub["ignored"])
        pipe.zcard(sub["failed"])
        pipe.sscan(sub["unprocessed"], 0, count=per_group)
        pipe.hscan(sub["processed"], 0, count=per_group)
        pipe.hscan(sub["ignored"], 0, count=per_group)
        pipe.zrange(sub["failed"], 0, per_group - 1)
        got = pipe.execute(raise_on_error=False)
        counts = {g: (n if isinstance(n, int) else 0) for g, n in zip(GROUPS, got[:4])}
        members: list[list[Any]] = []
        for g, reply in zip(GROUPS, got[4:]):
            if isinstance(reply, Exception):
                members.append([])
            elif g == "failed":
                members.append(list(reply))
            else:
                found: Any = reply[1]
                members.append(list(found.keys() if isinstance(found, dict) else found))
        shown = [ChildRef(text(key), g) for g, keys in zip(GROUPS, members) for key in keys[:per_group]]
        for child in shown:
            parts = split_job_key(child.key)
            if parts is not None:
                child.prefix, child.queue, child.id = parts
        self._child_states([c for c in shown if c.id is not None])
        return Children(counts, shown)

    def _child_states(self, shown: list[ChildRef]) -> None:
        """Each child's state (BullMQ's getState order), all children in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        states = ("completed", "failed", "delayed", "prioritized", "waiting-children")
        for c in shown:
            ck = Keys(c.prefix or "", c.queue or "")
            pipe.exists(ck.job(c.id or ""))
            for s in states:
                pipe.zscore(ck.state(s), c.id or "")
            pipe.lpos(ck.active, c.id or "", maxlen=1000)
            pipe.lpos(ck.wait, c.id or "", maxlen=1000)
        got = pipe.execute(raise_on_error=False)
        step = len(states) + 3
        for i, c in enumerate(shown):
            exists, *hits = got[i * step:(i + 1) * step]
            names = (*states, "active", "waiting")
            found = [n for n, h in zip(names, hits) if h is not None and not isinstance(h, Exception)]
            c.state = "gone" if exists == 0 else (found[0] if found else "unknown")
