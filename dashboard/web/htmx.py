"""Small htmx helpers for the views: page or partial, toasts, stop polling, flash errors.

The same URL answers htmx requests with the partial and everything else (including
htmx's history restores) with the full page. Responses vary on both headers; the
security hook adds that ``Vary``. htmx-flask's header parsing is used on the current
request without installing its request class, so a host app keeps its own. This module
must not talk to Redis.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, make_response, render_template, request
from htmx_flask.requests import HtmxHeaders

#: htmx stops an ``every Ns`` poll when the answer has this status.
STOP_POLLING = 286


def headers() -> HtmxHeaders:
    """The current request's htmx headers (``HX-Request``, ``HX-Target`` ...)."""
    return HtmxHeaders(request.headers)


def is_partial() -> bool:
    """True for htmx requests other than history restores (those need the whole page)."""
    hx = headers()
    return bool(hx) and not hx.history_restore_request


def target() -> str:
    """The id of the element the htmx request will swap (empty for plain requests)."""
    return (headers().target or "") if is_partial() else ""


def render_page_or_partial(page_template: str, partial_template: str, status: int = 200,
                           **context: Any) -> Response:
    """Render the partial for htmx requests, the page (which includes it) otherwise."""
    template = partial_template if is_partial() else page_template
    return make_response(render_template(template, **context), status)


def toast(response: Response, message: str, refresh: bool = False) -> Response:
    """Ask the page to show ``message`` in its toast area (and to refresh polled parts)."""
    events: dict[str, Any] = {"dashboard:toast": {"message": message}}
    if refresh:
        events["dashboard:refresh"] = True
    response.headers["HX-Trigger"] = json.dumps(events)
    return response


def stop_polling(response: Response) -> Response:
    """Mark a polled fragment as final: htmx swaps it and stops polling."""
    response.status_code = STOP_POLLING
    return response


def flash_error(message: str, status: int) -> Response:
    """A 4xx answer to an htmx request: the message replaces ``#flash``."""
    html = render_template("bullpen/partials/_flash.html", flash_message=message, level="error")
    response = make_response(html, status)
    response.headers["HX-Retarget"] = "#flash"
    response.headers["HX-Reswap"] = "outerHTML"
    return response
