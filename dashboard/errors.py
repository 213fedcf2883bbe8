"""Exceptions raised by the runtime, and the table that maps Lua error codes to them.

Handlers raise :class:`Unrecoverable` to fail a job without further attempts,
:class:`RateLimited` to put it back in line and pause the queue's rate-limited workers, and
:class:`Delayed` to run it again later.
Everything else here derives from :class:`BullpenError`. This module does no I/O.
"""

from __future__ import annotations


class BullpenError(Exception):
    """Base of every error the runtime raises on purpose."""


class JobNotFound(BullpenError, LookupError):
    """No job hash exists for that id."""


class JobNotInState(BullpenError):
    """The job exists but is not in the state the operation needs."""


class JobLocked(BullpenError):
    """The job is held by a worker (its lock key exists); it cannot be removed now."""


class LockLost(BullpenError):
    """The worker no longer owns the job: its lock expired or another worker took it."""


class QueueHasActiveJobs(BullpenError):
    """Obliterate refuses a queue with active jobs unless forced."""


class NotSupportedOnBull(BullpenError):
    """The operation cannot be done safely on a legacy Bull 3/4 queue (npm ``bull``): it would
    write BullMQ's layout into it, or Bull has no such feature. Nothing was changed."""


class ClusterHashTagMissing(BullpenError, ValueError):
    """On Redis Cluster, a queue whose keys would not all share one slot (no ``{hash tag}`` in
    its name or prefix): BullMQ cannot work it either, so Bullpen refuses it with advice."""


class Unrecoverable(Exception):
    """Raise from a handler to fail the job at once, whatever attempts remain."""


class _Later(Exception):
    """A handler's request to run the job again after ``delay_seconds`` (no attempt used up)."""

    doing = ""  #: how the message names it

    def __init__(self, delay_seconds: float = 0) -> None:
        delay = float(delay_seconds)
        if not delay >= 0 or delay == float("inf"):
            raise ValueError(f"delay_seconds must be a finite number >= 0, got {delay_seconds!r}")
        super().__init__(f"{self.doing} for {delay:g}s")
        self.delay_ms = round(delay * 1000)


class RateLimited(_Later):
    """Raise from a handler to put the job back at the front of the line, as BullMQ's
    ``RateLimitError`` does (no attempt is used up), after setting the queue's ``limiter``
    for ``delay_seconds`` as BullMQ's ``queue.rateLimit(ms)`` does: the worker takes no job
    for that long, nor does any worker with a rate limit (``delay_seconds=0``: the job goes
    back, the limiter stays as it is)."""

    doing = "rate limited"


class Delayed(_Later):
    """Raise from a handler to run the job again ``delay_seconds`` from now, as BullMQ's
    ``job.moveToDelayed(timestamp, token)`` + ``DelayedError`` do: the job goes to delayed and
    no attempt is used up."""

    doing = "delayed"


#: Negative integers returned by our Lua scripts, and what they mean.
SCRIPT_ERRORS: dict[int, tuple[type[BullpenError], str]] = {
    -1: (JobNotFound, "job {job} does not exist"),
    -2: (LockLost, "job {job}: lock missing"),
    -3: (JobNotInState, "job {job} is not in the expected state"),
    -4: (JobNotInState, "job {job} has pending dependencies"),
    -6: (LockLost, "job {job}: lock held by another worker"),
    -7: (JobLocked, "job {job} is locked by a worker"),
    -8: (JobLocked, "job {job} is its job scheduler's next job: remove the scheduler instead"),
}


def script_error(code: int, job_id: str, command: str) -> BullpenError:
    """Turn a script's negative return code into the exception it stands for."""
    cls, template = SCRIPT_ERRORS.get(code, (BullpenError, "job {job}: unexpected code " + str(code)))
    return cls(f"{command}: {template.format(job=job_id)}")
