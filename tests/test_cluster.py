"""Redis Cluster: a queue whose name or prefix carries a hash tag works across a real
three-node cluster built from private redis-servers (tests/clusterkit.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from dashboard import Queue, Worker
from dashboard.keys import Keys, cluster_slot_problem, pause_key
from dashboard.reads import DETAIL
from tests.clusterkit import Cluster


@pytest.fixture
def cluster(redis_cluster: Cluster) -> Iterator[RedisCluster]:
    redis_cluster.flush()
    with redis_cluster.client() as rc:
        yield rc


def test_queue_without_hash_tag_is_refused_with_advice(cluster: RedisCluster) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        Queue("plain", connection=cluster)


@pytest.mark.parametrize("name,prefix", [("{mail}", "bull"), ("mail", "{app}")])
def test_produce_and_work_on_cluster(cluster: RedisCluster, name: str, prefix: str) -> None:
    q = Queue(name, connection=cluster, prefix=prefix)
    q.add_bulk([("n", {"i": i}, {}) for i in range(50)] + [("p", {}, {"priority": 2}), ("d", {}, {"delay": 60})])
    q.add("boom", {}, attempts=2)

    def handler(job):
        if job.name == "boom":
            raise RuntimeError("nope")
        job.log("ran")
        return job.data

    Worker(name, handler, connection=cluster, prefix=prefix, drain_delay=0.2).run(burst=True)
    c = q.counts()
    assert (c.completed, c.failed, c.delayed) == (51, 1, 1)
    assert q.job("1").returnvalue == {"i": 0} and q.logs("1") == ["ran"]
    assert q.job("1", caps=DETAIL).returnvalue == {"i": 0} and q.log_page("1").lines == ["ran"]
    assert [j.data for j in q.jobs("completed", 0, 9, summary=True)] == [j.data for j in q.jobs("completed", 0, 9)]
    q.retry(q.jobs("failed", 0, 0)[0].id)
    assert q.counts().waiting == 1
    assert q.promote_all() == 1
    assert q.clean("completed", 0) == 51
    q.obliterate()
    assert q.counts().total == 0


@pytest.mark.parametrize("prefix,name", [("bull", "{sms}"), ("{app}", "mail"), ("bull", "a{b}c"), ("b}", "{x}"),
                                         ("{app}", "{sms}"), ("{a}b{", "c")])
def test_a_tag_that_holds_keeps_every_key_in_one_slot(prefix: str, name: str) -> None:
    assert cluster_slot_problem(prefix, name) is None
    k = Keys(prefix, name)
    job_ids = ["1", "}{", "{x}", "repeat:s:1", "a}b"]
    keys = [k.meta, k.wait, k.dedup("}"), k.scheduler("{y}"), pause_key(prefix, name),
            *(k.job(i) for i in job_ids), *(k.lock(i) for i in job_ids), *(k.logs(i) for i in job_ids)]
    assert len({key_slot(key.encode()) for key in keys}) == 1


@pytest.mark.parametrize("prefix,name", [("bull", "plain"), ("bull", "{}"), ("{}", "{x}"), ("x{", "{q}"),
                                         ("a{b", "c}d"), ("bull", "a{b")])
def test_no_tag_or_a_tag_the_pause_record_does_not_share_is_a_problem(prefix: str, name: str) -> None:
    assert "needs a hash tag" in (cluster_slot_problem(prefix, name) or "")
