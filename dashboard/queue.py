"""Queue: the producer API (add; job schedulers: scheduler_api.py) and the read/admin API the dashboard uses.

Every state change is a Lua script (``scripts.py``); reads are plain commands, pipelined, or the bounded reads of
``reads.py``; every method costs O(page or batch), never O(queue). Mixins: pausing, limiter (rate limits, metrics),
scheduler_api (job schedulers), dedup, family (a flow's children), job_edit (BullMQ's job edits). No Flask here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

import redis

from . import reads, registry, scripts
from .clients import Client, connect
from .codec import dumps, now_ms, safe_text, shown_id, text, to_ms
from .counts import Counts, QueueCleanCount, summarize
from .dedup import QueueDeduplication
from .errors import JobNotFound, JobNotInState, QueueHasActiveJobs, script_error
from .family import QueueFamily
from .job import STATE_KEYS, Job, JobState
from .job_edit import QueueJobEdits
from .keys import Keys, check_cluster_tag, not_a_job, validate_queue_name
from .limiter import QueueLimits
from .options import job_options
from .pausing import QueuePausing
from .scheduler_api import JobSchedulers
from .wrongtype import Throttle, is_wrongtype

log = logging.getLogger(__name__)

#: Jobs handled per script call in bulk actions; each call stays well under 50 ms.
BATCH = 1000
JOBS_PER_CALL = 100  # jobs per add_job call in add_bulk: about a millisecond of Redis time
#: How far LPOS looks into a wait list when working out a job's state.
LPOS_WINDOW = 50_000
Progress = Callable[[int], None]
#: Hash fields a job listing reads (each cut as :data:`reads.LISTING` says): no stack traces or return values.
SUMMARY_FIELDS = tuple(reads.LISTING.fields)


class Queue(QueuePausing, QueueLimits, JobSchedulers, QueueDeduplication, QueueFamily, QueueJobEdits, QueueCleanCount):
    """A named queue under a key prefix (BullMQ's default prefix is ``bull``)."""

    kind = "BullMQ"  #: whose layout the queue keeps (a legacy Bull queue is a :class:`~dashboard.bull.BullQueue`)

    def __init__(
        self,
        name: str,
        redis_url: str | None = None,
        *,
        connection: Client | None = None,
        prefix: str = "bull",
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.name = validate_queue_name(name)
        self.prefix = prefix
        self.client = connect(redis_url, connection)
        check_cluster_tag(self.client, prefix, name)
        self.keys = Keys(prefix, name)
        self.scripts = scripts.Scripts(self.client)
        self.clock = clock
        self._registered = False
        self._warned = Throttle()

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, prefix={self.prefix!r})"

    # --- producing ----------------------------------------------------------------------

    def add(
        self,
        name: str,
        data: Any = None,
        *,
        delay: float | timedelta | None = None,
        priority: int = 0,
        attempts: int = 0,
        backoff: Any = None,
        job_id: str | None = None,
        lifo: bool = False, keep_logs: int | None = None,
        remove_on_complete: Any = None,
        remove_on_fail: Any = None,
        stack_trace_limit: int | None = None, deduplication: dict[str, Any] | None = None,
    ) -> Job:
        """Add one job; returns it with its id. Raises before writing anything when data is not
        JSON-serializable (``TypeError``) or an option is invalid (``ValueError``). Durations are seconds.

        With ``job_id`` set and a job of that id present, nothing is written and the existing id is returned
        (BullMQ's duplicate rule); likewise the id of the job holding the slot when ``deduplication`` (a dict:
        :func:`~dashboard.dedup.dedup_opts`) drops the add."""
        args, job = self._prepare(name, data, dict(
            delay=delay, priority=priority, attempts=attempts, backoff=backoff, job_id=job_id, lifo=lifo,
            remove_on_complete=remove_on_complete, remove_on_fail=remove_on_fail,
            stack_trace_limit=stack_trace_limit, deduplication=deduplication, keep_logs=keep_logs))
        self._register()
        job_id_raw, _duplicate = self.scripts.run(scripts.add_job(self.keys, [args]))
        job.id = text(job_id_raw)
        return job

    def add_bulk(self, jobs: Iterable[tuple[str, Any, dict[str, Any]]]) -> list[Job]:
        """Add many ``(name, data, options)`` jobs (options: ``add()``'s keywords), all validated before any is
        written; ``JOBS_PER_CALL`` per script call, ``BATCH`` per round trip, each added as by its own ``add()``
        (a Redis error is raised; the jobs before it stay added)."""
        prepared = [self._prepare(name, data, dict(opts or {})) for name, data, opts in jobs]
        self._register()
        for start in range(0, len(prepared), BATCH):
            chunk = prepared[start:start + BATCH]
            calls = [scripts.add_job(self.keys, [args for args, _ in chunk[i:i + JOBS_PER_CALL]])
                     for i in range(0, len(chunk), JOBS_PER_CALL)]
            results = self.scripts.batch(calls, stream=True)
            for result in results:
                if isinstance(result, Exception):
                    raise result
            for (_, job), job_id_raw in zip(chunk, (i for result in results for i in result[::2])):
                job.id = text(job_id_raw)
        return [job for _, job in prepared]

    def _prepare(self, name: str, data: Any, options: dict[str, Any]) -> tuple[list[scripts.Arg], Job]:
        if not isinstance(name, str):
            raise TypeError(f"job name must be a string, got {type(name).__name__}")
        data = {} if data is None else data
        data_json = dumps(data, f"job data for {name!r}")
        opts, opts_json = job_options(options)
        timestamp = self.clock()
        de = opts.get("de")
        args: list[scripts.Arg] = [opts.get("jobId", ""), name, data_json, opts_json,
                                   timestamp, opts["delay"], opts.get("priority", 0),
                                   "1" if opts.get("lifo") else "0", de["id"] if de else ""]
        job = Job(id="", name=name, data=data, opts=opts, timestamp=timestamp, delay=opts["delay"],
                  priority=opts.get("priority", 0), _queue=self)
        return args, job

    def _register(self) -> None:
        if not self._registered:
            registry.register(self.client, self.prefix, self.name)
            self._registered = True

    # --- reading ------------------------------------------------------------------------

    def counts(self) -> Counts:
        """Jobs per state and the paused flag, in one round trip."""
        return summarize(self.client, [self.keys], oldest=False)[0][0]

    def is_registered(self) -> bool:
        """Whether the registry (see :meth:`names`) lists this queue: one SISMEMBER."""
        return registry.is_registered(self.client, self.prefix, self.name)

    def is_paused(self) -> bool:
        return bool(self.client.hexists(self.keys.meta, "paused"))

    def jobs(self, state: JobState | str, start: int = 0, end: int = 19, *, summary: bool = False) -> list[Job]:
        """Jobs in one state, newest first (prioritized: next to run first), ``start..end``
        inclusive. Costs O(end - start) in Redis. Ids whose hash is gone are skipped. With
        ``summary`` only the fields a listing shows are read (no stack traces, return values),
        each cut inside Redis to :data:`reads.LISTING` (about 1 KB of data; see ``Job.truncated``)."""
        state = JobState(state)
        if state not in STATE_KEYS:
            raise ValueError(f"cannot list jobs in state {state!r}")
        if start < 0 or end < start:
            raise ValueError(f"bad range {start}..{end}")
        suffix, kind = STATE_KEYS[state]
        key = self.keys.state(suffix)
        ids: Any
        if kind == "list":
            ids = self.client.lrange(key, start, end)
        elif state is JobState.PRIORITIZED:
            ids = self.client.zrange(key, start, end)
        else:
            ids = self.client.zrevrange(key, start, end)
        jobs = [job for job in self._load([text(i) for i in ids], summary) if job is not None]
        for job in jobs:
            job.state = job.state or state
        return jobs

    def _load(self, ids: list[str], summary: bool = False) -> list[Job | None]:
        if summary:
            return reads.load_jobs(self.scripts, self.keys, ids, reads.LISTING, self)
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.keys.job(job_id))
        return [self._from_hash(job_id, raw) for job_id, raw in zip(ids, pipe.execute(raise_on_error=False))]

    def _from_hash(self, job_id: str, raw: Any) -> Job | None:
        if isinstance(raw, Exception):
            job = Job(id=job_id, state=JobState.UNKNOWN, _queue=self)
            job.problems.append(f"job key is not a hash: {raw}")
            return job
        return Job.from_hash(job_id, raw, self) if raw else None

    def job(self, job_id: str, *, caps: reads.Caps | None = None) -> Job | None:
        """One job with its state, or None when no job has that id. Sorted sets and the
        active list are checked first; only a job found in none of them costs bounded LPOS
        scans of wait (from both ends). Every field is read whole, unless ``caps`` is given
        (the dashboard's job page: :data:`reads.DETAIL`), which cuts them inside Redis.
        BullMQ's bookkeeping keys (``meta``, ``repeat:<id>``, ``<id>:lock`` ...) are never
        jobs (see :func:`~dashboard.keys.not_a_job`)."""
        if not job_id or not_a_job(job_id):
            return None
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        if caps is None:
            pipe.hgetall(k.job(job_id))
        for suffix in ("completed", "failed", "delayed", "prioritized", "waiting-children"):
            pipe.zscore(k.state(suffix), job_id)
        pipe.lpos(k.active, job_id)
        found = pipe.execute(raise_on_error=False)
        job = self._from_hash(job_id, found.pop(0)) if caps is None else reads.load_jobs(
            self.scripts, k, [job_id], caps, self)[0]
        if job is None or job.state is JobState.UNKNOWN:
            return job
        states = [JobState.COMPLETED, JobState.FAILED, JobState.DELAYED, JobState.PRIORITIZED,
                  JobState.WAITING_CHILDREN, JobState.ACTIVE]
        job.state = next((s for s, hit in zip(states, found) if hit is not None and not isinstance(hit, Exception)),
                         None) or self._waiting_or_unknown(job)
        return job

    def _waiting_or_unknown(self, job: Job) -> JobState:
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.lpos(k.wait, job.id, maxlen=LPOS_WINDOW)
        pipe.lpos(k.wait, job.id, rank=-1, maxlen=LPOS_WINDOW)
        pipe.llen(k.wait)
        head, tail, length = [None if isinstance(x, Exception) else x for x in pipe.execute(raise_on_error=False)]
        beyond_window = (length or 0) > 2 * LPOS_WINDOW and job.finished_on is None
        return JobState.WAITING if head is not None or tail is not None or beyond_window else JobState.UNKNOWN

    def logs(self, job_id: str, limit: int = 1000) -> list[str]:
        """The newest ``limit`` lines of a job's log, oldest first, whole (see :meth:`log_page`)."""
        return [text(x) for x in self.client.lrange(self.keys.logs(job_id), -limit, -1)]

    def log_page(self, job_id: str, start: int = -100, count: int = 100,
                 line_cap: int = reads.LOG_LINE_CAP) -> reads.LogPage:
        """Up to ``count`` log lines from line ``start`` (0 = oldest, negative = from the
        newest end), oldest first, each cut inside Redis to ``line_cap`` bytes, with the total
        (see :func:`reads.log_page`: a page of very long lines holds fewer)."""
        return reads.log_page(self.scripts, self.keys, job_id, start, count, line_cap)

    def log_lines(self, job_id: str) -> Iterator[str]:
        """The whole log, oldest first, read in chunks (a download)."""
        return reads.log_lines(self.client, self.keys, job_id)

    def job_field(self, job_id: str, field: str) -> bytes | None:
        """One field's whole raw value (``data``, ``returnvalue``, ``stacktrace`` ...) for a
        download; None when the job, the field or a hash at the job's key is missing."""
        return reads.field_value(self.client, self.keys, job_id, field)

    def lock_ttl_ms(self, job_id: str) -> int | None:
        """Milliseconds left on the job's lock, or None when it has none."""
        ttl = self.client.pttl(self.keys.lock(job_id))
        return ttl if ttl is not None and ttl >= 0 else None

    def workers(self) -> list[dict[str, str]]:
        """Connections named as BullMQ workers of this queue (from ``CLIENT LIST``)."""
        return registry.connected_workers(self.client, self.prefix, [self.name])[self.name]

    # --- job progress and logs (used by Job) --------------------------------------------

    def update_progress(self, job_id: str | bytes, progress: Any) -> None:
        code = self.scripts.run(scripts.update_progress(self.keys, job_id, dumps(progress, "progress")))
        if code < 0:
            raise script_error(code, text(job_id), "update_progress")

    def add_log(self, job_id: str | bytes, line: str, keep: int = 0) -> int:
        """Append a line to a job's log; returns the line count. When another tool left a key
        of the wrong type there, the line is dropped with a warning and 0 is returned."""
        try:
            count = self.scripts.run(scripts.add_log(self.keys, job_id, safe_text(str(line)), keep))
        except redis.ResponseError as exc:
            if not is_wrongtype(exc):
                raise
            self._warned.log(log, logging.WARNING, str(exc), "queue=%s job=%s: log line dropped: %s", self.name,
                             shown_id(job_id), exc)
            return 0
        if count < 0:
            raise script_error(count, text(job_id), "add_log")
        return int(count)

    # --- admin actions ------------------------------------------------------------------

    def retry(self, job_id: str) -> None:
        """Move one failed (or completed) job back to waiting, with its attempts reset."""
        _refuse_bookkeeping(job_id, "retry")
        job = self.job(job_id, caps=reads.LISTING)
        if job is None:
            raise JobNotFound(f"retry: job {job_id} does not exist")
        if job.state not in (JobState.FAILED, JobState.COMPLETED):
            raise JobNotInState(f"retry: job {job_id} is {job.state}, not failed or completed")
        moved, _ = self.scripts.run(scripts.reprocess_jobs(self.keys, job.state.value, 0, 1, [job_id]))
        if moved != 1:
            raise JobNotInState(f"retry: job {job_id} left the {job.state} state meanwhile")

    def retry_all(self, state: str = "failed", progress: Progress | None = None) -> int:
        """Retry every job that was failed (or completed) when the call started; returns
        how many. Works in batches of :data:`BATCH`."""
        if state not in ("failed", "completed"):
            raise ValueError(f"can only retry failed or completed jobs, not {state!r}")
        cutoff = self.clock()
        return in_batches(lambda n: self.scripts.run(scripts.reprocess_jobs(self.keys, state, cutoff, n)), progress)

    def promote(self, job_id: str) -> None:
        """Move one delayed job to waiting now."""
        _refuse_bookkeeping(job_id, "promote")
        if self.scripts.run(scripts.promote_jobs(self.keys, 1, [job_id])) != 1:
            if not self.client.exists(self.keys.job(job_id)):
                raise JobNotFound(f"promote: job {job_id} does not exist")
            raise JobNotInState(f"promote: job {job_id} is not delayed")

    def promote_all(self, progress: Progress | None = None) -> int:
        """Move every delayed job to waiting now; returns how many."""
        def step(batch: int) -> tuple[int, int]:
            moved = int(self.scripts.run(scripts.promote_jobs(self.keys, batch)))
            return moved, moved
        return in_batches(step, progress)

    def remove(self, job_id: str) -> None:
        """Delete one job in any state but active-and-locked (``JobLocked``). BullMQ's own keys
        (``meta``, ``repeat:<id>`` ...) are refused with ``JobNotFound``, never deleted."""
        _refuse_bookkeeping(job_id, "remove")
        code = self.scripts.run(scripts.remove_job(self.keys, job_id))
        if code < 0:
            raise script_error(code, job_id, "remove")

    def clean(self, state: str, grace: float | timedelta = 0, limit: int | None = None,
              progress: Progress | None = None) -> int:
        """Delete completed or failed jobs that finished more than ``grace`` seconds ago,
        oldest first, at most ``limit`` (None: all); returns how many."""
        if state not in ("completed", "failed"):
            raise ValueError(f"clean takes 'completed' or 'failed', not {state!r}")
        cutoff = self.clock() - to_ms(grace, "grace")
        return self._delete(state, "zset", str(cutoff), limit, "cleaned", progress)

    def drain(self, delayed: bool = False) -> int:
        """Delete every waiting and prioritized job (and delayed ones if asked)."""
        total = self._delete("wait", "list", "+inf", None, "", None)
        total += self._delete("paused", "list", "+inf", None, "", None)
        total += self._delete("prioritized", "zset", "+inf", None, "", None)
        if delayed:
            total += self._delete("delayed", "zset", "+inf", None, "", None)
        return total

    def _delete(self, state: str, kind: str, max_score: str, limit: int | None, event: str,
                progress: Progress | None, force: bool = False) -> int:
        def step(batch: int) -> tuple[int, int]:
            deleted, _locked, strays = self.scripts.run(
                scripts.delete_jobs(self.keys, state, kind, max_score, batch, event, force))
            return deleted, deleted + strays  # strays: ids taken out that held no job
        return in_batches(step, progress, limit)

    def obliterate(self, force: bool = False) -> None:
        """Delete the queue and every job in it. Pauses it first; refuses while jobs are active unless ``force``."""
        self.pause()
        if not force and self.client.llen(self.keys.active) > 0:
            raise QueueHasActiveJobs(f"obliterate: queue {self.name} has active jobs (use force=True)")
        self._drop_schedulers()
        k, states = self.keys, [("paused", "list"), *STATE_KEYS.values()]
        for _ in range(100):
            for suffix, kind in states:
                self._delete(suffix, kind, "+inf", None, "", None, force=True)
            if self.scripts.run(scripts.obliterate(k, k.bookkeeping())) == 1:
                registry.unregister(self.client, self.prefix, self.name)
                self.client.delete(self._record)  # the pause record (obliterate paused the queue)
                return
        raise RuntimeError(f"obliterate: jobs keep arriving in {self.name}")

    @staticmethod  # --- discovery ---
    def names(connection: Client, prefix: str = "bull") -> list[str]:
        """Queue names known under ``prefix`` (from the registry; see :meth:`discover`)."""
        return registry.queue_names(connection, prefix)

    @staticmethod
    def discover(connection: Client, prefix: str = "bull") -> list[str]:
        """Find queues written by other tools (BullMQ keeps no registry) with a bounded SCAN, never KEYS,
        and add them to the registry; returns the names found."""
        return registry.discover(connection, prefix)


def in_batches(step: Callable[[int], tuple[int, int]], progress: Progress | None, limit: int | None = None) -> int:
    """Call ``step(batch)`` (one script call: jobs done, ids taken off) until a batch comes back
    short or ``limit`` jobs are done, reporting the running total; returns it."""
    total = 0
    while limit is None or total < limit:
        batch = BATCH if limit is None else min(BATCH, limit - total)
        done, taken = step(batch)
        total += int(done)
        if progress:
            progress(total)
        if taken < batch:
            break
    return total


def _refuse_bookkeeping(job_id: str, command: str) -> None:
    if (reason := not_a_job(job_id)) is not None:
        raise JobNotFound(f"{command}: {reason}")
