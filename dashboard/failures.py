"""What makes two failures "the same": exception type, masked message, innermost application frame.

Pure functions, no I/O (the index in Redis is :mod:`dashboard.failure_index`). A failed job is
summed up by :func:`fingerprint` from its ``failedReason`` and its newest stack trace (Python's
``traceback`` text or Node's ``err.stack``; either may be cut in the middle, see
:func:`innermost_frame`). :func:`mask` replaces what changes from one failure to the next
(numbers, ids, UUIDs, hex, paths, e-mail addresses, URLs; a bare hex string such
as a hash counts as an id, so it groups with ids that hold other letters) by placeholders; it
is idempotent and never leaves a digit behind. It also builds the failure index's per-job
entries (:func:`index_entry`) and holds what the failures page shows of a cluster
(:class:`Cluster`, :class:`Overview`), so :mod:`dashboard.failure_index` keeps to Redis. This module
must not import redis or Flask.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .codec import text
from .keys import BOOKKEEPING, not_a_job

#: Characters of a message kept (after masking) for grouping and display.
MESSAGE_CHARS = 300
#: Characters of a reason looked at: masking a 5 MB reason would be slow and group nothing better.
REASON_CHARS = 2000

_MASKS = re.compile(
    r"(?P<url>\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+)"
    r"|(?P<email>\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<uuid>\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b)"
    r"|(?P<path>(?:[A-Za-z]:)?(?:[\\/][\w.@~+-]+){2,}[\\/]?|(?:\.{1,2}|~)(?:[\\/][\w.@~+-]+)+[\\/]?)"
    r"|(?P<hex>\b0[xX][0-9a-fA-F]+\b)"
    r"|(?P<num>(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?![\w]))"
    r"|(?P<id>[\w-]*\d[\w-]*)"
)
_ZEROS = str.maketrans("123456789", "000000000")
_MASK_CACHE: dict[str, str] = {}
_CACHE_SIZE = 4096
_PLACEHOLDER = {"url": "<url>", "email": "<email>", "uuid": "<uuid>", "path": "<path>", "hex": "<hex>",
                "num": "<n>", "id": "<id>"}
#: Whitespace-separated tokens holding one of these characters; only they go through _MASKS.
_SPECIAL = re.compile(r"(?<!\S)\S*?[\d/\\@]\S*")

#: Frames that belong to libraries or the runtime, not to the application.
_LIBRARY = ("site-packages", "dist-packages", "node_modules", "node:internal", "internal/", "<frozen",
            "/lib/python", "\\lib\\python", "<string>", "(native)", "node:")
_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<func>.+?)\s*$')
_NODE_FRAME = re.compile(r"^\s*at (?:(?P<func>.+?) \((?P<loc>.+)\)|(?P<bare>.+))\s*$")
_NODE_LOC = re.compile(r"^(?P<file>.*?)(?::(?P<line>\d+))?(?::\d+)?$")
_TYPE = re.compile(r"^(?P<type>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(?::|$)")


@dataclass(frozen=True)
class Frame:
    """One stack frame: file (shortened to its last two parts), function, line (for display)."""

    file: str
    function: str
    line: int | None = None

    @property
    def where(self) -> str:
        """The part that identifies the frame across deploys: file and function, no line."""
        return f"{self.file} in {self.function}" if self.function else self.file


@dataclass(frozen=True)
class Fingerprint:
    """What a failure is, for grouping: the same three parts make the same cluster."""

    type: str
    message: str
    frame: str
    line: int | None = None

    @property
    def id(self) -> str:
        """16 hex digits naming the cluster (stable across processes and versions of Python)."""
        digest = hashlib.sha1(f"{self.type}\0{self.message}\0{self.frame}".encode("utf-8", "replace"))
        return digest.hexdigest()[:16]


def mask(message: str) -> str:
    """``message`` with every number, id, UUID, hex string, path, URL and e-mail address
    replaced by ``<n>``, ``<id>``, ``<uuid>``, ``<hex>``, ``<path>``, ``<url>``, ``<email>``,
    whitespace collapsed, cut to :data:`MESSAGE_CHARS`. ``mask(mask(x)) == mask(x)``."""
    # Every pattern treats all digits alike, so messages that differ only in which digits they
    # hold mask alike: remember the result per message with its digits made zeros.
    key = message[:REASON_CHARS].translate(_ZEROS)
    found = _MASK_CACHE.get(key)
    if found is None:
        if len(_MASK_CACHE) >= _CACHE_SIZE:
            _MASK_CACHE.clear()
        masked = _SPECIAL.sub(_mask_token, key)  # no mask crosses whitespace
        found = _MASK_CACHE[key] = " ".join(masked.split())[:MESSAGE_CHARS].rstrip()
    return found


def _mask_token(token: re.Match[str]) -> str:
    return _MASKS.sub(_placeholder, token[0])


def _placeholder(match: re.Match[str]) -> str:
    return _PLACEHOLDER[match.lastgroup or "id"]


def innermost_frame(trace: str) -> Frame | None:
    """The innermost frame of ``trace`` that belongs to the application (not site-packages,
    node_modules, the standard library or the runtime), or None. Python traces list the
    innermost frame last (of the last chained exception), Node's first. A trace cut in the
    middle (head and tail joined) still works: only whole lines are read."""
    lines = trace.splitlines()
    if any(_PY_FRAME.match(line) for line in lines[:200]) or "Traceback (most recent call last)" in trace:
        return _python_frame(lines)
    return _node_frame(lines)


def _python_frame(lines: list[str]) -> Frame | None:
    last_block = 0
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            last_block = i
    for line in reversed(lines[last_block:]):
        m = _PY_FRAME.match(line)
        if m and not _is_library(m["file"]):
            return Frame(_short(m["file"]), m["func"], int(m["line"]))
    return None


def _node_frame(lines: list[str]) -> Frame | None:
    for line in lines:
        m = _NODE_FRAME.match(line)
        if not m:
            continue
        loc = m["loc"] or m["bare"] or ""
        if _is_library(loc):
            continue
        place = _NODE_LOC.match(loc)
        file = place["file"] if place else loc
        line_no = int(place["line"]) if place and place["line"] else None
        func = (m["func"] or "").removeprefix("async ").removeprefix("new ")
        return Frame(_short(file.removeprefix("file://")), func, line_no)
    return None


def _is_library(path: str) -> bool:
    return any(part in path for part in _LIBRARY)


def _short(path: str) -> str:
    parts = [p for p in re.split(r"[\\/]", path) if p]
    return "/".join(parts[-2:]) if parts else path


def exception_type(reason: str, trace: str) -> str:
    """The exception's type: from the last line of a Python trace (``ValueError: ...``), the
    first line of a Node stack (``TypeError: ...``), else ``""`` (no trace)."""
    lines = [line for line in trace.splitlines() if line.strip()]
    if not lines:
        return ""
    python = "Traceback (most recent call last)" in trace or any(_PY_FRAME.match(x) for x in lines[:50])
    candidates = reversed(lines) if python else iter(lines[:1])
    for line in candidates:
        if line[:1].isspace():
            continue
        m = _TYPE.match(line)
        if m and m["type"] not in ("Traceback", "During", "The"):
            return m["type"]
        break
    return ""


def first_line(reason: str) -> str:
    """The part of a ``failedReason`` that is grouped on: its first line."""
    return reason.strip().split("\n", 1)[0] if reason else ""


def fingerprint(reason: str, trace: str) -> Fingerprint:
    """A failure summed up from its ``failedReason`` and its newest stack trace (``""`` when it
    has none, e.g. a job that stalled too often): type, masked first line of the reason, and
    the innermost application frame."""
    first = first_line(reason)
    kind, frame = trace_parts(first, trace)
    return Fingerprint(kind, mask(first), frame.where if frame else "", frame.line if frame else None)


def from_parts(kind: str, first: str, frame: Frame | None) -> Fingerprint:
    """The fingerprint of a reason's first line with a type and frame from :func:`trace_parts`."""
    return Fingerprint(kind, mask(first), frame.where if frame else "", frame.line if frame else None)


_TRACE_CACHE: dict[str, tuple[str, Frame | None]] = {}


def trace_parts(first: str, trace: str) -> tuple[str, Frame | None]:
    """Type and frame of a trace, remembered per trace with its message taken out (the jobs of
    one cluster share the rest of their traces, so a 50,000-job index parses few of them)."""
    if not trace:
        return "", None
    key = trace.replace(first, "\0") if len(first) >= 3 else trace
    found = _TRACE_CACHE.get(key)
    if found is None:
        if len(_TRACE_CACHE) >= _CACHE_SIZE:
            _TRACE_CACHE.clear()
        found = _TRACE_CACHE[key] = (exception_type(first, trace), innermost_frame(trace))
    return found


_RAW_CACHE: dict[bytes, tuple[str, Frame | None]] = {}


def fingerprint_raw(reason: str, raw: bytes) -> Fingerprint:
    """The fingerprint from a reason and a raw ``stacktrace`` field (a JSON array of strings):
    its newest element is found by its separator, and decoded only when no job with the same
    trace (the message taken out) was seen before."""
    first = first_line(reason)
    parts = _raw_parts(first, raw)[1]
    return from_parts(parts[0], first, parts[1])


def _raw_parts(first: str, raw: bytes) -> tuple[bytes, tuple[str, Frame | None]]:
    """(the newest trace with the message taken out, (type, frame)) of a raw stacktrace field."""
    body = _newest_element(raw)
    if not body:
        return b"", ("", None)
    plain = first.isascii() and '"' not in first and "\\" not in first
    escaped = (first if plain else json.dumps(first)[1:-1]).encode("utf-8", "replace")
    key = body.replace(escaped, b"\0") if len(escaped) >= 3 else body
    parts = _RAW_CACHE.get(key)
    if parts is None:
        try:
            trace = json.loads(b'"' + body + b'"')
        except ValueError:
            trace = unescape(body.decode("utf-8", "replace"))
        if len(_RAW_CACHE) >= _CACHE_SIZE:
            _RAW_CACHE.clear()
        parts = _RAW_CACHE[key] = trace_parts(first, trace)
    return key, parts


_ENTRY_CACHE: dict[tuple[bytes, str | bytes], tuple[str, str]] = {}


def entry_raw(job_id: str, score: str, reason: str, raw: bytes, again: str) -> list[str]:
    """:func:`index_entry` from a reason and a raw ``stacktrace`` field, remembered per trace
    (message taken out) and message shape, so most jobs of a cluster cost two dictionary looks."""
    if ":" in job_id or job_id in BOOKKEEPING:
        return index_entry(job_id, score, fingerprint_raw(reason, raw), again)
    first = first_line(reason)
    key, parts = _raw_parts(first, raw)
    shape = (key, _shape(first))
    found = _ENTRY_CACHE.get(shape)
    if found is None:
        if len(_ENTRY_CACHE) >= _CACHE_SIZE:
            _ENTRY_CACHE.clear()
        entry = index_entry(job_id, score, from_parts(parts[0], first, parts[1]), again)
        found = _ENTRY_CACHE[shape] = entry[2], entry[4]
    return [job_id, score, found[0], again, found[1]]


_BYTE_ZEROS = bytes.maketrans(b"123456789", b"000000000")


def _shape(first: str) -> str | bytes:
    """``first[:REASON_CHARS]`` with its digits made zeros (what :func:`mask` results depend on):
    an ASCII message as bytes (``bytes.translate`` costs 1/20 of ``str.translate``; a str and
    bytes shape never compare equal, and no ASCII message maps to the shape of another)."""
    if first.isascii():
        return first[:REASON_CHARS].encode("ascii").translate(_BYTE_ZEROS)
    return first[:REASON_CHARS].translate(_ZEROS)


def _newest_element(raw: bytes) -> bytes:
    """The body (still JSON-escaped) of the last string of a JSON array of strings, or b""."""
    if not raw.startswith(b"["):
        return b""
    end = len(raw) - 2 if raw.endswith(b'"]') else len(raw)
    cut = end
    while True:  # the rightmost separator, either json.dumps's ", " or JSON.stringify's ","
        i = raw.rfind(b'", "', 0, cut)
        i = max(i, raw.rfind(b'","', i + 1, cut))  # an element may hold ",": both are looked for
        if i < 0:
            return raw[2:end] if raw.startswith(b'["') else b""
        j = i - 1
        while j >= 0 and raw[j] == 92:  # backslashes before the quote: an odd count escapes it
            j -= 1
        if (i - 1 - j) % 2 == 0:
            return raw[i + (3 if raw[i + 2] == 34 else 4):end]
        cut = i


_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\", "/": "/"}


def unescape(body: str) -> str:
    """A JSON string's body (no quotes) as text; cut escapes at either end are kept as they are."""
    if "\\" not in body:
        return body
    out = _ESCAPE.sub(lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "u" else _SIMPLE.get(m[1], m[1]), body)
    if any("\ud800" <= c <= "\udfff" for c in out):  # \ud83d\ude00 pairs: one character; lone halves: U+FFFD
        out = out.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return out


def failed_after_redrive(mark: Any, score: str) -> bool:
    """Whether a job's re-drive mark (JSON with ``at`` ms) is older than its failure."""
    if not mark:
        return False
    try:
        raw = mark.decode("utf-8", "replace") if isinstance(mark, bytes) else str(mark)
        return float(json.loads(raw).get("at", 0)) <= float(score)
    except (ValueError, AttributeError, TypeError):
        return False


_DESCRIBED: dict[Fingerprint, tuple[str, str]] = {}


def index_entry(job_id: str, score: str, fp: Fingerprint, again: str) -> list[str]:
    """The five values ``index_failures`` takes for a job (id and description computed once per
    fingerprint)."""
    if not_a_job(job_id):  # e.g. 'meta' left in the failed set by another tool: never indexed
        return []
    found = _DESCRIBED.get(fp)
    if found is None:
        if len(_DESCRIBED) >= 4096:
            _DESCRIBED.clear()
        found = _DESCRIBED[fp] = fp.id, json.dumps({"type": fp.type, "message": fp.message, "frame": fp.frame,
                                                    "line": fp.line})
    return [job_id, score, found[0], again, found[1]]


@dataclass
class Cluster:
    """One cluster of failed jobs, as the failures page shows it."""

    id: str
    type: str
    message: str
    frame: str
    line: int | None
    count: int
    again: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    sample_id: str | None = None
    spark: list[int] = field(default_factory=list)


@dataclass
class Overview:
    """The top clusters, the sparkline window they share, and the totals."""

    clusters: list[Cluster]
    total_clusters: int
    window: tuple[int, int]
    buckets: int


def cluster_from(cid: str, count: int, meta: Any, again: Any, first: Any, last: Any) -> Cluster:
    """A cluster from what the index holds: its description JSON, counts and newest/oldest members."""
    try:
        d = json.loads(text(meta)) if meta else {}
    except ValueError:
        d = {}
    if not isinstance(d, dict):
        d = {}
    line = d.get("line")
    return Cluster(cid, str(d.get("type", "")), str(d.get("message", "")), str(d.get("frame", "")),
                   line if isinstance(line, int) else None, count, int(float(again or 0)),
                   int(first[0][1]) if first else None, int(last[0][1]) if last else None,
                   text(last[0][0]) if last else None)
