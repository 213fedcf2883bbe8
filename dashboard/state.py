"""Wiring the dashboard into a Flask app: one :class:`DashboardState` per app.

:func:`init_dashboard` makes the Redis client, registers the blueprint under any URL
prefix (so an existing Flask app can mount it, e.g. at ``/admin/jobs``), turns on
``request.htmx`` and finds queues written by other tools once (``Queue.discover``).
Views reach the state through :func:`current`. This module must not define routes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app
from htmx_flask import Htmx
from redis.backoff import NoBackoff
from redis.retry import Retry

from .config import Settings
from .overview import Overview
from .queue import Queue
from .runtime import Runtime
from .tasks import TaskRegistry, TaskStore

log = logging.getLogger(__name__)

EXTENSION = "bullpen"


@dataclass
class DashboardState:
    """What the views share: settings, the Redis client, caches and background work."""

    settings: Settings
    client: redis.Redis
    redis_description: str = ""
    tasks: TaskRegistry = field(default_factory=TaskRegistry)
    runtime: Runtime | None = None
    stoppers: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.overview = Overview(self.client, self.settings.prefix, self.queue, ttl=min(1.0, self.settings.poll_seconds / 2))

    def queue(self, name: str) -> Queue:
        """A Queue object for ``name`` on the shared client (cheap to make)."""
        return Queue(name, connection=self.client, prefix=self.settings.prefix)

    def rescan(self) -> list[str]:
        """Find queues created by other tools (bounded SCAN) and add them to the registry."""
        found = Queue.discover(self.client, self.settings.prefix)
        self.overview.invalidate()
        return found

    def stop(self) -> None:
        """Stop the demo producer and embedded workers (if any). Safe to call twice."""
        for stop in reversed(self.stoppers):
            stop()
        self.stoppers.clear()
        if self.runtime is not None:
            self.runtime.stop()


def current() -> DashboardState:
    """The state of the app handling this request."""
    state: DashboardState = current_app.extensions[EXTENSION]
    return state


def make_client(url: str) -> redis.Redis:
    """The web's Redis client: short timeouts and one quick retry, so a dead Redis gives a
    fast 503 instead of a hung page."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 1),
                                health_check_interval=30)


def init_dashboard(app: Flask, settings: Settings, redis_url: str, *, url_prefix: str | None = None,
                   description: str = "") -> DashboardState:
    """Mount the dashboard on ``app`` and return its state (also ``app.extensions["bullpen"]``)."""
    from .web import bp  # the blueprint imports this module

    if not app.secret_key:
        app.secret_key = settings.secret_key
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    Htmx(app)
    client = make_client(redis_url)
    state = DashboardState(settings=settings, client=client, redis_description=description,
                           tasks=TaskRegistry(store=TaskStore(client, settings.prefix)))
    app.extensions[EXTENSION] = state
    app.register_blueprint(bp, url_prefix=settings.url_prefix if url_prefix is None else url_prefix)
    try:
        found = state.rescan()
        log.info("dashboard: %d queue(s) found under prefix %r", len(found), settings.prefix)
    except redis.RedisError as exc:
        log.warning("dashboard: could not scan for queues at start-up (%s); use Rescan later", exc)
    return state
