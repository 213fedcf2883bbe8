"""Bullpen: background jobs on Redis in BullMQ 6's layout, and a dashboard for them.

Public API: ``from dashboard import Queue, Worker, Job, FlowProducer, Unrecoverable, RateLimited, Delayed``.
Importing this package has no side effects and does not import Flask (the web layer is ``dashboard.web``).
"""

from .config import Settings
from .counts import Counts
from .errors import BullpenError, Delayed, JobLocked, JobNotFound, JobNotInState, LockLost, RateLimited, Unrecoverable
from .flow import FlowError, FlowProducer, JobNode
from .job import Job, JobState
from .queue import Queue
from .worker import Worker

__all__ = [
    "BullpenError", "Counts", "Delayed", "FlowError", "FlowProducer", "Job", "JobLocked", "JobNode", "JobNotFound",
    "JobNotInState", "JobState", "LockLost", "Queue", "RateLimited", "Settings", "Unrecoverable", "Worker",
]
