"""Deduplication in BullMQ 6.7.0's keys and semantics, on a real Redis: ``de:<id>``, ``dn:<id>``,
the ``deduplicated`` event, ttl / extend / replace / keep_last_if_active, what a worker does on finish."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis

from dashboard import Job, Queue, Worker, scripts
from dashboard.codec import text


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    return Queue("dd", connection=r)


def fields(r: redis.Redis, job_id: str) -> dict[str, str]:
    return {text(k): text(v) for k, v in r.hgetall(f"bull:dd:{job_id}").items()}


def events(r: redis.Redis, kind: str) -> list[dict[str, str]]:
    out = [{text(k): text(v) for k, v in f.items()} for _, f in r.xrange("bull:dd:events")]
    return [e for e in out if e["event"] == kind]


def run(r: redis.Redis, handler: Any, **kw: Any) -> Worker:
    w = Worker("dd", handler, connection=r, drain_delay=0.2, **kw)
    w.run(burst=True)
    return w


def test_simple_dedup_keeps_first_job_until_it_finishes(q: Queue, r: redis.Redis) -> None:
    first = q.add("a", {"n": 1}, deduplication={"id": "k"})
    again = q.add("a", {"n": 2}, deduplication={"id": "k"})
    assert first.id == again.id == "1"
    assert r.get("bull:dd:de:k") == b"1" and r.pttl("bull:dd:de:k") == -1
    f = fields(r, "1")
    assert f["deid"] == "k" and json.loads(f["opts"])["de"] == {"id": "k"}
    assert r.get("bull:dd:id") == b"2" and not r.exists("bull:dd:2") and r.lrange("bull:dd:wait", 0, -1) == [b"1"]
    assert events(r, "deduplicated") == [{"event": "deduplicated", "jobId": "1", "deduplicationId": "k",
                                          "deduplicatedJobId": "2"}]
    assert q.deduplication_job_id("k") == "1"
    run(r, lambda job: job.data["n"])
    assert not r.exists("bull:dd:de:k") and q.deduplication_job_id("k") is None
    assert q.add("a", {"n": 3}, deduplication={"id": "k"}).id == "3"


def test_ttl_is_kept_after_finish_and_extend_renews_it(q: Queue, r: redis.Redis) -> None:
    q.add("a", deduplication={"id": "t", "ttl": 60})
    assert 59_000 < r.pttl("bull:dd:de:t") <= 60_000
    assert json.loads(fields(r, "1")["opts"])["de"] == {"id": "t", "ttl": 60_000}
    r.pexpire("bull:dd:de:t", 50_000)
    assert q.add("a", deduplication={"id": "t", "ttl": 60}).id == "1"
    assert r.pttl("bull:dd:de:t") <= 50_000  # without extend the TTL runs on
    assert q.add("a", deduplication={"id": "t", "ttl": 60, "extend": True}).id == "1"
    assert r.pttl("bull:dd:de:t") > 50_000  # extend: a fresh TTL
    run(r, lambda job: None)
    assert r.get("bull:dd:de:t") == b"1"  # with a TTL the slot outlives the job, as in BullMQ
    r.delete("bull:dd:de:t")  # as if it expired
    assert q.add("a", deduplication={"id": "t", "ttl": 60}).id == "4"


def test_replace_removes_a_delayed_holder(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"v": 1}, delay=60, deduplication={"id": "r", "ttl": 30, "replace": True})
    r.pexpire("bull:dd:de:r", 20_000)
    second = q.add("a", {"v": 2}, delay=60, deduplication={"id": "r", "ttl": 30, "replace": True})
    assert second.id == "2" and not r.exists("bull:dd:1")
    assert r.zrange("bull:dd:delayed", 0, -1) == [b"2"] and r.get("bull:dd:de:r") == b"2"
    assert r.pttl("bull:dd:de:r") <= 20_000  # replace without extend keeps the TTL (KEEPTTL)
    assert [e["jobId"] for e in events(r, "removed")] == ["1"]
    assert events(r, "deduplicated")[-1] == {"event": "deduplicated", "jobId": "2", "deduplicationId": "r",
                                             "deduplicatedJobId": "1"}
    third = q.add("a", {"v": 3}, delay=60, deduplication={"id": "r", "ttl": 30, "replace": True, "extend": True})
    assert third.id == "3" and r.pttl("bull:dd:de:r") > 20_000


def test_replace_keeps_a_holder_that_is_no_longer_delayed(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"v": 1}, deduplication={"id": "r", "replace": True})
    assert q.add("a", {"v": 2}, deduplication={"id": "r", "replace": True}).id == "1"
    assert r.lrange("bull:dd:wait", 0, -1) == [b"1"] and r.get("bull:dd:de:r") == b"1"


def test_stale_slot_whose_job_is_gone_is_taken_over(q: Queue, r: redis.Redis) -> None:
    r.set("bull:dd:de:s", "99")
    r.hset("bull:dd:dn:s", mapping={"name": "old", "data": "{}", "opts": "{}", "jid": "98"})
    assert q.add("a", deduplication={"id": "s"}).id == "1"
    assert r.get("bull:dd:de:s") == b"1" and not r.exists("bull:dd:dn:s")


def keep_last_handler(q: Queue, seen: list[Any], adds: list[str]) -> Any:
    def handle(job: Job) -> Any:
        seen.append(job.data)
        if job.data["v"] == 1:
            for v in (2, 3):  # while job 1 is active: the last one is kept
                adds.append(q.add("a", {"v": v}, deduplication={"id": "L", "keep_last_if_active": True}).id)
        return job.data["v"]
    return handle


def test_keep_last_if_active_readds_the_last_add_when_the_active_job_finishes(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"v": 1}, deduplication={"id": "L", "ttl": 5, "keep_last_if_active": True})
    assert r.pttl("bull:dd:de:L") == -1  # keepLastIfActive: no TTL on the slot
    seen: list[Any] = []
    adds: list[str] = []
    run(r, keep_last_handler(q, seen, adds))
    assert adds == ["1", "1"]
    assert seen == [{"v": 1}, {"v": 3}]  # the kept add ran after the first, with the last data
    kept = fields(r, "3")  # the id the kept add was given (jid), as BullMQ's requeue uses it
    assert kept["deid"] == "L" and json.loads(kept["returnvalue"]) == 3
    assert r.get("bull:dd:id") == b"4"  # the re-add INCRs the counter, as BullMQ's does
    assert not r.exists("bull:dd:dn:L") and not r.exists("bull:dd:de:L")
    assert r.zrange("bull:dd:completed", 0, -1) == [b"1", b"3"]


def test_keep_last_readds_on_failure_and_when_the_job_is_removed_on_complete(q: Queue, r: redis.Redis) -> None:
    for remove in (False, True):
        r.flushdb()
        q.add("a", {"v": 1}, deduplication={"id": "L", "keep_last_if_active": True}, remove_on_complete=remove,
              remove_on_fail=remove)
        seen: list[Any] = []

        def fail_first(job: Job, seen: list[Any] = seen) -> Any:
            seen.append(job.data["v"])
            if job.data["v"] == 1:
                q.add("a", {"v": 2}, deduplication={"id": "L", "keep_last_if_active": True})
                raise RuntimeError("boom")
            return 2
        run(r, fail_first)
        assert seen == [1, 2] and r.exists("bull:dd:1") == (not remove)
        assert not r.exists("bull:dd:dn:L") and not r.exists("bull:dd:de:L")


def test_keep_last_while_waiting_just_deduplicates(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"v": 1}, deduplication={"id": "L", "keep_last_if_active": True})
    assert q.add("a", {"v": 2}, deduplication={"id": "L", "keep_last_if_active": True}).id == "1"
    assert not r.exists("bull:dd:dn:L")


def test_refused_finish_does_not_readd(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"v": 1}, deduplication={"id": "L", "keep_last_if_active": True})
    r.lmove("bull:dd:wait", "bull:dd:active", "RIGHT", "LEFT")
    r.set("bull:dd:1:lock", "someone-else")
    q.add("a", {"v": 2}, deduplication={"id": "L", "keep_last_if_active": True})
    now = 1_795_000_000_000
    call = scripts.move_to_finished(q.keys, now, [["1", "mine", "completed", "1", "", 10, -1, 0, 0]])
    assert q.scripts.run(call) == [-6]
    assert r.exists("bull:dd:dn:L") and not r.exists("bull:dd:2") and r.get("bull:dd:de:L") == b"1"
    call = scripts.move_to_finished(q.keys, now, [["1", "someone-else", "completed", "1", "", 10, -1, 0, 0]])
    assert q.scripts.run(call) == [1]
    assert r.lrange("bull:dd:wait", 0, -1) == [b"2"] and r.get("bull:dd:de:L") == b"2"


def test_the_finish_releases_the_slot_and_readds_the_kept_add_in_one_script(q: Queue, r: redis.Redis) -> None:
    # one script call: no moment exists at which the slot is free and the kept add not yet re-added
    # (an add there would take the slot and run beside the kept one), nor can a crash lose the kept add
    q.add("a", {"v": 1}, deduplication={"id": "L", "keep_last_if_active": True})
    r.lmove("bull:dd:wait", "bull:dd:active", "RIGHT", "LEFT")
    r.set("bull:dd:1:lock", "tok")
    q.add("a", {"v": 2}, deduplication={"id": "L", "keep_last_if_active": True})
    call = scripts.move_to_finished(q.keys, 1_795_000_000_000, [["1", "tok", "completed", "1", "", 10, -1, 0, 0]])
    assert q.scripts.run(call) == [1]
    assert r.lrange("bull:dd:wait", 0, -1) == [b"2"] and r.get("bull:dd:de:L") == b"2"
    assert not r.exists("bull:dd:dn:L") and json.loads(fields(r, "2")["data"]) == {"v": 2}
    assert q.add("a", {"v": 3}, deduplication={"id": "L", "keep_last_if_active": True}).id == "2"


def test_a_kept_add_that_cannot_be_readded_refuses_the_finish_before_writing(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"v": 1}, deduplication={"id": "L", "keep_last_if_active": True})
    r.lmove("bull:dd:wait", "bull:dd:active", "RIGHT", "LEFT")
    r.set("bull:dd:1:lock", "tok")
    q.add("a", {"v": 2}, deduplication={"id": "L", "keep_last_if_active": True})
    r.delete("bull:dd:marker")
    r.set("bull:dd:marker", "another tool's string")
    call = scripts.move_to_finished(q.keys, 1_795_000_000_000, [["1", "tok", "completed", "1", "", 10, -1, 0, 0]])
    with pytest.raises(redis.ResponseError, match="WRONGTYPE bull:dd:marker"):
        q.scripts.run(call)
    assert r.lrange("bull:dd:active", 0, -1) == [b"1"] and r.get("bull:dd:1:lock") == b"tok"
    assert r.exists("bull:dd:dn:L") and r.get("bull:dd:de:L") == b"1" and not r.exists("bull:dd:2")
    r.delete("bull:dd:marker")
    assert q.scripts.run(call) == [1] and r.lrange("bull:dd:wait", 0, -1) == [b"2"]


def test_removing_the_holder_drops_the_slot_and_the_kept_add(q: Queue, r: redis.Redis) -> None:
    for remove in (lambda: q.remove("1"), lambda: q.drain()):
        r.flushdb()
        q.add("a", {"v": 1}, deduplication={"id": "L", "keep_last_if_active": True})
        r.hset("bull:dd:dn:L", mapping={"name": "a", "data": "{}", "opts": "{}", "jid": "2"})
        remove()
        assert not r.exists("bull:dd:1") and not r.exists("bull:dd:de:L") and not r.exists("bull:dd:dn:L")


def test_queue_reads_and_removes_the_slot(q: Queue, r: redis.Redis) -> None:
    assert q.deduplication_job_id("x") is None and q.remove_deduplication_key("x") == 0
    q.add("a", deduplication={"id": "x", "ttl": 10})
    assert q.deduplication_job_id("x") == "1"
    assert q.remove_deduplication_key("x") == 1 and q.deduplication_job_id("x") is None
    assert q.add("a", deduplication={"id": "x"}).id == "2"


@pytest.mark.parametrize("bad", [{"ttl": 1}, {"id": ""}, {"id": 5}, "k", {"id": "k", "ttl": -1},
                                 {"id": "k", "ttl": 0}, {"id": "k", "extend": "yes"}, {"id": "k", "debounce": 1},
                                 {"id": "k", "keepLastIfActive": True}])
def test_bad_options_raise_before_any_write(q: Queue, r: redis.Redis, bad: Any) -> None:
    with pytest.raises(ValueError):
        q.add("a", deduplication=bad)
    assert r.dbsize() == 0


def test_worker_does_not_warn_about_deduplication(q: Queue, r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    q.add("a", deduplication={"id": "w"})
    with caplog.at_level(logging.WARNING):
        run(r, lambda job: None)
    assert "not carried out" not in caplog.text


def test_reschedule_moves_a_delayed_holder_to_the_new_adds_delay(r: redis.Redis) -> None:
    now = [1_795_000_000_000]
    q = Queue("dd", connection=r, clock=lambda: now[0])
    first = q.add("a", {"v": 1}, delay=60, deduplication={"id": "R", "reschedule": True})
    now[0] += 1000
    again = q.add("a", {"v": 2}, delay=5, deduplication={"id": "R", "reschedule": True})
    assert again.id == first.id
    assert r.zscore("bull:dd:delayed", first.id) == (now[0] + 5000) * 4096
    assert fields(r, first.id)["delay"] == "5000" and json.loads(fields(r, first.id)["data"]) == {"v": 1}
    assert events(r, "delayed")[-1] == {"event": "delayed", "jobId": first.id, "delay": str(now[0] + 5000)}
    assert r.zrange("bull:dd:marker", 0, -1, withscores=True) == [(b"1", now[0] + 5000)]
    # no delay: due at once (still in delayed, as BullMQ leaves it); a waiting holder is left alone
    q.add("a", {}, deduplication={"id": "R", "reschedule": True})
    assert r.zscore("bull:dd:delayed", first.id) == now[0] * 4096
    waiting = q.add("a", {}, deduplication={"id": "W", "reschedule": True})
    q.add("a", {}, delay=30, deduplication={"id": "W", "reschedule": True})
    assert r.lrange("bull:dd:wait", 0, -1) == [waiting.id.encode()] and fields(r, waiting.id)["delay"] == "0"
    with pytest.raises(ValueError):
        q.add("a", {}, deduplication={"id": "R", "reschedule": "yes"})


def test_add_bulk_keeps_the_right_add_for_keep_last_if_active(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"v": 1}, deduplication={"id": "L", "keep_last_if_active": True})
    r.lmove("bull:dd:wait", "bull:dd:active", "RIGHT", "LEFT")
    keep = {"deduplication": {"id": "L", "keep_last_if_active": True}}
    q.add_bulk([("other", {"v": 0}, {}), ("kept", {"v": 2}, keep)])
    assert r.hget("bull:dd:dn:L", "name") == b"kept" and json.loads(r.hget("bull:dd:dn:L", "data") or "") == {"v": 2}
