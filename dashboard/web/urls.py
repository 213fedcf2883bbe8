"""URLs for queue names and job ids that may hold any text: one path segment each.

A queue name or job id can contain ``/``, ``%``, ``?``, ``#``, spaces, control characters,
unicode, or be ``..`` (``evil/../victim`` is a valid BullMQ job id). WSGI servers decode the
path once before routing, and browsers resolve ``.``/``..`` segments (``%2e`` included), so
plain percent-encoding would let such an id reach another route or another job. The
``bullpen_segment`` converter therefore encodes ``%``, ``/``, ``\\``, control characters and
the dots of an all-dot segment twice (they survive the server's decoding as ``%XX`` and are
decoded by :meth:`SegmentConverter.to_python`), everything else once. Every URL of the
blueprint is built from :func:`flask.url_for` or, for the many rows of a job table,
:func:`job_url_builder` and :func:`list_url_builder`, which encode each segment the same way. This module must not talk
to Redis.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from flask import Blueprint, url_for
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

#: The name the converter is registered under (namespaced: it is the one thing the
#: blueprint adds to the host app's URL map).
CONVERTER = "bullpen_segment"
_TWICE = re.compile(r"[%/\\\x00-\x1f\x7f]")
#: What stays literal in a path segment (RFC 3986 sub-delims, ':' and '@'), as werkzeug's own.
_SAFE = "!$&'()*+,:;=@"


def segment(value: Any) -> str:
    """``value`` as one path segment that decodes back to exactly ``value``."""
    text = str(value)
    if text and text.strip(".") == "":
        escaped = "%2E" * len(text)  # "." and ".." are never path navigation
    else:
        escaped = _TWICE.sub(lambda m: f"%{ord(m.group()):02X}", text)
    return quote(escaped, safe=_SAFE)


class SegmentConverter(BaseConverter):
    """A path segment holding any text (see the module docstring)."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return unquote(value)

    def to_url(self, value: Any) -> str:
        return segment(value)


def register_converter(bp: Blueprint) -> None:
    """Add the converter to the app's URL map when ``bp`` is registered (before its rules)."""

    def add(state: BlueprintSetupState) -> None:
        state.app.url_map.converters[CONVERTER] = SegmentConverter

    bp.record_once(add)


def job_url_builder(queue_name: str) -> Callable[..., str]:
    """``build(job_id, action="")`` -> the job page (or action) URL of a job in ``queue_name``;
    equal to ``url_for`` for the same arguments, at a fraction of the cost per row."""
    base = url_for(".queue_view", name=queue_name) + "/jobs/"

    def build(job_id: str, action: str = "") -> str:
        return base + segment(job_id) + ("/" + segment(action) if action else "")

    return build


def list_url_builder(queue_name: str) -> Callable[..., str]:
    """``build(state, per, page=None)`` -> the queue page listing ``state``; equal to ``url_for``
    for the same arguments (query in the same order; a state name and numbers need no encoding),
    one ``url_for`` for a page's tabs and pager links."""
    base = url_for(".queue_view", name=queue_name)

    def build(state: str, per: int, page: int | None = None) -> str:
        return f"{base}?state={state}&per={per}" if page is None else f"{base}?state={state}&page={page}&per={per}"

    return build
