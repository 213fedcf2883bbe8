"""The web dashboard: a Flask blueprint that mounts in any app, as a guest.

``init_dashboard(app, settings, redis_url, url_prefix="/admin/jobs")`` registers the
blueprint and its state and changes nothing app-wide in the host app: templates live under
``templates/bullpen/`` (a host's own ``base.html`` never replaces ours), htmx headers are
read without replacing the host's request class, and error pages and security headers
apply to the blueprint's routes only. The JSON API (:mod:`dashboard.web.api`, at
``api/v1/``) and Prometheus ``/metrics`` (:mod:`dashboard.web.metrics`) are blueprints nested
in it. Everything here talks to Redis through the runtime's API
(:class:`~dashboard.catalog.Catalog`, :class:`~dashboard.queue.Queue`).
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from redis.exceptions import AskError, RedisError

from ..catalog import Catalog
from ..clients import web_client
from ..config import Settings
from ..task_store import TaskStore
from . import (
    cleaning,  # noqa: F401 - adds the clean form's preview to the blueprint
    cockpit,  # noqa: F401 - adds the workers page and the strip to the blueprint
    failures,  # noqa: F401  (registers the failure-cluster and re-drive routes on bp)
)
from .api import api
from .extension import EXTENSION, DashboardState, current
from .metrics import metrics
from .tasks import TaskRegistry
from .views import bp, redis_down, standalone_error

__all__ = ["DashboardState", "current", "init_dashboard", "standalone_error"]

log = logging.getLogger(__name__)

bp.register_blueprint(api)
bp.register_blueprint(metrics)


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
                           tasks=TaskRegistry(store=TaskStore(client, settings.prefix)), redis_url=redis_url)
    app.extensions[EXTENSION] = state
    app.register_blueprint(bp, url_prefix=settings.url_prefix if url_prefix is None else url_prefix)
    try:
        found = state.rescan()
        log.info("dashboard: %d queue(s) found under prefix %r", len(found), settings.prefix)
    except RedisError as exc:
        log.warning("dashboard: could not scan for queues at start-up (%s); use Rescan later", exc)
    return state


@bp.errorhandler(AskError)  # MOVED or ASK
def _moved(exc: AskError) -> Response:
    """A single-server client was answered MOVED: ``REDIS_URL`` names a Redis Cluster node that
    could not be asked what it is at start-up. Switch to a cluster client; this request gets
    the 503 that retries, the next one is served."""
    if current().reconnect():
        log.warning("dashboard: Redis answered %s: it is a Redis Cluster node; now using a cluster client", exc)
    return redis_down(exc)
