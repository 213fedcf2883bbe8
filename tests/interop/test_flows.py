"""Interop with real Node BullMQ 6.7.0: flows (parents in ``waiting-children``, ``:dependencies``,
``:processed``, ``:failed``, ``:unsuccessful``) both ways.

Node's FlowProducer builds a tree that our workers serve: the last child moves the parent on
and the parent's handler reads its children's values; our FlowProducer builds a tree that Node
workers serve and Node's getFlow / getChildrenValues read; a mixed fleet serves one tree; and
each failure option (none, failParentOnFailure, ignoreDependencyOnFailure,
removeDependencyOnFailure, continueParentOnFailure) leaves the same keys whichever side created
the flow and whichever side failed the child. See ``test_node_bullmq.py`` for the harness.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard import FlowProducer, Job, Queue, Worker
from dashboard.codec import text
from tests.interop.harness import Child, read_records, wait_until
from tests.interop.test_node_bullmq import node_cli, node_worker, py_worker
from tests.interop.test_node_bullmq import pytestmark as node_marks

pytestmark = node_marks

#: Python failure option -> Node's option name.
NODE_OPTION = {"fail_parent_on_failure": "failParentOnFailure", "ignore_dependency_on_failure":
               "ignoreDependencyOnFailure", "remove_dependency_on_failure": "removeDependencyOnFailure",
               "continue_parent_on_failure": "continueParentOnFailure"}


def serve(redis_url: str, handler: Callable[[Job], Any], *queues: str, rounds: int = 3) -> None:
    for _ in range(rounds):
        for name in queues:
            Worker(name, handler, redis_url=redis_url, drain_delay=0.1).run(burst=True)


def test_node_flow_is_served_by_our_workers_and_the_parent_sees_the_values(redis_url: str, r: redis.Redis) -> None:
    tree = node_cli(redis_url, "pq", "flow", stdin={
        "name": "p", "queueName": "pq", "data": {"top": True}, "opts": {"priority": 2}, "children": [
            {"name": "a", "queueName": "cq", "data": {"v": 1}},
            {"name": "m", "queueName": "pq", "children": [{"name": "g", "queueName": "cq", "data": {"v": 3}}]},
        ]})["tree"]
    a, m = tree["children"]
    g = m["children"][0]
    seen: dict[str, Any] = {}

    def handler(job: Job) -> Any:
        seen[job.name] = job.children_values()
        return {"v": job.name}

    serve(redis_url, handler, "cq", "pq")
    assert seen == {"a": {}, "g": {}, "m": {f"bull:cq:{g['id']}": {"v": "g"}},
                    "p": {f"bull:cq:{a['id']}": {"v": "a"}, f"bull:pq:{m['id']}": {"v": "m"}}}
    parent = node_cli(redis_url, "pq", "job", "--id", tree["id"])
    assert parent["state"] == "completed" and parent["returnvalue"] == {"v": "p"}
    node = node_cli(redis_url, "pq", "deps", "--id", tree["id"])
    assert node["counts"] == {"processed": 2, "unprocessed": 0, "ignored": 0, "failed": 0}
    assert node["values"] == seen["p"]
    got = node_cli(redis_url, "pq", "get-flow", "--id", tree["id"])["tree"]
    assert {c["name"]: c["state"] for c in got["children"]} == {"a": "completed", "m": "completed"}


def test_our_flow_is_read_and_served_by_node(redis_url: str, r: redis.Redis, spawn: Callable[[list[str], str], Child],
                                            tmp_path: Path) -> None:
    tree = FlowProducer(redis_url).add({"name": "p", "queue_name": "pq", "data": {"top": True}, "children": [
        {"name": "a", "queue_name": "cq", "data": {"v": 1}},
        {"name": "m", "queue_name": "pq", "opts": {"job_id": "mid"},
         "children": [{"name": "g", "queue_name": "cq", "opts": {"delay": 0.2}}]}]})
    before = node_cli(redis_url, "pq", "get-flow", "--id", tree.job.id)["tree"]
    assert before["state"] == "waiting-children" and before["name"] == "p"
    assert {c["name"]: c["state"] for c in before["children"]} == {"a": "waiting", "m": "waiting-children"}
    assert node_cli(redis_url, "pq", "deps", "--id", tree.job.id)["counts"] == {
        "processed": 0, "unprocessed": 2, "ignored": 0, "failed": 0}
    out_c, out_p = tmp_path / "cq.jsonl", tmp_path / "pq.jsonl"
    children = node_worker(spawn, redis_url, "cq", out_c, "--expect", "2", name="node-cq")
    parents = node_worker(spawn, redis_url, "pq", out_p, "--expect", "2", "--record-children", name="node-pq")
    children.expect("done")
    parents.expect("done")
    records = {rec["name"]: rec for rec in read_records(out_p)}
    a, m = tree.children
    g = m.children[0]
    assert records["m"]["childrenValues"] == {f"bull:cq:{g.job.id}": {"ok": True, "id": g.job.id}}
    assert records["p"]["childrenValues"] == {f"bull:cq:{a.job.id}": {"ok": True, "id": a.job.id},
                                              "bull:pq:mid": {"ok": True, "id": "mid"}}
    done = Queue("pq", redis_url=redis_url).job(tree.job.id)
    assert done is not None and done.state == "completed" and done.returnvalue == {"ok": True, "id": tree.job.id}


def test_a_mixed_fleet_serves_one_flow(redis_url: str, r: redis.Redis, spawn: Callable[[list[str], str], Child],
                                       tmp_path: Path) -> None:
    """Node and Bullpen workers share the children's and the parents' queues; every parent
    runs once, after all its children, and reads all their values."""
    kids = 12
    flows = [{"name": f"p{n}", "queue_name": "pq", "children": [
        {"name": f"c{n}-{i}", "queue_name": "cq", "data": {"sleepMs": 30}} for i in range(kids)]} for n in range(3)]
    trees = FlowProducer(redis_url).add_bulk(flows)
    node_out, py_out = tmp_path / "node.jsonl", tmp_path / "py.jsonl"
    workers = [node_worker(spawn, redis_url, "cq", node_out, name="node-cq"),
               py_worker(spawn, redis_url, "cq", py_out, name="py-cq"),
               node_worker(spawn, redis_url, "pq", node_out, "--record-children", name="node-pq"),
               py_worker(spawn, redis_url, "pq", py_out, name="py-pq")]
    q = Queue("pq", redis_url=redis_url)
    wait_until(lambda: all((j := q.job(t.job.id)) is not None and j.state == "completed" for t in trees), 60,
               "every parent completed")
    for w in workers:
        w.stop()
    records = read_records(node_out, py_out)
    runs = [rec["name"] for rec in records]
    assert sorted(runs) == sorted([f"c{n}-{i}" for n in range(3) for i in range(kids)] + ["p0", "p1", "p2"])
    served = {str(rec.get("pid", "node")) for rec in records if rec["name"].startswith("c")}
    assert "node" in served and len(served) > 1, "both fleets served children"
    for t in trees:
        values = q.children_values(t.job.id)
        assert values == {f"bull:cq:{c.job.id}": {"ok": True, "id": c.job.id} for c in t.children}
        started = {rec["name"]: rec["startedAt"] for rec in records}
        assert started[t.job.name] >= max(started[c.job.name] for c in t.children)


def _flow(option: str | None, node: bool) -> dict[str, Any]:
    """A parent in pq with a child `bad` (fails, carrying ``option``) and a child `good`."""
    if node:
        opts = {NODE_OPTION[option]: True} if option else {}
        return {"name": "p", "queueName": "pq", "children": [
            {"name": "bad", "queueName": "cq", "opts": opts}, {"name": "good", "queueName": "cq"}]}
    return {"name": "p", "queue_name": "pq", "children": [
        {"name": "bad", "queue_name": "cq", "opts": {option: True} if option else {}},
        {"name": "good", "queue_name": "cq"}]}


def _snapshot(r: redis.Redis, parent: str, bad: str, good: str) -> dict[str, Any]:
    """The parent's bookkeeping, with the children's keys named `bad` / `good`."""
    def name(raw: Any) -> str:
        return {bad: "bad", good: "good"}.get(text(raw), text(raw))

    base = f"bull:pq:{parent}"
    state = Queue("pq", connection=r).job(parent)
    return {
        "state": state.state if state else None,
        "defa": text(r.hget(base, "defa") or b"").replace(bad, "bad"),
        "dependencies": sorted(name(k) for k in r.smembers(f"{base}:dependencies")),
        "processed": sorted(name(k) for k in r.hkeys(f"{base}:processed")),
        "failed": {name(k): text(v) for k, v in r.hgetall(f"{base}:failed").items()},
        "unsuccessful": [name(k) for k in r.zrange(f"{base}:unsuccessful", 0, -1)],
    }


#: What each failure option leaves once both children have run (bad failed, good completed).
AFTER_CHILDREN = {
    None: {"state": "waiting-children", "defa": "", "dependencies": ["bad"], "processed": ["good"], "failed": {},
           "unsuccessful": []},
    "fail_parent_on_failure": {"state": "waiting", "defa": "child bad failed", "dependencies": [],
                               "processed": ["good"], "failed": {}, "unsuccessful": ["bad"]},
    "ignore_dependency_on_failure": {"state": "waiting", "defa": "", "dependencies": [], "processed": ["good"],
                                     "failed": {"bad": "failed on purpose: bad"}, "unsuccessful": []},
    "remove_dependency_on_failure": {"state": "waiting", "defa": "", "dependencies": [], "processed": ["good"],
                                     "failed": {}, "unsuccessful": []},
    "continue_parent_on_failure": {"state": "waiting", "defa": "", "dependencies": [], "processed": ["good"],
                                   "failed": {"bad": "failed on purpose: bad"}, "unsuccessful": []},
}
#: The parent's end state once a worker has taken it.
PARENT_END = {"fail_parent_on_failure": "failed", "ignore_dependency_on_failure": "completed",
              "remove_dependency_on_failure": "completed", "continue_parent_on_failure": "completed"}


def _ours_fail(job: Job) -> Any:
    if job.name == "bad":
        raise RuntimeError("failed on purpose: bad")
    return {"ok": True, "id": job.id}


@pytest.mark.parametrize("node_creates", [True, False], ids=["node-creates-ours-serve", "we-create-node-serves"])
@pytest.mark.parametrize("option", list(AFTER_CHILDREN))
def test_failure_options_leave_the_same_keys_both_ways(
        redis_url: str, r: redis.Redis, spawn: Callable[[list[str], str], Child], tmp_path: Path,
        option: str | None, node_creates: bool) -> None:
    if node_creates:
        made = node_cli(redis_url, "pq", "flow", stdin=_flow(option, node=True))["tree"]
        parent, bad, good = made["id"], made["children"][0]["id"], made["children"][1]["id"]
        serve(redis_url, _ours_fail, "cq", rounds=1)
    else:
        tree = FlowProducer(redis_url).add(_flow(option, node=False))
        parent, bad, good = tree.job.id, tree.children[0].job.id, tree.children[1].job.id
        worker = node_worker(spawn, redis_url, "cq", tmp_path / "cq.jsonl", "--fail-names", "bad", "--expect", "2")
        worker.expect("done")
    keys = (f"bull:cq:{bad}", f"bull:cq:{good}")
    wait_until(lambda: r.zscore("bull:cq:completed", good) is not None, 10, "the good child completed")
    assert _snapshot(r, parent, *keys) == AFTER_CHILDREN[option]
    if option is None:
        return
    # the parent, served by the same side that served the children
    if node_creates:
        serve(redis_url, _ours_fail, "pq", rounds=1)
    else:
        worker = node_worker(spawn, redis_url, "pq", tmp_path / "pq.jsonl", name="node-pq")
        wait_until(lambda: r.zscore(f"bull:pq:{PARENT_END[option]}", parent) is not None, 10, "the parent finished")
        worker.stop()
    end = Queue("pq", connection=r).job(parent)
    assert end is not None and end.state == PARENT_END[option]
    if option == "fail_parent_on_failure":
        assert end.failed_reason == f"child {keys[0]} failed"
        assert json.loads(r.hget(f"bull:pq:{parent}", "stacktrace") or b"[]")  # failed, as Unrecoverable
