"""Entry points: the WSGI app factory, and ``python app.py`` for the live demo.

Production: ``gunicorn 'app:create_app()'`` from the repository root, which reads
``gunicorn.conf.py`` there (threads, timeouts; flags override it). Settings come from the
environment, see ``dashboard/config.py``; no demo unless ``DASHBOARD_DEMO=1``.

Demo: ``python app.py`` serves http://127.0.0.1:5000 with the demo producer and embedded
workers on. Without ``REDIS_URL`` it starts its own embedded Redis (data in ``./var/redis``)
and never writes into a Redis that happens to answer on 6379; with ``REDIS_URL`` it keeps
to the key prefix ``bullpen-demo`` so it never touches real queues. Ctrl-C stops it.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from collections.abc import Mapping
from dataclasses import replace

from flask import Flask

from dashboard.catalog import Catalog
from dashboard.clients import cluster_mode, connect
from dashboard.config import Settings
from dashboard.connection import DEFAULT_PROBE_URL, resolve_redis
from dashboard.embedded_workers import EmbeddedWorkers
from dashboard.handlers import Handler, load_handler
from dashboard.web import DashboardState, demo, init_dashboard, security, standalone_error

log = logging.getLogger("dashboard.app")

DEMO_PREFIX = "bullpen-demo"
MAX_BODY_BYTES = 1024 * 1024  # larger request bodies get 413 before they are read


def configure_logging(settings: Settings) -> None:
    """Log to stderr at the configured level, unless something configured logging already."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def create_app(settings: Settings | None = None, *, handlers: Mapping[str, Handler] | None = None,
               use_local_redis: bool = True) -> Flask:
    """Build the dashboard app (the blueprint mounted at ``settings.url_prefix``).

    Args:
        settings: None reads the environment (:meth:`Settings.from_env`).
        handlers: queue name -> handler, run by embedded workers when
            ``settings.embedded_workers`` is on.
        use_local_redis: without ``REDIS_URL``, use a Redis answering on 127.0.0.1:6379
            before starting an embedded one (the demo passes False).
    """
    settings = settings or Settings.from_env()
    configure_logging(settings)
    resolved = resolve_redis(settings, probe_url=DEFAULT_PROBE_URL if use_local_redis else None)
    if settings.demo and resolved.source != "embedded" and settings.prefix == "bull":
        # on Redis Cluster the demo's queue names carry no hash tag: the prefix does
        prefix = f"{{{DEMO_PREFIX}}}" if cluster_mode(resolved.url) else DEMO_PREFIX
        log.warning("demo on a Redis this process did not start: demo queues go under prefix %r", prefix)
        settings = replace(settings, prefix=prefix)
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config["SESSION_COOKIE_NAME"] = "bullpen_session"
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # The dashboard's forms are a few hundred bytes. The cap also makes werkzeug read bodies
    # through a LimitedStream, so a body whose socket times out (gunicorn.conf.py) ends in a
    # 400, not a 500 with a traceback.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    state = init_dashboard(app, settings, resolved.url, description=resolved.description)
    app.register_error_handler(404, standalone_error)
    app.register_error_handler(405, standalone_error)
    # The whole app is the dashboard here: unknown URLs need credentials too (healthz excepted).
    app.before_request(lambda: security.check_basic_auth(settings))
    app.after_request(security.add_headers)
    configured = {queue: load_handler(spec) for queue, spec in settings.handlers}
    _start_background(state, resolved.url, {**configured, **(handlers or {})})
    return app


def _start_background(state: DashboardState, url: str, handlers: dict[str, Handler]) -> None:
    settings = state.settings
    if (settings.embedded_workers or settings.demo) and cluster_mode(url) is None:
        # Redis is unreachable: wait for it in the background, so the workers know whether it
        # is a Redis Cluster node before they connect; the pages answer 503 meanwhile.
        log.warning("Redis unreachable: the embedded workers and the demo start once it answers")
        stopping = threading.Event()
        state.stoppers.append(stopping.set)
        atexit.register(state.stop)
        threading.Thread(target=_start_when_reachable, args=(state, url, handlers, stopping), daemon=True,
                         name="bullpen-start").start()
        return
    if settings.embedded_workers:
        state.workers = EmbeddedWorkers(connection=connect(url), prefix=settings.prefix,
                                        concurrency=settings.concurrency)
        for name, handler in handlers.items():
            state.workers.register(name, handler)
    if settings.demo:
        producer = demo.install(state.workers, Catalog(connect(url), settings.prefix))
        state.stoppers.append(producer.stop)
    if state.workers is not None:
        state.workers.start()
    if state.workers is not None or state.stoppers:
        atexit.register(state.stop)


def _start_when_reachable(state: DashboardState, url: str, handlers: dict[str, Handler],
                          stopping: threading.Event) -> None:
    wait = 0.1
    while cluster_mode(url) is None:
        if stopping.wait(wait):
            return
        wait = min(wait * 2, 5.0)
    if not stopping.is_set():
        log.warning("Redis answers: starting the embedded workers and the demo")
        _start_background(state, url, handlers)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    """Serve the live demo on http://127.0.0.1:5000 until Ctrl-C."""
    from werkzeug.serving import make_server

    settings = replace(Settings.from_env(), demo=True, embedded_workers=True)
    configure_logging(settings)
    for quiet in ("dashboard.worker", "werkzeug"):  # per-job and per-poll lines drown the rest
        logging.getLogger(quiet).setLevel(max(logging.WARNING, logging.getLogger().level))
    app = create_app(settings, use_local_redis=False)
    state: DashboardState = app.extensions["bullpen"]
    server = make_server("127.0.0.1", 5000, app, threaded=True)
    log.info("demo queues: %s", demo.describe())
    log.info("Bullpen dashboard on http://127.0.0.1:%d/ (key prefix %r). Press Ctrl-C to stop the demo.",
             server.server_port, state.settings.prefix)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()  # returns on Ctrl-C / SIGTERM (werkzeug swallows KeyboardInterrupt)
    finally:
        log.info("stopping: the demo producer, then the workers (running jobs may finish first)")
        server.server_close()
        state.stop()
        log.info("stopped")


if __name__ == "__main__":
    main()
