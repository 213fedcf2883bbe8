"""The failure index: a queue's failed jobs grouped by cause, kept incrementally in Redis.

A cluster is the set of failed jobs with one :class:`~dashboard.failures.Fingerprint`. The
index lives in keys BullMQ never reads (:func:`~dashboard.keys.failure_index_key`): each indexed
job with its cluster and failed-at score, each cluster's jobs as a sorted set (by failed-at
time: count, first and last seen, sparkline and a sample are O(log n) reads), the clusters by
job count, and a description per cluster. :meth:`FailureIndex.refresh` brings it up to date in
bounded batches within a time budget:

1. *extend*: failed jobs newer than the last indexed one (by score, then offset among equal
   scores) are read (``read_failure_sizes``, then one ``SORT ... GET`` when their fields are
   small, else ``read_failures``, which cuts them inside Redis), fingerprinted here, and written
   by one ``index_failures`` per batch, which skips any job that left the failed set meanwhile.
   The next batch's reads and this batch's write go out on one connection before this batch is
   fingerprinted (:class:`~dashboard.failure_wire.Wire`): Redis works while Python does;
2. *reconcile*, only when the index's job count differs from the failed set's: an HSCAN pass
   takes out jobs no longer failed (retried, removed, cleaned, trimmed by any tool), then a
   walk by rank adds failed jobs the extend step missed (e.g. failed with an older timestamp).
   Only once the extend step has caught up; right away unless the last pass ended with the
   counts still apart (jobs churning), then at most once per :data:`RECONCILE_SECONDS`;
   resumable across requests.

Our own retries and removals of a cluster's jobs (``redrive_jobs``, ``remove_failed_jobs``) take
them out of the index in the same script. One refresh at a time per queue (a short lock).
This module must not import Flask.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import reads, scripts
from .clients import Client
from .codec import text
from .failure_batch import Batch, plan
from .failure_wire import Wire
from .failures import (
    Cluster,
    Overview,
    cluster_from,
    entry_raw,
    failed_after_redrive,
    fingerprint,
    index_entry,
    unescape,
)
from .job import Job
from .keys import REDRIVE_FIELD, Keys, failure_index_key

log = logging.getLogger(__name__)

#: Jobs read per ``read_failures`` call, and bytes it may copy (reasons and traces) per call.
BATCH = 250
BYTE_BUDGET = 512 * 1024
#: Caps of what is read per job: reason head, newest trace's head and tail, longest trace field read.
REASON_CAP, TRACE_CAP, DECODE_LIMIT = 1024, 2048, 256 * 1024
#: A full reconcile pass starts at most this often while the counts disagree.
RECONCILE_SECONDS = 10.0
#: Index entries checked per prune step.
PRUNE_COUNT = 250
LOCK_MS = 10_000
#: What the failures page reads of each cluster's sample job: its newest trace, 8 KB of it.
SAMPLE = reads.Caps({"failedReason": 1024, "stacktrace": 8192, "finishedOn": 64, "atm": 64}, traces=1)


@dataclass
class IndexStatus:
    """How up to date the index is after a refresh."""

    indexed: int
    failed: int
    added: int = 0
    pruned: int = 0
    busy: bool = False  # another request was refreshing it
    reconciling: bool = False
    extending: bool = False  # the budget ran out before every new failure was indexed
    problem: str = ""  # why it could not be brought up to date

    @property
    def complete(self) -> bool:
        return self.indexed == self.failed and not self.reconciling and not self.problem


class FailureIndex:
    """The failure index of one queue."""

    def __init__(self, client: Client, run: scripts.Scripts, keys: Keys, clock: Callable[[], int],
                 reconcile_seconds: float = RECONCILE_SECONDS) -> None:
        self.client, self.run, self.keys, self.clock = client, run, keys, clock
        self.reconcile_seconds = reconcile_seconds
        self._key = {p: failure_index_key(keys.prefix, keys.queue, p)
                     for p in ("jobs", "counts", "again", "meta", "state", "lock", "c:")}

    @classmethod
    def of(cls, queue: Any, reconcile_seconds: float = RECONCILE_SECONDS) -> FailureIndex:
        """The index of a :class:`~dashboard.queue.Queue` (its client, scripts and clock)."""
        return cls(queue.client, queue.scripts, queue.keys, queue.clock, reconcile_seconds)

    def cluster_key(self, cluster_id: str) -> str:
        return self._key["c:"] + cluster_id

    @property
    def counts_key(self) -> str:
        """The zset of clusters by job count (its ZCARD: how many clusters there are)."""
        return self._key["counts"]

    # --- keeping it up to date -----------------------------------------------------------

    def refresh(self, budget: float = 0.8) -> IndexStatus:
        """Extend (and if needed reconcile) the index for at most about ``budget`` seconds."""
        deadline = time.monotonic() + budget
        token = secrets.token_hex(8)
        if not self.client.set(self._key["lock"], token, nx=True, px=LOCK_MS):
            return self._status(busy=True)
        try:
            state = {text(k): text(v) for k, v in self.client.hgetall(self._key["state"]).items()}
            added, caught_up = self._extend(state, deadline)
            status = self._status(added=added, extending=not caught_up)
            if caught_up and (status.indexed != status.failed or state.get("phase")):
                status = self._reconcile(state, deadline, status)
            return status
        finally:
            if self.client.get(self._key["lock"]) in (token, token.encode()):
                self.client.delete(self._key["lock"])

    def _status(self, **extra: Any) -> IndexStatus:
        pipe = self.client.pipeline(transaction=False)
        pipe.hlen(self._key["jobs"])
        pipe.zcard(self.keys.failed)
        pipe.hget(self._key["state"], "phase")
        indexed, failed, phase = pipe.execute()
        return IndexStatus(int(indexed), int(failed), reconciling=bool(phase), **extra)

    def _extend(self, state: dict[str, str], deadline: float) -> tuple[int, bool]:
        """Index the jobs past the cursor: (how many, whether it caught up within the budget).
        The cursor is a score and an offset among jobs of that score, turned into a rank once per
        refresh. The next batch's reads and this batch's write are sent on one connection
        (:class:`~dashboard.failure_wire.Wire`) before this batch is fingerprinted, so Redis
        works on them meanwhile, and their replies are read together."""
        score, offset, added = state.get("score", "-inf"), int(state.get("offset") or 0), 0
        rank = self._rank(score, offset)
        wire = Wire(self.client)
        try:
            batch: Batch | None = self._fetch(rank)
            while batch is not None:
                if time.monotonic() >= deadline:
                    return added, False
                if batch.reply is None and not batch.all_known:  # read by script
                    more, taken, n = self._step_lua(rank)
                    ahead = None
                else:
                    taken = [(row[0], row[1]) for row in batch.rows[:batch.taken]]
                    more = batch.taken < len(batch.rows)
                    done = not more and len(taken) < BATCH
                    ahead = None if done else self._send_fetch(wire, rank + len(taken), batch.ahead)
                    n = self._apply(batch, wire, ahead)
                added += n
                rank += len(taken)
                for _, s in taken:
                    if s == score:
                        offset += 1
                    else:
                        score, offset = s, 1
                if not more and len(taken) < BATCH:
                    return added, True
                batch = ahead if ahead is not None else self._fetch(rank)
            return added, True
        finally:
            wire.close()
            self.client.hset(self._key["state"], mapping={"score": score, "offset": offset})

    def _reconcile(self, state: dict[str, str], deadline: float, status: IndexStatus) -> IndexStatus:
        now = time.time()
        phase = state.get("phase", "")
        if not phase:
            churning = state.get("clean") == "0"  # the last pass ended with the counts still apart
            if churning and now - float(state.get("reconciled") or 0) < self.reconcile_seconds:
                return status
            phase, state["cursor"], state["rank"] = "prune", "0", "0"
        pruned = 0
        while phase == "prune" and time.monotonic() < deadline:
            cursor, n = self.run.run(scripts.prune_failure_index(self.keys, state.get("cursor", "0"), PRUNE_COUNT))
            pruned += int(n)
            state["cursor"] = text(cursor)
            if state["cursor"] == "0":
                after = self._status()  # as many indexed as failed: nothing is missing, no walk
                phase = "" if after.indexed == after.failed else "walk"
        rank = int(state.get("rank") or 0)
        while phase == "walk" and time.monotonic() < deadline:
            more, taken, n = self._step(rank)
            status.added += n
            rank += len(taken)
            if not taken:
                phase = ""
        fields: dict[Any, Any] = {"phase": phase, "cursor": state.get("cursor", "0"), "rank": rank}
        done = self._status(added=status.added, pruned=pruned)
        if not phase:
            fields.update(reconciled=now, clean=int(done.indexed == done.failed))
        self.client.hset(self._key["state"], mapping=fields)
        if done.indexed != done.failed and not phase:
            log.info("queue=%s: failure index has %d jobs, failed set %d (still changing)", self.keys.queue,
                     done.indexed, done.failed)
        return done

    def _step(self, rank: int) -> tuple[bool, list[tuple[str, str]], int]:
        """Read the batch at ``rank`` and index what the index lacks: (stopped early,
        [(id, score) taken], jobs indexed)."""
        batch = self._fetch(rank)
        if batch.reply is None and not batch.all_known:
            return self._step_lua(rank)
        added = self._apply(batch)
        return batch.taken < len(batch.rows), [(r[0], r[1]) for r in batch.rows[:batch.taken]], added

    def _fetch(self, rank: int) -> Batch:
        """The batch at ``rank``: its sizes, then (when they are small) its values by one SORT
        sent with the next batch's sizes."""
        batch = plan(self.run.run(scripts.read_failure_sizes(self.keys, rank, BATCH)))
        commands = self._sort_commands(rank, batch)
        if commands:
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            self._sorted(batch, *pipe.execute(raise_on_error=False))
        return batch

    def _send_fetch(self, wire: Wire, rank: int, sizes: Any) -> Batch | None:
        """The batch at ``rank`` planned from sizes read ahead, its SORT (and the next sizes)
        sent on ``wire`` (``pending``: the replies are read by :meth:`_apply`); None without sizes."""
        if sizes is None:
            return None
        batch = plan(sizes)
        commands = self._sort_commands(rank, batch)
        if commands:
            wire.send(*commands)
            batch.pending = True
        return batch

    def _sort_commands(self, rank: int, batch: Batch) -> list[tuple[Any, ...]]:
        """``SORT ... BY nosort GET`` of the batch's SORT prefix (no copy into Lua: 5 times
        cheaper in Redis) and the sizes of the batch after it; none when SORT cannot be used
        (a key prefix holding ``*`` or ``->``) or the batch needs no values."""
        base = self.keys.base
        if batch.all_known or not batch.taken or "*" in base or "->" in base:
            return []
        return [("SORT", self.keys.failed, "BY", "nosort", "LIMIT", rank, batch.taken, "GET", "#",
                 "GET", f"{base}*->failedReason", "GET", f"{base}*->stacktrace", "GET", f"{base}*->{REDRIVE_FIELD}"),
                self.run.command(scripts.read_failure_sizes(self.keys, rank + batch.taken, BATCH))]

    def _sorted(self, batch: Batch, reply: Any, ahead: Any) -> None:
        """Take the SORT's reply into ``batch`` unless it failed (Redis Cluster, ...) or the
        failed set changed since the sizes (then the batch is read by script)."""
        batch.pending = False
        batch.ahead = None if isinstance(ahead, Exception) else ahead  # NOSCRIPT ...: the next fetch reads them
        if isinstance(reply, Exception):
            log.info("queue=%s: failure index reads jobs by script (%s)", self.keys.queue, reply)
        elif reply[0::4] == batch.raw_ids[:batch.taken]:  # as the same client replied: no decoding
            batch.reply = reply

    def _apply(self, batch: Batch, wire: Wire | None = None, ahead: Batch | None = None) -> int:
        """Fingerprint the unknown jobs of a fetched batch and write them (sent on ``wire`` after
        the reads of ``ahead``, whose replies are taken in too): how many were indexed."""
        entries = []
        if batch.reply is not None:
            reply = batch.reply
            for n, (job_id, score, known, _) in enumerate(batch.rows[:batch.taken]):
                if known:
                    continue
                reason = text(reply[4 * n + 1]) if reply[4 * n + 1] else ""
                again = "1" if failed_after_redrive(reply[4 * n + 3], score) else "0"
                entries.append(entry_raw(job_id, score, reason, reply[4 * n + 2] or b"", again))
        call = scripts.index_failures(self.keys, entries) if entries else None
        if wire is None:
            return int(self.run.run(call)) if call else 0
        if call:
            wire.send(self.run.command(call))
        replies = wire.receive()
        if ahead is not None and ahead.pending:
            self._sorted(ahead, replies[0], replies[1])
            replies = replies[2:]
        if not call:
            return 0
        written = replies[0]
        return int(self.run.run(call) if isinstance(written, Exception) else written)  # NOSCRIPT: loaded, run again

    def _rank(self, score: str, offset: int) -> int:
        if score == "-inf":
            return offset
        return int(self.client.zcount(self.keys.failed, "-inf", f"({score}")) + offset

    def _step_lua(self, rank: int) -> tuple[bool, list[tuple[str, str]], int]:
        """The same batch read by ``read_failures``, which cuts long values inside Redis."""
        reply = self.run.run(scripts.read_failures(self.keys, "rank", rank, 0, BATCH, BYTE_BUDGET, REASON_CAP,
                                                   TRACE_CAP, DECODE_LIMIT, REDRIVE_FIELD))
        more, rows = bool(int(reply[0])), reply[1:]
        taken: list[tuple[str, str]] = []
        entries: list[list[str]] = []
        for i in range(0, len(rows), 7):
            job_id, score, known = text(rows[i]), text(rows[i + 1]), text(rows[i + 2])
            taken.append((job_id, score))
            if known == "1":
                continue
            reason = text(rows[i + 3]) if rows[i + 3] else ""
            head, tail = (unescape(text(x)) if x else "" for x in rows[i + 4:i + 6])
            trace = head if not tail else head + "\n" + tail.split("\n", 1)[-1]  # the tail's cut first line dropped
            fp = fingerprint(reason, trace)
            again = "1" if failed_after_redrive(rows[i + 6], score) else "0"
            entries.append(index_entry(job_id, score, fp, again))
        added = int(self.run.run(scripts.index_failures(self.keys, entries))) if entries else 0
        return more, taken, added

    # --- reading -------------------------------------------------------------------------

    def overview(self, limit: int = 50, buckets: int = 30) -> Overview:
        """The ``limit`` biggest clusters with count, first/last seen, sample job and a sparkline
        of ``buckets`` bars over a window shared by all of them (first failure to now, 1 hour
        to 7 days). Three round trips, O(limit * buckets * log n) in Redis."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zrevrange(self._key["counts"], 0, limit - 1, withscores=True)
        pipe.zcard(self._key["counts"])
        top, total = pipe.execute()
        ids = [text(member) for member, _ in top]
        pipe = self.client.pipeline(transaction=False)
        for cid in ids:
            pipe.hget(self._key["meta"], cid)
            pipe.zscore(self._key["again"], cid)
            pipe.zrange(self.cluster_key(cid), 0, 0, withscores=True)
            pipe.zrevrange(self.cluster_key(cid), 0, 0, withscores=True)
        found = pipe.execute()
        clusters = []
        for n, (cid, (_, count)) in enumerate(zip(ids, top)):
            meta, again, first, last = found[4 * n:4 * n + 4]
            clusters.append(cluster_from(cid, int(count), meta, again, first, last))
        now = self.clock()
        oldest = min((c.first_ms for c in clusters if c.first_ms is not None), default=now)
        start = max(now - 7 * 86_400_000, min(oldest, now - 3_600_000))
        step = max(1, (now - start) // buckets + 1)
        pipe = self.client.pipeline(transaction=False)
        for c in clusters:
            for b in range(buckets):
                low = start + b * step
                pipe.zcount(self.cluster_key(c.id), low, f"({low + step}")
        counts = pipe.execute()
        for n, c in enumerate(clusters):
            c.spark = [int(x) for x in counts[n * buckets:(n + 1) * buckets]]
        return Overview(clusters, int(total), (start, start + step * buckets), buckets)

    def cluster(self, cluster_id: str) -> Cluster | None:
        """One cluster (no sparkline), or None when it has no jobs."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zscore(self._key["counts"], cluster_id)
        pipe.hget(self._key["meta"], cluster_id)
        pipe.zscore(self._key["again"], cluster_id)
        pipe.zrange(self.cluster_key(cluster_id), 0, 0, withscores=True)
        pipe.zrevrange(self.cluster_key(cluster_id), 0, 0, withscores=True)
        count, meta, again, first, last = pipe.execute()
        return None if not count else cluster_from(cluster_id, int(count), meta, again, first, last)

    def samples(self, job_ids: list[str]) -> dict[str, Job]:
        """The sample jobs with their newest trace (cut inside Redis to 8 KB), by id."""
        jobs = reads.load_jobs(self.run, self.keys, job_ids, SAMPLE)
        return {job.id: job for job in jobs if job is not None}

    def count_upto(self, cluster_ids: list[str], cutoff: int) -> int:
        """Jobs of these clusters that failed at or before ``cutoff`` (one ZCOUNT each)."""
        pipe = self.client.pipeline(transaction=False)
        for cid in cluster_ids:
            pipe.zcount(self.cluster_key(cid), "-inf", cutoff)
        return sum(int(n) for n in pipe.execute())

    def members(self, cluster_id: str, cutoff: int, skip: int, count: int) -> list[str]:
        """Up to ``count`` ids of a cluster that failed at or before ``cutoff``, oldest first,
        after the first ``skip`` of them."""
        found = self.client.zrangebyscore(self.cluster_key(cluster_id), "-inf", cutoff, start=skip, num=count)
        return [text(x) for x in found]

    def remove(self, cluster_id: str, cutoff: int, progress: Callable[[int], None] | None = None,
               batch: int = 200) -> int:
        """Delete the cluster's jobs that are still failed (failed at or before ``cutoff``), in
        batches; returns how many were deleted."""
        deleted, skipped = 0, 0
        while True:
            ids = self.members(cluster_id, cutoff, skipped, batch)
            if not ids:
                return deleted
            d, _, kept = self.run.run(scripts.remove_failed_jobs(self.keys, cutoff, ids))
            deleted, skipped = deleted + int(d), skipped + int(kept)  # the others left the cluster's set
            if progress:
                progress(deleted)
