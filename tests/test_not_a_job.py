"""BullMQ's bookkeeping keys are never jobs: pages, search and actions answer 404 naming
what the key is, and nothing is changed (a "Remove" on ``meta`` once erased a queue's pause
flag and global concurrency)."""

from __future__ import annotations

import json

import pytest
import redis
from flask.testing import FlaskClient

from dashboard import JobNotFound, Queue, Worker
from dashboard.web.urls import segment
from tests.webkit import digest, post, seed

#: (id under the queue's key prefix, how another tool writes it)
BOOKKEEPING = ["meta", "id", "events", "marker", "limiter", "pc", "stalled-check", "stalled", "repeat",
               "repeat:every-2s", "de:order-7", "dn:order-7", "metrics:completed", "metrics:completed:data",
               "1:lock", "1:logs", "1:dependencies", "1:processed", "1:failed", "1:unsuccessful", "wait",
               "completed", "delayed"]


def write_bookkeeping(r: redis.Redis) -> None:
    r.hset("bull:mail:meta", mapping={"paused": 1, "concurrency": 3, "max": 10, "duration": 1000})
    r.hset("bull:mail:repeat:every-2s", mapping={"name": "tick", "every": 2000, "ic": 4})
    r.zadd("bull:mail:repeat", {"every-2s": 1795000000000})
    r.set("bull:mail:de:order-7", "3")
    r.hset("bull:mail:dn:order-7", mapping={"name": "x", "data": "{}", "opts": "{}", "jid": "9"})
    r.hset("bull:mail:metrics:completed", mapping={"count": 5, "prevTS": 1, "prevCount": 1})
    r.rpush("bull:mail:metrics:completed:data", "1", "2")
    r.set("bull:mail:limiter", 3)
    r.set("bull:mail:1:lock", "token")
    r.sadd("bull:mail:1:dependencies", "bull:mail:9")
    r.hset("bull:mail:1:processed", "bull:mail:9", "{}")
    r.hset("bull:mail:1:failed", "bull:mail:9", "boom")
    r.zadd("bull:mail:1:unsuccessful", {"bull:mail:9": 1})


@pytest.mark.parametrize("job_id", BOOKKEEPING)
def test_bookkeeping_keys_are_not_jobs_anywhere(client: FlaskClient, r: redis.Redis, job_id: str) -> None:
    seed(r, "mail", 2)
    write_bookkeeping(r)
    before = digest(r)
    page = client.get(f"/queues/mail/jobs/{segment(job_id)}")
    assert page.status_code == 404 and "is not a job" in page.get_data(as_text=True)
    for action in ("retry", "promote", "remove"):
        resp = post(client, f"/queues/mail/jobs/{segment(job_id)}/{action}")
        assert resp.status_code == 404 and "is not a job" in resp.get_data(as_text=True), action
    search = client.get("/search", query_string={"q": job_id, "queue": "mail"})
    assert search.status_code == 404
    assert digest(r) == before
    q = Queue("mail", connection=r)
    assert q.job(job_id) is None
    with pytest.raises(JobNotFound, match="not a job"):
        q.remove(job_id)


@pytest.mark.parametrize("job_id", ["meta", "events", "wait", "repeat", "stalled-check", "metrics:completed:data",
                                    "a:b:lock", "repeat:every-2s"])
def test_add_refuses_ids_that_would_overwrite_bookkeeping(r: redis.Redis, job_id: str) -> None:
    with pytest.raises(ValueError, match="job_id"):
        Queue("mail", connection=r).add("x", {}, job_id=job_id)
    assert r.exists("bull:mail:meta") == 0 or r.type("bull:mail:meta") == b"hash"


def test_a_schedulers_jobs_are_jobs(client: FlaskClient, r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    job = q.add("tick", {}, job_id="repeat:every-2s:1795000000000")
    assert client.get(f"/queues/mail/jobs/{segment(job.id)}").status_code == 200


def test_bulk_actions_skip_bookkeeping_ids_found_in_state_sets(r: redis.Redis) -> None:
    """Another tool pushed 'meta' and a scheduler's definition into the state sets: retry all,
    promote all, clean and drain process the real jobs and never write those keys."""
    q = seed(r, "mail", 4)  # 2 completed, 2 failed
    write_bookkeeping(r)
    r.delete("bull:mail:1:lock")  # job 1 is completed, not running
    q.add("later", {}, delay=3600)
    r.hset("bull:mail:9:processed", "bull:mail:10", "{}")  # a parent's record, not a job
    strays = ["meta", "repeat:every-2s", "dn:order-7", "9:processed", "metrics:completed"]
    for stray in strays:
        r.zadd("bull:mail:failed", {stray: 1})
        r.zadd("bull:mail:completed", {stray: 1})
        r.zadd("bull:mail:delayed", {stray: 1})
        r.lpush("bull:mail:wait", stray)
    kept = {s: r.dump(f"bull:mail:{s}") for s in strays}
    assert q.retry_all("failed") == 2
    assert q.promote_all() == 1 + len(strays)
    assert q.clean("completed") == 2
    assert q.drain() == 3  # the 2 retried jobs and the promoted one
    assert {s: r.dump(f"bull:mail:{s}") for s in strays} == kept
    assert r.hget("bull:mail:meta", "paused") == b"1" and r.hget("bull:mail:meta", "concurrency") == b"3"


def test_options_our_worker_does_not_carry_out_are_named_once_and_left_intact(
        r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    """Jobs with a custom backoff type, a deduplication id and an ``opts.parent`` but no parent
    fields: they run, the worker names what it does not do (the custom backoff, once per queue;
    deduplication and flows it does carry out), and a parent's bookkeeping the jobs' hashes do not name (BullMQ
    reads the ``parentKey`` / ``parent`` fields, not ``opts.parent``) and a deduplication key
    naming another job stay as they are."""
    q = Queue("mail", connection=r)
    r.sadd("bull:mail:parent-1:dependencies", "bull:mail:child-a:b:c")
    r.set("bull:mail:de:order-7", "x:y:z")
    opts = {"parent": {"id": "parent-1", "queue": "bull:mail"}, "de": {"id": "order-7", "keepLastIfActive": True},
            "backoff": {"type": "linear", "delay": 10, "jitter": 0.5}}  # a Node worker's custom strategy
    for n in range(3):
        job = q.add("child", {"n": n})
        r.hset(f"bull:mail:{job.id}", "opts", json.dumps({**opts, "attempts": 0}))
    with caplog.at_level("WARNING", logger="dashboard.worker"):
        Worker("mail", lambda job: "ok", connection=r).run(burst=True)
    warned = [m for m in caplog.messages if "is not carried out by Bullpen workers" in m]
    assert sorted(m.split("option ")[1].split(" ")[0] for m in warned) == ["'backoff.type'"]
    assert q.counts().completed == 3
    assert r.smembers("bull:mail:parent-1:dependencies") == {b"bull:mail:child-a:b:c"}
    assert r.get("bull:mail:de:order-7") == b"x:y:z"


def test_a_worker_never_takes_a_bookkeeping_id_pushed_into_wait(r: redis.Redis,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    q = Queue("mail", connection=r)
    write_bookkeeping(r)
    r.hdel("bull:mail:meta", "paused")  # a paused queue would not be served at all
    job = q.add("real", {}, job_id="real-1")  # job 1 has children (1:dependencies): it could not complete
    kept = {s: r.dump(f"bull:mail:{s}") for s in ("meta", "repeat:every-2s")}
    r.lpush("bull:mail:wait", "meta", "repeat:every-2s")
    with caplog.at_level("ERROR", logger="dashboard.worker"):
        Worker("mail", lambda job: "ok", connection=r).run(burst=True)
    assert q.job(job.id).state == "completed"
    assert {s: r.dump(f"bull:mail:{s}") for s in kept} == kept
    assert r.lrange("bull:mail:wait", 0, -1) == [] and r.lrange("bull:mail:active", 0, -1) == []
    assert any("bookkeeping keys" in m and "bull:mail:meta" in m for m in caplog.messages)
