"""Flows in BullMQ 6.7.0's keys and semantics, on a real Redis: FlowProducer's layout, a worker
finishing children (return values in ``:processed``, the parent moved on by the last one), the
failure options, removeOnComplete children, duplicates, and what is refused before any write.
Node's side of the same is ``tests/interop/test_flows.py``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from dashboard import FlowError, FlowProducer, Job, Queue, Unrecoverable, Worker
from dashboard.codec import text


def fields(r: redis.Redis, key: str) -> dict[str, str]:
    return {text(k): text(v) for k, v in r.hgetall(key).items()}


def drain(r: redis.Redis, handler: Any, *queues: str, rounds: int = 3) -> None:
    """Run a burst worker on each queue, ``rounds`` times (a parent runs after its children)."""
    for _ in range(rounds):
        for name in queues:
            Worker(name, handler, connection=r, drain_delay=0.1).run(burst=True)


def echo(job: Job) -> Any:
    if job.data.get("fail"):
        raise Unrecoverable(f"{job.name} failed")
    return {"name": job.name, "children": job.children_values()}


def test_add_writes_bullmq_layout(r: redis.Redis) -> None:
    fp = FlowProducer(connection=r)
    tree = fp.add({"name": "p", "queue_name": "pq", "data": {"x": 1}, "opts": {"priority": 3},
                   "children": [{"name": "c", "queue_name": "cq", "opts": {"fail_parent_on_failure": True,
                                                                            "attempts": 2}},
                                {"name": "m", "queue_name": "pq", "opts": {"job_id": "mid"},
                                 "children": [{"name": "g", "queue_name": "cq", "opts": {"delay": 5}}]}]})
    p, (c, m) = tree.job, tree.children
    g = m.children[0]
    assert len(p.id) == 36 and m.job.id == "mid" and [n.queue_name for n in (c, m, g)] == ["cq", "pq", "cq"]
    parent = fields(r, f"bull:pq:{p.id}")
    assert parent["priority"] == "3" and json.loads(parent["opts"])["priority"] == 3 and "parentKey" not in parent
    assert r.zscore("bull:pq:waiting-children", p.id) == int(parent["timestamp"])
    assert r.zscore("bull:pq:waiting-children", "mid") is not None
    assert r.smembers(f"bull:pq:{p.id}:dependencies") == {f"bull:cq:{c.job.id}".encode(), b"bull:pq:mid"}
    assert r.smembers("bull:pq:mid:dependencies") == {f"bull:cq:{g.job.id}".encode()}
    child = fields(r, f"bull:cq:{c.job.id}")
    assert child["parentKey"] == f"bull:pq:{p.id}"
    assert json.loads(child["parent"]) == {"id": p.id, "queueKey": "bull:pq", "fpof": True}
    opts = json.loads(child["opts"])
    assert opts["parent"] == {"id": p.id, "queue": "bull:pq"} and opts["fpof"] is True and opts["attempts"] == 2
    assert r.lrange("bull:cq:wait", 0, -1) == [c.job.id.encode()]
    assert r.zscore("bull:cq:delayed", g.job.id) is not None and fields(r, f"bull:cq:{g.job.id}")["delay"] == "5000"
    assert r.get("bull:pq:id") == b"2" and r.get("bull:cq:id") == b"2"  # INCRed per node, as BullMQ
    assert Queue("pq", connection=r).job(p.id).state == "waiting-children"
    assert c.job.parent is not None and c.job.parent.queue == "pq" and c.job.parent.id == p.id
    assert {text(n) for n in r.smembers("bull::queues")} == {"pq", "cq"}


def test_children_finished_by_our_worker_release_the_parent_with_their_values(r: redis.Redis) -> None:
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "cq"}, {"name": "b", "queue_name": "cq", "opts": {"remove_on_complete": True}}]})
    a, b = (n.job for n in tree.children)
    drain(r, echo, "cq")
    assert r.lrange("bull:pq:wait", 0, -1) == [tree.job.id.encode()]  # the front of the line
    assert not r.exists(f"bull:pq:{tree.job.id}:dependencies") and not r.exists(f"bull:cq:{b.id}")
    drain(r, echo, "pq", rounds=1)
    done = Queue("pq", connection=r).job(tree.job.id)
    assert done is not None and done.state == "completed"
    assert done.returnvalue == {"name": "p", "children": {f"bull:cq:{a.id}": {"name": "a", "children": {}},
                                                          f"bull:cq:{b.id}": {"name": "b", "children": {}}}}
    events = [fields_of(e) for _, e in r.xrange("bull:pq:events")]
    assert {"event": "waiting", "jobId": tree.job.id, "prev": "waiting-children"} in events


def fields_of(entry: dict[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in entry.items()}


@pytest.mark.parametrize(("opts", "where"), [({"priority": 4}, "prioritized"), ({"delay": 60}, "delayed")])
def test_a_released_parent_keeps_its_priority_or_delay(r: redis.Redis, opts: dict[str, Any], where: str) -> None:
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "opts": opts,
                                           "children": [{"name": "a", "queue_name": "cq"}]})
    drain(r, echo, "cq", rounds=1)
    assert r.zscore(f"bull:pq:{where}", tree.job.id) is not None
    assert Queue("pq", connection=r).job(tree.job.id).state == where


def test_without_a_failure_option_a_failed_child_leaves_the_parent_waiting(r: redis.Redis) -> None:
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "cq", "data": {"fail": True}}]})
    drain(r, echo, "cq", rounds=1)
    assert Queue("pq", connection=r).job(tree.job.id).state == "waiting-children"
    assert r.smembers(f"bull:pq:{tree.job.id}:dependencies") == {f"bull:cq:{tree.children[0].job.id}".encode()}


def test_fail_parent_on_failure_fails_the_parent_without_running_it(r: redis.Redis) -> None:
    ran: list[str] = []
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "cq", "data": {"fail": True}, "opts": {"fail_parent_on_failure": True}},
        {"name": "b", "queue_name": "cq", "data": {"sleep": 1}}]})
    a_key = f"bull:cq:{tree.children[0].job.id}"
    def handler(job: Job) -> Any:
        ran.append(job.name)
        return echo(job)

    drain(r, handler, "cq", "pq")
    parent = Queue("pq", connection=r).job(tree.job.id)
    assert parent is not None and parent.state == "failed" and parent.failed_reason == f"child {a_key} failed"
    assert "p" not in ran
    assert [text(k) for k in r.zrange(f"bull:pq:{tree.job.id}:unsuccessful", 0, -1)] == [a_key]


def test_ignore_dependency_on_failure_runs_the_parent_with_the_failures_to_read(r: redis.Redis) -> None:
    seen: dict[str, Any] = {}

    def handler(job: Job) -> Any:
        if job.name == "p":
            seen.update(values=job.children_values(), ignored=job.ignored_children_failures())
        return echo(job)

    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "cq", "data": {"fail": True}, "opts": {"ignore_dependency_on_failure": True}},
        {"name": "b", "queue_name": "cq"}]})
    a, b = (f"bull:cq:{n.job.id}" for n in tree.children)
    drain(r, handler, "cq", "pq")
    assert Queue("pq", connection=r).job(tree.job.id).state == "completed"
    assert seen == {"values": {b: {"name": "b", "children": {}}}, "ignored": {a: "a failed"}}


def test_remove_dependency_on_failure_just_drops_the_child(r: redis.Redis) -> None:
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "cq", "data": {"fail": True}, "opts": {"remove_dependency_on_failure": True}}]})
    drain(r, echo, "cq", "pq")
    assert Queue("pq", connection=r).job(tree.job.id).state == "completed"
    assert not r.exists(f"bull:pq:{tree.job.id}:failed")


def test_continue_parent_on_failure_runs_the_parent_at_once(r: redis.Redis) -> None:
    """The parent runs while a sibling is still pending; completing it then fails, with the
    reason BullMQ's worker gives (moveToFinished's -4)."""
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "cq", "data": {"fail": True}, "opts": {"continue_parent_on_failure": True}},
        {"name": "b", "queue_name": "other"}]})
    a = f"bull:cq:{tree.children[0].job.id}"
    drain(r, echo, "cq", rounds=1)
    assert r.lrange("bull:pq:wait", 0, -1) == [tree.job.id.encode()]
    assert fields(r, f"bull:pq:{tree.job.id}:failed") == {a: "a failed"}
    drain(r, echo, "pq", rounds=1)
    parent = Queue("pq", connection=r).job(tree.job.id)
    assert parent is not None and parent.state == "failed"
    assert parent.failed_reason == f"Job {tree.job.id} has pending dependencies. moveToFinished"


def test_a_parent_that_returns_too_soon_is_retried_while_it_has_attempts(r: redis.Redis) -> None:
    """As BullMQ's worker: completing with a child pending fails that attempt (-4) and, with
    attempts left, the parent is retried; it completes once the child is done."""
    opts = {"attempts": 3, "backoff": ("fixed", 60.0)}  # the retry waits: one attempt per drain
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "opts": opts, "children": [
        {"name": "a", "queue_name": "cq", "data": {"fail": True}, "opts": {"continue_parent_on_failure": True}},
        {"name": "b", "queue_name": "other"}]})
    drain(r, echo, "cq", rounds=1)  # a fails: the parent runs at once while b is pending
    drain(r, echo, "pq", rounds=1)
    parent = Queue("pq", connection=r).job(tree.job.id)
    assert parent is not None and parent.state == "delayed" and parent.attempts_made == 1
    assert parent.failed_reason == f"Job {tree.job.id} has pending dependencies. moveToFinished"
    drain(r, echo, "other", rounds=1)  # b completes
    Queue("pq", connection=r).promote(tree.job.id)  # the backoff, cut short
    drain(r, echo, "pq", rounds=1)
    done = Queue("pq", connection=r).job(tree.job.id)
    assert done is not None and done.state == "completed" and done.attempts_made == 2


def test_a_job_with_failed_fpof_children_cannot_complete(r: redis.Redis) -> None:
    q = Queue("pq", connection=r)
    job = q.add("p", {})
    r.zadd(f"bull:pq:{job.id}:unsuccessful", {"bull:cq:x": 1})
    drain(r, echo, "pq", rounds=1)
    done = q.job(job.id)
    assert done is not None and done.state == "failed" and "at least one failed child" in (done.failed_reason or "")


def test_an_existing_completed_child_counts_at_once(r: redis.Redis) -> None:
    q = Queue("cq", connection=r)
    q.add("a", {}, job_id="done-a")
    drain(r, echo, "cq", rounds=1)
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "cq", "opts": {"job_id": "done-a"}}]})
    assert r.lrange("bull:pq:wait", 0, -1) == [tree.job.id.encode()]
    assert fields(r, f"bull:pq:{tree.job.id}:processed") == {"bull:cq:done-a": json.dumps(
        {"name": "a", "children": {}}, separators=(",", ":"))}


def test_a_flow_under_an_existing_parent(r: redis.Redis) -> None:
    fp = FlowProducer(connection=r)
    top = fp.add({"name": "top", "queue_name": "pq", "children": [{"name": "x", "queue_name": "cq"}]})
    more = fp.add({"name": "more", "queue_name": "cq", "opts": {"parent": {"id": top.job.id, "queue": "bull:pq"}}})
    assert r.scard(f"bull:pq:{top.job.id}:dependencies") == 2
    assert fields(r, f"bull:cq:{more.job.id}")["parentKey"] == f"bull:pq:{top.job.id}"
    with pytest.raises(FlowError):
        fp.add({"name": "lost", "queue_name": "cq", "opts": {"parent": {"id": "gone", "queue": "bull:pq"}},
                "children": [{"name": "y", "queue_name": "cq"}]})
    assert r.llen("bull:cq:wait") == 2 and r.get("bull:cq:id") == b"2"  # nothing of the refused flow


@pytest.mark.parametrize("flow", [
    {"name": "p", "queue_name": "q:x"},
    {"name": "p", "queue_name": "pq", "bogus": 1},
    {"name": 5, "queue_name": "pq"},
    {"name": "p", "queue_name": "pq", "children": [{"name": "c", "queue_name": "cq", "opts": {
        "fail_parent_on_failure": True, "ignore_dependency_on_failure": True}}]},
    {"name": "p", "queue_name": "pq", "children": [{"name": "c", "queue_name": "cq", "opts": {
        "deduplication": {"id": "d"}}}]},
    {"name": "p", "queue_name": "pq", "children": [{"name": "c", "queue_name": "cq", "data": {1, 2}}]},
    {"name": "p", "queue_name": "pq", "children": [{"name": "c", "queue_name": "cq", "opts": {"job_id": "12"}}]},
    {"name": "p", "queue_name": "pq", "opts": {"fail_parent_on_failure": True}},
])
def test_invalid_flows_are_refused_before_any_write(r: redis.Redis, flow: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        FlowProducer(connection=r).add(flow)
    assert r.dbsize() == 0


def test_a_key_of_the_wrong_type_refuses_the_whole_flow(r: redis.Redis) -> None:
    r.set("bull:cq:wait", "not a list")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE bull:cq:wait"):
        FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
            {"name": "a", "queue_name": "cq"}]})
    assert sorted(r.keys("*")) == [b"bull::queues", b"bull:cq:wait"]


def test_add_bulk_and_the_dashboard_reads(r: redis.Redis) -> None:
    trees = FlowProducer(connection=r).add_bulk([
        {"name": "p1", "queue_name": "pq", "children": [{"name": f"c{i}", "queue_name": "cq"} for i in range(30)]},
        {"name": "p2", "queue_name": "pq", "children": [{"name": "d", "queue_name": "cq"}]}])
    assert [len(t.children) for t in trees] == [30, 1]
    drain(r, echo, "cq", rounds=1)
    kids = Queue("pq", connection=r).children(trees[0].job.id, per_group=5)
    assert kids.counts == {"unprocessed": 0, "processed": 30, "ignored": 0, "failed": 0} and kids.total == 30
    assert len(kids.shown) == 5 and {c.state for c in kids.shown} == {"completed"}
    assert {c.queue for c in kids.shown} == {"cq"}
    assert len(Queue("pq", connection=r).children_values(trees[0].job.id, limit=7)) == 7


def test_the_parent_page_lists_children_and_a_child_links_to_its_parent(client: FlaskClient, r: redis.Redis) -> None:
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "c/q", "opts": {"job_id": "a/../b"}},
        {"name": "b", "queue_name": "pq", "data": {"fail": True}, "opts": {"ignore_dependency_on_failure": True}},
        {"name": "x", "queue_name": "xq", "prefix": "elsewhere"}]})
    drain(r, echo, "c/q", "pq", rounds=1)
    page = client.get(f"/queues/pq/jobs/{tree.job.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="children"' in html
    assert "1 still awaited, 1 completed, 1 failed, ignored." in html
    assert 'href="/queues/c%252Fq/jobs/a%252F..%252Fb"' in html  # each segment encoded (dashboard/web/urls.py)
    assert f'href="/queues/pq/jobs/{tree.children[1].job.id}"' in html
    assert "elsewhere:xq:" in html and "Under another prefix" in html
    child = client.get("/queues/c%252Fq/jobs/a%252F..%252Fb").get_data(as_text=True)
    assert f'<a href="/queues/pq/jobs/{tree.job.id}" id="job-parent">' in child
    stranger = client.get(f"/queues/xq/jobs/{tree.children[2].job.id}")
    assert stranger.status_code == 404  # under another prefix: not this dashboard's queue
    plain = client.get(f"/queues/pq/jobs/{tree.children[1].job.id}").get_data(as_text=True)
    assert 'id="children"' not in plain and 'id="job-parent"' in plain
    for sub in ("dependencies", "processed", "failed"):
        gone = client.get(f"/queues/pq/jobs/{tree.job.id}:{sub}")
        assert gone.status_code == 404 and "is not a job" in gone.get_data(as_text=True)


def test_retrying_a_failed_child_makes_the_parent_wait_for_it_again(r: redis.Redis) -> None:
    tree = FlowProducer(connection=r).add({"name": "p", "queue_name": "pq", "children": [
        {"name": "a", "queue_name": "cq", "data": {"fail": True}, "opts": {"ignore_dependency_on_failure": True}},
        {"name": "b", "queue_name": "other"}]})
    a = tree.children[0].job.id
    drain(r, echo, "cq", rounds=1)
    assert r.hkeys(f"bull:pq:{tree.job.id}:failed") == [f"bull:cq:{a}".encode()]
    Queue("cq", connection=r).retry(a)
    assert not r.exists(f"bull:pq:{tree.job.id}:failed")
    assert f"bull:cq:{a}".encode() in r.smembers(f"bull:pq:{tree.job.id}:dependencies")


def test_removing_children_releases_or_deletes_the_parent_as_bullmq(r: redis.Redis) -> None:
    fp = FlowProducer(connection=r)
    other = fp.add({"name": "p", "queue_name": "pq", "children": [{"name": "a", "queue_name": "cq"}]})
    Queue("cq", connection=r).remove(other.children[0].job.id)
    assert r.lrange("bull:pq:wait", 0, -1) == [other.job.id.encode()]  # another queue: released
    same = fp.add({"name": "p", "queue_name": "pq", "children": [{"name": "a", "queue_name": "pq"},
                                                                 {"name": "b", "queue_name": "pq"}]})
    q = Queue("pq", connection=r)
    q.remove(same.children[0].job.id)
    assert r.scard(f"bull:pq:{same.job.id}:dependencies") == 1
    assert q.drain() == 2  # `other`'s parent and child b; its parent (same queue) goes with it
    assert not r.exists(f"bull:pq:{same.job.id}") and r.zcard("bull:pq:waiting-children") == 0


@pytest.mark.parametrize(("parent_key", "parent"), [
    ("bull:pq:meta", '{"id":"meta","queueKey":"bull:pq"}'),  # one of BullMQ's own keys
    ("bull:pq:spoiled", '{"id":"spoiled","queueKey":"bull:pq"}'),  # its :dependencies is a string
    ("bull:pq:p1", "{not json"),
    ("nocolon", None),
    (None, '{"id":5,"queueKey":["x"]}'),
])
def test_hostile_parent_fields_never_corrupt_anything(r: redis.Redis, parent_key: str | None,
                                                      parent: str | None) -> None:
    r.hset("bull:pq:meta", "paused", "1")
    r.set("bull:pq:spoiled:dependencies", "x")
    r.hset("bull:pq:p1", "name", "p")
    r.sadd("bull:pq:p1:dependencies", "bull:cq:other")
    r.zadd("bull:pq:waiting-children", {"p1": 1})
    q = Queue("cq", connection=r)
    job = q.add("c", {})
    r.hset(f"bull:cq:{job.id}", mapping={k: v for k, v in (("parentKey", parent_key), ("parent", parent)) if v})
    before = {k: r.dump(k) for k in r.keys("bull:pq:*")}
    drain(r, echo, "cq", rounds=1)
    assert q.job(job.id).state == "completed"
    assert {k: r.dump(k) for k in r.keys("bull:pq:*")} == before
