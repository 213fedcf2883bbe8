"""Finding the queue or job a URL names, or answering 404 saying why: shared by the pages and the API.

A queue exists when the registry lists it or it holds jobs; a job id that is one of BullMQ's
bookkeeping keys (``meta``, ``repeat:<id>``, ``<id>:lock`` ...) is never a job and gets a 404
saying what it is. Job fields are read cut inside Redis (:mod:`dashboard.reads`). This module
renders nothing and reaches Redis only through the runtime's ``Queue``.
"""

from __future__ import annotations

from flask import abort

from .. import reads
from ..job import Job
from ..keys import is_queue_name, not_a_job
from ..queue import Queue
from .extension import current


def queue_or_404(name: str) -> Queue:
    """The queue, if the registry knows it or it holds jobs; else a 404."""
    if is_queue_name(name):
        queue = current().queue(name)
        if queue.is_registered() or queue.counts().total:
            return queue
    abort(404, f"No queue named {shown(name)} under prefix {current().settings.prefix!r}. "
               "If BullMQ created it recently, use Rescan on the overview.")


def shown(text: str, limit: int = 200) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


def job_or_none(queue: Queue, job_id: str, caps: reads.Caps = reads.DETAIL) -> Job | None:
    """The job, its fields cut inside Redis to ``caps`` (a page never reads a whole value)."""
    reason = not_a_job(job_id)
    if reason is not None:
        abort(404, f"{reason[:300]}. Bullpen shows and changes only real jobs here.")
    return queue.job(job_id, caps=caps) if job_id else None


def job_or_404(queue: Queue, job_id: str, caps: reads.Caps = reads.LISTING) -> Job:
    """The job (fields cut to ``caps``), or a 404."""
    job = job_or_none(queue, job_id, caps)
    if job is None:
        abort(404, f"No job with id {shown(job_id)} in queue {shown(queue.name)}.")
    return job
