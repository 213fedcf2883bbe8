"""Starting a safe re-drive from a request, and what the task panel shows of it.

A re-drive runs as a bulk task (:mod:`dashboard.web.tasks`) whose work is a runtime
:class:`~dashboard.redrive.Redrive`; its control record is named after the task, so the
pause, resume and cancel buttons of any dashboard process reach it. Form values are parsed
strictly here (a bad one is a 400 naming it). This module does not talk to Redis itself and
does not import the views (they pass their task starter in).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Response, abort, request

from ..queue import Queue
from ..redrive import Redrive, RedriveControl, RedrivePlan, preview
from . import audit
from .extension import current
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

Starter = Callable[[Queue, str, int, Callable[[Progress], int]], Response]


def cluster_args(values: list[str]) -> list[str]:
    """Cluster ids from the request (each 16 hex digits; 400 otherwise), without repeats."""
    if len(values) > 100:
        abort(400, "At most 100 clusters can be re-driven at once.")
    for value in values:
        if not _CLUSTER.fullmatch(value):
            abort(400, f"Not a failure cluster id: {value[:40]!r} (16 hex digits expected).")
    return list(dict.fromkeys(values))


def _number(name: str, allowed: list[tuple[int, str]], default: int) -> int:
    raw = request.form.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) not in [v for v, _ in allowed]:
        abort(400, f"{name} must be one of {', '.join(str(v) for v, _ in allowed)}, got {raw[:20]!r}.")
    return int(raw)


def begin(queue: Queue, start: Starter, label: str | None = None) -> Response:
    """Start a re-drive of the clusters named in the form (none: every failed job) with the
    form's rate and brake; without those fields (the plain "Retry all" form) it runs as fast as
    batches go, with the default brake. Only jobs failed by the form's ``cutoff`` (when the
    preview was shown) or by now are taken."""
    clusters = cluster_args(request.form.getlist("cluster"))
    raw_cutoff = request.form.get("cutoff", "")
    now = queue.clock()
    cutoff = min(int(raw_cutoff), now) if raw_cutoff.isdigit() and len(raw_cutoff) < 16 else now
    from_dialog = "rate" in request.form
    plan = RedrivePlan(cutoff=cutoff, clusters=clusters, rate=_number("rate", RATES, 0),
                       max_failed_share=_number("share", SHARES, DEFAULT_SHARE) / 100,
                       watch_seconds=WATCH_SECONDS if from_dialog else 0.0, actor=audit.actor())
    expected = preview(queue, clusters, cutoff).jobs
    if label is None:
        label = "Re-drive failed" if not clusters else f"Re-drive {len(clusters)} cluster{'s' * (len(clusters) > 1)}"
    client, prefix = current().catalog.client, current().settings.prefix

    def work(progress: Progress) -> int:
        task_id = current_task_id() or "unknown"
        return Redrive(queue, plan, RedriveControl(client, prefix, task_id), task_id).run(progress)

    return start(queue, label, expected, work)


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
