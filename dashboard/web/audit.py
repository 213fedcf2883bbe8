"""Every state-changing request of the blueprint, written to the audit trail as it ends.

Views say what an action did with :func:`note`; :func:`record` (an ``after_request`` hook)
adds who (``api:<token name>`` for a bearer token of the JSON API, the basic-auth user, else
"anonymous"), from where (the client address), on which queue and job, and whether it was
done or refused. A request refused before it reaches its view (no credentials, a forged or
stale CSRF token, cross-site, read-only mode) is only logged: it must change nothing in
Redis, and anyone could send many. Passwords and tokens never reach it. This module does
not talk to Redis itself: it goes through the runtime's :class:`~dashboard.audit.AuditLog`.
"""

from __future__ import annotations

import logging

from flask import Response, g, request

from .extension import current

log = logging.getLogger(__name__)


def note(message: str, count: int | None = None) -> None:
    """What the current action did (or why it was refused), for its audit entry."""
    g.bullpen_audit = (message, count)


def actor() -> str:
    """Who is acting: ``api:<token name>`` for a valid bearer token (set by
    :func:`dashboard.web.tokens.authorize`), the basic-auth user name when auth is on, else
    "anonymous"."""
    by_token = g.get("bullpen_actor")
    if isinstance(by_token, str):
        return by_token
    settings, auth = current().settings, request.authorization
    if settings.auth_user and settings.auth_password and auth is not None and auth.username:
        return auth.username
    return "anonymous"


def record(response: Response) -> Response:
    """After each POST to the blueprint: one audit entry."""
    if request.method != "POST" or not (request.endpoint or "").startswith("bullpen."):
        return response
    message, count = g.get("bullpen_audit", ("", None))
    args = request.view_args or {}
    action = (request.endpoint or "").removeprefix("bullpen.").removeprefix("api.").replace("_", " ")
    if action == "job action":
        action = f"{args.get('action', '')} job"
    ok = response.status_code < 400
    result = message if ok else f"refused ({response.status_code}){': ' + message if message else ''}"
    if response.status_code in (401, 403):  # refused by the guards: a log line, no write to Redis
        log.warning("audit: refused %s %s from %s (%s): %s", action, args.get("name", "-"), request.remote_addr,
                    actor(), result)
        return response
    current().audit.record(actor=actor(), remote=request.remote_addr or "", action=action,
                           queue=str(args.get("name", "")), target=str(args.get("job_id") or args.get("scheduler_id")
                                                                       or ""),
                           count=count, result=result, ok=ok)
    return response
