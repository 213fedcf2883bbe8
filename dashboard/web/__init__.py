"""The web dashboard: a Flask blueprint that mounts in any app, as a guest.

``init_dashboard(app, settings, redis_url, url_prefix="/admin/jobs")`` registers the
blueprint and its state and changes nothing app-wide in the host app: templates live under
``templates/bullpen/`` (a host's own ``base.html`` never replaces ours), htmx headers are
read without replacing the host's request class, and error pages and security headers
apply to the blueprint's routes only. Everything here talks to Redis through the runtime's
API (:class:`~dashboard.catalog.Catalog`, :class:`~dashboard.queue.Queue`).
"""

from __future__ import annotations

import logging

from flask import Flask
from redis.exceptions import RedisError

from ..catalog import Catalog
from ..clients import web_client
from ..config import Settings
from ..task_store import TaskStore
from . import failures  # noqa: F401  (registers the failure-cluster and re-drive routes on bp)
from .extension import EXTENSION, DashboardState, current
from .tasks import TaskRegistry
from .views import bp, standalone_error

__all__ = ["DashboardState", "current", "init_dashboard", "standalone_error"]

log = logging.getLogger(__name__)


def init_dashboard(app: Flask, settings: Settings, redis_url: str, *, url_prefix: str | None = None,
                   description: str = "") -> DashboardState:
    """Mount the dashboard on ``app`` and return its state (also ``app.extensions["bullpen"]``).

    Args:
        app: The Flask app; only its secret key is set, and only when it has none.
        settings: Prefix, poll interval, auth and read-only mode (see :mod:`dashboard.config`).
        redis_url: The Redis holding the queues.
        url_prefix: Where to mount (default ``settings.url_prefix``), e.g. ``/admin/jobs``.
        description: One line saying which Redis this is, shown in the footer.
    """
    if not app.secret_key:
        app.secret_key = settings.secret_key
    client = web_client(redis_url)
    state = DashboardState(settings=settings, catalog=Catalog(client, settings.prefix), redis_description=description,
                           tasks=TaskRegistry(store=TaskStore(client, settings.prefix)))
    app.extensions[EXTENSION] = state
    app.register_blueprint(bp, url_prefix=settings.url_prefix if url_prefix is None else url_prefix)
    try:
        found = state.rescan()
        log.info("dashboard: %d queue(s) found under prefix %r", len(found), settings.prefix)
    except RedisError as exc:
        log.warning("dashboard: could not scan for queues at start-up (%s); use Rescan later", exc)
    return state
