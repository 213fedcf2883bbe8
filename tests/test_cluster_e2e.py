"""Redis Cluster end to end: with ``REDIS_URL`` naming one node of a real 3-node cluster
(tests/clusterkit.py, built once for this module), the dashboard serves every page and
action for a queue on each node, the worker command and embedded workers work queues whose
slot lives on another node, discovery finds queues on every primary, a queue without a hash
tag gets a clear answer, and a node going away gives a 503 the app recovers from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.cluster import RedisCluster

from dashboard import Queue, Worker, registry, scripts
from dashboard.__main__ import main as worker_main
from dashboard.catalog import Catalog
from dashboard.clients import cluster_mode, connect, web_client
from dashboard.config import Settings
from dashboard.connection import resolve_redis
from dashboard.errors import ClusterHashTagMissing
from dashboard.job import Job
from dashboard.keys import Keys
from dashboard.web import demo
from tests.clusterkit import Cluster
from tests.webkit import HX, fail_odd, post, rows, state

ROOT = Path(__file__).resolve().parents[1]
AppMaker = Callable[..., Flask]


@pytest.fixture
def rc(redis_cluster: Cluster) -> Iterator[RedisCluster]:
    """A cluster client for seeding and checking (the cluster is flushed by ``cluster_app``)."""
    with redis_cluster.client() as client:
        yield client


def seg(name: str) -> str:
    return quote(name, safe="")


def seed_states(rc: RedisCluster, name: str) -> dict[str, str]:
    """One or more jobs in every state a page lists (waiting-children aside); returns a job
    id per state."""
    q = Queue(name, connection=rc)
    for i in range(4):
        q.add("welcome", {"i": i})
    Worker(name, fail_odd, connection=rc, drain_delay=0.1).run(burst=True)  # ids 1, 3 completed; 2, 4 failed
    active = q.add("held", {"i": 9}).id
    scripts.Scripts(rc).run(scripts.move_to_active(q.keys, "test-token", 60_000, q.clock(), 1, ""))
    waiting = q.add("welcome", {"i": 10}).id
    prioritized = q.add("urgent", {"i": 11}, priority=3).id
    delayed = q.add("later", {"i": 12}, delay=3600).id
    return {"waiting": waiting, "prioritized": prioritized, "delayed": delayed, "active": active,
            "completed": "1", "failed": "2"}


def wait_task(app: Flask, resp_location: str) -> None:
    task_id = resp_location.rsplit("/", 1)[-1]
    task = state(app).tasks.get(task_id)
    assert task is not None and task.wait(30) and task.error is None, task


# --- detection --------------------------------------------------------------------------


def test_any_node_url_gives_a_cluster_client(redis_cluster: Cluster) -> None:
    for i in range(3):
        url = redis_cluster.url(i)
        assert cluster_mode(url) is True
        for client in (connect(url), web_client(url)):
            assert isinstance(client, RedisCluster)
            client.close()
        assert "Redis Cluster" in resolve_redis(Settings(redis_url=url)).description


def test_a_single_server_stays_a_single_server(redis_url: str) -> None:
    assert cluster_mode(redis_url) is False
    assert not isinstance(connect(redis_url), RedisCluster)


# --- pages ------------------------------------------------------------------------------


def test_every_page_for_a_queue_on_each_node(cluster_app: AppMaker, redis_cluster: Cluster, rc: RedisCluster) -> None:
    names = redis_cluster.names_per_node("mail")
    assert sorted(redis_cluster.owner(f"bull:{n}:meta") for n in names) == [0, 1, 2]
    ids = {n: seed_states(rc, n) for n in names}
    client = cluster_app(node=1).test_client()

    html = client.get("/").get_data(as_text=True)
    for n in names:
        assert f'href="/queues/{seg(n)}"' in html or n in html
    assert client.get("/", headers=HX).status_code == 200
    for n in names:
        for tab in ("waiting", "prioritized", "delayed", "active", "waiting-children", "completed", "failed"):
            for headers in ({}, HX):
                resp = client.get(f"/queues/{seg(n)}?state={tab}", headers=headers)
                assert resp.status_code == 200, (n, tab, resp.get_data(as_text=True)[:500])
                if tab in ids[n]:
                    assert ids[n][tab] in rows(resp.get_data(as_text=True)), (n, tab)
        for tab, job_id in ids[n].items():
            resp = client.get(f"/queues/{seg(n)}/jobs/{job_id}")
            assert resp.status_code == 200, (n, tab)
            assert client.get(f"/queues/{seg(n)}/jobs/{job_id}", headers=HX).status_code in (200, 286)  # 286: done
        assert client.get(f"/queues/{seg(n)}/jobs/1/download/data").get_data(as_text=True) == '{"i":0}'
        found = client.get(f"/search?q={ids[n]['failed']}&queue={seg(n)}")
        assert found.status_code == 303 and found.headers["Location"].endswith(f"/queues/{seg(n)}/jobs/2")
    everywhere = client.get(f"/search?q={ids[names[2]]['delayed']}")  # the same id exists in each queue
    assert everywhere.status_code == 200 and all(n in everywhere.get_data(as_text=True) for n in names)
    assert client.get("/audit").status_code == 200
    assert client.get("/healthz").get_data(as_text=True) == "ok\n"


# --- actions ----------------------------------------------------------------------------


def test_every_action_on_a_queue_on_each_node(cluster_app: AppMaker, redis_cluster: Cluster, rc: RedisCluster) -> None:
    names = redis_cluster.names_per_node("ops")
    ids = {n: seed_states(rc, n) for n in names}
    app = cluster_app(node=2)
    client = app.test_client()
    for n in names:
        q = Queue(n, connection=rc)
        base = f"/queues/{seg(n)}"
        assert post(client, f"{base}/pause", {"reason": "partner API down", "until": "0"}).status_code == 303
        info = q.pause_info()
        assert q.is_paused() and info is not None and info.reason == "partner API down"
        assert "partner API down" in client.get(base).get_data(as_text=True)
        assert post(client, f"{base}/resume").status_code == 303 and not q.is_paused() and q.pause_info() is None

        assert post(client, f"{base}/jobs/{ids[n]['failed']}/retry").status_code == 303
        assert q.job(ids[n]["failed"]).state == "waiting"
        assert post(client, f"{base}/jobs/{ids[n]['delayed']}/promote", target="queue").status_code == 200
        assert q.job(ids[n]["delayed"]).state == "waiting"
        assert post(client, f"{base}/jobs/{ids[n]['completed']}/remove").status_code == 303
        assert q.job(ids[n]["completed"]) is None

        q.add("later", {}, delay=3600)
        q.add("boom", {})
        Worker(n, fail_odd, connection=rc, drain_delay=0.1).run(burst=True)  # completes the waiting ones
        for path, form in ((f"{base}/retry-all", {}), (f"{base}/promote-all", {}),
                           (f"{base}/clean", {"state": "completed", "grace": "0"})):
            resp = post(client, path, form)
            assert resp.status_code == 303, (path, resp.get_data(as_text=True)[:300])
            wait_task(app, resp.headers["Location"])
        counts = q.counts()
        assert (counts.failed, counts.delayed, counts.completed) == (0, 0, 0), counts

    assert post(client, "/pause-all").status_code == 303
    assert all(Queue(n, connection=rc).is_paused() for n in names)
    assert post(client, "/resume-all").status_code == 303
    assert not any(Queue(n, connection=rc).is_paused() for n in names)
    assert post(client, "/rescan").status_code == 303
    audit = client.get("/audit").get_data(as_text=True)
    assert all(n in audit for n in names) and "partner API down" in audit
    for n in names:  # each queue's own trail, kept on its node
        assert "retry-all" in client.get(f"/queues/{seg(n)}").get_data(as_text=True).replace(" ", "-").lower()


# --- discovery --------------------------------------------------------------------------


def test_discovery_scans_every_primary(cluster_app: AppMaker, redis_cluster: Cluster, rc: RedisCluster) -> None:
    names = [f"{{node-{i}}}" for i in range(30)]
    for n in names:  # written as BullMQ would, without our registry
        rc.hset(Keys("bull", n).meta, "opts.maxLenEvents", "10000")
    assert {redis_cluster.owner(Keys("bull", n).meta) for n in names} == {0, 1, 2}
    assert registry.discover(rc, "bull", scan_count=5) == sorted(names)
    rc.delete("bull::queues")
    html = cluster_app(node=0).test_client().get("/").get_data(as_text=True)  # the app rescans at start-up
    assert all(n in html for n in names)


# --- workers ----------------------------------------------------------------------------


def test_worker_command_on_a_node_that_does_not_hold_the_queue(cluster_app: AppMaker, redis_cluster: Cluster,
                                                               rc: RedisCluster) -> None:
    name = redis_cluster.names_per_node("cmd")[0]
    Queue(name, connection=rc).add_bulk([("n", {"i": i}, {}) for i in range(20)] + [("bad", {}, {})])
    other = redis_cluster.other_node(Keys("bull", name).meta)
    env = {**os.environ, "REDIS_URL": redis_cluster.url(other)}
    done = subprocess.run([sys.executable, "-m", "dashboard", "worker", "--queue", name, "--handler",
                           "tests.jobs:succeed", "--burst"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MOVED" not in done.stderr
    q = Queue(name, connection=rc)
    assert q.counts().completed == 21
    assert q.job("1").returnvalue == {"echo": {"i": 0}}


def _echo(job: Job) -> object:
    return {"ran": job.data}


def test_embedded_workers_serve_a_queue_on_each_node(cluster_app: AppMaker, redis_cluster: Cluster,
                                                     rc: RedisCluster) -> None:
    names = redis_cluster.names_per_node("embedded")
    app = cluster_app(node=0, embedded_workers=True, concurrency=2,
                      handlers=dict.fromkeys(names, _echo))
    for n in names:
        Queue(n, connection=rc).add_bulk([("n", {"i": i}, {}) for i in range(10)])
    deadline = time.monotonic() + 60
    while not all(Queue(n, connection=rc).counts().completed == 10 for n in names):
        assert time.monotonic() < deadline, [Queue(n, connection=rc).counts() for n in names]
        time.sleep(0.1)
    workers = state(app).catalog.workers(names)
    assert {n: len(w) for n, w in workers.items()} == dict.fromkeys(names, 1)  # once each, on its own node
    html = app.test_client().get("/").get_data(as_text=True)
    assert "no workers" not in html.lower()


# --- hostile ----------------------------------------------------------------------------


def test_a_queue_without_hash_tag_gets_a_clear_answer(cluster_app: AppMaker, redis_cluster: Cluster,
                                                      rc: RedisCluster) -> None:
    tagged = redis_cluster.names_per_node("ok")[0]
    Queue(tagged, connection=rc).add("n", {})
    keys = Keys("bull", "plain")  # as a BullMQ producer that ignored the advice might leave it
    rc.hset(keys.meta, "opts.maxLenEvents", "10000")
    rc.hset(keys.job("1"), mapping={"name": "n", "data": "{}", "opts": "{}", "timestamp": "1700000000000"})
    rc.rpush(keys.wait, "1")
    assert len({redis_cluster.owner(k) for k in (keys.meta, keys.wait, keys.job("1"))}) > 1  # really spread

    with pytest.raises(ClusterHashTagMissing, match="hash tag"):
        Queue("plain", redis_url=redis_cluster.url(0))
    app = cluster_app(node=0)
    client: FlaskClient = app.test_client()
    overview = client.get("/")
    assert overview.status_code == 200
    html = overview.get_data(as_text=True)
    assert "needs a hash tag" in html and "{plain}" in html
    for path in ("/queues/plain", "/queues/plain?state=waiting", "/queues/plain/jobs/1"):
        resp = client.get(path)
        assert resp.status_code == 409 and "needs a hash tag" in resp.get_data(as_text=True), path
    for path in ("/queues/plain/pause", "/queues/plain/jobs/1/remove", "/queues/plain/retry-all"):
        resp = post(client, path)
        assert resp.status_code == 409 and "needs a hash tag" in resp.get_data(as_text=True), path
    assert post(client, "/queues/plain/pause", target="queue").status_code == 409
    assert post(client, "/pause-all").status_code == 303  # the others are paused, this one left alone
    assert Queue(tagged, connection=rc).is_paused() and not rc.hexists(keys.meta, "paused")
    assert client.get("/search?q=1").status_code in (200, 303)
    assert client.get("/healthz").status_code == 200


def test_a_node_going_away_gives_503_and_the_app_recovers(cluster_app: AppMaker, redis_cluster: Cluster,
                                                          rc: RedisCluster) -> None:
    names = redis_cluster.names_per_node("gone")
    for n in names:
        Queue(n, connection=rc).add("n", {})
    app = cluster_app(node=0)
    client = app.test_client()
    lost = redis_cluster.owner(Keys("bull", names[2]).meta)
    assert lost != 0 and client.get(f"/queues/{seg(names[2])}").status_code == 200
    redis_cluster.stop_node(lost)
    state(app).overview.invalidate()  # no counts from the cache of a second ago
    try:
        for path in (f"/queues/{seg(names[2])}", "/", f"/queues/{seg(names[2])}/jobs/1"):
            resp = client.get(path)
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "5", (path, resp.status_code)
            assert "Redis is unreachable" in resp.get_data(as_text=True)
        assert client.get("/", headers=HX).status_code == 503
        assert client.get("/healthz").status_code == 503
    finally:
        redis_cluster.restart_node(lost)
    deadline = time.monotonic() + 30
    while client.get("/healthz").status_code != 200:
        assert time.monotonic() < deadline, "the app did not recover"
        time.sleep(0.2)
    assert client.get("/").status_code == 200
    assert client.get(f"/queues/{seg(names[0])}").status_code == 200
    assert re.search(r"\bok\b", client.get("/healthz").get_data(as_text=True))


def test_started_while_its_node_was_down(cluster_app: AppMaker, redis_cluster: Cluster, rc: RedisCluster) -> None:
    """REDIS_URL names a node that is down when the dashboard (with embedded workers) and the
    worker command start: both workers wait for it, the dashboard switches to a cluster client
    at its first MOVED."""
    names = redis_cluster.names_per_node("late")
    down = 1
    name, embedded = names[2], names[0]  # held by other nodes
    Queue(name, connection=rc).add_bulk([("n", {"i": i}, {}) for i in range(5)])
    Queue(embedded, connection=rc).add_bulk([("n", {"i": i}, {}) for i in range(3)])
    redis_cluster.stop_node(down)  # and this process forgets what it knew of the node
    env = {**os.environ, "REDIS_URL": redis_cluster.url(down)}
    try:
        app = cluster_app(node=down, embedded_workers=True, handlers={embedded: _echo})
        assert not isinstance(state(app).catalog.client, RedisCluster)  # nothing could tell yet
        assert state(app).workers is None  # waiting for Redis
        proc = subprocess.Popen([sys.executable, "-m", "dashboard", "worker", "--queue", name, "--handler",
                                 "tests.jobs:succeed", "--burst"], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stderr is not None
        assert "waiting for it" in proc.stderr.readline()
    finally:
        redis_cluster.restart_node(down)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert Queue(name, connection=rc).counts().completed == 5
    deadline = time.monotonic() + 60
    while Queue(embedded, connection=rc).counts().completed != 3:
        assert time.monotonic() < deadline, Queue(embedded, connection=rc).counts()
        time.sleep(0.1)
    client = app.test_client()
    first = client.get(f"/queues/{seg(name)}")
    assert first.status_code == 503 and isinstance(state(app).catalog.client, RedisCluster)
    assert client.get(f"/queues/{seg(name)}").status_code == 200


def test_the_demo_runs_on_a_cluster_under_a_tagged_prefix(cluster_app: AppMaker, redis_cluster: Cluster,
                                                          rc: RedisCluster) -> None:
    app = cluster_app(node=1, demo=True)
    assert state(app).settings.prefix == "{bullpen-demo}"
    deadline = time.monotonic() + 60
    while len(Catalog(rc, "{bullpen-demo}").names()) < len(demo.QUEUES):
        assert time.monotonic() < deadline, "the demo producer added nothing"
        time.sleep(0.1)
    html = app.test_client().get("/").get_data(as_text=True)
    assert all(name in html for name in demo.QUEUES) and "hash tag" not in html


def test_a_worker_rides_out_its_queues_node_going_away(redis_cluster: Cluster, rc: RedisCluster,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    redis_cluster.flush()
    name = redis_cluster.names_per_node("ride")[1]
    home = redis_cluster.owner(Keys("bull", name).meta)
    worker = Worker(name, _echo, redis_url=redis_cluster.url(redis_cluster.other_node(Keys("bull", name).meta)),
                    drain_delay=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        q = Queue(name, connection=rc)

        def wait_done(job_id: str) -> None:
            deadline = time.monotonic() + 60
            while (job := q.job(job_id)) is None or job.state != "completed":
                assert time.monotonic() < deadline, job
                time.sleep(0.1)

        wait_done(q.add("before", {}).id)
        redis_cluster.stop_node(home)
        deadline = time.monotonic() + 30
        while "unreachable" not in caplog.text:  # the worker noticed
            assert time.monotonic() < deadline
            time.sleep(0.1)
        redis_cluster.restart_node(home)  # empty: its data and scripts are gone
        wait_done(q.add("after", {}, job_id="after").id)
    finally:
        worker.close()
        thread.join(30)


def test_the_worker_command_refuses_a_queue_without_hash_tag(redis_cluster: Cluster,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        worker_main(["worker", "--queue", "plain", "--handler", "tests.jobs:succeed", "--burst",
                     "--redis-url", redis_cluster.url(2)])
    assert exited.value.code == 2 and "needs a hash tag" in capsys.readouterr().err


def test_an_idle_worker_is_woken_through_the_cluster_by_the_queues_marker(redis_cluster: Cluster,
                                                                          rc: RedisCluster) -> None:
    """The worker's blocking BZPOPMIN on the marker goes to the queue's node through its named
    cluster client: with every timer an hour away, only the marker can wake it."""
    redis_cluster.flush()
    name = redis_cluster.names_per_node("wake")[2]
    worker = Worker(name, _echo, redis_url=redis_cluster.url(0), drain_delay=3600, stalled_interval=3600)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while [w.get("cmd") for w in state_workers(rc, name)] != ["bzpopmin"]:  # idle, blocked on the marker
            assert time.monotonic() < deadline, state_workers(rc, name)
            time.sleep(0.05)
        q = Queue(name, connection=rc)
        job_id = q.add("n", {"i": 1}).id
        while (job := q.job(job_id)) is None or job.state != "completed":
            assert time.monotonic() < deadline + 60, job
            time.sleep(0.05)
    finally:
        worker.close()
        thread.join(30)


def state_workers(rc: RedisCluster, name: str) -> list[dict[str, Any]]:
    return registry.connected_workers(rc, "bull", [name])[name]
