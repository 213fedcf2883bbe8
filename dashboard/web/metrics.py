"""Prometheus ``/metrics`` (a blueprint nested in the dashboard's, so it mounts with it).

One scrape reads every queue's facts through the runtime (:func:`dashboard.gauges.read`, a
fixed number of pipelined round trips) and formats them as ``prometheus_client`` metric
families, in the exposition format its content negotiation picks (text, or OpenMetrics when
the scraper asks for it; written by :mod:`dashboard.web.exposition`):

* ``bullpen_queue_jobs{queue,state}``: jobs per state, BullMQ's ``getJobCounts()`` keys;
* ``bullpen_queue_oldest_waiting_seconds{queue}``: how long the next waiting job has waited (0: none);
* ``bullpen_queue_paused{queue}`` (1 or 0) and ``bullpen_queue_workers{queue}`` (connected workers);
* ``bullpen_jobs_completed_total{queue}`` / ``bullpen_jobs_failed_total{queue}``: from BullMQ's
  per-minute metrics, for queues whose workers record them.

Guarded like the API (:func:`dashboard.web.tokens.authorize`): with basic auth on, a scrape
needs the basic-auth credentials or a bearer token of any scope (``metrics`` is the scope
meant for it); a bad token is 401. Redis unreachable is a 503. This module formats only:
it sends no Redis command itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Blueprint, Response, request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisClusterException, RedisError
from werkzeug.exceptions import HTTPException

from ..gauges import Snapshot, read
from . import exposition, tokens
from .extension import current

log = logging.getLogger(__name__)

metrics = Blueprint("metrics", __name__)


class QueueCollector(Collector):
    """The metric families of one :class:`~dashboard.gauges.Snapshot`."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        queues, now = self.snapshot.queues, self.snapshot.at_ms
        jobs = GaugeMetricFamily("bullpen_queue_jobs", "Jobs in the queue, per state (BullMQ's getJobCounts keys; "
                                 "paused: the legacy paused list)", labels=["queue", "state"])
        oldest = GaugeMetricFamily("bullpen_queue_oldest_waiting_seconds",
                                   "How long the next waiting job has waited since it was added (0: none waits)",
                                   labels=["queue"])
        paused = GaugeMetricFamily("bullpen_queue_paused", "1 when the queue is paused, else 0", labels=["queue"])
        workers = GaugeMetricFamily("bullpen_queue_workers", "Workers connected to the queue (ours and BullMQ's)",
                                    labels=["queue"])
        completed = CounterMetricFamily("bullpen_jobs_completed", "Jobs completed, from BullMQ's metrics (only for "
                                        "queues whose workers record metrics)", labels=["queue"])
        failed = CounterMetricFamily("bullpen_jobs_failed", "Jobs failed for good, from BullMQ's metrics (only for "
                                     "queues whose workers record metrics)", labels=["queue"])
        for q in queues:
            for state, count in q.counts.as_dict().items():
                jobs.add_metric([q.name, state], count)
            oldest.add_metric([q.name], q.oldest_waiting_seconds(now))
            paused.add_metric([q.name], 1 if q.counts.paused else 0)
            workers.add_metric([q.name], q.workers)
            if q.completed_total is not None:
                completed.add_metric([q.name], q.completed_total)
            if q.failed_total is not None:
                failed.add_metric([q.name], q.failed_total)
        yield from (jobs, oldest, paused, workers, completed, failed)


@metrics.before_request
def _guard() -> None:
    tokens.authorize(current().settings, metrics=True)


@metrics.get("/metrics")
def scrape() -> Response:
    families = list(QueueCollector(read(current().catalog)).collect())
    body, content_type = exposition.encode(families, request.headers.get("Accept", ""))
    return Response(body, headers={"Content-Type": content_type})


@metrics.errorhandler(HTTPException)
def _refused(exc: HTTPException) -> Response:
    response = Response(f"{exc.description or exc.name}\n", exc.code or 500, mimetype="text/plain")
    if exc.code == 401:
        response.headers["WWW-Authenticate"] = tokens.challenge(current().settings)
    return response


@metrics.errorhandler(RedisError)
@metrics.errorhandler(RedisClusterException)  # a node of a Redis Cluster gone
def _redis_down(exc: Exception) -> Response:
    log.warning("metrics: cannot read the queues: %s", exc)
    return Response(f"redis unreachable: {type(exc).__name__}\n", 503, {"Retry-After": "5"}, mimetype="text/plain")
