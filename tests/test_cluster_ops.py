"""Redis Cluster end to end for the operator surfaces: the command line, the JSON API and the
Prometheus scrape, each given one node's URL of a real 3-node cluster (tests/clusterkit.py)
and working a queue on each node."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from dashboard import Queue, Worker
from dashboard.__main__ import cli
from dashboard.config import ApiToken
from tests.clusterkit import Cluster
from tests.webkit import fail_odd

TOKENS = (ApiToken("ops", "t0ken", "write"),)


def cli_json(url: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--redis-url", url, "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def seeded(redis_cluster: Cluster) -> list[str]:
    """One queue per node, each with 4 jobs run (2 failed) and one waiting."""
    names = redis_cluster.names_per_node("ops")
    with redis_cluster.client() as rc:
        for name in names:
            q = Queue(name, connection=rc)
            for i in range(4):
                q.add("welcome", {"i": i})
            Worker(name, fail_odd, connection=rc, drain_delay=0.1).run(burst=True)
            q.add("welcome", {"i": 9})
    return names


def test_the_command_line_on_a_queue_on_each_node(cluster_app: Any, redis_cluster: Cluster) -> None:
    cluster_app()  # flushes the cluster for this test
    names = seeded(redis_cluster)
    assert {redis_cluster.owner(f"bull:{n}:meta") for n in names} == {0, 1, 2}
    url = redis_cluster.url(0)
    listed = {q["name"]: q for q in cli_json(url, "queues")["queues"]}
    assert set(listed) == set(names)
    for name in names:
        assert listed[name]["counts"]["failed"] == 2 and listed[name]["counts"]["waiting"] == 1
        info = cli_json(url, "info", name)
        assert info["counts"]["completed"] == 2
        failed = cli_json(url, "jobs", name, "failed")["jobs"]
        assert len(failed) == 2
        assert cli_json(url, "job", name, failed[0]["id"])["state"] == "failed"
        cli_json(url, "retry", name, "--all")
        cli_json(url, "pause", name, "--reason", "cluster drill", "--for", "15m")
        assert cli_json(url, "info", name)["pause"]["reason"] == "cluster drill"
        cli_json(url, "resume", name)
        added = cli_json(url, "add", name, "later", "--data", "{}", "--delay", "1h")
        assert added["id"]
    with redis_cluster.client() as rc:
        for name in names:
            counts = Queue(name, connection=rc).counts()
            assert (counts.failed, counts.waiting, counts.delayed, counts.paused) == (0, 3, 1, False)
            Queue(name, connection=rc).upsert_job_scheduler("tick", every=60)
    for name in names:  # the rest of the commands, on each node
        cli_json(url, "promote", name, "--all")
        waiting = cli_json(url, "jobs", name, "waiting")["jobs"]
        cli_json(url, "remove", name, waiting[0]["id"])
        cli_json(url, "clean", name, "completed", "--grace", "0")
        assert [s["key"] for s in cli_json(url, "schedulers", name)["schedulers"]] == ["tick"]
    cli_json(url, "workers")
    with redis_cluster.client() as rc:
        for name in names:
            counts = Queue(name, connection=rc).counts()
            assert counts.completed == 0 and counts.delayed == 0  # cleaned; promoted


def test_the_api_and_metrics_on_a_queue_on_each_node(cluster_app: Any, redis_cluster: Cluster) -> None:
    app: Flask = cluster_app(node=1, api_tokens=TOKENS)
    names = seeded(redis_cluster)
    client = app.test_client()
    auth = {"Authorization": "Bearer t0ken"}
    listed = client.get("/api/v1/queues", headers=auth)
    assert listed.status_code == 200, listed.get_data(as_text=True)
    for name in names:
        one = client.get(f"/api/v1/queues/{name}", headers=auth)
        assert one.status_code == 200, one.get_data(as_text=True)
        jobs = client.get(f"/api/v1/queues/{name}/jobs?state=failed", headers=auth)
        assert jobs.status_code == 200 and len(jobs.get_json()["jobs"]) == 2
        paused = client.post(f"/api/v1/queues/{name}/pause", headers=auth, json={"reason": "drill"})
        assert paused.status_code == 200, paused.get_data(as_text=True)
    scrape = client.get("/metrics", headers=auth)
    assert scrape.status_code == 200, scrape.get_data(as_text=True)[:300]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(scrape.get_data(as_text=True)) for s in f.samples}
    for name in names:
        assert samples[("bullpen_queue_jobs", (("queue", name), ("state", "failed")))] == 2
        assert samples[("bullpen_queue_paused", (("queue", name),))] == 1
    with redis_cluster.client() as rc:
        assert all(Queue(n, connection=rc).counts().paused for n in names)
