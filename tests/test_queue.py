"""Producer and admin API against a real Redis, checked key by key against BullMQ 6's layout."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from dashboard import JobLocked, JobNotFound, JobNotInState, JobState, Queue
from dashboard.codec import text
from dashboard.errors import QueueHasActiveJobs
from dashboard.keys import Keys

NOW = 1_795_000_000_000


class Clock:
    """A settable millisecond clock."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def q(r: redis.Redis, clock: Clock) -> Queue:
    return Queue("mail", connection=r, clock=clock)


def h(r: redis.Redis, key: str) -> dict[str, str]:
    return {text(k): text(v) for k, v in r.hgetall(key).items()}


def events(r: redis.Redis, key: str = "bull:mail:events") -> list[dict[str, str]]:
    return [{text(k): text(v) for k, v in f.items()} for _, f in r.xrange(key)]


def test_add_writes_bullmq_job_hash_wait_list_marker_and_events(q: Queue, r: redis.Redis) -> None:
    job = q.add("notify", {"messageId": 42})
    assert job.id == "1"
    assert r.get("bull:mail:id") == b"1"
    fields = h(r, "bull:mail:1")
    assert fields == {"name": "notify", "data": '{"messageId":42}', "opts": fields["opts"],
                      "timestamp": str(NOW), "delay": "0", "priority": "0"}
    assert json.loads(fields["opts"]) == {"attempts": 0, "delay": 0}
    assert r.lrange("bull:mail:wait", 0, -1) == [b"1"]
    assert r.zrange("bull:mail:marker", 0, -1, withscores=True) == [(b"0", 0.0)]
    assert [e["event"] for e in events(r)] == ["added", "waiting"]
    assert r.hget("bull:mail:meta", "opts.maxLenEvents") == b"10000"


def test_fifo_lifo_order_in_wait(q: Queue, r: redis.Redis) -> None:
    q.add("a", {})
    q.add("b", {})
    q.add("c", {}, lifo=True)
    # workers take from the right: c (lifo) first, then a, then b
    assert r.lrange("bull:mail:wait", 0, -1) == [b"2", b"1", b"3"]


def test_prioritized_score_is_priority_times_2_32_plus_counter(q: Queue, r: redis.Redis) -> None:
    q.add("p5", {}, priority=5)
    q.add("p1", {}, priority=1)
    assert r.zrange("bull:mail:prioritized", 0, -1, withscores=True) == [
        (b"2", float(1 * 2**32 + 2)), (b"1", float(5 * 2**32 + 1))]
    assert r.get("bull:mail:pc") == b"2"
    assert q.counts().prioritized == 2


def test_delayed_score_and_marker(q: Queue, r: redis.Redis) -> None:
    q.add("later", {}, delay=1.5)
    q.add("same-ms", {}, delay=1.5)
    due = NOW + 1500
    assert r.zrange("bull:mail:delayed", 0, -1, withscores=True) == [
        (b"1", float(due * 4096)), (b"2", float(due * 4096 + 1))]
    assert r.zscore("bull:mail:marker", "1") == due
    ev = events(r)
    assert {"event": "delayed", "jobId": "1", "delay": str(due)} in ev


def test_paused_queue_add_writes_no_ready_marker(q: Queue, r: redis.Redis) -> None:
    q.pause()
    q.add("x", {})
    assert r.exists("bull:mail:marker") == 0
    assert r.hget("bull:mail:meta", "paused") == b"1"
    assert q.is_paused() and q.counts().paused and q.counts().waiting == 1
    q.resume()
    assert r.zrange("bull:mail:marker", 0, -1) == [b"0"]
    assert [e["event"] for e in events(r)] == ["paused", "added", "waiting", "resumed"]


def test_custom_id_duplicate_returns_existing_and_still_increments_counter(q: Queue, r: redis.Redis) -> None:
    first = q.add("d", {"v": 1}, job_id="digest-2026-11-28")
    second = q.add("d", {"v": 2}, job_id="digest-2026-11-28")
    assert first.id == second.id == "digest-2026-11-28"
    assert json.loads(r.hget("bull:mail:digest-2026-11-28", "data")) == {"v": 1}
    assert r.get("bull:mail:id") == b"2"
    assert "duplicated" in [e["event"] for e in events(r)]


@pytest.mark.parametrize("bad", ["123", "0", "0:x:y", "a:b", "a:b:c:d", ""])
def test_invalid_custom_ids_are_refused_before_writing(q: Queue, r: redis.Redis, bad: str) -> None:
    with pytest.raises(ValueError):
        q.add("x", {}, job_id=bad)
    assert r.dbsize() == 0


def test_ids_of_three_parts_are_allowed(q: Queue) -> None:
    assert q.add("x", {}, job_id="repeat:abc:1").id == "repeat:abc:1"


@pytest.mark.parametrize("kwargs", [
    {"priority": -1}, {"priority": 2**21}, {"priority": 1.5}, {"delay": -1}, {"delay": float("nan")},
    {"attempts": -1}, {"backoff": ("linear", 1)}, {"remove_on_complete": "yes"},
])
def test_invalid_options_raise_value_error_and_write_nothing(q: Queue, r: redis.Redis, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        q.add("x", {}, **kwargs)
    assert r.dbsize() == 0


def test_unknown_bulk_option_is_named(q: Queue, r: redis.Redis) -> None:
    with pytest.raises(ValueError, match="nonsense"):
        q.add_bulk([("x", {}, {"nonsense": 1})])
    assert r.dbsize() == 0


def test_unserializable_data_raises_type_error_naming_the_problem(q: Queue, r: redis.Redis) -> None:
    with pytest.raises(TypeError, match="job data for 'x' must be JSON-serializable.*set"):
        q.add("x", {"tags": {"a", "b"}})
    with pytest.raises(TypeError, match="JSON-serializable"):
        q.add("x", {"n": float("nan")})
    with pytest.raises(TypeError, match="JSON-serializable"):
        q.add_bulk([("ok", {"a": 1}, {}), ("bad", {"o": object()}, {})])
    assert r.dbsize() == 0  # nothing written, not even the first bulk job


def test_add_bulk_adds_all_in_order(q: Queue, r: redis.Redis) -> None:
    jobs = q.add_bulk([("notify", {"messageId": i}, {}) for i in range(2500)]
                      + [("p", {}, {"priority": 2}), ("d", {}, {"delay": 10})])
    assert [j.id for j in jobs[:3]] == ["1", "2", "3"]
    c = q.counts()
    assert (c.waiting, c.prioritized, c.delayed) == (2500, 1, 1)
    assert r.lindex("bull:mail:wait", -1) == b"1"


def test_add_bulk_duplicates_inside_one_call_behave_as_separate_adds(q: Queue, r: redis.Redis) -> None:
    """Jobs go many to a script call: a custom id repeated inside one call keeps the first job,
    and the counter still moves once per add, as separate add() calls would."""
    jobs = q.add_bulk([("a", {"n": 1}, {"job_id": "same"}), ("b", {}, {}), ("c", {"n": 3}, {"job_id": "same"})])
    assert [j.id for j in jobs] == ["same", "2", "same"]
    assert q.job("same").data == {"n": 1}
    assert r.get("bull:mail:id") == b"3"
    assert q.counts().waiting == 2


def test_add_bulk_checks_meta_and_sets_the_marker_once_per_call(q: Queue, r: redis.Redis) -> None:
    """A script call adding many jobs reads meta and ZADDs the ready marker for its first waiting job
    only: nothing in the call can change them, so the end state is that of one add() per job."""
    r.config_resetstat()
    q.add_bulk([("n", {"i": i}, {}) for i in range(50)] + [("p", {}, {"priority": 3}), ("d", {}, {"delay": 5})])
    stats = r.info("commandstats")
    assert stats["cmdstat_hmget"]["calls"] == 1
    assert stats["cmdstat_zadd"]["calls"] == 4  # the ready marker, prioritized, delayed, the next-due marker
    assert r.zrange("bull:mail:marker", 0, 0) == [b"0"] and q.counts().waiting == 50
    assert [e["event"] for e in events(r)].count("waiting") == 51
    q.pause()
    q.add_bulk([("n", {}, {}), ("n", {}, {})])
    r.delete("bull:mail:marker")
    q.add_bulk([("n", {}, {}), ("n", {}, {})])  # paused: still no ready marker, for every job of the call
    assert r.exists("bull:mail:marker") == 0
    q.resume()
    r.hset("bull:mail:meta", "concurrency", 1)
    r.lpush("bull:mail:active", "x")
    r.delete("bull:mail:marker")
    q.add_bulk([("n", {}, {}), ("n", {}, {})])  # at the global concurrency: none either
    assert r.exists("bull:mail:marker") == 0


def test_counts_and_paging_newest_first(q: Queue) -> None:
    for i in range(30):
        q.add("n", {"i": i})
    page = q.jobs("waiting", 0, 9)
    assert [j.data["i"] for j in page] == list(range(29, 19, -1))
    deep = q.jobs(JobState.WAITING, 20, 29)
    assert [j.data["i"] for j in deep] == list(range(9, -1, -1))
    assert all(j.state is JobState.WAITING for j in deep)
    assert q.jobs("failed", 0, 9) == []
    with pytest.raises(ValueError):
        q.jobs("bogus", 0, 1)


def test_job_lookup_state_and_missing(q: Queue) -> None:
    q.add("a", {})
    q.add("b", {}, delay=5)
    q.add("c", {}, priority=2)
    assert q.job("1").state is JobState.WAITING
    assert q.job("2").state is JobState.DELAYED
    assert q.job("3").state is JobState.PRIORITIZED
    assert q.job("404") is None
    assert q.job("") is None


def test_malformed_job_hash_from_another_tool_is_shown_not_fatal(q: Queue, r: redis.Redis) -> None:
    r.hset("bull:mail:7", mapping={"name": "x", "data": "{not json", "opts": "[]", "timestamp": "soon"})
    r.lpush("bull:mail:wait", "7")
    r.set("bull:mail:8", "a string, not a hash")
    r.lpush("bull:mail:wait", "8")
    job = q.job("7")
    assert job.data == "{not json" and job.opts == {} and job.timestamp is None
    assert any("data" in p for p in job.problems)
    odd = q.job("8")
    assert odd.state is JobState.UNKNOWN and odd.problems
    assert {j.id for j in q.jobs("waiting", 0, 10)} == {"7", "8"}


def test_counts_survive_a_wrongly_typed_state_key(q: Queue, r: redis.Redis) -> None:
    r.set("bull:mail:failed", "oops")
    q.add("a", {})
    c = q.counts()
    assert c.waiting == 1 and c.failed == 0
    assert any("bull:mail:failed" in p for p in c.problems)


def _fail(q: Queue, r: redis.Redis, job_id: str, at: int) -> None:
    """Put a job in failed as a worker would leave it (the worker tests cover the real path)."""
    r.lrem("bull:mail:wait", 0, job_id)
    r.zadd("bull:mail:failed", {job_id: at})
    r.hset(f"bull:mail:{job_id}", mapping={"failedReason": "boom", "finishedOn": at, "atm": 3, "ats": 3,
                                          "processedOn": at})


def test_retry_moves_failed_to_wait_resets_attempts_keeps_traces(q: Queue, r: redis.Redis) -> None:
    q.add("a", {})
    _fail(q, r, "1", NOW)
    r.hset("bull:mail:1", "stacktrace", '["trace 1"]')
    r.delete("bull:mail:marker")
    q.retry("1")
    fields = h(r, "bull:mail:1")
    assert r.lrange("bull:mail:wait", 0, -1) == [b"1"]
    assert r.zcard("bull:mail:failed") == 0
    assert fields["atm"] == "0" and fields["ats"] == "0"
    assert "failedReason" not in fields and "finishedOn" not in fields
    assert fields["stacktrace"] == '["trace 1"]'
    assert r.zrange("bull:mail:marker", 0, -1) == [b"0"]
    assert events(r)[-1] == {"event": "waiting", "jobId": "1", "prev": "failed"}
    with pytest.raises(JobNotInState):
        q.retry("1")
    with pytest.raises(JobNotFound):
        q.retry("999")


def test_retry_keeps_priority(q: Queue, r: redis.Redis) -> None:
    q.add("p", {}, priority=7)
    r.zrem("bull:mail:prioritized", "1")
    r.zadd("bull:mail:failed", {"1": NOW})
    q.retry("1")
    assert r.zrange("bull:mail:prioritized", 0, -1) == [b"1"]


def test_retry_all_in_batches_only_jobs_failed_before_the_call(q: Queue, r: redis.Redis, clock: Clock) -> None:
    q.add_bulk([("n", {}, {}) for _ in range(2500)])
    for i in range(1, 2501):
        r.zadd("bull:mail:failed", {str(i): NOW - 10})
    r.delete("bull:mail:wait")
    r.zadd("bull:mail:failed", {"late": NOW + 10})  # failed after the retry started: left alone
    seen: list[int] = []
    assert q.retry_all("failed", progress=seen.append) == 2500
    assert seen[-1] == 2500 and len(seen) == 3  # three bounded batches
    assert r.llen("bull:mail:wait") == 2500
    assert r.zrange("bull:mail:failed", 0, -1) == [b"late"]


def test_promote_one_and_all(q: Queue, r: redis.Redis) -> None:
    for _ in range(3):
        q.add("d", {}, delay=60)
    q.add("dp", {}, delay=60, priority=4)
    q.promote("1")
    assert r.lrange("bull:mail:wait", 0, -1) == [b"1"]
    assert r.hget("bull:mail:1", "delay") == b"0"
    with pytest.raises(JobNotInState):
        q.promote("1")
    with pytest.raises(JobNotFound):
        q.promote("nope")
    assert q.promote_all() == 3
    assert q.counts().delayed == 0 and q.counts().prioritized == 1 and q.counts().waiting == 3
    assert r.zscore("bull:mail:marker", "1") is None


def test_remove_any_state_but_refuses_locked(q: Queue, r: redis.Redis) -> None:
    q.add("a", {})
    q.add("b", {}, delay=5)
    r.rpush("bull:mail:1:logs", "line")
    q.remove("1")
    q.remove("2")
    assert r.exists("bull:mail:1", "bull:mail:1:logs", "bull:mail:2") == 0
    assert q.counts().total == 0
    assert {"event": "removed", "jobId": "2", "prev": "delayed"} in events(r)
    q.add("c", {})
    r.set("bull:mail:3:lock", "someone")
    with pytest.raises(JobLocked):
        q.remove("3")
    with pytest.raises(JobNotFound):
        q.remove("404")


def test_clean_oldest_first_respects_grace_and_limit(q: Queue, r: redis.Redis) -> None:
    for i in range(1, 11):
        q.add("n", {})
        r.lrem("bull:mail:wait", 0, str(i))
        r.zadd("bull:mail:completed", {str(i): NOW - 60_000 + i})  # finished about a minute ago
    q.add("fresh", {})
    r.lrem("bull:mail:wait", 0, "11")
    r.zadd("bull:mail:completed", {"11": NOW})
    assert q.clean("completed", grace=30, limit=4) == 4
    assert r.zrange("bull:mail:completed", 0, 0) == [b"5"]
    assert r.exists("bull:mail:1") == 0
    assert q.clean("completed", grace=30) == 6
    assert r.zrange("bull:mail:completed", 0, -1) == [b"11"]
    assert {"event": "cleaned", "count": "6"} in events(r)
    with pytest.raises(ValueError):
        q.clean("active")


def test_drain_and_obliterate(q: Queue, r: redis.Redis) -> None:
    q.add_bulk([("n", {}, {}) for _ in range(1200)] + [("p", {}, {"priority": 1}), ("d", {}, {"delay": 9})])
    assert q.drain() == 1201
    assert q.counts().delayed == 1
    q.add("a", {})
    r.lpush("bull:mail:active", "99")
    with pytest.raises(QueueHasActiveJobs):
        q.obliterate()
    q.obliterate(force=True)
    assert r.keys("bull:mail:*") == []
    assert "mail" not in Queue.names(r)


def test_names_from_registry_and_discover_by_scan(q: Queue, r: redis.Redis) -> None:
    q.add("a", {})
    assert Queue.names(r) == ["mail"]
    r.hset("bull:node-made:meta", "version", "bullmq:6.7.0")  # a queue only Node has touched
    r.hset("other:elsewhere:meta", "x", "1")
    assert Queue.discover(r) == ["mail", "node-made"]
    assert Queue.names(r) == ["mail", "node-made"]
    assert Queue.names(r, prefix="other") == []


def test_progress_and_logs(q: Queue, r: redis.Redis) -> None:
    job = q.add("a", {})
    job.update_progress({"pct": 50})
    assert job.log("one") == 1
    assert r.hget("bull:mail:1", "progress") == b'{"pct":50}'
    assert q.logs("1") == ["one"]
    assert events(r)[-1] == {"event": "progress", "jobId": "1", "data": '{"pct":50}'}
    with pytest.raises(JobNotFound):
        q.update_progress("404", 1)


def test_queue_name_rules() -> None:
    for bad in ["", "a:b"]:
        with pytest.raises(ValueError):
            Queue(bad, connection=redis.Redis())


def test_every_key_comes_from_keys(q: Queue) -> None:
    k = Keys("bull", "mail")
    assert (k.wait, k.waiting_children, k.stalled_check, k.lock("5"), k.logs("5")) == (
        "bull:mail:wait", "bull:mail:waiting-children", "bull:mail:stalled-check", "bull:mail:5:lock",
        "bull:mail:5:logs")
    assert Keys("{app}", "q").job("1") == "{app}:q:1"


def test_legacy_paused_list_is_counted_and_resume_migrates_it_in_order(q: Queue, r: redis.Redis) -> None:
    """BullMQ <= 5 parked jobs in a `paused` list; 6.x semantics move them back on resume."""
    for i in (1, 2, 3):
        r.hset(f"bull:mail:{i}", mapping={"name": "old", "data": "{}", "opts": "{}", "timestamp": NOW})
    r.lpush("bull:mail:paused", "1", "2", "3")  # 1 is the oldest: at the right end, next to run
    r.lpush("bull:mail:wait", "9")
    r.hset("bull:mail:9", mapping={"name": "new", "data": "{}", "opts": "{}", "timestamp": NOW})
    c = q.counts()
    assert c.waiting == 4 and c.legacy_paused == 3
    assert c.as_dict()["waiting"] == 1 and c.as_dict()["paused"] == 3  # as Node 6's getJobCounts
    q.resume()
    assert r.exists("bull:mail:paused") == 0
    assert r.lrange("bull:mail:wait", 0, -1) == [b"9", b"3", b"2", b"1"]


def test_summary_listing_leaves_out_traces_and_return_values(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"x": 1}, attempts=2)
    r.hset("bull:mail:1", mapping={"stacktrace": '["long trace"]', "returnvalue": '{"big": 1}',
                                   "failedReason": "boom"})
    r.lpush("bull:mail:wait", "gone")  # an id whose hash no longer exists
    (job,) = q.jobs("waiting", 0, 9, summary=True)
    assert (job.id, job.name, job.data, job.attempts, job.failed_reason) == ("1", "a", {"x": 1}, 2, "boom")
    assert job.stacktrace == [] and job.returnvalue is None
    (full,) = q.jobs("waiting", 0, 9)
    assert full.stacktrace == ["long trace"] and full.returnvalue == {"big": 1}

