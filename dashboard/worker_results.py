"""How a worker records what its jobs came to, as a base class of :class:`~dashboard.worker.Worker`.

The finish calls' replies are matched to the pending outcomes (:meth:`WorkerResults._settle`): each
run leaves the in-flight table, a refused finish is logged with what was wrong, a limited job sets the
limiter, a finished one is counted and logged. Scripts that failed as a whole are logged once a
minute per key. This module sends no state change of its own and must not import Flask.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis

from . import scripts
from .backoff import backoff_ms
from .codec import as_bytes, shown_id
from .errors import SCRIPT_ERRORS
from .job import Job
from .keys import Keys
from .limiter import Limiter
from .outcome import Outcome, finish_calls
from .wrongtype import Throttle, is_wrongtype, job_key_problems

log = logging.getLogger("dashboard.worker")

#: move_to_finished's answer for a flow's parent that completed with children not all done and
#: attempts left: nothing was written; the attempt fails and is retried (BullMQ's worker does so).
PENDING_CHILDREN = -4


def children_pending(outcome: Outcome) -> Outcome:
    """The retry of a parent whose handler returned while its children were not all done."""
    job = outcome.job
    reason = f"Job {job.id} has pending dependencies. moveToFinished"
    return Outcome(job, "retry", reason, "", backoff_ms(job.opts, job.attempts_made + 1), outcome.elapsed_ms)


class WorkerResults:
    """Result bookkeeping; :class:`~dashboard.worker.Worker` provides the state."""

    queue_name: str
    client: Any
    keys: Keys
    limiter: Limiter
    clock: Callable[[], int]
    remove_on_complete: Any
    remove_on_fail: Any
    processed: int
    _metrics: str
    #: status -> the minute (ms // 60000) of this worker's last finish call that recorded it in the
    #: metrics; a later call in that same minute needs no prevTS read (move_to_finished's ARGV[3])
    _metrics_minutes: dict[str, int]
    _inflight: dict[bytes, bytes]
    _finishing: set[tuple[bytes, bytes]]
    _warned: Throttle

    def _trouble(self, what: str, error: Exception) -> None:
        """A script failed as a whole (a key of the wrong type, most likely): logged once a minute per key."""
        subject = str(error) if is_wrongtype(error) else f"{what}: {error}"
        self._warned.log(log, logging.ERROR, subject, "queue=%s: %s: %s", self.queue_name, what, error)

    def _report_stalled(self, moved: Any) -> None:
        if isinstance(moved, Exception):
            self._trouble("stalled check failed", moved)
        elif moved:
            log.warning("queue=%s: moved stalled jobs to wait: %s", self.queue_name, ", ".join(map(shown_id, moved)))

    def _settle(self, results: list[Any], sent: list[Outcome], minute: int) -> list[Outcome]:
        """Match the finish calls' results (see :meth:`_finish_calls`) to the outcomes they sent; returns
        the outcomes to send again (a flow's parent that returned too soon, retried with its lock held)."""
        finals = [o for o in sent if o.status in ("completed", "failed")]
        retries = [o for o in sent if o.status not in ("completed", "failed")]
        per_job: list[Any] = []
        if finals:
            batch = results[0]
            per_job += [batch] * len(finals) if isinstance(batch, Exception) else list(batch)
        per_job += results[1 if finals else 0:]
        again: list[Outcome] = []
        for outcome, result in zip(finals + retries, per_job):
            if outcome.status in ("completed", "failed") and isinstance(result, int) and result > 0:
                self._metrics_minutes[outcome.status] = minute  # recorded in that minute
            if result == PENDING_CHILDREN and outcome.status == "completed":  # a flow's parent returned too soon
                again.append(children_pending(outcome))
            else:
                self._record(outcome, result)
        return again

    def _forget(self, job: Job) -> None:
        """This run is over: off the in-flight table, unless this worker has taken the job again."""
        run = (as_bytes(job.key_id), as_bytes(job.token or ""))
        self._finishing.discard(run)
        if self._inflight.get(run[0]) == run[1]:
            del self._inflight[run[0]]

    def _record(self, outcome: Outcome, result: Any) -> None:
        job = outcome.job
        shown = shown_id(job.key_id)
        self._forget(job)
        if isinstance(result, Exception):
            self._trouble(f"job={shown}: could not record {outcome.status}", result)
        elif isinstance(result, int) and result < 0:
            what = SCRIPT_ERRORS.get(result, (None, f"code {result}"))[1].format(job=shown)
            log.warning("queue=%s job=%s: %s result discarded (%s); another worker may own it now",
                        self.queue_name, shown, outcome.status, what)
            self._name_wrong_keys(job.key_id)
        elif outcome.status == "limited":
            self.limiter.note(result)
            log.info("queue=%s job=%s: %s; back to wait", self.queue_name, shown, outcome.value)
        else:
            self.processed += 1
            level = logging.WARNING if outcome.status == "failed" else logging.INFO
            if log.isEnabledFor(level):
                log.log(level, "queue=%s job=%s name=%s %s in %.1f ms%s", self.queue_name, shown, job.name,
                        outcome.status, outcome.elapsed_ms,
                        "" if outcome.status == "completed" else f": {outcome.value}")

    def _name_wrong_keys(self, job_id: str | bytes) -> None:
        """After a finish was refused: say so when the job's hash or lock has the wrong type."""
        try:
            problems = job_key_problems(self.client, self.keys, [job_id])
        except redis.RedisError:
            return
        for problem in problems:
            self._warned.log(log, logging.ERROR, problem, "queue=%s job=%s: %s", self.queue_name,
                             shown_id(job_id), problem)

    def _finish_calls(self, outcomes: list[Outcome]) -> tuple[list[scripts.Call], int]:
        """The calls recording ``outcomes``, and the minute their metrics go in."""
        now = self.clock()
        minute = now // 60000
        metrics = self._metrics
        seen = "".join(s[0] for s in ("completed", "failed") if self._metrics_minutes.get(s) == minute)
        if metrics and seen:
            metrics += ":" + seen
        return finish_calls(self.keys, outcomes, now, self.remove_on_complete, self.remove_on_fail,
                            metrics, self.limiter.max_arg), minute
