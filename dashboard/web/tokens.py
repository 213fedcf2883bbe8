"""Who sends a request to the JSON API or ``/metrics``, and what they may do.

A request is either a *token request* (``Authorization: Bearer <token>``, checked against
``DASHBOARD_API_TOKENS`` in constant time) or a *browser request*, which is let in exactly as
the pages let it in (basic auth when configured; CSRF token and same-origin for a POST, see
:mod:`dashboard.web.security`). A token request that names no configured token is refused
with 401 and never falls back to the session cookie or basic auth; only a valid token skips
the CSRF check, since a browser cannot attach it to a forged cross-site request. The token
itself is never stored, logged or shown: :func:`authorize` keeps only its name, as the audit
actor ``api:<name>``. This module must not talk to Redis.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import abort, g, request

from ..config import ApiToken, Settings
from . import security

#: The scopes that may use the API with safe methods (GET), and with the others (POST); any
#: scope may scrape /metrics.
READ_SCOPES, WRITE_SCOPES = ("read", "write"), ("write",)


def bearer() -> str | None:
    """The token of an ``Authorization: Bearer ...`` header ("" when the header names the
    scheme but no token), or None when the request carries no bearer header."""
    scheme, _, rest = request.headers.get("Authorization", "").strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else None


def find(tokens: tuple[ApiToken, ...], presented: str) -> ApiToken | None:
    """The configured token equal to ``presented``. Every configured token is compared, each
    as a SHA-256 digest with :func:`hmac.compare_digest`, so the time taken says nothing about
    which token (or how much of one) matched, nor about their lengths."""
    wanted = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
    found = None
    for token in tokens:
        if hmac.compare_digest(hashlib.sha256(token.token.encode()).digest(), wanted):
            found = token
    return found


def authorize(settings: Settings, metrics: bool = False) -> None:
    """Let the request in or abort: 401 (no or unknown credentials), 403 (scope, read-only
    mode, CSRF, cross-site). ``metrics``: the request is a ``/metrics`` scrape (GET only),
    which any scope may make. Sets ``g.bullpen_actor`` for the audit trail."""
    presented = bearer()
    if presented is None:  # a browser request: as the pages
        if security.check_basic_auth(settings, own_guard=True) is not None:
            abort(401, "Authentication required: send Authorization: Bearer <token>, or the dashboard's "
                       "basic-auth credentials.")
        security.check_state_change(settings, own_guard=True)
        return
    token = find(settings.api_tokens, presented) if presented else None
    if token is None:
        abort(401, "The bearer token is not valid.")
    g.bullpen_actor = f"api:{token.name}"
    if metrics:
        return
    safe = request.method in security.SAFE_METHODS
    if token.scope not in (READ_SCOPES if safe else WRITE_SCOPES):
        needed = "read or write" if safe else "write"
        abort(403, f"The token {token.name!r} has scope {token.scope!r}: this request needs scope {needed}.")
    if not safe and settings.read_only:
        abort(403, "This dashboard is read-only (DASHBOARD_READ_ONLY=1): actions are disabled.")


def challenge(settings: Settings) -> str:
    """The ``WWW-Authenticate`` value of a 401 from the API or /metrics."""
    bearer_challenge = 'Bearer realm="Bullpen API"'
    if bearer() not in (None, ""):
        bearer_challenge += ', error="invalid_token"'
    if settings.auth_user and settings.auth_password:
        return f'{bearer_challenge}, Basic realm="Bullpen", charset="UTF-8"'
    return bearer_challenge
