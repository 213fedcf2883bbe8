"""A worker's loop lanes and their round trips, as a base class of :class:`~dashboard.worker.Worker`.

A lane sends, in one round trip, the results that came back from the jobs it took, schedulers' next
jobs, the stalled check (first lane only) and a fetch of up to its free slots, then settles the reply
and hands the jobs taken to the handler threads (:meth:`WorkerLanes._exchange`). One lane keeps one
round trip in flight and, after each reply, waits for the GIL while handler threads hold it
(``bench/results/profile-best.txt``). From :data:`LANE_MIN` a worker has two: the slots are split
between them, each job's result goes back to the lane that took it, and the second lane sends its
results while the first waits on Redis. The first lane does everything else (idle waits on the
marker, timers, hand-offs, the end of a burst); it wakes the second when a fetch came back full, and
the second wakes it when it runs out of jobs. This module must not import Flask.
"""

from __future__ import annotations

import functools
import queue as stdqueue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import schedulers, scripts
from .keys import Keys
from .limiter import Limiter
from .outcome import Outcome
from .scripts import Call

#: From this concurrency on, a worker has two lanes (with two workers of half the concurrency in one
#: process, 20,000 no-op jobs drained 1.2-1.6x faster than with one at 8 to 100; at 4 no faster).
LANE_MIN = 8
#: Most jobs taken by one fetch call.
MAX_FETCH = 200
#: How long a loop pauses after a turn that failed on data or on a key of the wrong type.
TROUBLE_PAUSE = 1.0
#: Longest a second lane waits for results before it looks whether the loop is over.
LANE_WAIT = 1.0


@dataclass(eq=False)
class Lane:
    """One loop lane: the slots it fills and what it owns of the results and jobs."""

    index: int
    slots: int
    #: Results of the jobs this lane took (the first lane's also gets wake-ups and stops: see Worker).
    events: stdqueue.SimpleQueue[Outcome | float | None] = field(default_factory=stdqueue.SimpleQueue)
    pending: list[Outcome] = field(default_factory=list)  # results come back, not sent yet
    running: int = 0  # jobs this lane took whose results are not settled yet
    fetching: bool = False  # a turn of this lane with a fetch is on its way


def lanes_for(concurrency: int, first: stdqueue.SimpleQueue[Outcome | float | None]) -> list[Lane]:
    """The lanes of a worker of ``concurrency`` slots; ``first``: the first lane's events queue."""
    if concurrency < LANE_MIN:
        return [Lane(0, concurrency, first)]
    return [Lane(0, concurrency - concurrency // 2, first), Lane(1, concurrency // 2)]


@dataclass
class Sending:
    """What one lane's turn sends in its round trip."""

    calls: list[Call]
    outcomes: list[Outcome]  # the results sent, taken off the lane's pending list
    runs: list[Call]  # job schedulers' next iterations, after the finish calls
    check: bool  # the stalled check is among the calls
    want: int  # jobs the fetch asks for (0: no fetch)
    merged: bool  # the fetch rides in the finish call (one reply of [finish, fetch])
    settled: int  # the finish calls (first in ``calls``)
    minute: int  # the minute (ms // 60000) the finish calls record their metrics in
    limited: bool  # a limited job goes back: its reply sets the limiter (no lane fetches before)


class WorkerLanes:
    """The lanes' round trips; :class:`~dashboard.worker.Worker` provides the state."""

    queue_name: str
    keys: Keys
    scripts: scripts.Scripts
    limiter: Limiter
    clock: Callable[[], int]
    max_stalled_count: int
    stalled_ms: int
    shutdown_timeout: float
    _lanes: list[Lane]
    _lane_thread: threading.Thread | None
    _lanes_end: threading.Event
    _route: threading.Lock  # orders a result's hand-back against the second lane's end
    _state: threading.Lock  # held by a lane while it changes what the lanes share
    _putbacks: int
    _next_runs: list[Call]
    _next_check: float
    _inflight: dict[bytes, bytes]
    _finishing: set[tuple[bytes, bytes]]
    _closing: threading.Event
    _events: stdqueue.SimpleQueue[Outcome | float | None]

    if TYPE_CHECKING:  # provided by Worker and its other bases
        def _guard(self, fn: Callable[[], Any], stop_at: float | None = None) -> Any: ...

        def _settle(self, results: list[Any], sent: list[Outcome], minute: int) -> list[Outcome]: ...

        def _finish_calls(self, outcomes: list[Outcome]) -> tuple[list[Call], int]: ...

        def _fetch_call(self, now: int | str, want: int) -> Call: ...

        def _dispatch(self, fetched: Any, lane: Lane) -> tuple[int, int]: ...

        def _report_stalled(self, moved: Any) -> None: ...

        def _collect(self, first: Outcome | float | None, lane: Lane | None = None) -> None: ...

        def _loop_error(self, exc: Exception, lane: Lane | None = None) -> None: ...

    def _exchange(self, lane: Lane) -> tuple[Sending, int, int] | None:
        """One round trip of ``lane``: (what was sent, jobs taken, the next delayed job's time or -1);
        None: Redis was away (what was to be sent waits for the lane's next turn)."""
        with self._state:
            send = self._plan(lane)
        try:
            results = self._guard(functools.partial(self.scripts.batch, send.calls))
        except BaseException:
            with self._state:
                self._unsend(send, lane)  # a turn error: _loop_error names these results
            raise
        with self._state:
            if results is None:
                self._unsend(send, lane)
                return None
            self._release(send, lane)
            if send.merged:
                results = [results[0]] * 2 if isinstance(results[0], Exception) else list(results[0])
            again = self._settle(results[:send.settled], send.outcomes, send.minute)
            lane.running -= len(send.outcomes) - len(again)
            lane.pending += again
            schedulers.report(self.queue_name, results[send.settled:send.settled + len(send.runs)])
            taken, next_due = self._dispatch(results[-1], lane) if send.want > 0 else (0, -1)
            if send.check:
                self._next_check = time.monotonic() + self.stalled_ms / 1000
                self._report_stalled(results[send.settled + len(send.runs)])
        if send.want > 0 and isinstance(results[-1], Exception):
            self._closing.wait(TROUBLE_PAUSE)
        return send, taken, next_due

    def _plan(self, lane: Lane) -> Sending:
        """What ``lane``'s turn sends (under the state lock): its pending results leave its list."""
        runs, outcomes = self._next_runs, lane.pending
        calls, minute = self._finish_calls(outcomes)
        settled = len(calls)
        calls += runs
        check = lane.index == 0 and time.monotonic() >= self._next_check
        if check:
            calls.append(scripts.move_stalled_to_wait(self.keys, self.max_stalled_count, self.clock(), self.stalled_ms))
        # results sent in this batch free their slots before the fetch runs
        free = lane.slots - lane.running + len(outcomes)
        # a job about to be put back (RateLimited) sets the limiter: fetch only once that is known
        limited = any(o.status == "limited" for o in outcomes)
        want = 0 if limited or self._putbacks or self.limiter.blocked() else max(0, min(free, MAX_FETCH))
        merged = False
        if want > 0:
            fetch = self._fetch_call(self.clock(), want)
            # only finishes to send: one script call finishes them and fetches, as BullMQ's fetchNext
            merged = len(calls) == 1 and calls[0].name == "move_to_finished"
            calls = [scripts.fetch_after(calls[0], fetch)] if merged else calls + [fetch]
        send = Sending(calls, outcomes, runs, check, want, merged, settled, minute, limited)
        self._next_runs, lane.pending = [], []
        lane.fetching = want > 0
        self._putbacks += send.limited
        return send

    def _release(self, send: Sending, lane: Lane) -> None:
        """``lane``'s turn is back (or was not sent): it fetches no more (under the state lock)."""
        lane.fetching = False
        self._putbacks -= send.limited

    def _unsend(self, send: Sending, lane: Lane) -> None:
        """A turn's results and schedulers' runs wait for the lane's next one (under the state lock)."""
        lane.pending[:0] = send.outcomes
        self._next_runs[:0] = send.runs
        self._release(send, lane)

    def _start_lanes(self) -> list[threading.Thread]:
        """Ready the lanes for a run: the second lane's thread (not started yet), if there is one."""
        self._lanes_end.clear()
        for lane in self._lanes:
            lane.running, lane.fetching = 0, False
        self._lane_thread = None
        if len(self._lanes) > 1:
            self._lane_thread = threading.Thread(target=self._second_lane, name="bullpen-loop-2", daemon=True)
        return [self._lane_thread] if self._lane_thread else []

    def _busy(self) -> bool:
        """A job runs here or a fetch is on its way (a burst is not over)."""
        return bool(self._inflight) or any(lane.fetching for lane in self._lanes)

    def _post(self, outcome: Outcome, lane: int) -> None:
        """A handler thread hands a result back to the lane that took the job (the first, once the
        second has ended)."""
        if lane == 0:
            self._events.put(outcome)
            return
        with self._route:
            (self._events if self._lanes_end.is_set() else self._lanes[lane].events).put(outcome)

    def _wake_second(self, send: Sending, taken: int) -> None:
        """The first lane's fetch came back full: more jobs wait, an idle second lane fetches too."""
        if len(self._lanes) > 1 and 0 < send.want == taken:
            second = self._lanes[1]
            if not second.running and not second.fetching:
                second.events.put(0.0)

    def _second_lane(self) -> None:
        """The second lane's thread: sends its results with a fetch as they come back; once it runs
        out of jobs it wakes the first lane, which decides what comes next (the marker, a timer, the
        end of a burst). It never blocks on the marker, runs no stalled check and hands nothing over;
        after a stop the first lane sends what is left (see :meth:`_end_lanes`)."""
        lane = self._lanes[1]
        while not (self._lanes_end.is_set() or self._closing.is_set()):
            try:
                item = lane.events.get(timeout=LANE_WAIT)
            except stdqueue.Empty:
                continue
            self._collect(item, lane)
            if self._lanes_end.is_set() or self._closing.is_set():
                return
            try:
                sent = self._exchange(lane)
                while sent is None and lane.pending and not self._closing.is_set():
                    sent = self._exchange(lane)  # Redis was away (the guard backed off): again
            except Exception as exc:  # noqa: BLE001 - nothing another tool wrote may end the lane
                self._loop_error(exc, lane)
                continue
            if sent is not None and sent[1] == 0 and not lane.running:
                self._events.put(0.0)

    def _end_lanes(self) -> None:
        """The loop is over: end the second lane; what it holds (and what comes back to it) goes to the first."""
        with self._route:
            self._lanes_end.set()
        if len(self._lanes) < 2:
            return
        second, thread = self._lanes[1], self._lane_thread
        self._lane_thread = None
        if thread is not None and thread is not threading.current_thread():
            second.events.put(None)
            thread.join(self.shutdown_timeout)
        first = self._lanes[0]
        with self._state:
            first.pending += second.pending
            first.running += second.running
            second.pending, second.running = [], 0
        while True:
            try:
                self._collect(second.events.get_nowait(), first)
            except stdqueue.Empty:
                return
