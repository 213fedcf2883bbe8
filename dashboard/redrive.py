"""Safe re-drive: retry many failed jobs at a chosen pace, with a brake.

A :class:`Redrive` moves failed jobs (every failed job, or the jobs of some failure clusters)
back to waiting in small batches (``redrive_jobs``), at most :attr:`RedrivePlan.rate` jobs per
second, taking only jobs that failed at or before the moment it was planned (jobs that fail
again are not taken again). Each job moved is marked in a job hash field BullMQ ignores
(:data:`~dashboard.keys.REDRIVE_FIELD`: when, by whom, which re-drive), so a later failure
shows as "failed again after a re-drive". Between batches it checks how many of the jobs it
moved are back in failed; when more than :attr:`RedrivePlan.max_failed_share` of them are
(after at least :attr:`RedrivePlan.min_sample` moved), it stops by itself
(:class:`RedriveStopped`). It can be paused and cancelled from any process through a small
control hash (:class:`RedriveControl`, at :func:`~dashboard.keys.redrive_key`), which also
carries its progress for the pages. This module must not import Flask.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import scripts
from .codec import text
from .failure_index import FailureIndex
from .keys import REDRIVE_FIELD, redrive_key

log = logging.getLogger(__name__)

#: Most jobs moved per script call (each call stays around a millisecond).
BATCH = 200
#: How long a re-drive's control hash stays readable after its last update.
CONTROL_TTL = 3600
#: Seconds between two looks at the control hash and the re-driven jobs.
TICK = 0.2
#: At most this many re-driven jobs are looked up per tick for the brake.
CHECK_PER_TICK = 2000


class RedriveStopped(Exception):
    """The brake: too many of the re-driven jobs failed again."""

    for_user = True  # the task panel shows the message alone


class RedriveCancelled(Exception):
    """Someone cancelled the re-drive."""

    for_user = True


@dataclass
class RedrivePlan:
    """What to re-drive and how: clusters (none: every failed job), jobs failed at or before
    ``cutoff`` (ms), ``rate`` jobs per second (0: as fast as batches go), the brake's share and
    the jobs moved before it may act, and how long to keep watching outcomes once all are
    moved (ends early when every moved job completed or failed again)."""

    cutoff: int
    clusters: list[str] = field(default_factory=list)
    rate: float = 0.0
    max_failed_share: float = 0.5
    min_sample: int = 10
    watch_seconds: float = 0.0
    actor: str = "anonymous"


@dataclass
class Preview:
    """What a re-drive would take: how many jobs, in how many clusters."""

    jobs: int
    clusters: int


def preview(queue: Any, clusters: list[str], cutoff: int) -> Preview:
    """How many jobs a re-drive of these clusters (none: every failed job) would move now."""
    if clusters:
        return Preview(FailureIndex.of(queue).count_upto(clusters, cutoff), len(clusters))
    pipe = queue.client.pipeline(transaction=False)
    pipe.zcount(queue.keys.failed, "-inf", cutoff)
    pipe.zcard(FailureIndex.of(queue).counts_key)
    jobs, groups = pipe.execute()
    return Preview(int(jobs), int(groups))


def mark_of(queue: Any, job_id: str) -> dict[str, Any] | None:
    """A job's re-drive mark (``at`` ms, ``by``, ``task``), or None when it was never re-driven
    (or the mark cannot be read)."""
    try:
        raw = queue.client.hget(queue.keys.job(job_id), REDRIVE_FIELD)
        mark = json.loads(text(raw)) if raw else None
    except Exception:  # noqa: BLE001 - a key of another type or a spoiled mark: no mark to show
        return None
    return mark if isinstance(mark, dict) else None


class RedriveControl:
    """A re-drive's control and progress hash, shared by every process: ``control`` (run,
    pause, cancel) and who asked, and the progress fields the runner writes."""

    def __init__(self, client: Any, prefix: str, task_id: str) -> None:
        self.client, self.key = client, redrive_key(prefix, task_id)

    def request(self, what: str, by: str) -> None:
        """Ask the runner to ``run`` (resume), ``pause`` or ``cancel``."""
        if what not in ("run", "pause", "cancel"):
            raise ValueError(f"unknown re-drive control {what!r}")
        self.save(control=what, control_by=by)

    def save(self, **fields: Any) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.key, mapping={k: str(v) for k, v in fields.items()})
        pipe.expire(self.key, CONTROL_TTL)
        pipe.execute()

    def load(self) -> dict[str, str]:
        """Every field (empty when unknown or expired)."""
        return {text(k): text(v) for k, v in self.client.hgetall(self.key).items()}

    def wanted(self) -> tuple[str, str]:
        """(control, who asked)."""
        control, by = self.client.hmget(self.key, "control", "control_by")
        return (text(control) if control else "run"), (text(by) if by else "")


class Redrive:
    """One re-drive of a queue's failed jobs; :meth:`run` does it (in a task's thread)."""

    def __init__(self, queue: Any, plan: RedrivePlan, control: RedriveControl, task_id: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.queue, self.plan, self.control, self.task_id, self.sleep = queue, plan, control, task_id, sleep
        self.index = FailureIndex.of(queue)
        self.moved = 0
        self.failed_again = 0
        self.completed = 0
        self._pending: list[str] = []  # moved, outcome not seen yet
        self._start = 0  # ms; moved out of the way while paused
        self._checked = 0.0  # time.monotonic() of the last look at outcomes

    def run(self, progress: Callable[[int], None] | None = None) -> int:
        """Move the jobs, throttled, watching the brake; returns how many were moved. Raises
        :class:`RedriveStopped` (brake) or :class:`RedriveCancelled`."""
        self._start = self.queue.clock()
        self._save(state="running", started=self._start)
        sources: list[str | None] = [*self.plan.clusters] or [None]
        for source in sources:
            skipped = 0
            while True:
                allowed = self._wait_turn()
                ids = self._next_ids(source, skipped, allowed)
                if not ids:
                    break
                mark = json.dumps({"at": self.queue.clock(), "by": self.plan.actor, "task": self.task_id})
                reply = self.queue.scripts.run(scripts.redrive_jobs(self.queue.keys, self.plan.cutoff, REDRIVE_FIELD,
                                                                    mark, ids))
                moved = [text(x) for x in reply[3:]]
                skipped += int(reply[1] if source is None else reply[2])  # a cluster's set lost the others
                self.moved += len(moved)
                self._pending.extend(moved)
                if progress:
                    progress(self.moved)
                self._save(moved=self.moved)
        self._watch()
        self._save(state="done")
        return self.moved

    def _wait_turn(self) -> int:
        """Block while paused or ahead of the rate; then how many jobs may move now."""
        while True:
            control, by = self.control.wanted()
            if control == "cancel":
                self._save(state="cancelled")
                raise RedriveCancelled(f"cancelled by {by or 'someone'} after {self.moved:,} jobs")
            self._check_brake()
            if control == "pause":
                self._save(state="paused", paused_by=by)
                before = self.queue.clock()
                self.sleep(TICK)
                self._start += self.queue.clock() - before  # time paused earns no allowance
                continue
            if self.plan.rate <= 0:
                return BATCH
            elapsed = (self.queue.clock() - self._start) / 1000
            allowed = int(math.floor(self.plan.rate * elapsed)) + 1 - self.moved
            if allowed > 0:
                self._save(state="running")
                return min(allowed, BATCH)
            self.sleep(min(TICK, (self.moved + 1 - self.plan.rate * elapsed) / self.plan.rate))

    def _next_ids(self, source: str | None, skip: int, count: int) -> list[str]:
        if source is not None:
            return self.index.members(source, self.plan.cutoff, skip, count)
        found = self.queue.client.zrangebyscore(self.queue.keys.failed, "-inf", self.plan.cutoff, start=skip,
                                                num=count)
        return [text(x) for x in found]

    def _outcomes(self) -> None:
        """Look up (some of) the pending jobs: back in failed, or completed."""
        check, rest = self._pending[:CHECK_PER_TICK], self._pending[CHECK_PER_TICK:]
        if not check:
            return
        pipe = self.queue.client.pipeline(transaction=False)
        for job_id in check:
            pipe.zscore(self.queue.keys.failed, job_id)
            pipe.zscore(self.queue.keys.completed, job_id)
        found = pipe.execute()
        still = []
        for n, job_id in enumerate(check):
            if found[2 * n] is not None:
                self.failed_again += 1
            elif found[2 * n + 1] is not None:
                self.completed += 1
            else:
                still.append(job_id)
        self._pending = rest + still
        self._save(failed_again=self.failed_again, completed=self.completed)

    def _check_brake(self) -> None:
        if time.monotonic() - self._checked < TICK:
            return
        self._checked = time.monotonic()
        self._outcomes()
        if self.moved < max(1, self.plan.min_sample):
            return
        share = self.failed_again / self.moved
        if share > self.plan.max_failed_share:
            message = (f"{self.failed_again:,} of {self.moved:,} re-driven jobs failed again ({share:.0%}, more than "
                       f"{self.plan.max_failed_share:.0%}): stopped by itself")
            self._save(state="stopped", reason=message)
            log.warning("queue=%s redrive=%s: %s", self.queue.name, self.task_id, message)
            raise RedriveStopped(message)

    def _watch(self) -> None:
        """After the last batch: follow outcomes for up to ``watch_seconds`` (or until known)."""
        until = time.monotonic() + self.plan.watch_seconds
        self._save(state="watching")
        while True:
            self._outcomes()
            if not self._pending or time.monotonic() >= until:
                return
            control, _ = self.control.wanted()
            if control == "cancel":
                return
            self.sleep(TICK)

    def _save(self, **fields: Any) -> None:
        try:
            self.control.save(**fields)
        except Exception:
            log.warning("redrive=%s: could not record progress", self.task_id, exc_info=True)
