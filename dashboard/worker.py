"""Worker: takes jobs off one queue and runs a handler on each, BullMQ-compatibly.

One main loop talks to Redis; handler calls run in ``concurrency`` daemon threads.
Each loop turn sends, in one round trip, the results that came back (finish or retry
scripts) and one fetch of up to the free slots. A lock-renewal thread keeps every
running job's ``<id>:lock`` alive; an idle worker blocks on the queue's ``marker`` as
BullMQ workers do; the throttled stalled check runs every ``stalled_interval``.
A Redis outage is logged once and retried with capped backoff; finished results are kept
until Redis takes them. This module must not import Flask or decide web concerns.
"""

from __future__ import annotations

import functools
import logging
import queue as stdqueue
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis

from . import registry, scripts
from .clients import Client, connect, disconnect, named_copy
from .codec import now_ms, text, to_ms
from .errors import SCRIPT_ERRORS
from .handlers import Handler
from .job import Job
from .keys import Keys, validate_queue_name, worker_client_name
from .outcome import Outcome, finish_calls, run_handler
from .queue import Queue

log = logging.getLogger(__name__)

#: Most jobs taken by one fetch call.
MAX_FETCH = 200
#: Longest a blocking marker wait lasts, so shutdown and outages are noticed promptly.
BLOCK_SECONDS = 1.0


class Worker:
    """Runs ``handler(job)`` for jobs of one queue. See :meth:`run`."""

    def __init__(
        self,
        queue_name: str,
        handler: Handler,
        redis_url: str | None = None,
        *,
        connection: Client | None = None,
        prefix: str = "bull",
        concurrency: int = 1,
        lock_duration: float | timedelta = 30,
        stalled_interval: float | timedelta = 30,
        max_stalled_count: int = 1,
        drain_delay: float | timedelta = 5,
        shutdown_timeout: float | timedelta = 30,
        remove_on_complete: Any = None,
        remove_on_fail: Any = None,
        name: str | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        self.queue_name = validate_queue_name(queue_name)
        self.handler = handler
        self.prefix = prefix
        self.keys = Keys(prefix, queue_name)
        self.concurrency = concurrency
        self.lock_ms = to_ms(lock_duration, "lock_duration")
        self.stalled_ms = to_ms(stalled_interval, "stalled_interval")
        self.max_stalled_count = max_stalled_count
        self.drain_delay = to_ms(drain_delay, "drain_delay") / 1000
        self.shutdown_timeout = to_ms(shutdown_timeout, "shutdown_timeout") / 1000
        self.remove_on_complete = remove_on_complete
        self.remove_on_fail = remove_on_fail
        self.name = name
        self.clock = clock
        self.id = uuid.uuid4().hex
        base = connect(redis_url, connection)
        client_name = worker_client_name(prefix, queue_name, name)
        self.client = base
        # As BullMQ does, only the blocking connection carries the worker name: one per worker,
        # so CLIENT LIST counts workers exactly.
        self._blocking = named_copy(base, client_name, socket_timeout=None)
        self.scripts = scripts.Scripts(self.client)
        self.queue = Queue(queue_name, connection=self.client, prefix=prefix, clock=clock)
        self._inflight: dict[str, str] = {}  # job id -> lock token
        # (id, token, raw hash) per taken job: handler threads build the Job, so that work
        # overlaps the main loop's wait on Redis
        self._todo: stdqueue.SimpleQueue[tuple[str, str, list[Any]] | None] = stdqueue.SimpleQueue()
        self._events: stdqueue.SimpleQueue[Outcome | float | None] = stdqueue.SimpleQueue()
        self._pending: list[Outcome] = []
        self._closing = threading.Event()
        self._stopped = threading.Event()
        self._armed = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._fetches = 0
        self._outage_since: float | None = None
        self._outage_wait = 0.1
        self.processed = 0

    def __repr__(self) -> str:
        return f"Worker({self.queue_name!r}, concurrency={self.concurrency})"

    # --- public -------------------------------------------------------------------------

    def run(self, burst: bool = False) -> None:
        """Process jobs until SIGTERM/SIGINT or :meth:`close` (or, with ``burst``, until no
        job is waiting, due or running here), then stop gracefully: take nothing new, let
        running jobs finish for up to ``shutdown_timeout``; whatever is cut off keeps its
        place in ``active`` and is recovered by the stalled check once its lock expires."""
        self._done.clear()
        self._closing.clear()
        self._stopped.clear()
        self._armed.clear()
        restore = self._install_signals()
        threads = [threading.Thread(target=self._execute_loop, name=f"bullpen-job-{i}", daemon=True)
                   for i in range(self.concurrency)]
        threads.append(threading.Thread(target=self._renew_loop, name="bullpen-locks", daemon=True))
        marker = threading.Thread(target=self._marker_loop, name="bullpen-marker", daemon=True)
        threads.append(marker)
        self._guard(self._blocking.ping)  # open the named connection now: dashboards see the worker
        for t in threads:
            t.start()
        log.info("worker %s started: queue=%s concurrency=%d", self.id[:8], self.queue_name, self.concurrency)
        try:
            self._main(burst)
            self._drain_inflight()
        finally:
            self._stopped.set()
            for _ in range(self.concurrency):
                self._todo.put(None)
            restore()
            self._armed.set()  # wakes the marker thread so it sees the stop at once
            marker.join(BLOCK_SECONDS + 1)
            disconnect(self._blocking)  # the worker's name leaves CLIENT LIST with it
            log.info("worker %s stopped: queue=%s processed=%d", self.id[:8], self.queue_name, self.processed)
            self._done.set()

    def close(self, wait: bool = True) -> None:
        """Ask a running worker to stop gracefully; with ``wait``, block until it has (not
        when called from one of the worker's own threads)."""
        self._closing.set()
        self._events.put(None)
        own = threading.current_thread().name.startswith("bullpen-")
        if wait and not own:
            self._done.wait(self.shutdown_timeout + 5)

    # --- main loop ----------------------------------------------------------------------

    def _main(self, burst: bool) -> None:
        self._guard(lambda: registry.register(self.client, self.prefix, self.queue_name))
        next_check = 0.0
        while not self._closing.is_set():
            calls = self._finish_calls()
            check = time.monotonic() >= next_check
            if check:
                calls.append(scripts.move_stalled_to_wait(self.keys, self.max_stalled_count, self.clock(),
                                                          self.stalled_ms))
            # results sent in this batch free their slots before the fetch runs
            want = min(self.concurrency - len(self._inflight) + len(self._pending), MAX_FETCH)
            if want > 0:
                self._fetches += 1
                token = f"{self.id}:{self._fetches}"
                calls.append(scripts.move_to_active(self.keys, token, self.lock_ms, self.clock(), want,
                                                    self.name or ""))
            results = self._guard(functools.partial(self.scripts.batch, calls))
            if results is None:
                continue
            settled = len(calls) - check - (want > 0)
            self._settle(results[:settled])
            if check:
                next_check = time.monotonic() + self.stalled_ms / 1000
                self._report_stalled(results[settled])
            taken, next_due = self._dispatch(results[-1]) if want > 0 else (0, -1)
            if want > 0 and taken == want:
                continue  # maybe more are ready: fetch again at once
            if burst and taken == 0 and not self._inflight:
                return
            self._wait(idle=want > taken, next_due=next_due, next_check=next_check)

    def _report_stalled(self, moved: Any) -> None:
        if isinstance(moved, Exception):
            log.error("queue=%s: stalled check failed: %s", self.queue_name, moved)
        elif moved:
            log.warning("queue=%s: moved stalled jobs back to wait: %s", self.queue_name,
                        ", ".join(text(m) for m in moved))

    def _wait(self, idle: bool, next_due: int, next_check: float) -> None:
        """Block until a job finishes, the marker says work is ready, or a timer is due."""
        timeout = max(0.0, next_check - time.monotonic())
        if idle:
            timeout = min(timeout, self.drain_delay)
            if next_due >= 0:
                timeout = min(timeout, max(0.0, (next_due - self.clock()) / 1000))
            self._armed.set()
        try:
            first = self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait()
        except stdqueue.Empty:
            first = None
        finally:
            self._armed.clear()
        self._collect(first)

    def _collect(self, first: Outcome | float | None) -> None:
        item = first
        while True:
            if isinstance(item, Outcome):
                self._pending.append(item)
            try:
                item = self._events.get_nowait()
            except stdqueue.Empty:
                return

    def _dispatch(self, fetched: Any) -> tuple[int, int]:
        if isinstance(fetched, Exception):  # e.g. a queue key of the wrong type written by another tool
            log.error("queue=%s: cannot fetch jobs: %s", self.queue_name, fetched)
            self._closing.wait(1.0)
            return 0, -1
        taken, next_due = fetched
        for i in range(0, len(taken), 3):
            job_id, token = text(taken[i]), text(taken[i + 1])
            self._inflight[job_id] = token
            self._todo.put((job_id, token, taken[i + 2]))
        return len(taken) // 3, int(next_due)

    def _settle(self, results: list[Any]) -> None:
        """Match the finish calls' results (see :meth:`_finish_calls`) to the pending outcomes."""
        finals = [o for o in self._pending if o.status != "retry"]
        retries = [o for o in self._pending if o.status == "retry"]
        per_job: list[Any] = []
        if finals:
            batch = results[0]
            per_job += [batch] * len(finals) if isinstance(batch, Exception) else list(batch)
        per_job += results[1 if finals else 0:]
        for outcome, result in zip(finals + retries, per_job):
            self._record(outcome, result)
        self._pending = []

    def _record(self, outcome: Outcome, result: Any) -> None:
        job = outcome.job
        self._inflight.pop(job.id, None)
        if isinstance(result, Exception):
            log.error("queue=%s job=%s: could not record %s: %s", self.queue_name, job.id, outcome.status, result)
        elif isinstance(result, int) and result < 0:
            what = SCRIPT_ERRORS.get(result, (None, f"code {result}"))[1].format(job=job.id)
            log.warning("queue=%s job=%s: %s result discarded (%s); another worker may own it now",
                        self.queue_name, job.id, outcome.status, what)
        else:
            self.processed += 1
            level = logging.WARNING if outcome.status == "failed" else logging.INFO
            if log.isEnabledFor(level):
                log.log(level, "queue=%s job=%s name=%s %s in %.1f ms%s", self.queue_name, job.id, job.name,
                        outcome.status, outcome.elapsed_ms,
                        "" if outcome.status == "completed" else f": {outcome.value}")

    def _finish_calls(self) -> list[scripts.Call]:
        return finish_calls(self.keys, self._pending, self.clock(), self.remove_on_complete, self.remove_on_fail)

    def _drain_inflight(self) -> None:
        """After the loop: wait for running jobs up to the shutdown timeout, record them."""
        deadline = time.monotonic() + self.shutdown_timeout
        if self._inflight:
            log.info("worker %s shutting down: waiting up to %.0fs for %d running job(s)",
                     self.id[:8], self.shutdown_timeout, len(self._inflight))
        while self._inflight or self._pending:
            if self._pending:
                calls = self._finish_calls()
                results = self._guard(functools.partial(self.scripts.batch, calls), stop_at=deadline)
                if results is not None:
                    self._settle(results)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("worker %s: shutdown timeout; %d job(s) left active will be recovered as stalled: %s",
                            self.id[:8], len(self._inflight), ", ".join(self._inflight))
                return
            if self._inflight and not self._pending:
                try:
                    self._collect(self._events.get(timeout=remaining))
                except stdqueue.Empty:
                    pass

    # --- Redis outages ------------------------------------------------------------------

    def _guard(self, fn: Callable[[], Any], stop_at: float | None = None) -> Any:
        """Run ``fn``; on a connection error log once per outage, back off, return None."""
        try:
            result = fn()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                log.warning("queue=%s: Redis unreachable (%s); retrying with backoff up to 5s", self.queue_name, exc)
            wait = self._outage_wait
            if stop_at is not None:
                wait = max(0.0, min(wait, stop_at - time.monotonic()))
            self._closing.wait(wait) if stop_at is None else time.sleep(wait)
            self._outage_wait = min(self._outage_wait * 2, 5.0)
            return None
        if self._outage_since is not None:
            log.warning("queue=%s: Redis is back after %.1fs", self.queue_name, time.monotonic() - self._outage_since)
            self._outage_since, self._outage_wait = None, 0.1
        return result

    # --- helper threads -----------------------------------------------------------------

    def _execute_loop(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                return
            job_id, token, raw = item
            job = Job.from_hash(job_id, dict(zip(raw[::2], raw[1::2])), self.queue)
            job.token = token
            self._events.put(run_handler(self.handler, job))

    def _renew_loop(self) -> None:
        interval = self.lock_ms / 2000
        while not self._stopped.wait(interval):
            pairs = list(self._inflight.items())
            if not pairs:
                continue
            try:
                lost = self.scripts.run(scripts.extend_locks(self.keys, self.lock_ms, pairs))
            except redis.RedisError as exc:
                log.debug("queue=%s: lock renewal failed: %s", self.queue_name, exc)
                continue
            for job_id in lost:
                log.warning("queue=%s job=%s: lock lost while running", self.queue_name, text(job_id))

    def _marker_loop(self) -> None:
        while not self._stopped.is_set():
            if not self._armed.wait(0.5) or self._stopped.is_set():
                continue
            try:
                popped = self._blocking.bzpopmin(self.keys.marker, timeout=BLOCK_SECONDS)
            except redis.RedisError:
                self._stopped.wait(0.5)
                continue
            if popped and self._armed.is_set():
                self._events.put(float(popped[2]))

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, _frame: Any) -> None:
            if self._closing.is_set():
                log.warning("second signal: stopping without waiting for running jobs")
                self.shutdown_timeout = 0
            log.info("worker %s: %s received, shutting down gracefully", self.id[:8], signal.Signals(signum).name)
            self._closing.set()
            self._events.put(None)

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, handler in old.items():
                signal.signal(signum, handler)

        return restore

