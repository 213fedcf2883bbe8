"""The JSON API at ``api/v1/`` (a blueprint nested in the dashboard's): the pages' facts and actions.

Every page has its GET here and every action its POST, at the same path relative to
``api/v1/`` as the page's, with the same URL segment encoding (:mod:`dashboard.web.urls`),
the same lookups (:mod:`dashboard.web.lookup`), the same request parsing
(:mod:`dashboard.web.params`; a POST may send a form or a JSON object) and the same runtime
calls. Single actions answer with their result; bulk actions (retry all, promote all,
clean) start the same background task as the pages and answer 202 with the task, which
``GET api/v1/tasks/<id>`` follows. Requests are let in by :mod:`dashboard.web.tokens`
(bearer tokens, else as the pages), every POST goes to the audit trail (actor
``api:<token name>`` for a token), and every error under ``api/v1/``, unknown routes
included, is ``{"error": {"status": ..., "message": ...}}``. The contract is
``api/v1/openapi.json`` (:mod:`dashboard.web.openapi`). This module never builds a Redis key.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, request, url_for
from redis.exceptions import ResponseError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, default_exceptions

from .. import reads
from ..clients import UNAVAILABLE
from ..errors import BullpenError, JobNotFound
from ..job import JobState
from . import api_json, audit, bulk, job_page, lookup, openapi, queue_page, redrives, tokens
from . import failures as failures_page
from .extension import current
from .lookup import shown
from .params import list_args, pause_args, whole
from .views import JOB_ACTIONS, LIST_STATES

log = logging.getLogger(__name__)

api = Blueprint("api", __name__, url_prefix="/api/v1")
Q = "/queues/<bullpen_segment:name>"
JOB = Q + "/jobs/<bullpen_segment:job_id>"


@api.before_request
def _guard() -> None:
    tokens.authorize(current().settings)


# --- reads ---------------------------------------------------------------------------

@api.get("/")
def root() -> Response:
    return api_json.respond({"openapi": url_for(".openapi_document"), "queues": url_for(".overview")})


@api.get("/openapi.json")
def openapi_document() -> Response:
    return api_json.respond(openapi.document(url_for(".root").rstrip("/")))


@api.get("/queues")
def overview() -> Response:
    state = current().overview
    rows = state.snapshot()
    return api_json.respond({"queues": [api_json.queue_summary(row) for row in rows],
                             "problems": list(state.problems)})


@api.get(Q)
def queue_view(name: str) -> Response:
    queue = lookup.queue_or_404(name)
    summary = current().overview.row(queue.name, history=False)
    extras = queue_page.extras(queue, current().audit, summary, queue.clock())
    facts = extras["facts"]
    rate = extras["rate_limit"]
    body = api_json.queue_summary(summary) | {
        "pause": api_json.pause(extras["pause_info"]), "facts": facts,
        "rateLimit": {"max": rate[0], "durationMs": rate[1]} if rate else None,
        "throttledMs": extras["throttled_ms"], "schedulers": extras["schedulers"],
        "actions": [api_json.action(entry) for entry in extras["actions"]]}
    body["problems"] += extras["extra_problems"]
    return api_json.respond(body)


@api.get(Q + "/jobs")
def queue_jobs(name: str) -> Response:
    queue = lookup.queue_or_404(name)
    state, page, per = list_args(LIST_STATES)
    total = current().overview.row(queue.name).counts.as_dict()[state.value]
    jobs = queue.jobs(state, (page - 1) * per, page * per - 1, summary=True)
    return api_json.respond({"queue": queue.name, "state": state.value, "page": page, "per": per, "total": total,
                             "pages": max(1, -(-total // per)), "jobs": [api_json.job(queue.name, j) for j in jobs]})


@api.get(JOB)
def job_view(name: str, job_id: str) -> Response:
    queue = lookup.queue_or_404(name)
    job = lookup.job_or_404(queue, job_id, reads.DETAIL)
    raw = request.args.get("log")
    start = -job_page.LOG_PAGE if raw is None else whole(raw, "log", 0, 10**9)
    page = queue.log_page(job.id, start, job_page.LOG_PAGE)
    body = api_json.job(queue.name, job, detail=True)
    body["lockTtlMs"] = queue.lock_ttl_ms(job.id) if job.state is JobState.ACTIVE else None
    body["logs"] = {"start": page.start, "total": page.total, "lines": page.lines,
                    "cut": {str(i): n for i, n in page.cut.items()}, "problem": page.problem}
    return api_json.respond(body)


@api.get("/tasks/<task_id>")
def task_view(task_id: str) -> Response:
    task = current().tasks.get(task_id)
    if task is None:
        abort(404, "Unknown task: it finished long ago, or another server process ran it.")
    return api_json.respond(api_json.task(task))


# --- actions: the pages' own, at the same paths ----------------------------------------

@api.post("/rescan")
def rescan() -> Response:
    found = current().rescan()
    return _done(f"Rescan found {len(found)} queue(s) written by other tools.", found=found)


@api.post("/pause-all")
def pause_all() -> Response:
    count = current().catalog.pause_all()
    return _done(f"Paused all {count} queues.", count=count)


@api.post("/resume-all")
def resume_all() -> Response:
    count = current().catalog.resume_all()
    return _done(f"Resumed all {count} queues.", count=count)


@api.post(Q + "/pause")
def pause(name: str) -> Response:
    queue = lookup.queue_or_404(name)
    reason, until = pause_args()
    queue.pause(reason, until=until or None, by=audit.actor())
    return _done(queue_page.pause_message(name, reason, until), queue=name, paused=True,
                 pause=api_json.pause(queue.pause_info()))


@api.post(Q + "/resume")
def resume(name: str) -> Response:
    lookup.queue_or_404(name).resume()
    return _done(f"Resumed {name}.", queue=name, paused=False)


@api.post(JOB + "/<bullpen_segment:action>")
def job_action(name: str, job_id: str, action: str) -> Response:
    queue = lookup.queue_or_404(name)
    if action not in JOB_ACTIONS:
        abort(404, f"No action {shown(action, 40)} for jobs: choose one of {', '.join(JOB_ACTIONS)}.")
    getattr(queue, action)(job_id)
    after = None if action == "remove" else queue.job(job_id, caps=reads.LISTING)
    return _done(f"{JOB_ACTIONS[action]} job {job_id} in {name}.", queue=name,
                 job=api_json.job(name, after) if after is not None else None)


@api.post(Q + "/schedulers/<bullpen_segment:scheduler_id>/remove")
def remove_scheduler(name: str, scheduler_id: str) -> Response:
    if not lookup.queue_or_404(name).remove_job_scheduler(scheduler_id):
        abort(404, f"No job scheduler {shown(scheduler_id)} in queue {shown(name)}.")
    return _done(f"Removed job scheduler {scheduler_id} from {name}.", queue=name)


@api.post(Q + "/retry-all")
def retry_all(name: str) -> Response:
    return _start(redrives.bulk(lookup.queue_or_404(name), "Retry all failed"))


@api.get(Q + "/failures")
def failures(name: str) -> Response:
    """Failed jobs grouped by cause (the failures page), the biggest clusters first."""
    queue, status, top = failures_page.read_clusters(name)
    return api_json.respond({"queue": name, "failed": status.failed, "indexed": status.indexed,
                             "complete": status.indexed >= status.failed and not status.problem,
                             "problem": status.problem or None, "totalClusters": top.total_clusters,
                             "clusters": [api_json.cluster(name, c) for c in top.clusters]})


@api.post(Q + "/redrive")
def redrive(name: str) -> Response:
    return _start(redrives.bulk(lookup.queue_or_404(name)))


@api.post(Q + "/failures/<bullpen_segment:cluster>/remove")
def remove_cluster(name: str, cluster: str) -> Response:
    return _start(redrives.remove_cluster(lookup.queue_or_404(name), cluster))


@api.post("/tasks/<task_id>/redrive/<bullpen_segment:what>")
def redrive_control(task_id: str, what: str) -> Response:
    message = redrives.control(task_id, what)
    return api_json.respond({"message": message, "redrive": redrives.status(task_id)})


@api.post(Q + "/promote-all")
def promote_all(name: str) -> Response:
    return _start(bulk.promote_all(lookup.queue_or_404(name)))


@api.post(Q + "/clean")
def clean(name: str) -> Response:
    return _start(bulk.clean(lookup.queue_or_404(name)))


@api.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str) -> Response:
    """Anything else under api/v1/: 405 when the path exists for other methods, else 404."""
    allowed = _other_methods()
    if allowed:
        raise MethodNotAllowed(allowed, f"{request.method} is not allowed here: use {', '.join(allowed)}.")
    abort(404, f"No API route {shown('/' + rest, 100)}: see {url_for('.openapi_document')}.")


def _other_methods() -> list[str]:
    adapter = current_app.create_url_adapter(request)
    found = []
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(method=method) if adapter else ("", None)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            found.append(method)
    return found


def _done(message: str, **result: Any) -> Response:
    audit.note(message)
    current().overview.invalidate()
    return api_json.respond({"message": message, **result})


def _start(action: bulk.Bulk) -> Response:
    task = bulk.start(action)
    message = f"{task.label} on {task.queue}: started ({task.expected:,} jobs)."
    response = api_json.respond({"message": message, "task": api_json.task(task)}, 202)
    response.headers["Location"] = url_for(".task_view", task_id=task.id)
    return response


# --- errors: JSON for everything under api/v1/ ------------------------------------------

def _http_error(exc: HTTPException) -> Any:
    if exc.code is None or exc.code < 400:
        return exc
    return _error(exc.code, exc.description or exc.name, exc.get_headers())


def _domain_error(exc: BullpenError) -> Response:
    return _error(404 if isinstance(exc, JobNotFound) else 409, str(exc))


def _redis_refused(exc: ResponseError) -> Response:
    log.warning("Redis refused a command while serving %s: %s", request.path, exc)
    return _error(409, f"Redis refused a command for this request: {exc}. A key probably holds data of another "
                       "type, written by another tool.")


def _redis_down(exc: Exception) -> Response:
    log.warning("Redis unreachable while serving %s: %s", request.path, exc)
    return _error(503, "Redis is unreachable; try again shortly.", [("Retry-After", "5")])


def _error(status: int, message: str, headers: Any = ()) -> Response:
    audit.note(message)
    response = api_json.error(status, message)
    for name, value in headers:
        if name in ("Allow", "Retry-After"):
            response.headers[name] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = tokens.challenge(current().settings)
    return response


for _code in default_exceptions:  # code handlers: the app's own 404/405 pages must not win here
    api.register_error_handler(_code, _http_error)
api.register_error_handler(HTTPException, _http_error)
api.register_error_handler(BullpenError, _domain_error)
api.register_error_handler(ResponseError, _redis_refused)
for _unavailable in UNAVAILABLE:  # Redis, or a node of a Redis Cluster, gone
    api.register_error_handler(_unavailable, _redis_down)
