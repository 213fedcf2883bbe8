"""Embedded workers, the demo's producer and handlers, and the web settings."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from dashboard import Queue
from dashboard.catalog import Catalog
from dashboard.config import ConfigError, Settings
from dashboard.embedded_workers import EmbeddedWorkers
from dashboard.job import Job
from dashboard.task_store import TaskStore
from dashboard.web import demo
from dashboard.web.overview import Overview
from dashboard.web.tasks import TaskRegistry
from tests.webkit import run_burst


def test_runtime_runs_registered_handlers_in_threads_and_stops(r: redis.Redis) -> None:
    done = threading.Event()
    seen: list[str] = []

    def handler(job: Job) -> Any:
        seen.append(job.id)
        if len(seen) == 3:
            done.set()
        return {"ok": True}

    runtime = EmbeddedWorkers(connection=r, concurrency=2, shutdown_timeout=5)
    runtime.register("runtime-q", handler)
    runtime.start()
    try:
        q = Queue("runtime-q", connection=r)
        for i in range(3):
            q.add("welcome", {"i": i})
        assert done.wait(10)
        overview = Overview(Catalog(r, "bull"), ttl=0)
        assert overview.row("runtime-q").workers == 1
    finally:
        runtime.stop()
    assert not runtime.running and sorted(seen) == ["1", "2", "3"]


def test_demo_producer_adds_realistic_jobs_and_respects_the_cap(r: redis.Redis,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "BACKLOG_CAP", 4)
    producer = demo.Producer(Catalog(r, "bull"))
    for name in demo.QUEUES:
        for _ in range(6):
            producer.add_one(name)
        counts = Queue(name, connection=r).counts()
        assert counts.waiting + counts.delayed == 4, name
    job = Queue("send-email", connection=r).job("1")
    assert job is not None and "@" in job.data["to"] and job.opts["removeOnComplete"] == {"count": 500}


def test_demo_handlers_complete_fail_and_log(r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "_pause", lambda seconds: None)
    demo._rng.seed(7)
    producer = demo.Producer(Catalog(r, "bull"))
    for name, (handler, _factory, _rate, _concurrency) in demo.QUEUES.items():
        if handler is None:
            continue
        for _ in range(40):
            producer.add_one(name)
        Queue(name, connection=r).promote_all()
        run_burst(r, name, handler)
    failed = {n: Queue(n, connection=r).counts().failed for n in demo.QUEUES}
    completed = {n: Queue(n, connection=r).counts().completed for n in demo.QUEUES}
    assert all(completed[n] > 0 for n in demo.QUEUES if n != "sync-crm")
    assert sum(failed.values()) > 0
    bad = Queue("resize-image", connection=r).jobs("failed", 0, 0)
    if bad:
        assert "UnidentifiedImageError" in bad[0].stacktrace[-1]
    assert any("250 2.0.0 Ok" in line for line in Queue("send-email", connection=r).logs("1"))


def test_task_registry_reuses_a_running_task_and_records_errors() -> None:
    tasks = TaskRegistry(keep=2)
    gate = threading.Event()

    def slow(progress: Any) -> int:
        progress(1)
        gate.wait(10)
        return 5

    first = tasks.start("q", "Retry all failed", 5, slow)
    assert tasks.start("q", "Retry all failed", 5, slow) is first  # a double click
    gate.set()
    assert first.wait(10) and first.done == 5 and first.percent == 100

    def broken(progress: Any) -> int:
        raise RuntimeError("redis went away")

    failed = tasks.start("q", "Clean failed", 1, broken)
    assert failed.wait(10) and failed.error == "RuntimeError: redis went away"
    tasks.start("q", "Clean completed", 0, lambda p: 0).wait(10)
    assert tasks.get(first.id) is None  # only the newest two are kept


def test_web_settings_from_the_environment() -> None:
    settings = Settings.from_env({"DASHBOARD_URL_PREFIX": "/admin/jobs/", "DASHBOARD_CONCURRENCY": "8"})
    assert settings.url_prefix == "/admin/jobs" and settings.concurrency == 8
    assert Settings.from_env({}).url_prefix == "" and Settings.from_env({}).concurrency == 4
    with pytest.raises(ConfigError, match="DASHBOARD_URL_PREFIX"):
        Settings.from_env({"DASHBOARD_URL_PREFIX": "admin"})
    with pytest.raises(ConfigError, match="DASHBOARD_CONCURRENCY"):
        Settings.from_env({"DASHBOARD_CONCURRENCY": "0"})


def test_handlers_from_the_environment_run_in_the_app(redis_url: str, r: redis.Redis) -> None:
    """A small deployment: gunicorn + DASHBOARD_EMBEDDED_WORKERS=1 + DASHBOARD_HANDLERS."""
    from app import create_app

    env = {"REDIS_URL": redis_url, "DASHBOARD_EMBEDDED_WORKERS": "1",
           "DASHBOARD_HANDLERS": "mail=tests.jobs:succeed, other = tests.jobs:fail"}
    settings = Settings.from_env(env)
    assert settings.handlers == (("mail", "tests.jobs:succeed"), ("other", "tests.jobs:fail"))
    with pytest.raises(ConfigError, match="DASHBOARD_HANDLERS"):
        Settings.from_env({"DASHBOARD_HANDLERS": "mail"})
    app = create_app(settings)
    try:
        q = Queue("mail", connection=r)
        q.add("x", {"n": 1})
        deadline = time.monotonic() + 20
        while q.counts().completed < 1:
            assert time.monotonic() < deadline, "the embedded worker did not run the job"
            time.sleep(0.05)
        assert q.job("1").returnvalue == {"echo": {"n": 1}}
    finally:
        app.extensions["bullpen"].stop()


def test_task_progress_is_readable_from_another_process_registry(r: redis.Redis) -> None:
    """Several gunicorn workers: the one that did not start a bulk action can still report it."""

    here, elsewhere = TaskRegistry(store=TaskStore(r, "bull")), TaskRegistry(store=TaskStore(r, "bull"))
    release = threading.Event()

    def work(progress):
        progress(500)
        release.wait(10)
        return 1000

    task = here.start("mail", "Retry all failed", 1000, work)
    deadline = time.monotonic() + 10
    while (seen := elsewhere.get(task.id)) is None or seen.done < 500:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert (seen.queue, seen.label, seen.expected, seen.finished) == ("mail", "Retry all failed", 1000, False)
    release.set()
    assert task.wait(10)
    final = elsewhere.get(task.id)
    assert final is not None and final.finished and final.done == 1000 and final.wait(0)
    assert 0 < r.ttl(f"bull::task:{task.id}") <= 3600
    assert elsewhere.get("nope") is None
