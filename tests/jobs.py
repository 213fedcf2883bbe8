"""Plain handler functions used by the tests (importable by worker subprocesses)."""

from __future__ import annotations

import os
import time
from typing import Any

from dashboard import Job, Unrecoverable


def succeed(job: Job) -> Any:
    return {"echo": job.data}


def fail(job: Job) -> Any:
    raise ValueError(f"bad input for job {job.id}")


def unrecoverable(job: Job) -> Any:
    raise Unrecoverable("cannot ever work")


def record(job: Job) -> Any:
    """Append the job id to data["out"], sleeping data.get("sleep", 0) seconds first."""
    time.sleep(float(job.data.get("sleep", 0)))
    with open(job.data["out"], "a") as fh:
        fh.write(f"{job.id} {os.getpid()}\n")
    return job.id


def announce_then_sleep(job: Job) -> Any:
    """Write data["started"] when running (so a test knows it is mid-job), then sleep."""
    with open(job.data["started"], "a") as fh:
        fh.write(f"{job.id} {os.getpid()}\n")
    time.sleep(float(job.data.get("sleep", 3600)))
    with open(job.data["out"], "a") as fh:
        fh.write(f"{job.id} {os.getpid()}\n")
    return "finished"


def report_lock(job: Job) -> Any:
    """The PTTLs of this job's lock and of the queue's stalled-check key, read from
    data["redis"] (so a test sees what --lock-duration and --stalled-interval did)."""
    import redis

    with redis.Redis.from_url(job.data["redis"]) as client:
        base = f"bull:{job.data['queue']}:"
        return {"lock": client.pttl(f"{base}{job.id}:lock"), "check": client.pttl(f"{base}stalled-check")}
