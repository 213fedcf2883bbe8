"""Catalog: every queue under a prefix, as the dashboard and tools read and act on them."""

from __future__ import annotations

import redis

from dashboard import Queue, Worker
from dashboard.catalog import Catalog
from tests.test_queue import NOW, Clock


def test_summaries_of_many_queues_in_two_round_trips(r: redis.Redis) -> None:
    clock = Clock()
    a, b, c = (Queue(n, connection=r, clock=clock) for n in ("a", "b", "c"))
    a.add("x", {})
    clock.now += 5
    a.add("y", {})
    b.add("z", {}, delay=5)
    r.set("bull:c:wait", "not a list")
    catalog = Catalog(r)
    (ca, oa), (cb, ob), (cc, oc) = catalog.summaries(["a", "b", "c"])
    assert (ca.waiting, oa) == (2, NOW) and (cb.delayed, ob) == (1, None)
    assert cc.problems and oc is None
    assert catalog.summaries([]) == []


def test_names_discover_pause_and_resume_all(r: redis.Redis) -> None:
    Queue("ours", connection=r).add("x", {})
    r.hset("bull:nodes-only:meta", "opts.maxLenEvents", 10000)  # a queue only BullMQ touched
    r.hset("other:elsewhere:meta", "x", 1)  # another prefix: not ours to list
    catalog = Catalog(r)
    assert catalog.names() == ["ours"]
    assert "nodes-only" in catalog.discover()
    assert catalog.names() == ["nodes-only", "ours"] and catalog.ping()
    assert catalog.pause_all() == 2 and all(catalog.queue(n).is_paused() for n in catalog.names())
    assert catalog.resume_all() == 2 and not any(catalog.queue(n).is_paused() for n in catalog.names())


def test_workers_are_counted_per_queue_from_one_client_list(r: redis.Redis) -> None:
    Queue("busy", connection=r).add("x", {})
    worker = Worker("busy", lambda job: None, connection=r, name="w1")
    blocking = worker._blocking  # the worker's one named connection, opened as run() opens it
    blocking.ping()
    try:
        found = Catalog(r).workers(["busy", "idle"])
        assert [c["name"] for c in found["busy"]] == [f"bull:{'YnVzeQ=='}:w:w1"] and found["idle"] == []
        # the same connections (CLIENT LIST's idle, age and buffer sizes move between the two reads)
        assert [(c["id"], c["name"]) for c in Queue("busy", connection=r).workers()] == \
            [(c["id"], c["name"]) for c in found["busy"]]
    finally:
        blocking.connection_pool.disconnect()


def test_a_registry_key_of_the_wrong_type_never_stops_producers_or_workers(r: redis.Redis) -> None:
    r.set("bull::queues", "written by another tool")
    q = Queue("mail", connection=r)
    job = q.add("x", {"n": 1})
    Worker("mail", lambda job: "done", connection=r).run(burst=True)
    assert q.job(job.id).state == "completed"
    assert r.get("bull::queues") == b"written by another tool"  # left as it was
    assert Catalog(r).names_and_problems()[0] == []
