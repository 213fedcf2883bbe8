"""Failure clusters and safe re-drive: the failures page, the re-drive dialog, the task controls.

Routes of the dashboard blueprint (registered on :data:`dashboard.web.views.bp` when this
module is imported). The failures page refreshes the queue's failure index within a time
budget (:meth:`~dashboard.failure_index.FailureIndex.refresh`: the first visit builds it in
bounded batches, later ones only extend it) and shows the biggest clusters. Retrying a cluster
(or every failed job) goes through the re-drive dialog: a preview of how many jobs in how many
clusters, the pace and the brake, then a task whose panel offers pause, resume and cancel.
Removing a cluster runs as a task too. Talks to Redis only through the runtime.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, make_response, render_template, request, url_for
from redis.exceptions import NoPermissionError, ReadOnlyError

from ..failure_index import FailureIndex, IndexStatus
from ..failures import Overview
from ..queue import Queue
from ..redrive import preview
from . import htmx, redrives
from .extension import current
from .lookup import queue_or_404 as _queue_or_404
from .views import _start, bp

log = logging.getLogger(__name__)

#: Seconds of index work a failures page may do before it answers with what it has (the page
#: answers within about 1 s: the batch under way when it runs out and the overview's reads).
REFRESH_BUDGET = 0.9
#: Clusters shown on the page (the biggest first).
SHOWN = 50
SPARK_W, SPARK_H = 120, 24


@bp.context_processor
def _failures_globals() -> dict[str, Any]:
    return dict(redrive_status=redrives.status, spark_bars=spark_bars, spark_size=(SPARK_W, SPARK_H),
                handful=redrives.HANDFUL)


def spark_bars(values: list[int]) -> list[tuple[float, float, float, float, int]]:
    """(x, y, width, height, count) of one bar per value, scaled to the tallest, for an SVG."""
    if not values:
        return []
    top, width = max(values) or 1, SPARK_W / len(values)
    bars = []
    for i, v in enumerate(values):
        h = 0.0 if v == 0 else max(1.5, SPARK_H * v / top)
        bars.append((round(i * width, 2), round(SPARK_H - h, 2), round(max(width - 1, 1), 2), round(h, 2), v))
    return bars


def read_clusters(name: str) -> tuple[Queue, IndexStatus, Overview]:
    """The queue, its failure index brought up to date within :data:`REFRESH_BUDGET`, and its
    biggest clusters (shared by the page and the JSON API)."""
    queue = _queue_or_404(name)
    index = FailureIndex.of(queue)
    try:
        status = index.refresh(REFRESH_BUDGET)
    except (NoPermissionError, ReadOnlyError) as exc:  # a read-only user or replica: what the index holds
        log.warning("queue=%s: the failure index cannot be updated: %s", name, exc)
        status = IndexStatus(0, queue.counts().failed, problem=f"The failure index cannot be updated here ({exc}).")
    return queue, status, index.overview(SHOWN)


@bp.get("/queues/<bullpen_segment:name>/failures")
def failures_view(name: str) -> Response:
    queue, status, top = read_clusters(name)
    samples = FailureIndex.of(queue).samples([c.sample_id for c in top.clusters if c.sample_id])
    return htmx.render_page_or_partial("bullpen/failures.html", "bullpen/partials/_failures.html", queue=queue,
                                       index_status=status, top=top, samples=samples, now=queue.clock())


@bp.post("/queues/<bullpen_segment:name>/failures/<bullpen_segment:cluster>/remove")
def remove_cluster(name: str, cluster: str) -> Response:
    return _start(redrives.remove_cluster(_queue_or_404(name), cluster))


@bp.get("/queues/<bullpen_segment:name>/redrive")
def redrive_preview(name: str) -> Response:
    """The re-drive dialog: what it would take, and the pace and brake to choose."""
    queue = _queue_or_404(name)
    clusters = redrives.cluster_args(request.args.getlist("cluster"))
    index = FailureIndex.of(queue)
    if not clusters:  # "in N clusters" needs the index up to date (a short budget: it is a dialog)
        try:
            index.refresh(REFRESH_BUDGET / 2)
        except (NoPermissionError, ReadOnlyError) as exc:
            log.warning("queue=%s: the failure index cannot be updated: %s", name, exc)
    cutoff = queue.clock()
    found = preview(queue, clusters, cutoff)
    chosen = [c for c in (index.cluster(cid) for cid in clusters) if c is not None]
    return make_response(render_template("bullpen/redrive.html", queue=queue, clusters=chosen, preview=found,
                                         cutoff=cutoff, rates=redrives.RATES, default_rate=redrives.DEFAULT_RATE,
                                         shares=redrives.SHARES, default_share=redrives.DEFAULT_SHARE,
                                         cluster_ids=clusters))


@bp.post("/queues/<bullpen_segment:name>/redrive")
def redrive_start(name: str) -> Response:
    queue = _queue_or_404(name)
    return _start(redrives.bulk(queue))


@bp.post("/tasks/<task_id>/redrive/<bullpen_segment:what>")
def redrive_control(task_id: str, what: str) -> Response:
    """Pause, resume (``run``) or cancel a re-drive, whichever process runs it."""
    message = redrives.control(task_id, what)
    task = current().tasks.get(task_id)
    if task is None or not htmx.is_partial():
        return make_response("", 303, {"Location": url_for(".task_view", task_id=task_id)})
    html = render_template("bullpen/partials/_task.html", task=task, finished=task.finished)
    return htmx.toast(make_response(html), message)
