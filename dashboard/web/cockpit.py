"""Routes of the incident cockpit, added to the dashboard's blueprint: the workers page and the
overview's throughput strip (its htmx fragment).

They live here because :mod:`dashboard.web.views` is at its size budget; they share its
blueprint, so its guards (auth, CSRF, security headers), error pages and template globals
apply. Views stay thin: parse, one call, render. Imported once by :mod:`dashboard.web`.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Response, make_response, render_template

from . import charts, htmx, strip, workers_page
from .extension import current
from .views import bp


@bp.context_processor
def _chart_globals() -> dict[str, Any]:
    return dict(chart_ranges=charts.RANGES)


@bp.get("/workers")
def workers() -> Response:
    """Every worker on every queue: Bullpen's heartbeats and BullMQ's named connections."""
    found, problems = workers_page.rows(current().catalog, int(time.time() * 1000))
    return htmx.render_page_or_partial("bullpen/workers.html", "bullpen/partials/_workers.html", workers=found,
                                       problems=problems)


@bp.get("/throughput")
def throughput() -> Response:
    """The overview's strip alone (htmx swaps it in when the range changes, and polls it)."""
    range_key = strip.range_arg()
    rows = current().overview.snapshot()
    return make_response(render_template("bullpen/partials/_strip.html",
                                         strip=strip.strip(current().catalog, rows, range_key,
                                                           current().overview.clock())))
