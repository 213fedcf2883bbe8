"""The OpenAPI 3.1 document of the JSON API (``GET api/v1/openapi.json``), as a Python dict.

It is the API's contract: ``tests/test_api.py`` validates the document itself and every real
response of the tests against it. Schemas are strict (no property the document does not
name), so a field added to :mod:`dashboard.web.api_json` must be added here too. The server
URL is filled in per request, since the dashboard mounts under any prefix. This module does
nothing else.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from .params import PAUSE_FOR, PER_PAGE

S = dict[str, Any]


def _ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(all_required: bool = True, /, **props: Any) -> S:
    """A closed object schema; every property required unless ``all_required`` is False."""
    out: S = {"type": "object", "properties": props, "additionalProperties": False}
    if all_required:
        out["required"] = sorted(props)
    return out


def _null(schema: S) -> S:
    return {"anyOf": [schema, {"type": "null"}]}


INT, STR, BOOL = {"type": "integer"}, {"type": "string"}, {"type": "boolean"}
MS = {"type": "integer", "description": "milliseconds since the epoch"}
STRINGS = {"type": "array", "items": STR}
COUNT_KEYS: tuple[str, ...] = ("waiting", "prioritized", "delayed", "active", "completed", "failed",
                               "waiting-children", "paused")
JOB_STATES = ["waiting", "prioritized", "delayed", "active", "waiting-children", "completed", "failed", "unknown"]
LISTED = [s for s in JOB_STATES if s != "unknown"]

_SUMMARY: S = dict(name=STR, url=STR, counts=_obj(True, **dict.fromkeys(COUNT_KEYS, INT)), paused=BOOL, workers=INT,
                   oldestWaitingTimestamp=_null(MS), stuck=BOOL, problems=STRINGS)
_JOB: S = dict(
    id=STR, url=STR, name=STR, state={"enum": JOB_STATES}, data={}, opts={"type": "object"},
    timestamp=_null(MS), delay=INT, priority=INT, processedOn=_null(MS), finishedOn=_null(MS), attemptsMade=INT,
    attemptsStarted=INT, stalledCounter=INT, progress={}, failedReason=_null(STR), processedBy=_null(STR),
    truncated={"type": "object", "additionalProperties": INT,
               "description": "field -> its full length in bytes, for each field cut inside Redis"},
    problems=STRINGS)

SCHEMAS: S = {
    "Error": _obj(error=_obj(status=INT, message=STR)),
    "Root": _obj(openapi=STR, queues=STR),
    "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
    "QueueSummary": _obj(**_SUMMARY),
    "QueueList": _obj(queues={"type": "array", "items": _ref("QueueSummary")}, problems=STRINGS),
    "Pause": _null(_obj(reason=STR, by=STR, since=_null(MS), until=_null(MS))),
    "QueueDetail": _obj(
        **_SUMMARY, pause=_ref("Pause"), facts=STRINGS, throttledMs=INT,
        rateLimit=_null(_obj(max=INT, durationMs=INT)),
        schedulers={"type": "array", "items": {"type": "object", "required": ["key", "next"]}},
        actions={"type": "array", "items": _obj(at=MS, actor=STR, action=STR, queue=STR, target=STR,
                                                 count=_null(INT), result=STR, ok=BOOL)}),
    "Job": _obj(**_JOB),
    "JobDetail": _obj(**_JOB, returnvalue={}, stacktrace=STRINGS, deferredFailure=_null(STR), lockTtlMs=_null(INT),
                      logs=_obj(start=INT, total=INT, lines=STRINGS, problem=_null(STR),
                                cut={"type": "object", "additionalProperties": INT})),
    "JobPage": _obj(queue=STR, state={"enum": LISTED}, page=INT, per={"enum": list(PER_PAGE)}, total=INT,
                    pages=INT, jobs={"type": "array", "items": _ref("Job")}),
    "Task": _obj(id=STR, url=STR, queue=STR, label=STR, expected=INT, done=INT,
                 percent={"type": "integer", "minimum": 0, "maximum": 100}, finished=BOOL, error=_null(STR),
                 startedAt=MS, endedAt=_null(MS), summary=_null(STR)),
    "TaskStarted": _obj(message=STR, task=_ref("Task")),
    "Cluster": _obj(id=STR, type=STR, message=STR, frame=STR, line=_null(INT), count=INT, failedAgain=INT,
                    firstSeen=_null(MS), lastSeen=_null(MS), sample=_null(STR)),
    "Failures": _obj(queue=STR, failed=INT, indexed=INT, complete=BOOL, problem=_null(STR), totalClusters=INT,
                     clusters={"type": "array", "items": _ref("Cluster")}),
    "RedriveControl": _obj(message=STR, redrive={"type": ["object", "null"]}),
    "Done": _obj(False, message=STR, queue=STR, paused=BOOL, pause=_ref("Pause"), count=INT, found=STRINGS,
                 job=_null(_ref("Job"))) | {"required": ["message"]},
}

ERRORS = {
    "400": "A parameter is missing or invalid (the message names it).",
    "401": "No valid credentials: a bearer token, or basic auth when the dashboard uses it.",
    "403": "Not allowed: the token's scope, read-only mode, or (without a token) a missing CSRF token "
           "or a cross-site request.",
    "404": "No such queue, job, task or route (a BullMQ bookkeeping key such as `meta` is not a job).",
    "405": "The path exists for other methods (see `Allow`).",
    "409": "Not possible now: the job is in another state or locked, or Redis refused a command "
           "(a key of another type written by another tool).",
    "503": "Redis is unreachable (`Retry-After: 5`).",
}


def _param(name: str, where: str, schema: S, text: str) -> S:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": text}


SEGMENT = ("Any text, one path segment: percent-encoded, with `/`, `%`, `\\`, control characters and the dots of "
           "an all-dot segment encoded twice (`a/b` is `a%252Fb`). Every `url` in a response is already encoded.")
NAME = _param("name", "path", STR, "Queue name. " + SEGMENT)
JOB_ID = _param("job_id", "path", STR, "Job id. " + SEGMENT)


def _op(summary: str, ok: str, schema: str, params: list[S] | None = None, body: S | None = None,
        errors: tuple[str, ...] = ("400", "401", "403", "404", "409", "503")) -> S:
    out: S = {"summary": summary, "responses": {ok: {"description": summary, "content": {
        "application/json": {"schema": _ref(schema)}}}}}
    for code in errors:
        out["responses"][code] = {"$ref": f"#/components/responses/E{code}"}
    if ok == "202":
        out["responses"][ok]["headers"] = {"Location": {"schema": STR, "description": "the task's URL"}}
    if params:
        out["parameters"] = params
    if body:
        schema_body = _obj(False, **body)
        out["requestBody"] = {"required": False, "content": {"application/x-www-form-urlencoded": {
            "schema": schema_body}, "application/json": {"schema": schema_body}}}
    return out


def _action(summary: str, params: list[S] | None = None, body: S | None = None, bulk: bool = False) -> S:
    return {"post": _op(summary, "202" if bulk else "200", "TaskStarted" if bulk else "Done", params, body)}


_UNTIL = {"type": "string", "enum": [str(s) for s, _ in PAUSE_FOR],
          "description": "resume by itself after this many seconds (0: stay paused); a number is also accepted"}
_WHOLE = {"type": "string", "pattern": "^[0-9]{1,12}$"}
_DURATION = {"type": "string", "examples": ["0", "3600", "90s", "15m", "2h", "7d", "1h30m"],
             "pattern": r"^\s*(?:[0-9]+(?:\.[0-9]+)?|(?:\s*[0-9]+(?:\.[0-9]+)?\s*(?:ms|min|s|m|h|d))+)\s*$",
             "description": "plain seconds, or a duration: numbers with ms, s, m (min), h or d, largest unit first, "
                            "each unit once (`15m`, `2h`, `7d`, `1h30m`); a whole number is also accepted"}
PATHS: S = {
    "/": {"get": _op("Where to start: the URLs of this document and of the queues", "200", "Root",
                     errors=("401", "403", "503"))},
    "/openapi.json": {"get": _op("This document", "200", "OpenAPI", errors=("401", "403"))},
    "/queues": {"get": _op("Every queue with its counts, workers and oldest waiting job", "200", "QueueList")},
    "/queues/{name}": {"get": _op("One queue: counts, pause, rate limit, schedulers, why it is not draining, "
                                  "recent actions", "200", "QueueDetail", [NAME])},
    "/queues/{name}/jobs": {"get": _op("One page of the jobs in one state, newest first (prioritized: next first)",
                                       "200", "JobPage", [
        NAME, _param("state", "query", {"enum": LISTED, "default": "waiting"}, "job state"),
        _param("page", "query", {"type": "integer", "minimum": 1, "default": 1}, "page number"),
        _param("per", "query", {"enum": list(PER_PAGE), "default": PER_PAGE[0]}, "jobs per page")])},
    "/queues/{name}/jobs/{job_id}": {"get": _op("One job, fields cut inside Redis (64 KB of data), and a page "
                                                "of its log", "200", "JobDetail", [
        NAME, JOB_ID, _param("log", "query", {"type": "integer", "minimum": 0},
                             "first log line to show (default: the newest 100)")])},
    "/tasks/{task_id}": {"get": _op("A bulk action's progress", "200", "Task", [
        _param("task_id", "path", STR, "the task id from the 202 answer")])},
    "/rescan": _action("Find queues written by other tools (bounded SCAN)"),
    "/pause-all": _action("Pause every queue"),
    "/resume-all": _action("Resume every queue"),
    "/queues/{name}/pause": _action("Pause a queue: workers take no new jobs", [NAME],
                                    dict(reason={"type": "string", "maxLength": 500}, until=_UNTIL)),
    "/queues/{name}/resume": _action("Resume a queue", [NAME]),
    "/queues/{name}/retry-all": _action("Retry every failed job (background task)", [NAME], bulk=True),
    "/queues/{name}/promote-all": _action("Move every delayed job to waiting now (background task)", [NAME],
                                          bulk=True),
    "/queues/{name}/clean": _action("Delete completed or failed jobs that finished more than `grace` ago (seconds "
                                    "or a duration such as `15m`), at most `limit` (0: all), oldest first "
                                    "(background task)", [NAME],
                                    dict(state={"enum": ["completed", "failed"]}, grace=_DURATION, limit=_WHOLE),
                                    bulk=True),
    "/queues/{name}/jobs/{job_id}/retry": _action("Retry one failed or completed job", [NAME, JOB_ID]),
    "/queues/{name}/jobs/{job_id}/promote": _action("Move one delayed job to waiting now", [NAME, JOB_ID]),
    "/queues/{name}/jobs/{job_id}/remove": _action("Delete one job (refused while it is active and locked)",
                                                   [NAME, JOB_ID]),
    "/queues/{name}/failures": {"get": _op("Failed jobs grouped by cause (exception type, masked message, innermost "
                                           "application frame), the biggest clusters first; the index catches up "
                                           "within a time budget (`complete` false: ask again)", "200", "Failures",
                                           [NAME])},
    "/queues/{name}/redrive": _action("Retry failed jobs (all, or the comma-separated `cluster` ids) failed by "
                                      "`cutoff`, at `rate` jobs/s (0: as fast as batches go), stopping when more "
                                      "than `share` % of them fail again (background task)", [NAME],
                                      dict(cluster=STR, rate=_WHOLE, share=_WHOLE, cutoff=_WHOLE), bulk=True),
    "/queues/{name}/failures/{cluster}/remove": _action("Delete the failed jobs of one cluster (background task)", [
        NAME, _param("cluster", "path", STR, "Failure cluster id (16 hex digits).")], bulk=True),
    "/tasks/{task_id}/redrive/{what}": {"post": _op("Pause, resume (`run`) or cancel a re-drive", "200",
                                                    "RedriveControl", [
        _param("task_id", "path", STR, "the re-drive's task id"),
        _param("what", "path", {"enum": ["pause", "run", "cancel"]}, "what to do")])},
    "/queues/{name}/schedulers/{scheduler_id}/remove": _action("Remove a job scheduler", [
        NAME, _param("scheduler_id", "path", STR, "Job scheduler id. " + SEGMENT)]),
}

DOCUMENT: S = {
    "openapi": "3.1.0",
    "info": {"title": "Bullpen dashboard API", "version": "1.0.0", "description": (
        "The dashboard's facts and actions as JSON. Authenticate with `Authorization: Bearer <token>` "
        "(`DASHBOARD_API_TOKENS`, scope `read` or `write`); without a token requests are let in as the pages "
        "let them in (basic auth when configured, and a CSRF token plus same-origin for a POST). "
        "POST bodies may be forms or JSON objects. Every error is `{\"error\": {\"status\", \"message\"}}`.")},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}, {"basic": []}, {}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "responses": {f"E{code}": {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
                      for code, text in ERRORS.items()},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                            "basic": {"type": "http", "scheme": "basic"}},
    },
}


def document(server: str) -> S:
    """The document, with the API's root URL (``/api/v1`` under the dashboard's mount point)."""
    doc = deepcopy(DOCUMENT)
    doc["servers"] = [{"url": server}]
    return doc
