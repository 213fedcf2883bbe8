"""Request guards and response headers for the dashboard blueprint.

* Optional HTTP basic auth (both settings set); ``/healthz`` stays open for probes. The JSON
  API and ``/metrics`` (:data:`OWN_GUARD`) run these checks from their own guard, after
  bearer tokens (:mod:`dashboard.web.tokens`).
* State changes are POST only and need (1) no cross-site ``Sec-Fetch-Site`` or foreign
  ``Origin`` and (2) the session's CSRF token, sent by htmx as ``X-CSRF-Token`` (from
  ``hx-headers`` on ``<body>``) or by plain forms as the ``csrf_token`` field.
* Read-only mode refuses every POST with 403 (templates also hide the actions).
* Every response gets a strict CSP with no inline script or style, ``nosniff``,
  ``Vary`` on the htmx headers, and ``Cache-Control: private, no-store`` (static files
  excepted). This module must not talk to Redis.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Response, abort, request, session

from ..config import Settings

CSRF_SESSION_KEY = "bullpen_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: Blueprints that guard themselves (bearer tokens first, then these checks).
OWN_GUARD = ("bullpen.api", "bullpen.metrics")
CSP = ("default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
       "object-src 'none'")


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def existing_csrf_token() -> str:
    """This session's CSRF token if it has one, else "" (error pages: no session is started)."""
    token = session.get(CSRF_SESSION_KEY)
    return token if isinstance(token, str) else ""


def check_basic_auth(settings: Settings, own_guard: bool = False) -> Response | None:
    """A 401 challenge when auth is configured and the request lacks the right credentials
    (``own_guard``: the call comes from an :data:`OWN_GUARD` blueprint's guard)."""
    if not (settings.auth_user and settings.auth_password) or request.endpoint == "bullpen.healthz":
        return None
    if request.blueprint in OWN_GUARD and not own_guard:
        return None
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        user_ok = hmac.compare_digest((auth.username or "").encode(), settings.auth_user.encode())
        password_ok = hmac.compare_digest((auth.password or "").encode(), settings.auth_password.encode())
        if user_ok and password_ok:
            return None
    return Response("Authentication required.\n", 401, {"WWW-Authenticate": 'Basic realm="Bullpen", charset="UTF-8"'},
                    mimetype="text/plain")


def check_state_change(settings: Settings, own_guard: bool = False) -> None:
    """Abort unsafe requests that are cross-site, lack the CSRF token, or come in read-only mode
    (``own_guard``: as in :func:`check_basic_auth`)."""
    if request.method in SAFE_METHODS or (request.blueprint in OWN_GUARD and not own_guard):
        return
    if settings.read_only:
        abort(403, "This dashboard is read-only (DASHBOARD_READ_ONLY=1): actions are disabled.")
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        abort(403, f"Refused: this request came from another site (Sec-Fetch-Site: {site[:40]!r}).")
    origin = request.headers.get("Origin")
    if site is None and origin and urlsplit(origin).netloc != request.host:
        abort(403, "Refused: this request came from another origin.")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    expected = session.get(CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, "Refused: the CSRF token is missing or stale. Reload the page and try again.")


def add_headers(response: Response) -> Response:
    """Security and caching headers for every response of the blueprint."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint != "bullpen.static":
        response.headers["Cache-Control"] = "private, no-store"
        response.vary.update(("HX-Request", "HX-History-Restore-Request"))
    return response
