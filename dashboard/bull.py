"""Legacy Bull 3/4 queues (npm ``bull``): recognising them, and managing them by Bull's rules.

Bull and BullMQ share key names (``wait``, ``active``, ``delayed``, ``completed``, ``failed``,
job hashes) but not their rules. Bull pauses by renaming ``wait`` to ``paused`` and setting a
``meta-paused`` flag (plus ``meta.paused``), keeps prioritized ids in ``wait`` and in a
``priority`` zset, calls the attempts field ``attemptsMade`` and talks over pub/sub; it has no
``events`` stream, ``marker``, ``prioritized`` or ``pc``, and its workers ignore them.
:func:`is_bull` tells the two apart from a queue's keys (``read_queue_kind.lua``);
:class:`BullQueue` is the :class:`~dashboard.queue.Queue` the catalog hands out for a Bull queue:
the same read API, and actions done as Bull's own scripts do them (``lua/bull_*.lua``), which
write nothing BullMQ-only into the queue. What cannot be done safely raises
:class:`~dashboard.errors.NotSupportedOnBull`, before anything is written. A Bullpen worker
refuses a Bull queue (:func:`refuse_worker`). This module must not import Flask.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NoReturn

from . import reads, scripts
from .clients import Client
from .codec import text, to_ms
from .counts import Counts, summarize
from .errors import JobLocked, JobNotFound, JobNotInState, NotSupportedOnBull, script_error
from .gather import Read, constant
from .job import Job, JobState
from .keys import Keys
from .queue import LPOS_WINDOW, Progress, Queue, _refuse_bookkeeping, in_batches
from .scripts import Arg, Call

#: What a Bull queue is called on pages and in messages.
LABEL = "Bull 3/4"


# --- Bull's own script calls (KEYS lists in each script's header order, as in scripts.py) ---------


def bull_pause(k: Keys, record: str, command: str, *args: Arg) -> Call:
    """``command`` is pause (reason, by, now, until), resume, or resume-if-due (now)."""
    return Call("bull_pause", [k.wait, k.paused, k.meta_paused, k.meta, record], [command, k.channel(""), *args])


def bull_promote(k: Keys, limit: int, ids: Sequence[str] = ()) -> Call:
    return Call("bull_promote", [k.delayed, k.wait, k.paused, k.meta_paused, k.priority], [k.base, limit, *ids])


def bull_retry(k: Keys, state: str, now: int, cutoff: int, limit: int, ids: Sequence[str] = ()) -> Call:
    return Call("bull_retry", [k.state(state), k.wait, k.paused, k.meta_paused], [k.base, now, cutoff, limit, *ids])


def bull_remove(k: Keys, job_id: str) -> Call:
    keys = [k.active, k.wait, k.delayed, k.paused, k.completed, k.failed, k.priority, k.limiter]
    return Call("bull_remove", keys, [k.base, job_id])


def bull_clean(k: Keys, state: str, cutoff: int, limit: int) -> Call:
    return Call("bull_clean", [k.state(state), k.priority, k.limiter], [k.base, cutoff, limit])


def kinds(client: Client, keys: Sequence[Keys], strict: bool = True) -> list[bool | None]:
    """For each queue, True when it is a legacy Bull queue, False when it is BullMQ's, None
    when its keys tell neither (no jobs, no counter: treated as BullMQ). One round trip.
    A queue whose keys cannot be read raises, unless ``strict`` is off (then None: counts may
    guess, actions must not)."""
    answers = scripts.Scripts(client).batch([scripts.read_queue_kind(k) for k in keys])
    out: list[bool | None] = []
    for answer in answers:
        if isinstance(answer, Exception) and strict:
            raise answer
        out.append(None if isinstance(answer, Exception) or answer < 0 else answer == 1)
    return out


def is_bull(client: Client, keys: Keys) -> bool:
    """Whether the queue at ``keys`` is a legacy Bull 3/4 queue (one script call)."""
    return kinds(client, [keys])[0] is True


def refuse_worker(client: Client, keys: Keys) -> None:
    """Raise :class:`NotSupportedOnBull` when a Bullpen worker is about to serve a Bull queue."""
    if is_bull(client, keys):
        raise NotSupportedOnBull(
            f"queue {keys.queue!r} (prefix {keys.prefix!r}) is a legacy {LABEL} queue (npm 'bull'): a Bullpen "
            "worker keeps BullMQ 6's layout (it writes 'atm' where Bull reads 'attemptsMade', an events stream and "
            "a marker Bull ignores, and does not see Bull's pause or priorities). Run Bull's own workers on it, "
            "or move its producers and workers to BullMQ; the dashboard manages it either way.")


def _refuse(queue: str, what: str, why: str) -> NoReturn:
    raise NotSupportedOnBull(f"{what}: queue {queue!r} is a legacy {LABEL} queue (npm 'bull'); {why}. "
                             "Nothing was changed.")


_LAYOUT = "it would write BullMQ's layout (events, marker, atm ...) into it, which Bull does not read"


class BullQueue(Queue):
    """A legacy Bull 3/4 queue: BullMQ's read API where the layouts agree, Bull's rules for
    the ``paused`` list, priorities and pausing, and Bull's own semantics for every action."""

    kind = LABEL

    @classmethod
    def adopt(cls, queue: Queue) -> BullQueue:
        """The same queue (name, prefix, client, clock) as a :class:`BullQueue`."""
        return cls(queue.name, connection=queue.client, prefix=queue.prefix, clock=queue.clock)

    def __repr__(self) -> str:
        return f"BullQueue({self.name!r}, prefix={self.prefix!r})"

    # --- reading ------------------------------------------------------------------------

    def counts(self) -> Counts:
        """Jobs per state: ``waiting`` holds the ``wait`` and ``paused`` lists (Bull's waiting
        and paused; :meth:`Counts.as_bull` gives Bull's own shape), ``priority`` the ids in the
        ``priority`` zset (also in ``waiting``); paused as Bull's ``isPaused()`` says."""
        return summarize(self.client, [self.keys], oldest=False, bull=[True])[0][0]

    def is_paused(self) -> bool:
        """Bull's ``isPaused()``: the ``meta-paused`` flag, or ``meta.paused``."""
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self.keys.meta_paused).hexists(self.keys.meta, "paused")
        return any(pipe.execute())

    def jobs(self, state: JobState | str, start: int = 0, end: int = 19, *, summary: bool = False) -> list[Job]:
        """As :meth:`Queue.jobs`; waiting lists ``wait`` then ``paused`` (next to run last in
        each), and Bull has no prioritized or waiting-children jobs (its prioritized jobs are
        waiting)."""
        state = JobState(state)
        if state in (JobState.PRIORITIZED, JobState.WAITING_CHILDREN):
            return []
        if state is not JobState.WAITING or start < 0 or end < start:
            return super().jobs(state, start, end, summary=summary)
        k = self.keys
        in_wait = int(self.client.llen(k.wait))
        ids: list[Any] = list(self.client.lrange(k.wait, start, end)) if start < in_wait else []
        if end >= in_wait:
            ids += self.client.lrange(k.paused, max(0, start - in_wait), end - in_wait)
        jobs = [job for job in self._load([text(i) for i in ids], summary) if job is not None]
        for job in jobs:
            job.state = job.state or JobState.WAITING
        return jobs

    def _waiting_or_unknown(self, job: Job) -> JobState:
        """Waiting when the id is in ``wait`` or in ``paused`` (bounded LPOS scans of each)."""
        if super()._waiting_or_unknown(job) is JobState.WAITING:
            return JobState.WAITING
        pipe = self.client.pipeline(transaction=False)
        pipe.lpos(self.keys.paused, job.id, maxlen=LPOS_WINDOW)
        pipe.lpos(self.keys.paused, job.id, rank=-1, maxlen=LPOS_WINDOW)
        pipe.llen(self.keys.paused)
        head, tail, length = [None if isinstance(x, Exception) else x for x in pipe.execute(raise_on_error=False)]
        beyond = (length or 0) > 2 * LPOS_WINDOW and job.finished_on is None
        return JobState.WAITING if head is not None or tail is not None or beyond else JobState.UNKNOWN

    def job_schedulers(self, start: int = 0, end: int = 99) -> list[dict[str, Any]]:
        """None: Bull's repeatable jobs (its ``repeat`` zset) are not BullMQ job schedulers."""
        return []

    def global_rate_limit(self) -> tuple[int, int] | None:
        """None: Bull's rate limit is an option of each worker, not of the queue."""
        return None

    def global_concurrency(self) -> int | None:
        """None: Bull has no global concurrency."""
        return None

    def read_job_schedulers(self, start: int = 0, end: int = 99) -> Read[list[dict[str, Any]]]:
        return constant([])  # as job_schedulers: Bull's ``repeat`` zset is not BullMQ's

    def read_global_rate_limit(self) -> Read[tuple[int, int] | None]:
        return constant(None)

    def read_global_concurrency(self) -> Read[int | None]:
        return constant(None)

    def rate_limit_ttl(self, max_jobs: int | None = None) -> int:
        """0: Bull's limiter is per worker and group; the dashboard does not read it."""
        return 0

    # --- pausing, as Bull's pause script does it ---------------------------------------------

    def pause(self, reason: str = "", *, until: float | timedelta | None = None, by: str = "") -> None:
        """Bull's global pause: ``wait`` becomes ``paused``, ``meta-paused`` is set (Bull adds
        then go to ``paused``), ``paused`` is published. ``reason``/``by``/``until`` as for any queue."""
        now = self.clock()
        resume_at = now + to_ms(until, "until") if until is not None else 0
        args = (str(reason)[:500], str(by)[:200], now, resume_at)
        while self.scripts.run(bull_pause(self.keys, self._record, "pause", *args)) > 0:
            pass

    def resume(self) -> None:
        """Bull's resume: ``paused`` becomes ``wait`` (merged when both exist), ``meta-paused``
        and ``meta.paused`` go, ``resumed`` is published; the pause record is forgotten."""
        while self.scripts.run(bull_pause(self.keys, self._record, "resume")) > 0:
            pass

    def resume_if_due(self) -> bool:
        left = self.scripts.run(bull_pause(self.keys, self._record, "resume-if-due", self.clock()))
        if left < 0:
            return False
        if left > 0:
            self.resume()
        return True

    # --- actions, as Bull's own scripts do them --------------------------------------------

    def retry(self, job_id: str) -> None:
        """Bull's ``job.retry()``: a failed (or completed) job back to waiting, unless locked;
        attemptsMade is kept (Bull gives it one more attempt)."""
        _refuse_bookkeeping(job_id, "retry")
        job = self.job(job_id, caps=reads.LISTING)
        if job is None:
            raise JobNotFound(f"retry: job {job_id} does not exist")
        if job.state not in (JobState.FAILED, JobState.COMPLETED):
            raise JobNotInState(f"retry: job {job_id} is {job.state}, not failed or completed")
        retried, _taken, locked = self.scripts.run(
            bull_retry(self.keys, job.state.value, self.clock(), 0, 1, [job_id]))
        if locked:
            raise JobLocked(f"retry: job {job_id} is locked by a worker")
        if retried != 1:
            raise JobNotInState(f"retry: job {job_id} left the {job.state} state meanwhile")

    def retry_all(self, state: str = "failed", progress: Progress | None = None) -> int:
        """Retry every failed (or completed) job that had finished when the call started."""
        if state not in ("failed", "completed"):
            raise ValueError(f"can only retry failed or completed jobs, not {state!r}")
        now = self.clock()

        def step(batch: int) -> tuple[int, int]:
            retried, taken, _locked = self.scripts.run(bull_retry(self.keys, state, self.clock(), now, batch))
            return retried, taken if retried else 0  # a batch of locked jobs only: stop there
        return in_batches(step, progress)

    def promote(self, job_id: str) -> None:
        """Bull's ``job.promote()``: a delayed job to waiting now."""
        _refuse_bookkeeping(job_id, "promote")
        promoted, _taken = self.scripts.run(bull_promote(self.keys, 1, [job_id]))
        if promoted != 1:
            if not self.client.exists(self.keys.job(job_id)):
                raise JobNotFound(f"promote: job {job_id} does not exist")
            raise JobNotInState(f"promote: job {job_id} is not delayed")

    def promote_all(self, progress: Progress | None = None) -> int:
        """Promote every delayed job, soonest due first; returns how many."""
        return in_batches(lambda n: self.scripts.run(bull_promote(self.keys, n)), progress)

    def remove(self, job_id: str) -> None:
        """Bull's ``job.remove()``: refused while a worker holds the job's lock (``JobLocked``)."""
        _refuse_bookkeeping(job_id, "remove")
        code = self.scripts.run(bull_remove(self.keys, job_id))
        if code < 0:
            raise script_error(code, job_id, "remove")

    def clean(self, state: str, grace: float | timedelta = 0, limit: int | None = None,
              progress: Progress | None = None) -> int:
        """Bull's ``queue.clean(grace, state, limit)`` for completed or failed jobs: oldest first,
        locked ones skipped; returns how many were deleted."""
        if state not in ("completed", "failed"):
            raise ValueError(f"clean takes 'completed' or 'failed', not {state!r}")
        cutoff = self.clock() - to_ms(grace, "grace")

        def step(batch: int) -> tuple[int, int]:
            deleted, _locked, strays = self.scripts.run(bull_clean(self.keys, state, cutoff, batch))
            return deleted, deleted + strays
        return in_batches(step, progress, limit)

    def update_data(self, job_id: str, data: Any) -> None:
        """Bull's job.update(data) writes the same ``data`` field BullMQ's updateData does."""
        super().update_data(job_id, data)

    # --- refused: each would write BullMQ's layout, or Bull has no such thing ----------------

    def add(self, name: str, data: Any = None, **options: Any) -> Job:
        _refuse(self.name, "add", _LAYOUT + "; add jobs with Bull's own Queue.add()")

    def add_bulk(self, jobs: Any) -> list[Job]:
        _refuse(self.name, "add_bulk", _LAYOUT)

    def update_progress(self, job_id: str | bytes, progress: Any) -> None:
        _refuse(self.name, "update_progress", "progress belongs to the Bull worker running the job")

    def add_log(self, job_id: str | bytes, line: str, keep: int = 0) -> int:
        _refuse(self.name, "add_log", "logs belong to the Bull worker running the job")

    def drain(self, delayed: bool = False) -> int:
        _refuse(self.name, "drain", "use clean, or Bull's own queue.empty()")

    def obliterate(self, force: bool = False) -> None:
        _refuse(self.name, "obliterate", "use Bull's own queue.obliterate()")

    def set_global_rate_limit(self, max_jobs: int, duration_seconds: float | timedelta) -> None:
        _refuse(self.name, "set_global_rate_limit", "Bull has no queue-wide rate limit (each Bull worker "
                "takes a limiter option)")

    def remove_global_rate_limit(self) -> None:
        _refuse(self.name, "remove_global_rate_limit", "Bull has no queue-wide rate limit")

    def set_global_concurrency(self, concurrency: int) -> None:
        _refuse(self.name, "set_global_concurrency", "Bull has no global concurrency")

    def remove_global_concurrency(self) -> None:
        _refuse(self.name, "remove_global_concurrency", "Bull has no global concurrency")

    def change_priority(self, job_id: str, priority: int = 0, *, lifo: bool = False) -> None:
        _refuse(self.name, "change_priority", "Bull keeps priorities in another layout")

    def change_delay(self, job_id: str, delay: float | timedelta) -> None:
        _refuse(self.name, "change_delay", "use Bull's own job.moveToDelayed()")

    def upsert_job_scheduler(self, scheduler_id: str, **options: Any) -> Job | None:
        _refuse(self.name, "upsert_job_scheduler", "Bull has no job schedulers (its repeatable jobs are kept "
                "in another layout)")

    def remove_job_scheduler(self, scheduler_id: str) -> bool:
        _refuse(self.name, "remove_job_scheduler", "Bull has no job schedulers")

    def remove_deduplication_key(self, dedup_id: str) -> int:
        _refuse(self.name, "remove_deduplication_key", "Bull's debounce keys are Bull's to manage")
