"""Legacy Bull 3/4 queues (npm ``bull``), with their layout written straight into Redis as Bull
4.16.5 writes it: recognised, counted and listed by Bull's rules, acted on by Bull's own
semantics without a single BullMQ-only key or field, refused where that is not safe, and shown
with a "Bull 3/4" badge. tests/interop/test_bull.py checks the same against the real package."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from dashboard import Queue, Worker
from dashboard.bull import BullQueue, kinds
from dashboard.catalog import Catalog
from dashboard.codec import text
from dashboard.errors import JobLocked, NotSupportedOnBull
from dashboard.job import JobState
from dashboard.keys import Keys
from dashboard.queue import Queue as BaseQueue
from tests.webkit import digest, post

NOW = 1_770_000_000_000
#: Keys and job hash fields only BullMQ writes: none may appear in a Bull queue.
BULLMQ_ONLY_KEYS = ("marker", "events", "prioritized", "pc", "waiting-children")
BULLMQ_ONLY_FIELDS = (b"atm", b"ats", b"stc", b"defa", b"pb")


def bull_add(r: redis.Redis, queue: str, *, name: str = "__default__", data: Any = None, priority: int = 0,
             delay: int = 0, job_id: str | None = None, lifo: bool = False) -> str:
    """Add a job as Bull 4.16.5's addJob script does (opts hold attempts, delay, timestamp)."""
    k = Keys("bull", queue)
    counter = r.incr(k.id)
    jid = job_id or str(counter)
    opts: dict[str, Any] = {"attempts": 1, "delay": delay, "timestamp": NOW}
    if lifo:
        opts["lifo"] = True
    if priority:
        opts["priority"] = priority
    r.hset(k.job(jid), mapping={"name": name, "data": json.dumps(data or {}), "opts": json.dumps(opts),
                                "timestamp": NOW, "delay": delay, "priority": priority})
    if delay:
        r.zadd(k.delayed, {jid: (NOW + delay) * 4096 + (counter & 0xFFF)})
        return jid
    target = k.paused if r.exists(k.meta_paused) else k.wait
    if priority:  # Bull's addJobWithPriority
        r.zadd(k.priority, {jid: priority})
        count = r.zcount(k.priority, 0, priority)
        length = r.llen(target)
        pivot = r.lindex(target, length - (count - 1))
        r.linsert(target, "BEFORE", text(pivot), jid) if pivot else r.rpush(target, jid)
    else:
        (r.rpush if lifo else r.lpush)(target, jid)
    return jid


def bull_fail(r: redis.Redis, queue: str, jid: str, reason: str = "boom", when: int = NOW) -> None:
    """Move a waiting job to failed as a Bull worker does after its last attempt."""
    k = Keys("bull", queue)
    r.lrem(k.wait, 0, jid)
    r.lrem(k.paused, 0, jid)
    r.zrem(k.priority, jid)
    r.hset(k.job(jid), mapping={"failedReason": reason, "stacktrace": json.dumps([f"Error: {reason}\n    at x"]),
                                "attemptsMade": 1, "processedOn": when - 5, "finishedOn": when})
    r.zadd(k.failed, {jid: when})


def bull_pause(r: redis.Redis, queue: str) -> None:
    """Bull's own pause script."""
    k = Keys("bull", queue)
    if r.exists(k.wait):
        r.rename(k.wait, k.paused)
    r.set(k.meta_paused, 1)
    r.hset(k.meta, "paused", 1)


def assert_no_bullmq_keys(r: redis.Redis, queue: str) -> None:
    keys = {text(k) for k in r.keys(f"bull:{queue}:*")}
    assert not [k for k in keys if k.rsplit(":", 1)[-1] in BULLMQ_ONLY_KEYS], keys
    meta = r.hgetall(f"bull:{queue}:meta")
    assert set(meta) <= {b"paused"}, meta  # Bull's own pause writes meta.paused, and nothing else there
    for key in keys:
        if r.type(key) == b"hash" and key != f"bull:{queue}:meta":
            assert not set(r.hkeys(key)) & set(BULLMQ_ONLY_FIELDS), (key, r.hkeys(key))


@pytest.fixture
def catalog(r: redis.Redis) -> Catalog:
    return Catalog(r)


def bull_queue(catalog: Catalog, name: str = "legacy") -> BullQueue:
    queue = catalog.queue(name)
    assert isinstance(queue, BullQueue), queue
    return queue


# --- recognising -----------------------------------------------------------------------

def test_a_bull_queue_is_told_from_a_bullmq_one(r: redis.Redis, catalog: Catalog) -> None:
    bull_add(r, "legacy")
    Queue("modern", connection=r).add("x", {})
    r.hset("bull:node:meta", "version", "bullmq:6.7.0")
    bull_add(r, "paused-bull")
    bull_pause(r, "paused-bull")
    assert kinds(r, [Keys("bull", n) for n in ("legacy", "modern", "node", "paused-bull", "empty")]) == [
        True, False, False, True, None]
    assert type(catalog.queue("modern")) is Queue and type(catalog.queue("empty")) is Queue
    assert bull_queue(catalog).kind == "Bull 3/4"
    assert catalog.bull_flags(["legacy", "modern", "empty"]) == [True, False, False]
    # an unpaused Bull queue has no `meta`: discovery finds it by its `id` counter
    assert "legacy" in catalog.discover() and "paused-bull" in catalog.names()


def test_one_odd_hash_with_bulls_field_names_does_not_make_a_queue_bull(r: redis.Redis, catalog: Catalog) -> None:
    """Another tool's hash holding ``attemptsMade`` (but not Bull's ``opts``) decides nothing: a
    worker still serves the queue (it refuses Bull queues, so a wrong guess would wedge it)."""
    r.rpush("bull:odd:wait", "7")
    r.hset("bull:odd:7", mapping={"attemptsMade": "0", "retriedOn": "1", "name": "plain"})
    assert kinds(r, [Keys("bull", "odd")]) == [False]
    assert not isinstance(catalog.queue("odd"), BullQueue)
    Worker("odd", lambda job: "ok", connection=r).run(burst=True)
    assert r.zscore("bull:odd:completed", "7") is not None


def test_a_bull_queue_an_old_bullpen_dashboard_polluted_is_still_bull(r: redis.Redis, catalog: Catalog) -> None:
    jid = bull_add(r, "legacy")
    r.xadd("bull:legacy:events", {"event": "resumed"})  # what the old resume wrote
    r.zadd("bull:legacy:marker", {"0": 0})
    assert kinds(r, [Keys("bull", "legacy")]) == [True]
    r.delete(f"bull:legacy:{jid}", "bull:legacy:wait")
    assert kinds(r, [Keys("bull", "legacy")]) == [False]  # nothing Bull-like is left: events say BullMQ


# --- reading ---------------------------------------------------------------------------

def test_counts_include_the_paused_list_and_the_priority_zset(r: redis.Redis, catalog: Catalog) -> None:
    for _ in range(4):
        bull_add(r, "legacy")
    bull_add(r, "legacy", priority=3)
    bull_pause(r, "legacy")
    bull_add(r, "legacy", delay=60_000)
    bull_fail(r, "legacy", bull_add(r, "legacy"))  # added while paused: in `paused`, then failed
    q = bull_queue(catalog)
    c = q.counts()
    assert (c.waiting, c.priority, c.prioritized, c.delayed, c.failed, c.paused, c.bull) == (5, 1, 0, 1, 1, True, True)
    assert c.as_dict()["waiting"] == 5  # the waiting tab lists both lists
    assert c.as_bull() == {"waiting": 0, "active": 0, "completed": 0, "failed": 1, "delayed": 1, "paused": 5}
    assert catalog.summaries(["legacy"])[0][0].waiting == 5
    assert q.is_paused()
    r.hdel("bull:legacy:meta", "paused")  # meta-paused alone is enough for Bull
    assert q.is_paused() and q.counts().paused


def test_jobs_in_the_paused_list_are_listed_and_waiting(r: redis.Redis, catalog: Catalog) -> None:
    first = [bull_add(r, "legacy", data={"n": i}) for i in range(3)]
    bull_pause(r, "legacy")
    r.delete("bull:legacy:meta-paused")  # half-paused: new adds go to wait again
    later = [bull_add(r, "legacy") for _ in range(2)]
    q = bull_queue(catalog)
    listed = [j.id for j in q.jobs("waiting", 0, 9, summary=True)]
    assert listed == later[::-1] + first[::-1]
    assert [j.id for j in q.jobs("waiting", 1, 3)] == [later[0], first[2], first[1]]
    job = q.job(first[0])
    assert job is not None and job.state is JobState.WAITING and job.name == "__default__" and job.data == {"n": 0}
    assert q.jobs("prioritized") == [] and q.jobs("waiting-children") == []


def test_a_failed_job_shows_bulls_fields(r: redis.Redis, catalog: Catalog) -> None:
    jid = bull_add(r, "legacy", data={"to": "a@b"})
    bull_fail(r, "legacy", jid, "smtp down")
    job = bull_queue(catalog).job(jid)
    assert job is not None and job.state is JobState.FAILED
    assert (job.attempts_made, job.failed_reason, job.attempts, job.finished_on) == (1, "smtp down", 1, NOW)
    assert job.stacktrace == ["Error: smtp down\n    at x"]


# --- actions ---------------------------------------------------------------------------

def test_pause_and_resume_as_bull_does(r: redis.Redis, catalog: Catalog) -> None:
    ids = [bull_add(r, "legacy") for _ in range(3)]
    q = bull_queue(catalog)
    pubsub = r.pubsub()
    pubsub.subscribe("bull:legacy:paused", "bull:legacy:resumed")
    q.pause("deploy", by="ops")
    assert not r.exists("bull:legacy:wait") and r.lrange("bull:legacy:paused", 0, -1) == [i.encode() for i in ids[::-1]]
    assert r.get("bull:legacy:meta-paused") == b"1" and r.hgetall("bull:legacy:meta") == {b"paused": b"1"}
    info = q.pause_info()
    assert info is not None and (info.reason, info.by) == ("deploy", "ops")
    added = bull_add(r, "legacy")  # Bull sends adds to `paused` now
    assert r.lindex("bull:legacy:paused", 0) == added.encode()
    q.resume()
    assert not r.exists("bull:legacy:paused", "bull:legacy:meta-paused", "bull:legacy:meta")
    assert r.lrange("bull:legacy:wait", 0, -1) == [i.encode() for i in ([added] + ids[::-1])]
    assert not q.is_paused() and q.pause_info() is None
    messages: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 5
    while len(messages) < 2 and time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.1)
        if m and m["type"] == "message":
            messages.append((m["channel"], m["data"]))
    assert messages == [(b"bull:legacy:paused", b"paused"), (b"bull:legacy:resumed", b"resumed")]
    pubsub.close()
    assert_no_bullmq_keys(r, "legacy")


def test_resume_repairs_a_half_paused_queue_without_losing_a_job(r: redis.Redis, catalog: Catalog) -> None:
    """What the old resume left: jobs moved to wait, meta cleared, meta-paused kept, so Bull
    sent new adds to `paused`. Bull's RENAME would drop wait; ours merges, older first."""
    older = [bull_add(r, "legacy") for _ in range(2)]
    r.set("bull:legacy:meta-paused", 1)
    newer = [bull_add(r, "legacy") for _ in range(2)]
    assert r.llen("bull:legacy:paused") == 2
    bull_queue(catalog).resume()
    assert r.lrange("bull:legacy:wait", 0, -1) == [i.encode() for i in newer[::-1] + older[::-1]]
    assert not r.exists("bull:legacy:paused", "bull:legacy:meta-paused")
    r.set("bull:legacy:meta-paused", 1)
    r.rpush("bull:legacy:paused", "x1")  # and pausing with both lists there merges too
    bull_queue(catalog).pause()
    assert r.lrange("bull:legacy:paused", 0, -1) == [b"x1", *(i.encode() for i in newer[::-1] + older[::-1])]


def test_retry_promote_remove_and_clean(r: redis.Redis, catalog: Catalog) -> None:
    failed = [bull_add(r, "legacy") for _ in range(3)]
    for i, jid in enumerate(failed):
        bull_fail(r, "legacy", jid, when=NOW + i)
    delayed = [bull_add(r, "legacy", delay=60_000), bull_add(r, "legacy", delay=90_000, priority=2)]
    q = bull_queue(catalog)
    q.retry(failed[0])
    job = r.hgetall(f"bull:legacy:{failed[0]}")
    assert b"failedReason" not in job and b"finishedOn" not in job and b"retriedOn" in job
    assert job[b"attemptsMade"] == b"1"  # Bull's job.retry() keeps it
    assert r.lrange("bull:legacy:wait", 0, -1) == [failed[0].encode()]
    q.promote(delayed[1])
    assert r.hget(f"bull:legacy:{delayed[1]}", "delay") == b"0" and r.zscore("bull:legacy:priority", delayed[1]) == 2
    assert r.lrange("bull:legacy:wait", 0, -1) == [failed[0].encode(), delayed[1].encode()]  # before priority-less
    assert q.promote_all() == 1 and r.lindex("bull:legacy:wait", 0) == delayed[0].encode()
    r.set(f"bull:legacy:{failed[1]}:lock", "token")
    with pytest.raises(JobLocked):
        q.remove(failed[1])
    with pytest.raises(JobLocked):
        q.retry(failed[1])
    r.delete(f"bull:legacy:{failed[1]}:lock")
    q.remove(failed[1])
    assert not r.exists(f"bull:legacy:{failed[1]}") and r.zcard("bull:legacy:failed") == 1
    assert q.clean("failed", grace=0) == 1 and not r.exists(f"bull:legacy:{failed[2]}")
    q.remove(delayed[1])
    assert r.zscore("bull:legacy:priority", delayed[1]) is None
    assert_no_bullmq_keys(r, "legacy")


def test_retry_all_goes_to_paused_while_the_queue_is_paused(r: redis.Redis, catalog: Catalog) -> None:
    failed = [bull_add(r, "legacy") for _ in range(5)]
    for jid in failed:
        bull_fail(r, "legacy", jid)
    q = bull_queue(catalog)
    q.pause()
    assert q.retry_all() == 5
    assert r.llen("bull:legacy:paused") == 5 and not r.exists("bull:legacy:wait", "bull:legacy:failed")
    assert_no_bullmq_keys(r, "legacy")


def test_what_cannot_be_done_safely_is_refused_and_writes_nothing(r: redis.Redis, catalog: Catalog) -> None:
    jid = bull_add(r, "legacy")
    q = bull_queue(catalog)
    before = sorted(r.keys("bull:legacy:*"))
    calls = [lambda: q.add("x", {}), lambda: q.add_bulk([("x", {}, {})]), lambda: q.update_progress("1", 5),
             lambda: q.add_log("1", "x"), lambda: q.drain(), lambda: q.obliterate(force=True),
             lambda: q.set_global_rate_limit(1, 1), lambda: q.remove_global_rate_limit(),
             lambda: q.upsert_job_scheduler("s", every=1), lambda: q.remove_job_scheduler("s"),
             lambda: q.remove_deduplication_key("d"), lambda: q.set_global_concurrency(2),
             lambda: q.remove_global_concurrency(), lambda: q.change_priority("1", 2), lambda: q.change_delay("1", 1)]
    for call in calls:
        with pytest.raises(NotSupportedOnBull, match="legacy Bull 3/4 queue"):
            call()
    assert sorted(r.keys("bull:legacy:*")) == before
    assert q.job_schedulers() == [] and q.global_rate_limit() is None and q.rate_limit_ttl() == 0
    q.update_data(jid, {"v": 2})
    assert json.loads(r.hget(f"bull:legacy:{jid}", "data") or "") == {"v": 2}


#: Queue methods a BullQueue may inherit: they only read, or write nothing in the queue's keys.
INHERITED_READS = {"is_registered", "job", "job_field", "lock_ttl_ms", "log_lines", "log_page", "logs", "workers",
                   "pause_info", "names", "discover", "metrics", "deduplication_job_id", "finished_per_minute",
                   "children", "children_values", "ignored_children_failures", "clean_count", "read_pause_info"}


def test_every_queue_method_is_either_a_read_or_done_the_bull_way() -> None:
    public = {n for n, _ in inspect.getmembers(BaseQueue) if not n.startswith("_")}
    own = {n for n in public if n in vars(BullQueue)}
    assert public - own == INHERITED_READS, "a new Queue method must be overridden in BullQueue or listed here"


def test_a_bullpen_worker_refuses_a_bull_queue(r: redis.Redis) -> None:
    jid = bull_add(r, "legacy")
    worker = Worker("legacy", lambda job: "ok", connection=r)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(burst=True)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], NotSupportedOnBull)
    assert "attemptsMade" in str(errors[0]) and "Bull's own workers" in str(errors[0])
    assert r.lrange("bull:legacy:wait", 0, -1) == [jid.encode()]
    assert_no_bullmq_keys(r, "legacy")


def test_the_worker_command_refuses_a_bull_queue_in_one_line(r: redis.Redis, redis_url: str) -> None:
    bull_add(r, "legacy")
    done = subprocess.run([sys.executable, "-m", "dashboard", "worker", "--queue", "legacy", "--burst",
                           "--handler", "tests.jobs:succeed", "--redis-url", redis_url],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Bull's own workers" in done.stderr
    assert_no_bullmq_keys(r, "legacy")


# --- the dashboard ---------------------------------------------------------------------

def test_the_dashboard_shows_and_manages_a_bull_queue(client: FlaskClient, r: redis.Redis) -> None:
    ids = [bull_add(r, "legacy") for _ in range(4)]
    bull_add(r, "legacy", priority=1)
    bull_pause(r, "legacy")
    Catalog(r).discover()  # an unpaused or paused Bull queue is found by Rescan
    html = client.get("/").get_data(as_text=True)
    assert "Bull 3/4" in html
    page = client.get("/queues/legacy?state=waiting").get_data(as_text=True)
    assert 'id="bull-badge"' in page and "1 of the waiting jobs have a priority" in page
    assert all(f"/queues/legacy/jobs/{i}" in page for i in ids)
    job_page = client.get(f"/queues/legacy/jobs/{ids[0]}").get_data(as_text=True)
    assert "unknown" not in job_page and "waiting" in job_page and "Bull 3/4" in job_page and "started" not in job_page
    assert post(client, "/queues/legacy/resume").status_code in (200, 302, 303)
    assert not r.exists("bull:legacy:meta-paused", "bull:legacy:paused") and r.llen("bull:legacy:wait") == 5
    assert post(client, "/queues/legacy/pause").status_code in (200, 302, 303)
    assert r.exists("bull:legacy:meta-paused") and r.llen("bull:legacy:paused") == 5
    resp = post(client, "/queues/legacy/schedulers/s/remove")
    assert resp.status_code == 409 and "legacy Bull 3/4 queue" in resp.get_data(as_text=True)
    assert_no_bullmq_keys(r, "legacy")


def test_a_key_of_the_wrong_type_stops_an_action_before_it_writes(r: redis.Redis, catalog: Catalog) -> None:
    jid = bull_add(r, "legacy")
    bull_fail(r, "legacy", jid)
    q = bull_queue(catalog)
    r.set("bull:legacy:paused", "not a list")  # another tool's key
    before = {text(k): r.type(k) for k in r.keys("bull:legacy:*")}
    for call in (q.pause, lambda: q.retry(jid), q.retry_all):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE bull:legacy:paused"):
            call()
    assert {text(k): r.type(k) for k in r.keys("bull:legacy:*")} == before and not r.exists("bull:legacy:meta-paused")
    r.set(f"bull:legacy:{jid}", "not a hash")
    assert bull_queue(catalog).counts().failed == 1 and q.clean("failed") == 0  # a stray: out of the set, key kept
    assert r.get(f"bull:legacy:{jid}") == b"not a hash" and r.zcard("bull:legacy:failed") == 0


def test_retry_all_on_a_bull_queue_is_bulls_retry_and_clusters_are_refused(client: FlaskClient,
                                                                           r: redis.Redis) -> None:
    """The dashboard's re-drive marks jobs and moves them with BullMQ's script: on a Bull queue
    "Retry all" is Bull's own retry instead, and re-driving or removing a cluster is refused."""
    ids = [bull_add(r, "legacy") for _ in range(3)]
    for jid in ids:
        bull_fail(r, "legacy", jid)
    Catalog(r).discover()
    before = digest(r)
    refused = post(client, "/queues/legacy/redrive", {"cluster": "0123456789abcdef"}, target="task")
    assert refused.status_code == 409 and "Bull" in refused.get_data(as_text=True)
    gone = post(client, "/queues/legacy/failures/0123456789abcdef/remove", target="task")
    assert gone.status_code == 409
    assert digest(r) == before
    started = post(client, "/queues/legacy/retry-all", target="task")
    assert started.status_code == 200
    deadline = time.monotonic() + 30
    while r.llen("bull:legacy:wait") < 3:
        assert time.monotonic() < deadline, "retry all did not finish"
        time.sleep(0.02)
    assert r.zcard("bull:legacy:failed") == 0
    assert not any(r.hexists(f"bull:legacy:{jid}", "bpRedrive") for jid in ids)
    assert_no_bullmq_keys(r, "legacy")
