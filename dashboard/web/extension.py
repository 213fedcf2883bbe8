"""The dashboard's per-app state: one :class:`DashboardState` in ``app.extensions["bullpen"]``.

It holds the settings, the runtime's :class:`~dashboard.catalog.Catalog` (the only way the
web layer reaches Redis), the shared overview snapshot, the bulk-task registry and, when
the app runs them, the embedded workers and the demo producer. Views reach it through
:func:`current`. This module must not define routes or import the views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from ..audit import AuditLog
from ..catalog import Catalog
from ..clients import UNAVAILABLE, is_cluster, web_client
from ..config import Settings
from ..embedded_workers import EmbeddedWorkers
from ..queue import Queue
from ..task_store import TaskStore
from .overview import Overview
from .tasks import TaskRegistry

#: The key of the state in ``app.extensions``.
EXTENSION = "bullpen"


@dataclass
class DashboardState:
    """What the views share: settings, the catalog of queues, caches and background work."""

    settings: Settings
    catalog: Catalog
    redis_description: str = ""
    tasks: TaskRegistry = field(default_factory=TaskRegistry)
    workers: EmbeddedWorkers | None = None
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    #: The Redis URL the catalog's client was made for ("" when the host app made it).
    redis_url: str = ""

    def __post_init__(self) -> None:
        self.overview = Overview(self.catalog, ttl=min(1.0, self.settings.poll_seconds / 2),
                                 oldest_alert_ms=int(self.settings.oldest_waiting_alert * 1000))
        self.audit = AuditLog(self.catalog.client, self.settings.prefix)

    def reconnect(self) -> bool:
        """After Redis answered MOVED to a single-server client (``REDIS_URL`` names a Redis
        Cluster node that could not be asked at start-up): make the clients again, now that the
        node can say what it is. True when the dashboard now holds a cluster client."""
        if not self.redis_url or is_cluster(self.catalog.client):
            return False
        try:
            client = web_client(self.redis_url)
        except UNAVAILABLE:  # the cluster could not be mapped just now: the next MOVED tries again
            return False
        if not is_cluster(client):
            return False
        self.catalog = Catalog(client, self.settings.prefix)
        self.__post_init__()
        if self.tasks.store is not None:
            self.tasks.store = TaskStore(client, self.settings.prefix)
        return True

    def queue(self, name: str) -> Queue:
        """A Queue object for ``name`` on the shared client (cheap to make)."""
        return self.catalog.queue(name)

    def rescan(self) -> list[str]:
        """Find queues created by other tools (bounded SCAN) and add them to the registry."""
        found = self.catalog.discover()
        self.overview.invalidate()
        return found

    def stop(self) -> None:
        """Stop the demo producer and embedded workers (if any). Safe to call twice."""
        for stop in reversed(self.stoppers):
            stop()
        self.stoppers.clear()
        if self.workers is not None:
            self.workers.stop()


def current() -> DashboardState:
    """The state of the app handling this request."""
    state: DashboardState = current_app.extensions[EXTENSION]
    return state
