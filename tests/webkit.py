"""Helpers and fixtures for the dashboard's view tests (imported by tests/test_web*.py).

Every app here points at the session's private Redis (``redis_url`` from conftest.py),
never at 127.0.0.1:6379.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from dashboard import Queue, Worker
from dashboard.config import Settings
from dashboard.job import Job
from dashboard.web import DashboardState

XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('x')</script>"
HX = {"HX-Request": "true"}


@pytest.fixture
def make_app(redis_url: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on the private Redis; their background threads stop after the test."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        options: dict[str, Any] = dict(redis_url=redis_url, secret_key="test-secret", poll_seconds=1.0)
        options.update(overrides)
        app = create_app(Settings(**options))
        app.testing = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        state(app).stop()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def state(app: Flask) -> DashboardState:
    result: DashboardState = app.extensions["bullpen"]
    return result


def token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token from a page's meta tag (the GET also starts the session)."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, "no csrf meta tag"
    return match.group(1)


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, *, target: str | None = None,
         headers: dict[str, str] | None = None, csrf: str | None = None) -> TestResponse:
    """POST like htmx would (when ``target`` is given) or like a plain form, with the CSRF token."""
    all_headers = {"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrf or token(client)}
    if target:
        all_headers.update({"HX-Request": "true", "HX-Target": target})
    all_headers.update(headers or {})
    return client.post(path, data=data or {}, headers=all_headers)


def queue(r: redis.Redis, name: str = "mail") -> Queue:
    return Queue(name, connection=r)


def run_burst(r: redis.Redis, name: str, handler: Callable[[Job], Any]) -> None:
    """Process everything waiting in ``name`` with ``handler`` (burst mode, this thread)."""
    Worker(name, handler, connection=r).run(burst=True)


def fail_odd(job: Job) -> Any:
    """Handler: odd ``i`` fail with a ValueError, even ones complete."""
    if job.data.get("i", 0) % 2:
        raise ValueError(f"cannot send mail #{job.data['i']}")
    return {"sent": job.data.get("i")}


def seed(r: redis.Redis, name: str = "mail", count: int = 10) -> Queue:
    """``count`` jobs run once: half completed, half failed."""
    q = queue(r, name)
    for i in range(count):
        q.add("welcome", {"i": i, "to": f"user{i}@example.com"})
    run_burst(r, name, fail_odd)
    return q


def rows(html: str) -> list[str]:
    """Job ids of the rows in a job table."""
    return re.findall(r'<tr data-job="([^"]+)">', html)


def digest(r: redis.Redis) -> str:
    """A digest of everything in the test Redis but the audit trail (``DEBUG DIGEST-VALUE`` of
    every key), to prove an action changed nothing; the audit trail records refusals too."""
    keys = sorted(k for k in r.scan_iter(count=1000) if b"::audit" not in k)
    values = r.execute_command("DEBUG", "DIGEST-VALUE", *keys) if keys else []
    return str(list(zip(keys, values)))
