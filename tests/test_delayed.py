"""A handler raising Delayed: the job goes active -> delayed as BullMQ's job.moveToDelayed +
DelayedError leave it (no attempt used, no failedReason), and runs again when due."""

from __future__ import annotations

import pytest
import redis

from dashboard import Delayed, Job, Queue, Worker, scripts
from dashboard.codec import text

NOW = 1_795_000_000_000


def test_delayed_moves_the_job_to_delayed_without_using_an_attempt(r: redis.Redis) -> None:
    q = Queue("dl", connection=r)
    job = q.add("poll", {"n": 1}, attempts=1)
    calls: list[int] = []

    def handle(j: Job) -> str:
        calls.append(j.attempts_made)
        if len(calls) == 1:
            raise Delayed(30)
        return "done"

    Worker("dl", handle, connection=r, drain_delay=0.2, clock=lambda: NOW).run(burst=True)
    fields = {text(k): text(v) for k, v in r.hgetall(f"bull:dl:{job.id}").items()}
    assert r.zscore("bull:dl:delayed", job.id) == (NOW + 30_000) * 4096
    assert fields["delay"] == "30000" and fields.get("atm", "0") == "0" and "failedReason" not in fields
    assert not r.exists(f"bull:dl:{job.id}:lock") and r.llen("bull:dl:active") == 0
    assert r.zscore("bull:dl:marker", "1") == NOW + 30_000
    last = {text(k): text(v) for k, v in r.xrevrange("bull:dl:events", count=1)[0][1].items()}
    assert last == {"event": "delayed", "jobId": job.id, "delay": str(NOW + 30_000)}
    q.promote(job.id)
    Worker("dl", handle, connection=r, drain_delay=0.2).run(burst=True)
    again = q.job(job.id)
    assert calls == [0, 0] and again is not None and again.state == "completed"


def test_a_refused_move_to_delayed_changes_nothing(r: redis.Redis) -> None:
    q = Queue("dl", connection=r)
    job = q.add("poll", {})
    r.lmove("bull:dl:wait", "bull:dl:active", "RIGHT", "LEFT")
    r.set(f"bull:dl:{job.id}:lock", "theirs")
    assert q.scripts.run(scripts.move_to_delayed(q.keys, job.id, "mine", 1000, NOW)) == -6
    assert r.lrange("bull:dl:active", 0, -1) == [job.id.encode()] and not r.exists("bull:dl:delayed")
    with pytest.raises(ValueError):
        Delayed(-1)
