"""The blueprint as a guest: mounted in a host app with its own templates, request class,
filters and blueprint names, it changes nothing of the host's and keeps its own look."""

from __future__ import annotations

from pathlib import Path

import redis
from flask import Blueprint, Flask, Request, render_template

from dashboard.config import Settings
from dashboard.web import init_dashboard
from tests.webkit import post, seed, token


class HostRequest(Request):
    """The host's own request class (as an app using another extension might have)."""

    marker = "host"


def host_app(tmp_path: Path) -> Flask:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "base.html").write_text("<html><body>HOST LAYOUT {% block content %}{% endblock %}</body></html>")
    (templates / "error.html").write_text("HOST ERROR PAGE")
    (templates / "home.html").write_text('{% extends "base.html" %}{% block content %}{{ 7|number }}{% endblock %}')
    host = Flask("host", template_folder=str(templates), static_folder=None)
    host.secret_key = "host-secret"
    host.request_class = HostRequest
    host.add_template_filter(lambda v: f"host-number-{v}", "number")
    own = Blueprint("dashboard", "host_dashboard")  # a host blueprint with the name we used to have

    @own.get("/")
    def home() -> str:
        return render_template("home.html")

    host.register_blueprint(own)
    return host


def test_host_app_keeps_its_request_class_templates_filters_and_headers(
        tmp_path: Path, redis_url: str, r: redis.Redis) -> None:
    seed(r, "mail", 2)
    host = host_app(tmp_path)
    filters_before = dict(host.jinja_env.filters)
    handlers_before = {k: dict(v) for k, v in host.error_handler_spec.get(None, {}).items()}
    dash = init_dashboard(host, Settings(redis_url=redis_url), redis_url, url_prefix="/admin/jobs")
    try:
        assert host.request_class is HostRequest
        assert dict(host.jinja_env.filters) == filters_before
        assert {k: dict(v) for k, v in host.error_handler_spec.get(None, {}).items()} == handlers_before
        assert host.secret_key == "host-secret"
        c = host.test_client()
        home = c.get("/")
        assert home.get_data(as_text=True) == "<html><body>HOST LAYOUT host-number-7</body></html>"
        assert "Content-Security-Policy" not in home.headers  # our headers are the blueprint's only

        page = c.get("/admin/jobs/queues/mail?state=failed")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "HOST LAYOUT" not in html
        assert '<meta name="csrf-token"' in html and "/admin/jobs/static/dashboard.css" in html
        assert "/admin/jobs/static/htmx-2.0.11.min.js" in html
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")

        missing = c.get("/admin/jobs/queues/no-such-queue")
        body = missing.get_data(as_text=True)
        assert missing.status_code == 404
        assert "HOST" not in body and "/admin/jobs/static/dashboard.css" in body and 'name="csrf-token"' in body

        resp = post(c, "/admin/jobs/queues/mail/pause", csrf=token(c, "/admin/jobs/"))
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/jobs/")
        assert dash.queue("mail").is_paused()
        partial = c.get("/admin/jobs/", headers={"HX-Request": "true"})
        assert partial.get_data(as_text=True).lstrip().startswith('<div id="summary"')
    finally:
        dash.stop()
