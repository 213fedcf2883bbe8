"""Job edits in BullMQ 6.7.0's semantics on a real Redis: update_data, change_priority, change_delay
(the interop twins, against Node's own Job methods, are in tests/interop/test_parity_node.py)."""

from __future__ import annotations

import json

import pytest
import redis

from dashboard import Queue, Worker
from dashboard.codec import text
from dashboard.errors import JobNotFound, JobNotInState

NOW = 1_795_000_000_000


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    return Queue("ed", connection=r, clock=lambda: NOW)


def test_update_data(q: Queue, r: redis.Redis) -> None:
    job = q.add("a", {"v": 1})
    q.update_data(job.id, {"v": 2, "s": "é"})
    assert json.loads(r.hget("bull:ed:1", "data") or "") == {"v": 2, "s": "é"}
    with pytest.raises(JobNotFound):
        q.update_data("404", {})
    with pytest.raises(JobNotFound, match="meta"):
        q.update_data("meta", {})
    assert not r.exists("bull:ed:404")


def test_change_priority_requeues_waiting_and_prioritized_jobs(q: Queue, r: redis.Redis) -> None:
    a, b, c = (q.add("a", {"n": n}).id for n in range(3))
    q.change_priority(b, 5)
    assert r.lrange("bull:ed:wait", 0, -1) == [c.encode(), a.encode()]
    assert r.zrange("bull:ed:prioritized", 0, -1, withscores=True) == [(b.encode(), 5 * 2**32 + 1)]
    q.change_priority(c, 5, lifo=True)  # ahead of the jobs of priority 5
    assert r.zrange("bull:ed:prioritized", 0, -1) == [c.encode(), b.encode()]
    q.change_priority(b, 0)
    assert r.lrange("bull:ed:wait", 0, -1) == [b.encode(), a.encode()]
    assert r.hget("bull:ed:2", "priority") == b"0" and r.hget("bull:ed:3", "priority") == b"5"
    order: list[int] = []
    Worker("ed", lambda job: order.append(job.data["n"]), connection=r, drain_delay=0.2).run(burst=True)
    assert order == [0, 1, 2]  # wait first (a, then b), then prioritized


def test_change_priority_of_a_delayed_job_and_a_paused_queue(q: Queue, r: redis.Redis) -> None:
    d = q.add("d", {}, delay=60).id
    q.change_priority(d, 9)
    assert r.zscore("bull:ed:delayed", d) is not None and r.hget(f"bull:ed:{d}", "priority") == b"9"
    w = q.add("w", {}).id
    q.pause()
    r.delete("bull:ed:marker")
    q.change_priority(w, 2)
    assert r.zscore("bull:ed:prioritized", w) is not None and not r.exists("bull:ed:marker")
    with pytest.raises(JobNotFound):
        q.change_priority("404", 1)
    with pytest.raises(ValueError):
        q.change_priority(w, 2**21)


def test_change_delay(q: Queue, r: redis.Redis) -> None:
    d = q.add("d", {}, delay=60).id
    q.change_delay(d, 120)
    assert r.zscore("bull:ed:delayed", d) == (NOW + 120_000) * 4096 and r.hget(f"bull:ed:{d}", "delay") == b"120000"
    assert r.zrange("bull:ed:marker", 0, -1, withscores=True) == [(b"1", NOW + 120_000)]
    events = [{text(k): text(v) for k, v in f.items()} for _, f in r.xrange("bull:ed:events")]
    assert events[-1] == {"event": "delayed", "jobId": d, "delay": str(NOW + 120_000)}
    w = q.add("w", {}).id
    with pytest.raises(JobNotInState):
        q.change_delay(w, 5)
    with pytest.raises(JobNotFound):
        q.change_delay("404", 5)
