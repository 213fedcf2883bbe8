"""Embedded workers: :class:`~dashboard.worker.Worker` loops in background threads.

For the demo and for small deployments that want jobs processed inside the web process
(``DASHBOARD_EMBEDDED_WORKERS=1``). Each registered handler gets one Worker whose
``run()`` blocks in its own daemon thread (signal handlers are only installed by workers
in the main thread, so these leave the server's alone). :meth:`EmbeddedWorkers.stop` closes
them gracefully. This module must not import Flask.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from .clients import Client
from .handlers import Handler
from .worker import Worker

log = logging.getLogger(__name__)


@dataclass
class EmbeddedWorkers:
    """Worker threads for registered handlers, all on one Redis and key prefix."""

    connection: Client
    prefix: str = "bull"
    concurrency: int = 4
    shutdown_timeout: float = 10
    workers: list[Worker] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def register(self, queue: str, handler: Handler, **options: Any) -> Worker:
        """Add a worker for ``queue``; ``options`` go to :class:`Worker` (e.g. concurrency)."""
        options.setdefault("concurrency", self.concurrency)
        options.setdefault("shutdown_timeout", self.shutdown_timeout)
        worker = Worker(queue, handler, connection=self.connection, prefix=self.prefix, **options)
        self.workers.append(worker)
        if self._threads:  # already running: start this one too
            self._start(worker)
        return worker

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        """Start a thread per registered worker (idempotent)."""
        if self._threads:
            return
        for worker in self.workers:
            self._start(worker)
        if self.workers:
            log.info("embedded workers started for %s", ", ".join(w.queue_name for w in self.workers))

    def _start(self, worker: Worker) -> None:
        thread = threading.Thread(target=self._run, args=(worker,), name=f"embedded-{worker.queue_name}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    @staticmethod
    def _run(worker: Worker) -> None:
        try:
            worker.run()
        except Exception:
            log.exception("embedded worker for queue=%s stopped with an error", worker.queue_name)

    def stop(self) -> None:
        """Ask every worker to stop, then wait for running jobs (up to ``shutdown_timeout``)."""
        for worker in self.workers:
            worker.close(wait=False)
        for thread in self._threads:
            thread.join(self.shutdown_timeout + 5)
        if self._threads:
            log.info("embedded workers stopped")
        self._threads = []
