"""The worker's helper threads and signal handling, as a base class of :class:`~dashboard.worker.Worker`.

:meth:`_guard` runs the main loop's Redis calls through outages (logged once, retried with
capped backoff). Handler threads turn each taken job into an outcome (never raising, whatever the job
holds); the lock thread renews the locks of running jobs (a lost lock, or one another tool
overwrote with another type, is logged and not renewed again) and publishes the worker's
heartbeat (:mod:`dashboard.heartbeat`, removed when the worker stops); the marker thread wakes an
idle worker. SIGTERM/SIGINT stop the worker gracefully; a second one stops it at once.
This module holds no policy of its own beyond that and must not import Flask.
"""

from __future__ import annotations

import logging
import queue as stdqueue
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis

from . import scripts
from .audit import AuditLog
from .clients import UNAVAILABLE, disconnect
from .codec import shown_id, text
from .heartbeat import BEAT_SECONDS, Heartbeat
from .keys import Keys
from .outcome import Outcome
from .queue import Queue
from .wrongtype import Throttle

log = logging.getLogger("dashboard.worker")

#: Longest a blocking marker wait lasts, so shutdown and outages are noticed promptly.
BLOCK_SECONDS = 1.0
#: Put on the handler threads' queue: whichever takes it goes on with the main loop (see Worker._lead).
LEAD = ("lead",)


class WorkerThreads:
    """The loops run by a worker's threads; :class:`~dashboard.worker.Worker` provides the state."""

    id: str
    queue_name: str
    prefix: str
    name: str | None
    concurrency: int
    client: Any
    keys: Keys
    queue: Queue
    lock_ms: int
    scripts: scripts.Scripts
    _blocking: Any  # a Redis or RedisCluster client (see clients.named_copy)
    _inflight: dict[bytes, bytes]
    _finishing: set[tuple[bytes, bytes]]
    _todo: stdqueue.SimpleQueue[tuple[Any, ...] | None]
    _events: stdqueue.SimpleQueue[Outcome | float | None]
    _closing: threading.Event
    _abandon: threading.Event
    _stopped: threading.Event
    _armed: threading.Event
    _warned: Throttle

    _outage_since: float | None
    _outage_wait: float
    _heartbeat: Heartbeat | None = None

    shutdown_timeout: float
    _nudge: threading.Event
    _loop_over: bool
    _on_marker = False  # the loop is blocked on the marker itself (see _wait_on_marker)
    _blocking_id: int | None = None  # CLIENT ID of the blocking connection, when known
    _marker_lock: threading.Lock  # held by whichever thread blocks on the marker
    _handoff: tuple[bytes, bytes, Any] | None

    def _run_one(self, raw_id: bytes, token: bytes, raw: Any) -> Outcome:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by WorkerLanes
        def _post(self, outcome: Outcome, lane: int) -> None: ...

    def _main(self) -> bool:
        raise NotImplementedError

    def _drain_inflight(self) -> None:
        raise NotImplementedError

    def _pop_marker(self, timeout: float) -> bool:
        raise NotImplementedError

    def _lead(self) -> bool:
        """Run the main loop in this thread. True: an idle loop took one job (Worker._dispatch), runs it
        here at once and leaves the loop to an idle handler thread (LEAD), so the job starts without waiting
        for a sleeping thread to wake; this thread is a handler thread now. False: the loop is over
        and its graceful end done."""
        handed = False
        try:
            handed = self._main()
            if not handed and not self._abandon.is_set():
                self._drain_inflight()
        finally:
            if not handed:
                self._loop_over = True
                self._nudge.set()
        if handed:
            item, self._handoff = self._handoff, None
            self._todo.put(LEAD)
            if item is not None:
                self._events.put(self._run_one(*item))
        return handed

    def _watch(self) -> None:
        """The loop runs in its own thread; run()'s thread waits here for it to end or for a stop at once. After
        a graceful stop was asked it wakes a loop blocked on the marker (CLIENT UNBLOCK) and, past the
        shutdown timeout (at concurrency 1 the loop itself runs the job; else the loop keeps that timeout and
        this one is a backstop), stops at once: the job stays active and its result unrecorded."""
        deadline: float | None = None
        why = "stopped at once"
        while not (self._loop_over or self._abandon.is_set()):
            if self._closing.is_set() and deadline is None:
                deadline = time.monotonic() + self.shutdown_timeout + (0 if self.concurrency == 1 else 5)
            if deadline is not None and time.monotonic() >= deadline:
                why = "shutdown timeout"
                self._abandon.set()
                break
            pause = BLOCK_SECONDS
            if deadline is not None:
                pause = min(pause, deadline - time.monotonic())
                if self._on_marker:  # the loop blocks on the marker: end that wait now
                    self._unblock()
                    pause = min(pause, 0.05)
            self._nudge.wait(pause)
            self._nudge.clear()
        if self._abandon.is_set():
            self._left_active(why)

    def _wait_on_marker(self, timeout: float) -> bool:
        """An idle loop with no job running here blocks on the marker itself (no hand-off from the marker thread):
        True when it did (for up to ``timeout`` seconds, in pops of BLOCK_SECONDS, until one pops a marker or its
        fetch has news: see Worker._pop_marker), False when the marker thread must (jobs are running, a stop or an
        event is pending, the timeout is too short for BZPOPMIN, or that thread keeps the marker)."""
        if timeout < 0.01 or self._inflight or self._closing.is_set() or not self._events.empty():
            return False
        if not self._marker_lock.acquire(blocking=False):
            self._unblock()  # the marker thread's wait, left from when jobs ran here: it is the loop's now
            if not self._marker_lock.acquire(timeout=0.05):
                return False
        self._on_marker = True
        deadline = time.monotonic() + timeout
        try:
            while not self._closing.is_set() and self._events.empty():
                left = deadline - time.monotonic()
                if left < 0.01 or self._pop_marker(min(left, BLOCK_SECONDS)):
                    break
        except Exception:  # noqa: BLE001 - a Redis error, or a marker of the wrong type: the next turn tells
            self._closing.wait(min(timeout, 0.5))
        finally:
            self._on_marker = False
            self._marker_lock.release()
        return True

    def _unblock(self) -> None:
        """End the loop's BZPOPMIN on the marker at once (it returns as if timed out)."""
        if self._blocking_id is None:
            return  # not known (a cluster, or Redis was away at start): the wait ends within BLOCK_SECONDS
        try:
            self.client.client_unblock(self._blocking_id)
        except redis.RedisError:
            pass

    def _left_active(self, why: str) -> None:
        if self._inflight:
            log.warning("worker %s: %s; %d job(s) left active will be recovered as stalled once their locks "
                        "expire: %s", self.id[:8], why, len(self._inflight), ", ".join(map(shown_id, self._inflight)))

    def _guard(self, fn: Callable[[], Any], stop_at: float | None = None) -> Any:
        """Run ``fn``; on a connection error log once per outage, back off, return None."""
        try:
            result = fn()
        except UNAVAILABLE as exc:  # also a cluster node gone, or the cluster down
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                log.warning("queue=%s: Redis unreachable (%s); retrying with backoff up to 5s", self.queue_name, exc)
            wait = self._outage_wait
            if stop_at is not None:
                wait = max(0.0, min(wait, stop_at - time.monotonic()))
            self._closing.wait(wait) if stop_at is None else self._abandon.wait(wait)
            self._outage_wait = min(self._outage_wait * 2, 5.0)
            return None
        if self._outage_since is not None:
            log.warning("queue=%s: Redis is back after %.1fs", self.queue_name, time.monotonic() - self._outage_since)
            self._outage_since, self._outage_wait = None, 0.1
        return result

    def _execute_loop(self) -> None:
        """A handler thread: runs taken jobs; on LEAD it takes over the loop (see Worker._lead)."""
        while True:
            item = self._todo.get()
            if item is None:
                return
            if item is LEAD:
                if not self._lead():
                    return  # the loop ended in this thread
                continue
            *job, lane = item
            self._post(self._run_one(*job), lane)

    def _renew_loop(self) -> None:
        interval = self.lock_ms / 2000
        lost: set[tuple[bytes, bytes]] = set()  # (id, token) whose lock is gone: not renewed again
        next_renewal = time.monotonic() + interval
        while not self._stopped.wait(min(interval, BEAT_SECONDS)):
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + interval
                try:
                    self._renew(lost)
                except Exception:  # this thread must outlive any one bad renewal
                    log.exception("queue=%s: lock renewal error; retrying", self.queue_name)
                self._resume_if_due()
            self._beat()

    def _announce(self) -> None:
        """Open the named connection (dashboards count the worker from it) and publish the
        first heartbeat, which names that connection's CLIENT ID (unknown while Redis is away:
        the heartbeat is published all the same, by the lock thread, once Redis is back)."""
        client_id = self._guard(self._blocking.client_id)
        known = client_id if isinstance(client_id, int) else None  # a cluster answers per node: not matched
        self._blocking_id = known
        ttl = int(3 * 1000 * min(self.lock_ms / 2000, BEAT_SECONDS))
        self._heartbeat = Heartbeat(self.client, self.prefix, self.queue_name, self.id, concurrency=self.concurrency,
                                    ttl_ms=ttl, name=self.name, client_id=known)
        self._beat()

    def _beat(self) -> None:
        """Publish the heartbeat: alive, and the jobs running here. Failures wait for the next beat."""
        if self._heartbeat is None:
            return
        try:
            self._heartbeat.publish(list(self._inflight))
        except redis.ResponseError as exc:  # the index has the wrong type, most likely
            self._warned.log(log, logging.ERROR, str(exc), "queue=%s: cannot publish the heartbeat: %s",
                             self.queue_name, exc)
        except redis.RedisError as exc:
            log.debug("queue=%s: heartbeat failed: %s", self.queue_name, exc)

    def _leave(self) -> None:
        """The worker stops: close its named connection (it leaves CLIENT LIST) and remove its heartbeat."""
        disconnect(self._blocking)
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            try:
                heartbeat.remove()
            except redis.RedisError as exc:  # it expires by itself
                log.debug("queue=%s: could not remove the heartbeat: %s", self.queue_name, exc)

    def _resume_if_due(self) -> None:
        """A pause given an end time ("resume after 1 h") ends here when no dashboard is open:
        the script resumes and forgets the record in one step, so one process does it."""
        try:
            if self.queue.resume_if_due():
                log.warning("queue=%s: resumed by itself: its pause had reached its end time", self.queue_name)
                who = f"automatic (worker {self.id[:8]})"
                AuditLog(self.queue.client, self.queue.prefix).auto_resumed(self.queue_name, who)
        except redis.RedisError as exc:
            log.debug("queue=%s: could not check the pause's end time: %s", self.queue_name, exc)

    def _renew(self, lost: set[tuple[bytes, bytes]]) -> None:
        running = set(self._inflight.items()) - set(self._finishing)
        lost &= running
        pairs = list(running - lost)
        if not pairs:
            return
        try:
            gone = self.scripts.run(scripts.extend_locks(self.keys, self.lock_ms, pairs))
        except redis.ResponseError as exc:  # the stalled set has the wrong type, most likely
            self._warned.log(log, logging.ERROR, str(exc), "queue=%s: cannot renew locks: %s", self.queue_name, exc)
            return
        except redis.RedisError as exc:
            log.debug("queue=%s: lock renewal failed: %s", self.queue_name, exc)
            return
        tokens = dict(pairs)
        for raw_id, kind in gone:
            run = (raw_id, tokens.get(raw_id, b""))
            lost.add(run)
            if self._inflight.get(run[0]) != run[1] or run in self._finishing:
                continue  # it finished while the renewal was on its way: its lock went with it
            if text(kind) in ("none", "string"):
                log.warning("queue=%s job=%s: lock lost while running", self.queue_name, shown_id(raw_id))
            else:
                lock = text(self.keys.job_key(raw_id, ":lock"))
                self._warned.log(log, logging.ERROR, lock, "queue=%s job=%s: %s is a %s, not a string: the lock is "
                                 "lost and the job's result will be discarded", self.queue_name, shown_id(raw_id),
                                 lock, text(kind))

    def _marker_loop(self) -> None:
        while not self._stopped.is_set():
            if not self._armed.wait(0.5) or self._stopped.is_set():
                continue
            try:
                with self._marker_lock:
                    popped = self._blocking.bzpopmin(self.keys.marker, timeout=BLOCK_SECONDS)
            except Exception:  # noqa: BLE001 - a Redis error, or a marker of the wrong type: retry
                self._stopped.wait(0.5)
                continue
            if popped and self._armed.is_set():
                self._events.put(float(popped[2]))

    def _install_signals(self) -> Callable[[], None]:
        """SIGTERM/SIGINT: stop gracefully; a second one: stop at once (running jobs stay
        active, their locks are no longer renewed). Only in the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self._closing.is_set():
                log.warning("worker %s: second %s: stopping at once; running jobs stay active until their locks "
                            "expire", self.id[:8], name)
                self._abandon.set()
                self._stopped.set()  # lock renewal ends here
            else:
                log.info("worker %s: %s received, shutting down gracefully (again: stop at once)", self.id[:8], name)
            self._closing.set()
            self._events.put(None)
            self._nudge.set()

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, handler in old.items():
                signal.signal(signum, handler)

        return restore
