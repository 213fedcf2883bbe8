"""Job schedulers without Node: our producer, the next-iteration script and our worker.

(Interop with Node BullMQ, and the cron arithmetic against Node's, are in
tests/interop/test_schedulers.py.)
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
import redis

from dashboard import Job, JobLocked, Queue, Worker, schedulers
from dashboard.codec import text
from dashboard.keys import Keys
from tests.interop.harness import wait_until

K = Keys("bull", "sc")


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    return Queue("sc", connection=r)


def ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)


def test_limit_ends_a_scheduler_run_by_our_worker(q: Queue, r: redis.Redis) -> None:
    """Our worker adds each next iteration when it takes the current one, and stops at `limit`."""
    ran: list[str] = []

    def handler(job: Job) -> None:
        ran.append(job.id)

    first = q.upsert_job_scheduler("three", every=0.05, limit=3, data={"n": 1})
    assert first is not None
    worker = Worker("sc", handler, connection=r, drain_delay=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: q.counts().completed == 3, 20, "three iterations")
    finally:
        worker.close()
        thread.join(10)
    assert ran[0] == first.id and len(ran) == 3
    # the third iteration added no fourth: the scheduler still points at the third
    assert r.zscore(K.repeat, "three") == int(ran[2].rsplit(":", 1)[1])
    assert r.hget(K.scheduler("three"), "ic") == b"3"
    assert len(list(r.scan_iter("bull:sc:repeat:three:*"))) == 3


def test_only_the_schedulers_current_job_adds_the_next(q: Queue, r: redis.Redis) -> None:
    """As BullMQ's updateJobScheduler: a stale or foreign job id adds nothing; the current one adds
    `repeat:<id>:<prev + every>` (delayed) once; a second take of the same job adds nothing."""
    first = q.upsert_job_scheduler("s", every=10, name="n", data={"d": 1})
    assert first is not None
    prev = int(first.id.rsplit(":", 1)[1])
    raw = r.hgetall(K.job(first.id))
    now = prev + 5
    stale = schedulers.next_run(K, f"repeat:s:{prev - 10_000}", raw, now)
    assert stale is not None and q.scripts.run(stale) == b""
    call = schedulers.next_run(K, first.id, raw, now)
    assert call is not None
    assert q.scripts.run(call) == f"repeat:s:{prev + 10_000}".encode()
    assert q.scripts.run(call) == b""
    nxt = {text(k): text(v) for k, v in r.hgetall(K.job(f"repeat:s:{prev + 10_000}")).items()}
    opts = json.loads(nxt.pop("opts"))
    assert nxt == {"name": "n", "data": '{"d":1}', "timestamp": str(now), "delay": "9995", "priority": "0",
                   "rjk": "s"}
    assert opts["repeat"] == {"every": 10_000, "count": 2} and opts["jobId"] == f"repeat:s:{prev + 10_000}"
    assert r.zscore(K.delayed, f"repeat:s:{prev + 10_000}") is not None
    assert r.hget(K.scheduler("s"), "ic") == b"2"


def test_cron_next_iteration_on_a_spring_forward_day(r: redis.Redis) -> None:
    """`0 30 2 * * *` in Berlin: the 02:30 of 29 March 2026 does not exist; as cron-parser, the
    next iteration is at 03:30 CEST (01:30 UTC), with prevMillis and count as BullMQ writes them."""
    prev = ms("2026-03-28T01:30:00+00:00")
    opts = {"repeat": {"pattern": "0 30 2 * * *", "tz": "Europe/Berlin", "count": 4}, "prevMillis": prev,
            "repeatJobKey": "b", "jobId": f"repeat:b:{prev}", "delay": 0, "timestamp": prev - 9}
    call = schedulers.next_run(K, f"repeat:b:{prev}", {b"rjk": b"b", b"opts": json.dumps(opts).encode()}, prev + 7)
    assert call is not None
    expected = ms("2026-03-29T01:30:00+00:00")
    assert call.args[3] == expected
    sent = json.loads(str(call.args[5]))
    assert sent["prevMillis"] == expected and sent["repeat"]["count"] == 5 and sent["timestamp"] == prev + 7


@pytest.mark.parametrize("repeat", [{"every": 100, "limit": 2, "count": 2},
                                    {"every": 100, "endDate": 1_000, "count": 1},
                                    {"pattern": "0 0 1 1 *", "endDate": 2_000, "count": 1}])
def test_no_next_iteration_past_limit_or_end_date(repeat: dict[str, Any]) -> None:
    opts = {"repeat": repeat, "repeatJobKey": "x"}
    assert schedulers.next_run(K, "repeat:x:1", {"rjk": "x", "opts": json.dumps(opts)}, 1_500) is None


def test_upsert_again_replaces_the_pending_job_and_remove_deletes_it(q: Queue, r: redis.Redis) -> None:
    first = q.upsert_job_scheduler("daily", pattern="0 9 * * *", tz="America/New_York", data={"v": 1})
    again = q.upsert_job_scheduler("daily", pattern="0 9 * * *", tz="America/New_York", data={"v": 2})
    assert first is not None and again is not None and again.id == first.id
    assert r.zcard(K.delayed) == 1 and r.hget(K.job(first.id), "data") == b'{"v":2}'
    (listed,) = q.job_schedulers()
    assert listed["key"] == "daily" and listed["pattern"] == "0 9 * * *" and listed["template"] == {"data": {"v": 2}}
    assert q.remove_job_scheduler("daily") is True
    assert q.remove_job_scheduler("daily") is False
    assert r.exists(K.job(first.id), K.scheduler("daily"), K.repeat) == 0 and r.zcard(K.delayed) == 0


def test_upsert_rejects_what_bullmq_rejects(q: Queue) -> None:
    with pytest.raises(ValueError):
        q.upsert_job_scheduler("a", every=0.1, pattern="* * * * *")
    with pytest.raises(ValueError):
        q.upsert_job_scheduler("a")
    with pytest.raises(ValueError):
        q.upsert_job_scheduler("a", pattern="* * * * *", immediately=True, start_date=5)
    with pytest.raises(ValueError):
        q.upsert_job_scheduler("a", pattern="* * *")
    with pytest.raises(ValueError):
        q.upsert_job_scheduler("a", pattern="* * * * *", tz="Mars/Olympus")
    assert q.job_schedulers() == []


def test_legacy_repeat_key_shape() -> None:
    assert schedulers.legacy_shape("name:id::Europe/Berlin:0 * * * *")
    assert schedulers.legacy_shape("name::1700000000000::5000")
    assert not schedulers.legacy_shape("every-2s")
    assert not schedulers.legacy_shape("a:b:c:d:e")


def test_the_schedulers_next_job_cannot_be_removed_alone(q: Queue, r: redis.Redis) -> None:
    """As BullMQ (removeJob: -8): removing a scheduler's next job would end the scheduler."""
    first = q.upsert_job_scheduler("keep", pattern="0 0 1 1 *")
    assert first is not None
    with pytest.raises(JobLocked, match="job scheduler"):
        q.remove(first.id)
    assert r.exists(K.job(first.id)) == 1
    assert q.remove_job_scheduler("keep")


def test_obliterate_deletes_schedulers_too(q: Queue, r: redis.Redis) -> None:
    """As BullMQ's obliterate: the `repeat` zset, every `repeat:<id>` hash and the pending jobs go."""
    q.upsert_job_scheduler("a", every=60)
    q.upsert_job_scheduler("b", pattern="0 0 1 1 *", data={"x": 1})
    q.obliterate()
    assert sorted(r.scan_iter("bull:sc:*")) == []


def test_next_iterations_still_go_in_when_the_worker_stops(q: Queue, r: redis.Redis) -> None:
    """A scheduler job taken right before a stop: its next iteration is written on the way out."""
    first = q.upsert_job_scheduler("s", every=10)
    assert first is not None
    prev = int(first.id.rsplit(":", 1)[1])
    worker = Worker("sc", lambda job: None, connection=r)
    call = schedulers.next_run(K, first.id, r.hgetall(K.job(first.id)), prev + 1)
    assert call is not None
    worker._next_runs.append(call)
    worker._drain_inflight()
    assert r.exists(K.job(f"repeat:s:{prev + 10_000}")) == 1
