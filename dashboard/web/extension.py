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
from ..config import Settings
from ..embedded_workers import EmbeddedWorkers
from ..queue import Queue
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

    def __post_init__(self) -> None:
        self.overview = Overview(self.catalog, ttl=min(1.0, self.settings.poll_seconds / 2),
                                 oldest_alert_ms=int(self.settings.oldest_waiting_alert * 1000))
        self.audit = AuditLog(self.catalog.client, self.settings.prefix)

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
