"""Prometheus /metrics: the exposition parsed with prometheus_client's own parsers, its values
against the queues, and who may scrape it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from dashboard import Queue
from dashboard.codec import now_ms
from dashboard.config import ApiToken
from dashboard.keys import worker_client_name
from dashboard.redis_server import EmbeddedRedis, free_port
from tests.webkit import digest, queue, run_burst, seed

DOCS = Path(__file__).resolve().parent.parent / "docs"
TOKENS = (ApiToken("ci", "s3cret", "read"), ApiToken("ops", "t0ken", "write"), ApiToken("prom", "m3trics", "metrics"))
FAMILIES = {"bullpen_queue_jobs": "gauge", "bullpen_queue_oldest_waiting_seconds": "gauge",
            "bullpen_queue_paused": "gauge", "bullpen_queue_workers": "gauge", "bullpen_jobs_completed": "counter",
            "bullpen_jobs_failed": "counter"}


def scrape(client: FlaskClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """sample name and labels -> value, from the text exposition (parsed by prometheus_client)."""
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200 and resp.mimetype == "text/plain", resp.get_data(as_text=True)[:300]
    families = list(text_string_to_metric_families(resp.get_data(as_text=True)))
    assert {f.name: f.type for f in families} == FAMILIES
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_the_exposition_says_what_the_queues_hold(client: FlaskClient, r: redis.Redis,
                                                  redis_factory: Callable[..., redis.Redis]) -> None:
    seed(r, "mail", 10)  # our worker records BullMQ's metrics: 5 completed, 5 failed
    old = Queue("sms", connection=r, clock=lambda: now_ms() - 90_000)
    old.add("text", {})
    Queue("sms", connection=r).add("text", {}, delay=3600)
    queue(r, "sms").pause()
    worker = redis_factory()
    worker.client_setname(worker_client_name("bull", "mail"))
    samples = scrape(client)
    assert value(samples, "bullpen_queue_jobs", queue="mail", state="failed") == 5
    assert value(samples, "bullpen_queue_jobs", queue="mail", state="completed") == 5
    assert value(samples, "bullpen_queue_jobs", queue="sms", state="waiting") == 1
    assert value(samples, "bullpen_queue_jobs", queue="sms", state="delayed") == 1
    assert {labels for name, labels in samples if name == "bullpen_queue_jobs" and ("queue", "sms") in labels} == {
        (("queue", "sms"), ("state", s)) for s in ("waiting", "prioritized", "delayed", "active", "completed",
                                                   "failed", "waiting-children", "paused")}
    assert value(samples, "bullpen_jobs_completed_total", queue="mail") == 5
    assert value(samples, "bullpen_jobs_failed_total", queue="mail") == 5
    assert value(samples, "bullpen_jobs_completed_total", queue="sms") is None  # no worker recorded metrics there
    assert value(samples, "bullpen_queue_paused", queue="sms") == 1
    assert value(samples, "bullpen_queue_paused", queue="mail") == 0
    assert value(samples, "bullpen_queue_workers", queue="mail") == 1
    assert value(samples, "bullpen_queue_workers", queue="sms") == 0
    assert 90 <= value(samples, "bullpen_queue_oldest_waiting_seconds", queue="sms") < 3600
    assert value(samples, "bullpen_queue_oldest_waiting_seconds", queue="mail") == 0


def test_counters_follow_finished_jobs_and_scrapes_change_nothing(client: FlaskClient, r: redis.Redis) -> None:
    q = seed(r, "mail", 4)
    before = digest(r)
    first = scrape(client)
    assert digest(r) == before
    q.add("welcome", {"i": 7})
    run_burst(r, "mail", lambda job: None)
    second = scrape(client)
    assert value(second, "bullpen_jobs_completed_total", queue="mail") == (
        value(first, "bullpen_jobs_completed_total", queue="mail") + 1)


def test_hostile_names_and_metrics_keys_of_another_type(client: FlaskClient, r: redis.Redis) -> None:
    name = 'we"ird\\name\nwith {braces} and ünïcode'
    Queue(name, connection=r).add("x", {})
    seed(r, "mail", 2)
    r.delete("bull:mail:metrics:failed")
    r.set("bull:mail:metrics:failed", "not a hash")
    r.hset("bull:mail:metrics:completed", "count", "1e9")
    samples = scrape(client)
    assert value(samples, "bullpen_queue_jobs", queue=name, state="waiting") == 1
    assert value(samples, "bullpen_jobs_failed_total", queue="mail") is None
    assert value(samples, "bullpen_jobs_completed_total", queue="mail") is None


def test_openmetrics_when_the_scraper_asks(client: FlaskClient, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    resp = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.status_code == 200 and resp.mimetype == "application/openmetrics-text"
    families = {f.name: f for f in openmetrics_families(resp.get_data(as_text=True))}
    assert families["bullpen_jobs_completed"].type == "counter"
    assert [s.value for s in families["bullpen_jobs_completed"].samples if s.name.endswith("_total")] == [1]


ACCEPTS = ["", "text/plain", "text/plain; version=0.0.4", "*/*",
           "application/openmetrics-text; version=1.0.0",
           "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
           "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",  # what Prometheus 2 sends
           "application/openmetrics-text; version=0.0.1", "application/openmetrics-text",
           "text/plain; version=1.0.0; escaping=allow-utf-8",
           "application/openmetrics-text; version=1.0.0; escaping=dots"]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_lean_writer_writes_what_prometheus_client_writes(client: FlaskClient, r: redis.Redis,
                                                                accept: str) -> None:
    """Every format negotiated: the scrape is byte for byte prometheus_client's own encoding of
    the same families (hostile names, floats, counters)."""
    from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.exposition import choose_encoder

    from dashboard.web import exposition

    Queue('we"ird\\name\nwith {braces} and ünïcode', connection=r).add("x", {})
    seed(r, "mail", 4)
    resp = client.get("/metrics", headers={"Accept": accept})
    encoder, content_type = choose_encoder(accept)
    assert resp.headers["Content-Type"] == content_type
    parse = openmetrics_families if "openmetrics" in content_type else text_string_to_metric_families
    families = list(parse(resp.get_data(as_text=True)))
    assert len(families) == len(FAMILIES) or "escaping=dots" in accept  # dots: bullpen__queue__jobs ...
    gauge = GaugeMetricFamily("g", 'help with \\ and \n and "quotes"', labels=["a", "queue"])
    for v, label in ((0.1, 'x"y'), (1e21, "\\"), (123456789.0, "\n"), (-3, "é"), (float("inf"), ""), (7, "{}")):
        gauge.add_metric([label, label + "q"], v)
    counter = CounterMetricFamily("c", "a counter", labels=["queue"])
    counter.add_metric(["mail"], 5)
    plain = GaugeMetricFamily("p", "no labels", value=2.5)
    registry = CollectorRegistry(auto_describe=False)

    class Fixed:
        def collect(self) -> Any:
            yield from (gauge, counter, plain)

    registry.register(Fixed())
    body, lean_type = exposition.encode([gauge, counter, plain], accept)
    assert lean_type == content_type and body == encoder(registry)
    assert (exposition._lean_writer(encoder) is None) == ("escaping=" in accept)  # the lean writer was tested


def test_no_queues_yet(client: FlaskClient) -> None:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    families = list(text_string_to_metric_families(resp.get_data(as_text=True)))
    assert {f.name: f.type for f in families} == FAMILIES and [s for f in families for s in f.samples] == []


@pytest.mark.parametrize("token", ["m3trics", "s3cret", "t0ken"])
def test_with_auth_on_a_token_of_any_scope_or_basic_auth_scrapes(make_app, r: redis.Redis, token: str) -> None:
    seed(r, "mail", 2)
    client = make_app(auth_user="oncall", auth_password="pa55", api_tokens=TOKENS).test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and "Basic" in refused.headers["WWW-Authenticate"]
    assert "bullpen_" not in refused.get_data(as_text=True)
    assert value(scrape(client, Authorization=f"Bearer {token}"), "bullpen_queue_jobs", queue="mail",
                 state="failed") == 1
    basic = "Basic " + base64.b64encode(b"oncall:pa55").decode()
    assert value(scrape(client, Authorization=basic), "bullpen_queue_paused", queue="mail") == 0
    bad = client.get("/metrics", headers={"Authorization": "Bearer m3tricsX"})
    assert bad.status_code == 401 and "invalid_token" in bad.headers["WWW-Authenticate"]
    assert "m3trics" not in bad.get_data(as_text=True)


def test_without_auth_it_is_open_as_the_pages_are(make_app: Callable[..., Flask], r: redis.Redis) -> None:
    seed(r, "mail", 2)
    client = make_app(api_tokens=TOKENS).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/metrics").status_code == 405


def test_mounted_under_a_prefix(make_app: Callable[..., Flask], r: redis.Redis) -> None:
    seed(r, "mail", 2)
    client = make_app(url_prefix="/ops/queues").test_client()
    resp = client.get("/ops/queues/metrics")
    assert resp.status_code == 200 and b'bullpen_queue_jobs{queue="mail",state="failed"} 1.0' in resp.data


def test_redis_down_is_a_503(make_app: Callable[..., Flask]) -> None:
    port = free_port()
    client = make_app(redis_url=f"redis://127.0.0.1:{port}/0").test_client()
    down = client.get("/metrics")
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"
    with EmbeddedRedis(port=port):
        assert client.get("/metrics").status_code == 200


def test_the_example_alerts_and_grafana_dashboard_use_only_exported_metrics(client: FlaskClient,
                                                                           r: redis.Redis) -> None:
    seed(r, "mail", 2)
    exported = {name for name, _ in scrape(client)} | set(FAMILIES)
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    assert [rule["alert"] for rule in rules] == ["BullpenJobsFailed", "BullpenOldestWaitingTooOld"]
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [rule["expr"] for rule in rules] + [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bbullpen_[a-z_]+", expr)}
    assert used and used <= exported, used - exported
    assert {"bullpen_jobs_failed_total", "bullpen_queue_oldest_waiting_seconds"} <= used
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] and dashboard["schemaVersion"] >= 36
