"""Scripts are loaded when first met missing (NOSCRIPT), one by one: a process loads only what
it runs, alone or in a pipelined batch, and again after Redis lost them."""

from __future__ import annotations

import redis

from dashboard import Queue, Worker, scripts
from dashboard.scripts import _SHAS


def _cached(r: redis.Redis, *names: str) -> list[bool]:
    return [bool(x) for x in r.script_exists(*(_SHAS[n] for n in names))]


def test_a_producer_and_a_worker_load_only_what_they_run(r: redis.Redis) -> None:
    r.script_flush()
    q = Queue("lazy", connection=r)
    q.add("job", {})
    assert _cached(r, "add_job", "move_to_finished", "obliterate") == [True, False, False]
    Worker("lazy", lambda job: None, connection=r).run(burst=True)
    assert q.counts().completed == 1
    assert _cached(r, "move_to_finished", "move_to_active", "obliterate", "read_failures") == [True, True, False, False]


def test_a_batch_loads_each_missing_script_and_keeps_the_order(r: redis.Redis) -> None:
    q = Queue("lazy", connection=r)
    ids = [q.add("job", {"i": i}).id for i in range(3)]
    r.script_flush()
    calls = [scripts.add_job(q.keys, [["", "late", "{}", '{"attempts":0,"delay":0}', 1, 0, 0, "0", ""]]),
             scripts.remove_job(q.keys, ids[0])]
    results = q.scripts.batch(calls)
    assert results[0][0] == b"4" and results[1] == 1
    assert _cached(r, "add_job", "remove_job", "obliterate") == [True, True, False]
    assert r.lrange("bull:lazy:wait", 0, -1) == [b"4", b"3", b"2"]


def test_a_first_batch_loads_its_scripts_before_it_runs(redis_url: str, r: redis.Redis) -> None:
    """A script met missing in the middle of a pipeline would run after the calls behind it:
    adding a job and removing it in one batch must leave no job, on a server that has the
    removing script but not yet the adding one."""
    r.script_flush()
    q = Queue("lazy", connection=redis.Redis.from_url(redis_url))  # a new client: nothing known loaded
    q.scripts.run(scripts.remove_job(q.keys, "none"))  # remove_job is loaded, add_job is not
    add = scripts.add_job(q.keys, [["x1", "job", "{}", '{"attempts":0,"delay":0,"jobId":"x1"}', 1, 0, 0, "0", ""]])
    results = q.scripts.batch([add, scripts.remove_job(q.keys, "x1")])
    assert results[0] == [b"x1", 0] and results[1] == 1
    assert r.exists("bull:lazy:x1") == 0 and r.llen("bull:lazy:wait") == 0
