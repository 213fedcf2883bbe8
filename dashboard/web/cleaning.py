"""The clean form's preview, added to the dashboard's blueprint: how many jobs the chosen
"older than" and "up to" match, as a small fragment htmx fetches while the user types.

It lives here because :mod:`dashboard.web.views` is at its size budget; it shares its
blueprint (guards, error pages, template globals). One ZCOUNT through the runtime's
``Queue.clean_count``: O(log n) whatever the queue holds. Imported once by :mod:`dashboard.web`.
"""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request
from werkzeug.exceptions import BadRequest

from .lookup import queue_or_404
from .params import GRACE_DEFAULT, choice, clean_args
from .views import bp


@bp.context_processor
def _clean_globals() -> dict[str, Any]:
    return dict(grace_default=GRACE_DEFAULT)


@bp.get("/queues/<bullpen_segment:name>/clean-preview")
def clean_preview(name: str) -> Response:
    """``N completed jobs match`` for the query's ``state``, ``grace`` and ``limit`` (400 naming
    the field on a bad value: the fragment then says what is wrong)."""
    queue = queue_or_404(name)
    values = request.args
    state = choice(values.get("state", ""), ("completed", "failed"), "state")
    grace_text, limit_text = values.get("grace", ""), values.get("limit", "")
    try:
        state, grace, limit = clean_args(values)
    except BadRequest as exc:  # the fragment says what is wrong, with the 400
        return make_response(render_template("bullpen/partials/_clean_match.html", queue=queue, state=state,
                                              grace=grace_text, limit=limit_text, match=None, problem=exc.description),
                             400)
    match = queue.clean_count(state, grace, limit)
    return make_response(render_template("bullpen/partials/_clean_match.html", queue=queue, state=state,
                                          grace=grace_text, limit=limit_text, match=match, problem=None))
