"""Changing a job that is already queued, as BullMQ 6.7.0's Job methods do it on the same keys:
``update_data`` (Job.updateData), ``change_priority`` (Job.changePriority), ``change_delay``
(Job.changeDelay). Each is one Lua script (``lua/update_data.lua``, ``lua/change_priority.lua``,
``lua/change_delay.lua``); :class:`QueueJobEdits` is mixed into :class:`~dashboard.queue.Queue`.
A handler calls them with its job's id. This module must not import Flask.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from . import scripts
from .clients import Client
from .codec import dumps, to_ms
from .errors import JobNotFound, script_error
from .job import MAX_PRIORITY
from .keys import Keys, not_a_job


def _job_id(job_id: str, command: str) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"{command}: job id must be a non-empty string, got {job_id!r}")
    if (reason := not_a_job(job_id)) is not None:
        raise JobNotFound(f"{command}: {reason}")
    return job_id


class QueueJobEdits:
    """BullMQ's per-job edits; mixed into :class:`~dashboard.queue.Queue`."""

    client: Client
    keys: Keys
    scripts: scripts.Scripts
    clock: Callable[[], int]

    def update_data(self, job_id: str, data: Any) -> None:
        """Replace the job's data (BullMQ's job.updateData); JobNotFound when there is no such job."""
        job_id = _job_id(job_id, "update_data")
        code = self.scripts.run(scripts.update_data(self.keys, job_id, dumps(data, f"data of job {job_id}")))
        if code < 0:
            raise script_error(code, job_id, "update_data")

    def change_priority(self, job_id: str, priority: int = 0, *, lifo: bool = False) -> None:
        """Give the job a new priority (0 = none), as BullMQ's job.changePriority({priority, lifo}):
        a waiting or prioritized job is queued again at its new place (``lifo``: ahead of the jobs
        of its priority); in another state only its ``priority`` field changes. JobNotFound when
        there is no such job."""
        job_id = _job_id(job_id, "change_priority")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
            raise ValueError(f"priority must be an integer from 0 to {MAX_PRIORITY}, got {priority!r}")
        code = self.scripts.run(scripts.change_priority(self.keys, job_id, priority, lifo))
        if code < 0:
            raise script_error(code, job_id, "change_priority")

    def change_delay(self, job_id: str, delay: float | timedelta) -> None:
        """Run a delayed job ``delay`` (seconds or timedelta) from now instead (BullMQ's
        job.changeDelay). JobNotFound when there is no such job, JobNotInState when it is not delayed."""
        job_id = _job_id(job_id, "change_delay")
        code = self.scripts.run(scripts.change_delay(self.keys, job_id, to_ms(delay, "delay"), self.clock()))
        if code < 0:
            raise script_error(code, job_id, "change_delay")
