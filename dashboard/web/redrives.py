"""Starting a safe re-drive from a request, and what the task panel shows of it.

A re-drive runs as a bulk task (:mod:`dashboard.web.tasks`) whose work is a runtime
:class:`~dashboard.redrive.Redrive`; its control record is named after the task, so the
pause, resume and cancel buttons of any dashboard process reach it. Form values are parsed
strictly here (a bad one is a 400 naming it). This module does not talk to Redis itself and
does not import the views: it describes the re-drive as a :class:`~dashboard.web.bulk.Bulk`,
which the pages and the JSON API start as they start every bulk action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import abort
from werkzeug.datastructures import MultiDict

from ..errors import NotSupportedOnBull
from ..failure_index import FailureIndex
from ..queue import Queue
from ..redrive import Redrive, RedriveControl, RedrivePlan, preview
from . import audit
from .bulk import Bulk, retry_all
from .extension import current
from .params import form
from .tasks import Progress, current_task_id

#: Jobs per second offered in the dialog ("0": as fast as batches go); the default is first marked.
RATES = [(10, "10 jobs/s"), (50, "50 jobs/s"), (100, "100 jobs/s"), (500, "500 jobs/s"), (2000, "2,000 jobs/s"),
         (0, "as fast as possible")]
DEFAULT_RATE = 100
#: The brake: stop when more than this share of the re-driven jobs failed again.
SHARES = [(10, "10 %"), (25, "25 %"), (50, "50 %"), (75, "75 %"), (100, "never stop")]
DEFAULT_SHARE = 50
#: A retry of more jobs than this goes through the re-drive dialog (preview, pace, brake).
HANDFUL = 10
#: After the last batch, a re-drive started from the dialog keeps counting outcomes this long.
WATCH_SECONDS = 10.0
_CLUSTER = re.compile(r"[0-9a-f]{16}")

def cluster_args(values: list[str]) -> list[str]:
    """Cluster ids from the request (each 16 hex digits; 400 otherwise), without repeats."""
    if len(values) > 100:
        abort(400, "At most 100 clusters can be re-driven at once.")
    for value in values:
        if not _CLUSTER.fullmatch(value):
            abort(400, f"Not a failure cluster id: {value[:40]!r} (16 hex digits expected).")
    return list(dict.fromkeys(values))


def _clusters(values: Mapping[str, str]) -> list[str]:
    """The form's ``cluster`` fields (repeated), or a JSON body's ``cluster`` (ids, comma-separated)."""
    if isinstance(values, MultiDict):
        return cluster_args(values.getlist("cluster"))
    return cluster_args([c for c in values.get("cluster", "").split(",") if c])


def _number(values: Mapping[str, str], name: str, allowed: list[tuple[int, str]], default: int) -> int:
    raw = values.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) not in [v for v, _ in allowed]:
        abort(400, f"{name} must be one of {', '.join(str(v) for v, _ in allowed)}, got {raw[:20]!r}.")
    return int(raw)


def bulk(queue: Queue, label: str | None = None) -> Bulk:
    """Start a re-drive of the clusters named in the form (none: every failed job) with the
    form's rate and brake; without those fields (the plain "Retry all" form) it runs as fast as
    batches go, with the default brake. Only jobs failed by the form's ``cutoff`` (when the
    preview was shown) or by now are taken."""
    values = form()
    clusters = _clusters(values)
    if queue.kind != Queue.kind:  # a legacy Bull queue: Bull's own retry, no marks, no clusters
        if clusters:
            raise NotSupportedOnBull(f"Re-drive of failure clusters: queue {queue.name!r} is a legacy {queue.kind} "
                                     "queue (npm 'bull'), whose jobs Bullpen retries only the way Bull does. "
                                     "Use Retry all on its failed tab. Nothing was changed.")
        return retry_all(queue)
    raw_cutoff = values.get("cutoff", "")
    now = queue.clock()
    cutoff = min(int(raw_cutoff), now) if raw_cutoff.isdigit() and len(raw_cutoff) < 16 else now
    from_dialog = "rate" in values
    plan = RedrivePlan(cutoff=cutoff, clusters=clusters, rate=_number(values, "rate", RATES, 0),
                       max_failed_share=_number(values, "share", SHARES, DEFAULT_SHARE) / 100,
                       watch_seconds=WATCH_SECONDS if from_dialog else 0.0, actor=audit.actor())
    expected = preview(queue, clusters, cutoff).jobs
    if label is None:
        label = "Re-drive failed" if not clusters else f"Re-drive {len(clusters)} cluster{'s' * (len(clusters) > 1)}"
    client, prefix = current().catalog.client, current().settings.prefix

    def work(progress: Progress) -> int:
        task_id = current_task_id() or "unknown"
        return Redrive(queue, plan, RedriveControl(client, prefix, task_id), task_id).run(progress)

    return Bulk(queue, label, expected, work)


def remove_cluster(queue: Queue, cluster: str) -> Bulk:
    """Delete the failed jobs of one cluster (failed by now), as a bulk task; 404 when it has none."""
    (cluster,) = cluster_args([cluster])
    if queue.kind != Queue.kind:
        raise NotSupportedOnBull(f"Removing a failure cluster: queue {queue.name!r} is a legacy {queue.kind} queue "
                                 "(npm 'bull'). Remove its jobs one by one or use Clean. Nothing was changed.")
    index, cutoff = FailureIndex.of(queue), queue.clock()
    expected = index.count_upto([cluster], cutoff)
    if not expected:
        abort(404, f"Failure cluster {cluster} of {queue.name!r} has no failed jobs (any more).")
    return Bulk(queue, f"Remove cluster {cluster[:8]}", expected, lambda p: index.remove(cluster, cutoff, p))


#: What each re-drive control does, as the message after it.
CONTROLS = {"pause": "Paused", "run": "Resumed", "cancel": "Cancelled"}


def control(task_id: str, what: str) -> str:
    """Ask the re-drive ``task_id`` to pause, resume (``run``) or cancel, whichever process runs
    it; returns the message (also noted for the audit trail). 404 for an unknown one."""
    if what not in CONTROLS:
        abort(404, f"No re-drive control {what[:20]!r}: use pause, run or cancel.")
    if status(task_id) is None:
        abort(404, "Unknown re-drive: it finished long ago, or never started.")
    RedriveControl(current().catalog.client, current().settings.prefix, task_id).request(what, audit.actor())
    message = f"{CONTROLS[what]} the re-drive."
    audit.note(message)
    return message


def status(task_id: str) -> dict[str, Any] | None:
    """The re-drive fields of a task (state, moved, failed again ...), or None for other tasks."""
    if not re.fullmatch(r"[0-9a-f]{16}", task_id):
        return None
    found = RedriveControl(current().catalog.client, current().settings.prefix, task_id).load()
    if not found:
        return None
    moved = int(found.get("moved") or 0)
    again = int(found.get("failed_again") or 0)
    return dict(found, moved=moved, failed_again=again, completed=int(found.get("completed") or 0),
                share=round(100 * again / moved) if moved else 0)
