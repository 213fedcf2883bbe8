"""Worker: takes jobs off one queue and runs a handler on each, BullMQ-compatibly.

One main loop talks to Redis; handler calls run in ``concurrency`` daemon threads (at concurrency 1 the loop, in a
thread of its own, runs each job itself: no hand-off per job; above 1, a job an idle worker takes alone runs at once
in the loop's thread while an idle handler thread goes on with the loop, so a trickle of jobs waits for no thread to
wake). Each loop turn sends, in one round trip, the results that came back (finish or retry scripts), job
schedulers' next jobs (added when their jobs are taken: :mod:`dashboard.schedulers`) and one fetch of up to the free
slots; when only finishes are due, one ``move_to_finished`` call finishes them and fetches, as BullMQ's fetchNext
does. From concurrency 8 a second loop lane takes half the slots and sends its results while the first waits on
Redis (:mod:`dashboard.worker_lanes`). A lock-renewal thread keeps every running job's ``<id>:lock`` alive; an idle
worker blocks on the queue's ``marker`` as BullMQ workers do, with a fetch queued behind the pop that Redis runs when
it returns; the throttled stalled check runs every ``stalled_interval``. Rate limits (the queue's and
``limiter=(max, seconds)``) are applied by the fetch script; a limited reply or a handler's ``RateLimited`` stops
fetching for the limiter's TTL (:mod:`dashboard.limiter`); finishes record BullMQ's per-minute metrics
(``metrics=None``: not). A Redis outage is logged once and retried with capped backoff; finished results are kept
until Redis takes them. Hostile data never ends the loop: a job that cannot be read is failed at once
(:mod:`dashboard.outcome`), a key of the wrong type is logged once a minute and skipped (:mod:`dashboard.wrongtype`),
and job ids stay raw bytes from fetch to finish. This module must not import Flask or decide web concerns.
"""

from __future__ import annotations

import functools
import logging
import queue as stdqueue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from redis.exceptions import NoScriptError

from . import bull, registry, schedulers, scripts
from .clients import Client, connect, is_cluster, named_copy, undecoded
from .codec import as_bytes, now_ms, shown_id, text, to_ms
from .handlers import Handler
from .job import Job
from .keys import Keys, validate_queue_name, worker_client_name
from .limiter import METRICS_DATA_POINTS, Limiter, metrics_arg
from .outcome import Outcome, run_handler
from .queue import Queue
from .unsupported import UnsupportedOptions
from .worker_lanes import MAX_FETCH, TROUBLE_PAUSE, Lane, WorkerLanes, lanes_for
from .worker_results import WorkerResults
from .worker_threads import BLOCK_SECONDS, WorkerThreads
from .wrongtype import Throttle

log = logging.getLogger(__name__)


class Worker(WorkerThreads, WorkerLanes, WorkerResults):
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
        limiter: tuple[int, float | timedelta] | None = None,
        metrics: int | None = METRICS_DATA_POINTS,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        if isinstance(max_stalled_count, bool) or not isinstance(max_stalled_count, int) or max_stalled_count < 0:
            raise ValueError(f"max_stalled_count must be an integer >= 0, got {max_stalled_count!r}")
        self.queue_name = validate_queue_name(queue_name)
        self.handler, self.prefix = handler, prefix
        self.keys = Keys(prefix, queue_name)
        self.concurrency = concurrency
        self.lock_ms = to_ms(lock_duration, "lock_duration")
        self.stalled_ms = to_ms(stalled_interval, "stalled_interval")
        for what, ms in (("lock_duration", self.lock_ms), ("stalled_interval", self.stalled_ms)):
            if ms < 1:
                raise ValueError(f"{what} must be at least 1 ms")
        self.max_stalled_count = max_stalled_count
        self.drain_delay = to_ms(drain_delay, "drain_delay") / 1000
        self.shutdown_timeout = to_ms(shutdown_timeout, "shutdown_timeout") / 1000
        self.remove_on_complete = remove_on_complete
        self.remove_on_fail = remove_on_fail
        self.name = name
        self.limiter = Limiter(limiter)
        self._metrics = metrics_arg(metrics)
        self._metrics_minutes: dict[str, int] = {}
        self.clock = clock
        self.id = uuid.uuid4().hex
        # job ids and fields are read as raw bytes: another tool may write any bytes there
        base = undecoded(connect(redis_url, connection))
        client_name = worker_client_name(prefix, queue_name, name)
        self.client = base
        # As BullMQ does, only the blocking connection carries the worker name: one per worker,
        # so CLIENT LIST counts workers exactly.
        self._blocking = named_copy(base, client_name, socket_timeout=None)
        self.scripts = scripts.Scripts(self.client)
        self.queue = Queue(queue_name, connection=self.client, prefix=prefix, clock=clock)
        self._inflight: dict[bytes, bytes] = {}  # raw job id -> lock token
        # (id, token) of runs whose result is on its way to Redis: their lock may be gone any
        # moment (the finish deletes it), so the renewal thread neither renews nor mourns it
        self._finishing: set[tuple[bytes, bytes]] = set()
        # (raw id, token, raw hash) per taken job: handler threads build the Job, so that work
        # overlaps the main loop's wait on Redis
        self._todo: stdqueue.SimpleQueue[tuple[Any, ...] | None] = stdqueue.SimpleQueue()
        self._events: stdqueue.SimpleQueue[Outcome | float | None] = stdqueue.SimpleQueue()
        # the loop's lanes (two from LANE_MIN: worker_lanes); each turn changes what they share under _state
        self._lanes = lanes_for(concurrency, self._events)
        self._state, self._route = threading.Lock(), threading.Lock()
        self._lane_thread: threading.Thread | None = None  # the second lane's, while it runs
        self._lanes_end = threading.Event()  # the loop is over: the second lane ends
        self._putbacks = 0  # turns on their way putting a limited job back
        self._ready: list[tuple[bytes, bytes, Any]] = []  # concurrency 1: taken, run by the loop itself
        self._handoff: tuple[bytes, bytes, Any] | None = None  # taken while idle: run by the loop's thread (_lead)
        self._marker_lock = threading.Lock()
        self._nudge = threading.Event()  # concurrency 1: wakes run()'s thread (loop over, or a stop asked)
        self._loop_over = False
        self._next_runs: list[scripts.Call] = []  # job schedulers' next iterations, sent with the next fetch
        self._closing = threading.Event()
        self._abandon = threading.Event()  # stop now: leave running jobs active (second signal)
        self._stopped = threading.Event()
        self._armed = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._warned = Throttle()
        self._unsupported = UnsupportedOptions(queue_name)
        self._burst = False
        self._next_check = 0.0
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
        place in ``active`` and is recovered by the stalled check once its lock expires.
        A second SIGTERM/SIGINT (or ``close(now=True)``) stops at once, waiting for nothing."""
        self._guard(lambda: bull.refuse_worker(self.client, self.keys))  # Bull 3/4 queue: NotSupportedOnBull
        self._done.clear()
        for event in (self._closing, self._abandon, self._stopped, self._armed):
            event.clear()
        self._burst, self._next_check = burst, 0.0
        restore = self._install_signals()
        # The loop runs in a thread of its own; run()'s thread, which takes the signals, watches it (_watch).
        # At concurrency 1 the loop runs each job itself: no hand-off per job to a handler thread and back.
        self._loop_over, self._ready, self._handoff = False, [], None
        self._nudge.clear()
        threads = [threading.Thread(target=self._serve, name="bullpen-loop", daemon=True)]
        threads += [threading.Thread(target=self._execute_loop, name=f"bullpen-job-{i}", daemon=True)
                    for i in range(self.concurrency if self.concurrency > 1 else 0)]
        threads.append(threading.Thread(target=self._renew_loop, name="bullpen-locks", daemon=True))
        threads += self._start_lanes()  # from LANE_MIN, the second lane's thread
        marker = threading.Thread(target=self._marker_loop, name="bullpen-marker", daemon=True)
        threads.append(marker)
        self._announce()  # open the named connection now and beat: dashboards see the worker
        for t in threads:
            t.start()
        log.info("worker %s started: queue=%s concurrency=%d", self.id[:8], self.queue_name, self.concurrency)
        try:
            self._watch()
        finally:
            self._stopped.set()
            for _ in range(self.concurrency):
                self._todo.put(None)
            restore()
            self._armed.set()  # wakes the marker thread so it sees the stop at once
            marker.join(BLOCK_SECONDS + 1)
            self._leave()  # the worker's name leaves CLIENT LIST, its heartbeat is removed
            log.info("worker %s stopped: queue=%s processed=%d", self.id[:8], self.queue_name, self.processed)
            self._done.set()

    def close(self, wait: bool = True, *, now: bool = False) -> None:
        """Ask a running worker to stop gracefully (``now``: at once, leaving running jobs active for the
        stalled check); with ``wait``, block until it has (not when called from one of the worker's own threads)."""
        if now:
            self._abandon.set()
            self._stopped.set()  # lock renewal ends here
        self._closing.set()
        self._events.put(None)
        self._nudge.set()
        own = threading.current_thread().name.startswith("bullpen-")
        if wait and not own:
            self._done.wait((0 if now else self.shutdown_timeout) + BLOCK_SECONDS + 5)

    # --- main loop ----------------------------------------------------------------------

    def _serve(self) -> None:
        """The loop thread: the loop until it hands itself over, then a handler thread."""
        self._guard(lambda: registry.register(self.client, self.prefix, self.queue_name))
        if self._lead():
            self._execute_loop()

    def _main(self) -> bool:
        """Turns until the stop (False) or a hand-off (True)."""
        while not self._closing.is_set():
            try:
                if self._turn():
                    return False
            except Exception as exc:  # noqa: BLE001 - nothing another tool wrote may end the loop
                self._loop_error(exc)
            if self._handoff is not None:
                return True
        return False

    def _turn(self) -> bool:
        """One round trip of the first lane (see WorkerLanes._exchange), then what comes next. True: burst done."""
        first = self._lanes[0]
        sent = self._exchange(first)
        if sent is None:
            return False
        send, taken, next_due = sent
        self._wake_second(send, taken)
        if self._ready and not self._next_runs:  # concurrency 1 (schedulers' next jobs are added first)
            self._run_ready()
            return False  # its result goes with the next fetch, at once
        if self._handoff is not None:
            return False  # _main hands the loop over
        if (send.want > 0 and taken == send.want) or send.limited or self._next_runs or first.pending:
            return False  # maybe more are ready, schedulers' next jobs to add, or a retry to send: a turn at once
        if self._burst and taken == 0 and not self._busy() and not self.limiter.blocked():
            return True
        self._wait(idle=send.want > taken and not self.limiter.blocked(), next_due=next_due)
        if self._ready and not self._next_runs:  # taken by the fetch sent behind the marker wait (_pop_marker)
            self._run_ready()
        return False

    def _loop_error(self, exc: Exception, lane: Lane | None = None) -> None:
        """A turn failed on something other than a Redis outage: log it with the jobs whose results were in it,
        drop those results (the jobs stay active, their locks lapse, the stalled check recovers them), pause."""
        lane = lane or self._lanes[0]
        with self._state:
            dropped, lane.pending = [o.job for o in lane.pending], []
            lane.running -= len(dropped)
            for job in dropped:
                self._forget(job)
        log.error("queue=%s job=%s: worker loop error, results of these jobs dropped: %s: %s", self.queue_name,
                  ",".join(shown_id(j.key_id) for j in dropped) or "-", type(exc).__name__, exc, exc_info=exc)
        self._closing.wait(TROUBLE_PAUSE)

    def _wait(self, idle: bool, next_due: int) -> None:
        """Block until a job finishes, the marker says work is ready, or a timer (the stalled
        check, the rate limit, a delayed job, drain_delay) is due."""
        timeout = min(max(0.0, self._next_check - time.monotonic()), self.limiter.remaining())
        if idle:
            timeout = min(timeout, self.drain_delay)
            if next_due >= 0:
                timeout = min(timeout, max(0.0, (next_due - self.clock()) / 1000))
            if not self._burst and self._wait_on_marker(timeout):
                return
            if not self._burst:  # a burst only waits for its own jobs: no marker, no blocked stop
                self._armed.set()
        try:
            first = self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait()
        except stdqueue.Empty:
            first = None
        finally:
            self._armed.clear()
        self._collect(first)

    def _collect(self, first: Outcome | float | None, lane: Lane | None = None) -> None:
        """``first`` and the rest of ``lane``'s events queue (the first lane's by default) go to its pending list."""
        lane = lane or self._lanes[0]
        item = first
        with self._state:
            while True:
                if isinstance(item, Outcome):
                    lane.pending.append(item)
                    self._finishing.add((as_bytes(item.job.key_id), as_bytes(item.job.token or "")))
                try:
                    item = lane.events.get_nowait()
                except stdqueue.Empty:
                    return

    def _fetch_call(self, now: int | str, want: int) -> scripts.Call:
        """A fetch of up to ``want`` jobs, with a token prefix of its own."""
        self._fetches += 1
        return scripts.move_to_active(self.keys, f"{self.id}:{self._fetches}", self.lock_ms, now, want,
                                      self.name or "", self.limiter.fetch_args())

    def _pop_marker(self, timeout: float) -> bool:
        """Idle: pop the marker with a fetch behind it on its connection, which Redis runs (at its clock) when the pop
        returns: no round trip after a wake-up. Its jobs are dispatched (run even after a stop). True: a turn is due."""
        if is_cluster(self._blocking):  # a cluster client pops alone: the turn fetches
            return self._blocking.bzpopmin(self.keys.marker, timeout=timeout) is not None
        fetch = self._fetch_call(scripts.SERVER_TIME, min(self.concurrency, MAX_FETCH))
        pipe = self._blocking.pipeline(transaction=False)
        pipe.bzpopmin(self.keys.marker, timeout=timeout)
        pipe.execute_command(*self.scripts.command(fetch))
        popped, fetched = pipe.execute(raise_on_error=False)
        if isinstance(fetched, NoScriptError):  # Redis lost its scripts: the turn's fetch loads them
            return True
        with self._state:
            taken, _due = self._dispatch(fetched, self._lanes[0])
        if isinstance(fetched, Exception):
            self._closing.wait(TROUBLE_PAUSE)
        return popped is not None or taken > 0 or isinstance(fetched, Exception) or self.limiter.blocked()

    def _dispatch(self, fetched: Any, lane: Lane) -> tuple[int, int]:
        if isinstance(fetched, Exception):  # e.g. a queue key of the wrong type written by another tool
            self._trouble("cannot fetch jobs", fetched)  # the caller pauses (TROUBLE_PAUSE), out of the lock
            return 0, -1
        taken, next_due, dropped, limited = fetched
        self.limiter.note(limited)
        for raw_id, kind in dropped:
            what = ("one of BullMQ's bookkeeping keys, not a job" if text(kind) == "bookkeeping"
                    else f"a {text(kind)}, not a hash")
            self._warned.log(log, logging.ERROR, f"dropped {raw_id!r}", "queue=%s job=%s: %s is %s: "
                             "its id was taken off the queue, the key left as it is", self.queue_name,
                             shown_id(raw_id), text(self.keys.job_key(raw_id)), what)
        # one job taken by an idle worker: this thread runs it at once, a handler thread takes over the loop
        lone = self.concurrency > 1 and lane.index == 0 and len(taken) == 3 and not self._inflight
        lane.running += len(taken) // 3
        for i in range(0, len(taken), 3):
            raw_id, token = as_bytes(taken[i]), as_bytes(taken[i + 1])
            self._inflight[raw_id] = token
            item = (raw_id, token, taken[i + 2])
            if lone:
                self._handoff = item
            elif self.concurrency == 1:
                self._ready.append(item)
            else:
                self._todo.put((*item, lane.index))
        self._next_runs += schedulers.next_runs(self.keys, taken, self.clock())
        return len(taken) // 3, int(next_due)

    def _drain_inflight(self) -> None:
        """After the loop: wait for running jobs up to the shutdown timeout, record them."""
        deadline = time.monotonic() + self.shutdown_timeout
        self._end_lanes()
        if self._next_runs:  # taken just before the stop: their schedulers' next jobs still go in
            schedulers.report(self.queue_name, self._guard(lambda: self.scripts.batch(self._next_runs)) or [])
        if self._inflight and not self._abandon.is_set():
            log.info("worker %s shutting down: waiting up to %.0fs for %d running job(s)",
                     self.id[:8], self.shutdown_timeout, len(self._inflight))
        first = self._lanes[0]
        while (self._inflight or first.pending) and not self._abandon.is_set():
            if first.pending:
                sent, first.pending = first.pending, []
                calls, minute = self._finish_calls(sent)
                results = self._guard(functools.partial(self.scripts.batch, calls), stop_at=deadline)
                if results is None:
                    first.pending[:0] = sent
                else:
                    first.pending += self._settle(results, sent, minute)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._inflight and not first.pending:
                try:
                    self._collect(self._events.get(timeout=remaining))
                except stdqueue.Empty:
                    pass
        if not self._abandon.is_set():  # a stop at once is reported by run()'s thread (_watch)
            self._left_active("shutdown timeout")

    # --- helper threads (the loops are in worker_threads.py) -----------------------------

    def _run_ready(self) -> None:
        """Concurrency 1: run the taken job here; nothing is recorded when the worker stopped at once meanwhile
        (or its shutdown timeout passed): the job stays active for the stalled check, as at any concurrency."""
        while self._ready:
            outcome = self._run_one(*self._ready.pop(0))
            if self._abandon.is_set():
                return
            self._collect(outcome)

    def _run_one(self, raw_id: bytes, token: bytes, raw: Any) -> Outcome:
        """Build the job and run the handler; whatever goes wrong becomes a failed outcome."""
        try:
            job = Job.from_hash(raw_id, dict(zip(raw[::2], raw[1::2])), self.queue)
        except BaseException as exc:  # noqa: BLE001 - from_hash never raises; a last guard all the same
            job = Job(id=text(raw_id), raw_id=raw_id, _queue=self.queue)
            job.fatal["hash"] = f"hash unreadable ({type(exc).__name__})"
        job.token = text(token)
        try:
            return run_handler(self.handler, job, self._unsupported)
        except BaseException as exc:  # noqa: BLE001 - run_handler never raises; a last guard all the same
            return Outcome(job, "failed", f"worker error while running the job: {type(exc).__name__}")
