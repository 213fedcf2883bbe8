"""Several reads in one round trip (dashboard.gather), and the queue page's reads through it:
each read's error stays with it, second steps share one round trip, a page's extras cost a
bounded number of round trips whatever it shows."""

from __future__ import annotations

from typing import Any, cast

import pytest
import redis
from redis.exceptions import ResponseError

from dashboard import Queue
from dashboard.audit import AuditLog
from dashboard.catalog import Catalog
from dashboard.codec import now_ms
from dashboard.gather import Read, checked, gather, one
from dashboard.web import queue_page
from dashboard.web.overview import Overview


class Counting(redis.Redis):
    """A client that counts its pipelines' round trips."""

    trips = 0

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def counted(raise_on_error: bool = True) -> Any:
            Counting.trips += 1
            return execute(raise_on_error=raise_on_error)
        pipe.execute = counted  # type: ignore[method-assign]
        return pipe


@pytest.fixture
def counting(redis_url: str) -> Counting:
    Counting.trips = 0
    return cast(Counting, Counting.from_url(redis_url))


def get(key: str) -> Read[Any]:
    return Read(lambda pipe: pipe.get(key), 1, lambda replies: checked(replies)[0])


def test_a_wrong_type_error_stays_with_its_read(r: redis.Redis, counting: Counting) -> None:
    r.set("a", "1")
    r.lpush("b", "x")  # GET on a list: WRONGTYPE
    answers = gather(counting, [get("a"), get("b"), get("missing")])
    assert answers[0].get() == b"1"
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        answers[1].get()
    assert answers[2].get() is None
    assert Counting.trips == 1


def test_second_steps_of_every_read_go_in_one_more_round_trip(r: redis.Redis, counting: Counting) -> None:
    r.mset({"ptr1": "x1", "ptr2": "x2", "x1": "one", "x2": "two"})

    def follow(key: str) -> Read[Any]:
        return Read(lambda pipe: pipe.get(key), 1, lambda replies: get(checked(replies)[0].decode()))
    answers = gather(counting, [follow("ptr1"), get("x1"), follow("ptr2")])
    assert [a.get() for a in answers] == [b"one", b"one", b"two"]
    assert Counting.trips == 2
    assert one(counting, get("x2")) == b"two"


def test_a_read_that_never_ends_is_refused(counting: Counting) -> None:
    def forever(replies: list[Any]) -> Read[Any]:
        return Read(lambda pipe: pipe.ping(), 1, forever)
    with pytest.raises(RuntimeError, match="more than"):
        gather(counting, [Read(lambda pipe: pipe.ping(), 1, forever)])


def test_queue_page_extras_take_two_round_trips_with_schedulers_and_a_backlog(r: redis.Redis,
                                                                              counting: Counting) -> None:
    q = Queue("busy", connection=r)
    q.add_bulk([("n", {"i": i}, {}) for i in range(150)])  # enough waiting for an arrival estimate
    q.upsert_job_scheduler("every-minute", every=60)
    q.upsert_job_scheduler("hourly", pattern="0 * * * *")
    AuditLog(r, "bull").record(actor="me", remote="", action="pause", queue="busy", result="ok")
    now = now_ms()
    summary = Overview(Catalog(r), ttl=0).row("busy")
    Counting.trips = 0
    extras = queue_page.extras(Queue("busy", connection=counting), AuditLog(counting, "bull"), summary, now)
    assert Counting.trips == 2  # the second: the schedulers' hashes and the arrival estimate's job
    assert sorted(s["key"] for s in extras["schedulers"]) == ["every-minute", "hourly"]
    assert [a.action for a in extras["actions"]] == ["pause"]
    assert extras["extra_problems"] == [] and extras["rate_limit"] is None
    assert any("oldest waiting job" in fact for fact in extras["facts"])


def test_queue_page_extras_name_a_wrong_type_key_and_keep_the_rest(r: redis.Redis) -> None:
    q = Queue("odd", connection=r)
    q.add("n", {})
    r.set(q.keys.repeat, "not a zset")  # another tool's key where the schedulers live
    r.set(q.keys.meta + "-x", "1")
    extras = queue_page.extras(q, AuditLog(r, "bull"), Overview(Catalog(r), ttl=0).row("odd"), now_ms())
    assert len(extras["extra_problems"]) == 1 and "job schedulers cannot be read" in extras["extra_problems"][0]
    assert extras["schedulers"] == [] and extras["pause_info"] is None
    assert r.get(q.keys.repeat) == b"not a zset"  # read, never touched


def test_a_bull_queue_page_reads_no_bullmq_schedulers_limits_or_cap(r: redis.Redis) -> None:
    """Bull 3/4 keeps repeatable jobs in its own ``repeat`` zset and has no queue-wide limit or
    cap: its page must not read them as BullMQ's (BullQueue's reads answer without Redis)."""
    from tests.test_bull import bull_add
    bull_add(r, "legacy")
    r.zadd("bull:legacy:repeat", {"__default__::::60000": 1_900_000_000_000})
    r.hset("bull:legacy:repeat:__default__::::60000", mapping={"name": "x"})
    r.hset("bull:legacy:meta", mapping={"max": "5", "duration": "1000", "concurrency": "2"})
    queue = Catalog(r).queue("legacy")
    assert type(queue).__name__ == "BullQueue"
    extras = queue_page.extras(queue, AuditLog(r, "bull"), Overview(Catalog(r), ttl=0).row("legacy"), now_ms())
    assert extras["schedulers"] == [] and extras["rate_limit"] is None and extras["extra_problems"] == []
    assert not any("concurrency cap" in fact for fact in extras["facts"])


def test_a_queue_page_row_reads_no_hour_of_metrics(r: redis.Redis, counting: Counting) -> None:
    """The queue page shows no chart and no "failing now": its summary row skips the last hour."""
    Queue("m", connection=r).add("n", {})
    r.hset("bull:m:metrics:completed", mapping={"count": 5, "prevTS": now_ms(), "prevCount": 0})
    Counting.trips = 0
    full = Overview(Catalog(counting), ttl=0).row("m")
    with_history = Counting.trips
    Counting.trips = 0
    bare = Overview(Catalog(counting), ttl=0).row("m", history=False)
    assert full.throughput is not None and bare.throughput is None and bare.counts == full.counts
    assert Counting.trips < with_history
