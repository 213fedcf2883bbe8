"""The dashboard blueprint: routes, input checks, lookups and error pages.

Views are thin: check input, make one or two :class:`~dashboard.queue.Queue` calls, render
the page (or its partial for htmx). Every state change is a POST guarded by
:mod:`dashboard.web.security`; bulk actions run as background tasks (:mod:`dashboard.web.tasks`)
and the page polls their progress. URLs come from ``url_for`` so the blueprint mounts
under any prefix. This module never builds a Redis key or sends a Redis command itself: it talks to
Redis only through the runtime's API (:class:`~dashboard.catalog.Catalog`, ``Queue``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, make_response, redirect, render_template, request, url_for
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from werkzeug.exceptions import HTTPException

from .. import reads
from ..clients import UNAVAILABLE
from ..errors import BullpenError, JobNotFound
from ..job import JobState
from ..queue import Queue
from . import audit, bulk, cells, formatting, htmx, job_page, queue_page, redrives, security, strip, urls
from .bulk import summary as _task_summary
from .extension import current
from .lookup import job_or_404 as _job_or_404
from .lookup import job_or_none as _job_or_none
from .lookup import queue_or_404 as _queue_or_404
from .lookup import shown as _shown
from .params import GRACE_CHOICES, PAUSE_FOR, PER_PAGE, list_args, pause_args, safe_next, whole

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
bp = Blueprint("bullpen", __name__, template_folder=str(ROOT / "templates"),
               static_folder=str(ROOT / "static"), static_url_path="/static")
urls.register_converter(bp)

#: States listed as tabs on a queue page, in lifecycle order.
LIST_STATES = [JobState.WAITING, JobState.PRIORITIZED, JobState.DELAYED, JobState.ACTIVE,
               JobState.WAITING_CHILDREN, JobState.COMPLETED, JobState.FAILED]
TERMINAL = job_page.TERMINAL
JOB_ACTIONS = {"retry": "Retried", "promote": "Promoted", "remove": "Removed"}


# --- hooks ---------------------------------------------------------------------------

@bp.before_request
def _guard() -> Response | None:
    settings = current().settings
    challenge = security.check_basic_auth(settings)
    if challenge is None:
        security.check_state_change(settings)
    return challenge


bp.after_request(security.add_headers)
bp.after_request(audit.record)


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    state = current()
    return dict(csrf_token=security.csrf_token, read_only=state.settings.read_only, states=LIST_STATES, cells=cells,
                poll=state.settings.poll_seconds, prefix=state.settings.prefix, per_page=PER_PAGE,
                redis_where=state.redis_description, grace_choices=GRACE_CHOICES, fmt=formatting,
                pause_for=PAUSE_FOR)


# --- pages ---------------------------------------------------------------------------

@bp.get("/")
def overview() -> Response:
    overview = current().overview
    rows = overview.snapshot()
    return htmx.render_page_or_partial("bullpen/overview.html", "bullpen/partials/_summary.html", rows=rows,
                                       registry_problems=overview.problems, **strip.page_context(rows))


@bp.get("/queues/<bullpen_segment:name>")
def queue_view(name: str) -> Response:
    queue = _queue_or_404(name)
    state, page, per = list_args(LIST_STATES, _opening_state(queue))
    summary = current().overview.row(queue.name, history=False)
    count = summary.counts.as_dict()[state.value]
    try:
        jobs = queue.jobs(state, (page - 1) * per, page * per - 1, summary=True)
    except ResponseError as exc:  # the state's key holds another type (the counts say so too)
        log.warning("queue=%s: cannot list %s jobs: %s", queue.name, state, exc)
        jobs = []
    task = current().tasks.get(request.args.get("task", ""))
    extras = queue_page.extras(queue, current().audit, summary, queue.clock())
    return htmx.render_page_or_partial(
        "bullpen/queue.html", "bullpen/partials/_queue.html", queue=queue, q=summary, state=state, page=page, per=per,
        jobs=jobs, count=count, pages=max(1, math.ceil(count / per)), task=task,
        job_url=urls.job_url_builder(queue.name), list_url=urls.list_url_builder(queue.name), **extras)


@bp.get("/queues/<bullpen_segment:name>/jobs/<bullpen_segment:job_id>")
def job_view(name: str, job_id: str) -> Response:
    queue = _queue_or_404(name)
    job = _job_or_none(queue, job_id)
    if job is None and htmx.is_partial():
        gone = render_template("bullpen/partials/_job_gone.html", queue=queue, job_id=job_id)
        return htmx.stop_polling(make_response(gone))
    if job is None:
        abort(404, f"No job with id {_shown(job_id)} in queue {_shown(queue.name)}.")
    log = request.args.get("log")
    log_start = None if log is None else whole(log, "log", 0, 10**9)
    response = htmx.render_page_or_partial("bullpen/job.html", "bullpen/partials/_job.html",
                                           **job_page.context(queue, job, log_start))
    return htmx.stop_polling(response) if htmx.is_partial() and job.state in TERMINAL else response


@bp.get("/queues/<bullpen_segment:name>/jobs/<bullpen_segment:job_id>/download/<bullpen_segment:what>")
def job_download(name: str, job_id: str, what: str) -> Response:
    """One field of a job, or its whole log, as a file: the only read of a whole value."""
    queue = _queue_or_404(name)
    job = _job_or_404(queue, job_id)
    if what not in job_page.DOWNLOADS:
        abort(404, f"Nothing to download as {_shown(what, 40)}: choose one of {', '.join(job_page.DOWNLOADS)}.")
    field, mimetype = job_page.DOWNLOADS[what]
    suffix = "txt" if mimetype == "text/plain" else "json"
    headers = {"Content-Disposition": f'attachment; filename="job-{what}.{suffix}"'}  # no request text in it
    if not field:  # streamed: a log of another type must be refused before the first byte
        if (problem := queue.log_page(job.id, 0, 1).problem) is not None:
            abort(409, f"The job's log cannot be read: {problem}")
        return Response((line + "\n" for line in queue.log_lines(job.id)), mimetype=mimetype, headers=headers)
    value = queue.job_field(job.id, field)
    if value is None:
        abort(404, f"Job {_shown(job_id)} has no {what}.")
    return Response(value, mimetype=mimetype, headers=headers)


@bp.get("/tasks/<task_id>")
def task_view(task_id: str) -> Response:
    task = current().tasks.get(task_id)
    if task is None:
        abort(404, "Unknown task: it finished long ago, or another server process ran it.")
    finished = task.finished
    response = htmx.render_page_or_partial("bullpen/task.html", "bullpen/partials/_task.html", task=task,
                                           finished=finished)
    if not (finished and htmx.is_partial()):
        return response
    current().overview.invalidate()
    return htmx.toast(htmx.stop_polling(response), _task_summary(task), refresh=True)


@bp.get("/search")
def search() -> Response:
    term = request.args.get("q", "").strip()
    if not term:
        abort(400, "Type a job id (or a queue name) to search for.")
    hits = _find(term, request.args.get("queue") or None)
    if len(hits) == 1:
        return make_response(redirect(hits[0][1], 303))
    return make_response(render_template("bullpen/search.html", term=term, hits=hits), 200 if hits else 404)


@bp.get("/audit")
def audit_view() -> Response:
    """Every recorded action under the prefix, newest first."""
    return make_response(render_template("bullpen/audit.html", entries=current().audit.entries(count=200)))


@bp.get("/healthz")
def healthz() -> Response:
    try:
        current().catalog.ping()
    except (RedisError, RedisClusterException) as exc:  # a node of a cluster gone too
        return Response(f"redis unreachable: {type(exc).__name__}\n", 503, mimetype="text/plain")
    return Response("ok\n", mimetype="text/plain")


# --- actions -------------------------------------------------------------------------

@bp.post("/rescan")
def rescan() -> Response:
    found = current().rescan()
    return _done(f"Rescan found {len(found)} queue(s) written by other tools.", url_for(".overview"))


@bp.post("/pause-all")
def pause_all() -> Response:
    count = current().catalog.pause_all()
    return _done(f"Paused all {count} queues.", url_for(".overview"))


@bp.post("/resume-all")
def resume_all() -> Response:
    count = current().catalog.resume_all()
    return _done(f"Resumed all {count} queues.", url_for(".overview"))


@bp.post("/queues/<bullpen_segment:name>/pause")
def pause(name: str) -> Response:
    reason, until = pause_args()
    _queue_or_404(name).pause(reason, until=until or None, by=audit.actor())
    return _done(queue_page.pause_message(name, reason, until), url_for(".queue_view", name=name))


@bp.post("/queues/<bullpen_segment:name>/resume")
def resume(name: str) -> Response:
    _queue_or_404(name).resume()
    return _done(f"Resumed {name}.", url_for(".queue_view", name=name))


@bp.post("/queues/<bullpen_segment:name>/jobs/<bullpen_segment:job_id>/<bullpen_segment:action>")
def job_action(name: str, job_id: str, action: str) -> Response:
    queue = _queue_or_404(name)
    if action not in JOB_ACTIONS:
        abort(404, f"No action {_shown(action, 40)} for jobs.")
    getattr(queue, action)(job_id)
    return _done(f"{JOB_ACTIONS[action]} job {job_id} in {name}.", url_for(".queue_view", name=name))


@bp.post("/queues/<bullpen_segment:name>/schedulers/<bullpen_segment:scheduler_id>/remove")
def remove_scheduler(name: str, scheduler_id: str) -> Response:
    if not _queue_or_404(name).remove_job_scheduler(scheduler_id):
        abort(404, f"No job scheduler {_shown(scheduler_id)} in queue {_shown(name)}.")
    return _done(f"Removed job scheduler {scheduler_id} from {name}.", url_for(".queue_view", name=name))


@bp.post("/queues/<bullpen_segment:name>/retry-all")
def retry_all(name: str) -> Response:
    """Through a safe re-drive (marked jobs, the brake); the dialog also sets pace and brake."""
    return _start(redrives.bulk(_queue_or_404(name), "Retry all failed"))


@bp.post("/queues/<bullpen_segment:name>/promote-all")
def promote_all(name: str) -> Response:
    return _start(bulk.promote_all(_queue_or_404(name)))


@bp.post("/queues/<bullpen_segment:name>/clean")
def clean(name: str) -> Response:
    return _start(bulk.clean(_queue_or_404(name)))


# --- errors --------------------------------------------------------------------------

@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    if exc.code is None or exc.code < 400:
        return exc
    return _error(exc.code, exc.name, exc.description or exc.name)


@bp.errorhandler(BullpenError)
def _domain_error(exc: BullpenError) -> Response:
    code = 404 if isinstance(exc, JobNotFound) else 409
    return _error(code, "Not found" if code == 404 else "Not possible now", str(exc))


@bp.errorhandler(ResponseError)
def _redis_refused(exc: ResponseError) -> Response:
    """Redis refused a command because of data another tool wrote (e.g. a key of the wrong
    type): a clear answer naming what Redis said, never a 500."""
    log.warning("Redis refused a command while serving %s: %s", request.path, exc)
    return _error(409, "Redis refused the request", f"Redis refused a command for this page: {exc}. "
                  "A key probably holds data of another type, written by another tool.")


def redis_down(exc: Exception) -> Response:
    log.warning("Redis unreachable while serving %s: %s", request.path, exc)
    if htmx.is_partial():
        return Response("Redis is unreachable", 503, {"Retry-After": "5"}, mimetype="text/plain")
    response = make_response(render_template("bullpen/error.html", code=503, title="Redis is unreachable", refresh=5,
                                             message="The dashboard cannot reach Redis. This page retries "
                                                     "every 5 seconds and recovers by itself."), 503)
    response.headers["Retry-After"] = "5"
    return response


for _unavailable in UNAVAILABLE:  # Redis, or a node of a Redis Cluster, gone
    bp.register_error_handler(_unavailable, redis_down)


def standalone_error(exc: HTTPException) -> Response:
    """404/405 pages for the whole app (registered by ``create_app``; code-specific app
    handlers win over the blueprint's, so this one serves both). A 405 names the methods the
    path takes in ``Allow``, as HTTP requires."""
    response = _error(exc.code or 500, exc.name, exc.description or exc.name)
    for name, value in exc.get_headers():
        if name == "Allow":
            response.headers[name] = value
    return response


def _error(code: int, title: str, message: str) -> Response:
    audit.note(message)
    if htmx.is_partial():
        return htmx.flash_error(message, code)
    context = _template_globals()  # also outside the blueprint (unknown URLs)
    context["csrf_token"] = security.existing_csrf_token  # an error page starts no session
    html = render_template("bullpen/error.html", code=code, title=title, message=message, **context)
    return make_response(html, code)


# --- helpers -------------------------------------------------------------------------

def _opening_state(queue: Queue) -> str:
    """The tab a queue page opens on: failed when a job failed in the last hour, else waiting."""
    if "state" in request.values:
        return "waiting"  # not used: the request names its tab
    newest = current().catalog.newest_failure_ms(queue.name)
    return "failed" if newest is not None and newest >= queue.clock() - 3_600_000 else "waiting"


def _find(term: str, scope: str | None) -> list[tuple[str, str]]:
    """(label, url) of every queue whose name holds ``term`` (any case) and every job with id
    ``term``, with its state."""
    names = [_queue_or_404(scope).name] if scope else current().catalog.actionable()
    folded = term.casefold()
    hits = [(f"Queue {n}", url_for(".queue_view", name=n)) for n in names if not scope and folded in n.casefold()]
    for n in names:
        job = current().queue(n).job(term, caps=reads.LISTING)
        if job is not None:
            hits.append((f"Job {term} in {n} ({job.state or 'unknown'})", url_for(".job_view", name=n, job_id=term)))
    return hits


def _start(action: bulk.Bulk) -> Response:
    task = bulk.start(action)
    if not htmx.is_partial():
        return make_response(redirect(url_for(".task_view", task_id=task.id), 303))
    finished = task.wait(0.2)  # small jobs are done at once: answer with the result
    message = _task_summary(task) if finished else f"{task.label} on {task.queue}: started ({task.expected:,} jobs)."
    html = render_template("bullpen/partials/_task.html", task=task, finished=finished)
    return htmx.toast(make_response(html), message, refresh=finished)


def _done(message: str, back: str) -> Response:
    """After an action: htmx gets the swapped part re-rendered and a toast; forms a redirect."""
    audit.note(message)
    current().overview.invalidate()
    if not htmx.is_partial():
        return make_response(redirect(safe_next() or back, 303))
    args = request.view_args or {}
    refresh: dict[str, Callable[[], Response]] = {"summary": overview}
    if "name" in args:  # the part swapped must belong to the route that acted
        refresh["queue"] = lambda: queue_view(args["name"])
        if "job_id" in args:
            refresh["job"] = lambda: job_view(args["name"], args["job_id"])
    render = refresh.get(htmx.target())
    response = render() if render else make_response("", 204)
    if response.status_code == htmx.STOP_POLLING:
        response.status_code = 200
    return htmx.toast(response, message)

