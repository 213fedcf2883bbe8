"""The single gate for Lua: loads ``lua/*.lua`` once and runs them by name.

Each Lua file is one atomic state change, or (``read_*``) one bounded read that cuts long values inside Redis;
its header lists KEYS, ARGV and return codes. ``lua/_guards.lua`` is no script: its helpers (refusing keys
of the wrong type, skipping fields other tools spoiled) are put in front of every script; ``_enqueue.lua``,
``_dedup.lua``, ``_parent.lua`` and ``_fetch.lua`` (storing and queueing a job, BullMQ's deduplication, a flow's
parent bookkeeping, taking jobs) in front of the scripts :data:`HELPERS` names. This module builds the KEYS
lists from :class:`~dashboard.keys.Keys`, passes ARGV through, and can run several calls in one round trip
(:meth:`Scripts.batch`). It must not decide policy (retries, batching sizes, what a return code means to a
user): callers do that.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from .clients import Client, DirectLine, direct_line
from .keys import Keys, failure_index_key

LUA_DIR = Path(__file__).with_name("lua")

Arg = str | int | float | bytes
#: A key name: text, or bytes for a job id that is not UTF-8.
Key = str | bytes
SERVER_TIME = ""  # move_to_active's ``now`` that makes it read the server's clock when it runs


#: Helper files (besides ``_guards.lua``, which every script gets) put in front of a script.
HELPERS = {"add_job": ("_enqueue", "_dedup"),
           "move_to_finished": ("_enqueue", "_dedup", "_parent", "_attempts", "_fetch"),
           "add_job_scheduler": ("_enqueue",), "add_next_scheduled": ("_enqueue",), "move_to_delayed": ("_enqueue",),
           "read_job_fields": ("_head",), "read_log": ("_head",), "move_to_active": ("_fetch",),
           "add_flow": ("_enqueue", "_parent"), "remove_job": ("_parent",),
           "delete_jobs": ("_parent",), "reprocess_jobs": ("_parent",), "retry_job": ("_attempts",),
           "read_failures": ("_head", "_failure_index"),
           **dict.fromkeys(("read_failure_sizes", "index_failures", "prune_failure_index", "redrive_jobs",
                            "remove_failed_jobs"), ("_failure_index",)),
           **{f"bull_{name}": ("_bull",) for name in ("promote", "retry", "remove", "clean")}}


def _load_sources() -> dict[str, str]:
    guards = (LUA_DIR / "_guards.lua").read_text()
    return {p.stem: guards + "".join((LUA_DIR / f"{h}.lua").read_text() for h in HELPERS.get(p.stem, ()))
            + p.read_text() for p in sorted(LUA_DIR.glob("*.lua")) if not p.stem.startswith("_")}


_SOURCES = _load_sources()
_SHAS = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in _SOURCES.items()}


@dataclass
class Call:
    """One script invocation, ready to run alone or in a batch."""

    name: str
    keys: Sequence[Key]
    args: list[Arg]

    def evalsha(self) -> tuple[Arg, ...]:
        return ("EVALSHA", _SHAS[self.name], len(self.keys), *self.keys, *self.args)


#: The scripts each client has loaded (or found loaded), shared by every Scripts on that client.
_KNOWN: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


@dataclass
class Scripts:
    """Runs our Lua scripts on one Redis client (or cluster client). Each script is loaded before its
    first use on a client, not all at once: every cached script is more for Redis's Lua collector to
    walk (a worker's finish-and-fetch call took 65-77 us with all 41 cached, 50-66 us with its few);
    and a batch stays in order (a NOSCRIPT mid-pipeline would let the calls after it run first)."""

    client: Client
    _send: Any = field(init=False, repr=False)
    _line: DirectLine | None = field(init=False, repr=False)
    _loaded: set[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        line = self._line = direct_line(self.client)  # single calls' spare connection, when free
        client: Any = self.client  # execute_command, not evalsha(): no per-call deprecation-check wrapper
        self._send = functools.partial(line.execute, client) if line else client.execute_command
        with _KNOWN_LOCK:
            self._loaded = _KNOWN.setdefault(self.client, set())

    def load(self, names: Iterable[str]) -> None:
        """SCRIPT LOAD these scripts (before their first use here, and after Redis lost them)."""
        for name in sorted(set(names)):
            sha = self.client.script_load(_SOURCES[name])
            assert sha == _SHAS[name], f"SHA mismatch for {name}"
            self._loaded.add(name)

    def _lost(self, names: Iterable[str]) -> None:
        """NOSCRIPT: Redis restarted or flushed its scripts; every one must be loaded again."""
        self._loaded.clear()
        self.load(names)

    def run(self, call: Call) -> Any:
        """Run one call (EVALSHA; loads the script and retries once on NOSCRIPT)."""
        try:
            return self._send(*call.evalsha())
        except NoScriptError:
            self._lost([call.name])
            return self._send(*call.evalsha())

    def batch(self, calls: Sequence[Call], stream: bool = False) -> list[Any]:
        """Run several calls in one round trip, in order; each result (or error) in place. With
        ``stream`` (large calls) each goes as soon as it is packed (:meth:`DirectLine.several`).

        Not a transaction: each script is atomic on its own. Scripts not yet loaded on this client
        are loaded first. A call that failed with NOSCRIPT all the same (the server restarted or
        flushed its scripts since) is re-run after loading; the calls after it ran before it.
        """
        if not calls:
            return []
        if len(calls) == 1:  # no pipeline: one command costs less to send and to read
            try:
                return [self.run(calls[0])]
            except ResponseError as exc:
                return [exc]
        self.load({c.name for c in calls} - self._loaded)
        streamed = self._line.several([c.evalsha() for c in calls]) if stream and self._line else None
        results = self._pipeline(calls) if streamed is None else streamed
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            self._lost(calls[i].name for i in missing)
            again = self._pipeline([calls[i] for i in missing])
            for i, r in zip(missing, again):
                results[i] = r
        return results

    def add_to(self, pipe: Any, call: Call) -> None:
        """Queue ``call`` on a caller's pipeline (with other commands); a NOSCRIPT error comes
        back in its place, for the caller to retry with :meth:`run`."""
        pipe.execute_command(*self.command(call))

    def command(self, call: Call) -> tuple[Arg, ...]:
        """``call`` as the EVALSHA command :meth:`add_to` queues (for a caller's own sending); its
        script is loaded first when this client has not loaded it yet."""
        if call.name not in self._loaded:
            self.load([call.name])
        return call.evalsha()

    def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for c in calls:
            pipe.execute_command(*c.evalsha())
        return pipe.execute(raise_on_error=False)


# --- KEYS lists, in the order each script's header gives ---------------------------------


@functools.lru_cache(maxsize=256)
def _add_keys(k: Keys) -> tuple[list[str], str]:
    return [k.id, k.wait, k.prioritized, k.delayed, k.pc, k.meta, k.marker, k.events, k.active], k.base


def add_job(k: Keys, jobs: Sequence[Sequence[Arg]]) -> Call:
    """Add jobs in one call; each entry is the nine per-job values of the script header
    (the deduplication id last, '' for none). Key names are built once per queue."""
    keys, base = _add_keys(k)
    return Call("add_job", keys, [base, *(a for job in jobs for a in job)])


def move_to_active(k: Keys, token: str, lock_ms: int, now: int | str, count: int, worker: str,
                   limiter: Sequence[Arg] = ("", "")) -> Call:
    """``limiter``: the worker limiter's (max, duration ms), or ``("", "")``; ``now``: ms, or :data:`SERVER_TIME`."""
    return Call("move_to_active", _fetch_keys(k), [k.base, token, lock_ms, now, count, worker, *limiter])


@functools.lru_cache(maxsize=256)
def _fetch_keys(k: Keys) -> list[str]:
    return [k.wait, k.active, k.prioritized, k.delayed, k.pc, k.meta, k.marker, k.events, k.limiter]


@functools.lru_cache(maxsize=256)
def _finish_keys(k: Keys) -> list[str]:
    return [k.active, k.completed, k.failed, k.stalled, k.events, k.meta, k.wait, k.prioritized, k.delayed,
            k.limiter, k.metrics("completed"), k.metrics("failed"), k.metrics("completed", True),
            k.metrics("failed", True), k.pc, k.marker, k.id]


#: move_to_finished's ARGV[5..10] when it fetches nothing.
_NO_FETCH: list[Arg] = ["", "", "", "", "", ""]


def move_to_finished(k: Keys, now: int, jobs: Sequence[Sequence[Arg]], metrics: Arg = "",
                     limiter_max: Arg = "") -> Call:
    """Settle a batch (each entry: the nine per-job values the script lists). ``metrics``: its ARGV[3], data
    points to keep ('' none) and maybe ``:c``/``:f``/``:cf``. :func:`fetch_after` adds a fetch."""
    return Call("move_to_finished", _finish_keys(k),
                [k.base, now, metrics, limiter_max, *_NO_FETCH, *(a for job in jobs for a in job)])


def fetch_after(finish: Call, fetch: Call) -> Call:
    """One call doing ``finish`` (a :func:`move_to_finished`) then ``fetch`` (a :func:`move_to_active`
    of the same queue, run at the finish's ``now``), as BullMQ's moveToFinished with fetchNext:
    its reply is ``[finish reply, fetch reply]``."""
    token, lock_ms, _now, count, worker, lmax, lduration = fetch.args[1:8]
    return Call(finish.name, finish.keys, [*finish.args[:4], token, lock_ms, count, worker, lmax, lduration,
                                           *finish.args[10:]])


def remove_deduplication_key(k: Keys, dedup_id: str) -> Call:
    return Call("remove_deduplication_key", [k.dedup(dedup_id)], [])


def global_concurrency(k: Keys, concurrency: int | None) -> Call:
    return Call("global_concurrency", [k.meta], ["" if concurrency is None else concurrency])


def update_data(k: Keys, job_id: str, data_json: str) -> Call:
    return Call("update_data", [k.job_key(job_id)], [data_json])


def change_priority(k: Keys, job_id: str, priority: int, lifo: bool) -> Call:
    keys = [k.wait, k.meta, k.prioritized, k.active, k.pc, k.marker, k.job_key(job_id)]
    return Call("change_priority", keys, [priority, job_id, "1" if lifo else "0"])


def change_delay(k: Keys, job_id: str, delay_ms: int, now: int) -> Call:
    return Call("change_delay", [k.delayed, k.meta, k.marker, k.events, k.job_key(job_id)], [delay_ms, now, job_id])


def move_to_delayed(k: Keys, job_id: Key, token: Key, delay_ms: int, now: int) -> Call:
    keys = [k.active, k.delayed, k.stalled, k.meta, k.marker, k.events]
    return Call("move_to_delayed", keys, [k.base, job_id, token, delay_ms, now])


def move_limited_to_wait(k: Keys, job_id: Key, token: Key, delay_ms: int) -> Call:
    keys = [k.active, k.wait, k.prioritized, k.stalled, k.meta, k.limiter, k.marker, k.events]
    return Call("move_limited_to_wait", keys, [k.base, job_id, token, delay_ms])


def rate_limit(k: Keys, op: str, *args: Arg) -> Call:
    """``op``: 'set' (max, duration ms), 'remove', or 'ttl' (max jobs, '0' for meta's)."""
    return Call("rate_limit", [k.meta, k.limiter], [op, *args])


def retry_job(k: Keys, args: list[Arg]) -> Call:
    keys = [k.active, k.wait, k.delayed, k.prioritized, k.pc, k.marker, k.events, k.meta, k.stalled]
    return Call("retry_job", keys, [k.base, *args])


def extend_locks(k: Keys, lock_ms: int, pairs: Sequence[tuple[Key, Key]]) -> Call:
    flat: list[Arg] = [x for pair in pairs for x in pair]
    return Call("extend_locks", [k.stalled], [k.base, lock_ms, *flat])


def move_stalled_to_wait(k: Keys, max_stalled: int, now: int, interval_ms: int) -> Call:
    keys = [k.stalled, k.wait, k.active, k.stalled_check, k.meta, k.marker, k.events]
    return Call("move_stalled_to_wait", keys, [k.base, max_stalled, now, interval_ms])


def reprocess_jobs(k: Keys, state: str, cutoff: int, limit: int, ids: Sequence[str] = ()) -> Call:
    keys = [k.state(state), k.wait, k.prioritized, k.pc, k.marker, k.events, k.meta]
    return Call("reprocess_jobs", keys, [k.base, state, cutoff, limit, *ids])


def promote_jobs(k: Keys, limit: int, ids: Sequence[str] = ()) -> Call:
    keys = [k.delayed, k.wait, k.prioritized, k.pc, k.marker, k.events, k.meta]
    return Call("promote_jobs", keys, [k.base, limit, *ids])


def remove_job(k: Keys, job_id: str) -> Call:
    keys = [k.wait, k.active, k.prioritized, k.delayed, k.completed, k.failed, k.waiting_children,
            k.paused, k.events, k.meta, k.stalled, k.repeat]
    return Call("remove_job", keys, [k.base, job_id])


def delete_jobs(k: Keys, state: str, kind: str, max_score: str, limit: int, event: str, force: bool) -> Call:
    keys = [k.state(state), k.events, k.meta]
    return Call("delete_jobs", keys, [k.base, kind, max_score, limit, event, "1" if force else "0"])


def pause_queue(k: Keys, record: str, command: str, *args: Arg) -> Call:
    """``command`` is pause (reason, by, now, until), resume, or resume-if-due (now)."""
    keys = [k.meta, k.marker, k.events, k.wait, k.prioritized, k.delayed, k.paused, record]
    return Call("pause_queue", keys, [command, *args])


def obliterate(k: Keys, leftovers: Sequence[str]) -> Call:
    states = [k.wait, k.paused, k.active, k.prioritized, k.delayed, k.waiting_children, k.completed, k.failed]
    return Call("obliterate", states + list(leftovers), [])


def update_progress(k: Keys, job_id: Key, progress_json: str) -> Call:
    return Call("update_progress", [k.job_key(job_id), k.events, k.meta], [job_id, progress_json])


def add_log(k: Keys, job_id: Key, line: str, keep: int) -> Call:
    return Call("add_log", [k.job_key(job_id), k.job_key(job_id, ":logs")], [line, keep])


def read_job_fields(k: Keys, job_ids: Sequence[str], copy_limit: int, decode_limit: int, max_elements: int,
                    fields: Sequence[tuple[str, int, str]], picks: Sequence[Sequence[int]] | None = None) -> Call:
    """``fields`` are (field, cap in bytes or -1, kind 's' or 'a') triples; ``picks`` (one per
    job id, 0-based indexes into ``fields``) says which of them to read for each job (default: all)."""
    flat: list[Arg] = [x for triple in fields for x in triple]
    chosen: list[Arg] = [",".join(str(i + 1) for i in pick) for pick in picks] if picks is not None else []
    return Call("read_job_fields", [k.job(i) for i in job_ids],
                [copy_limit, decode_limit, max_elements, len(fields), *flat, *chosen])


def read_log(k: Keys, job_id: str, start: int, count: int, cap: int, budget: int) -> Call:
    return Call("read_log", [k.logs(job_id)], [start, count, cap, budget])


def add_next_scheduled(k: Keys, scheduler_id: str, job_id: str, next_ms: int | str, now: int, opts_json: str,
                       legacy_shape: bool) -> Call:
    keys = [k.repeat, k.delayed, k.wait, k.prioritized, k.pc, k.meta, k.marker, k.id, k.events, k.active]
    return Call("add_next_scheduled", keys, [k.base, scheduler_id, job_id, next_ms, now, opts_json,
                                             "1" if legacy_shape else "0"])


def add_job_scheduler(k: Keys, scheduler_id: str, next_ms: int | str, sched_json: str, data_json: str,
                      template_opts_json: str, job_opts_json: str, now: int) -> Call:
    keys = [k.repeat, k.delayed, k.wait, k.prioritized, k.pc, k.meta, k.marker, k.id, k.events, k.active]
    return Call("add_job_scheduler", keys, [k.base, scheduler_id, next_ms, sched_json, data_json,
                                            template_opts_json, job_opts_json, now])


def remove_job_scheduler(k: Keys, scheduler_id: str | bytes) -> Call:
    return Call("remove_job_scheduler", [k.repeat, k.delayed, k.events, k.meta], [k.base, scheduler_id])


def add_flow(route: str, nodes: Sequence[Sequence[Arg]]) -> Call:
    """Add flows: twelve values per node (see the script header), parents before children;
    ``route``: the first node's job key."""
    return Call("add_flow", [route], [a for node in nodes for a in node])


# --- read by both BullMQ and legacy Bull 3/4 queues (Bull's own calls: dashboard/bull.py) --------


def read_queue_counts(k: Keys, bull: bool) -> Call:
    keys = [k.wait, k.paused, k.priority if bull else k.prioritized, k.delayed, k.active, k.completed, k.failed,
            k.meta_paused if bull else k.waiting_children, k.meta, k.metrics("completed"), k.metrics("failed")]
    return Call("read_queue_counts", keys, [k.base, "1" if bull else "0"])


def read_queue_kind(k: Keys) -> Call:
    keys = [k.meta, k.meta_paused, k.priority, k.wait, k.paused, k.active, k.delayed, k.completed, k.failed,
            k.events, k.marker, k.prioritized, k.pc, k.id]
    return Call("read_queue_kind", keys, [k.base])


# --- the failure index (dashboard/failure_index.py) and what acts on its clusters ------------


def _index_keys(k: Keys) -> list[Key]:
    """The index's jobs, counts, again and meta keys, in the order the scripts take them."""
    return [failure_index_key(k.prefix, k.queue, part) for part in ("jobs", "counts", "again", "meta")]


def _stem(k: Keys) -> str:
    return failure_index_key(k.prefix, k.queue, "c:")


def read_failures(k: Keys, mode: str, start: Arg, offset: int, limit: int, budget: int, reason_cap: int,
                  trace_cap: int, decode_limit: int, mark_field: str) -> Call:
    return Call("read_failures", [k.failed, failure_index_key(k.prefix, k.queue, "jobs")],
                [k.base, mode, start, offset, limit, budget, reason_cap, trace_cap, decode_limit, mark_field])


def read_failure_sizes(k: Keys, rank: int, count: int) -> Call:
    return Call("read_failure_sizes", [k.failed, failure_index_key(k.prefix, k.queue, "jobs")], [k.base, rank, count])


def index_failures(k: Keys, entries: Sequence[Sequence[str]]) -> Call:
    """Each entry: id, score, cluster id, again ('1'/'0'), description JSON (empty entries are skipped)."""
    descriptions = {e[2]: e[4] for e in entries if e}
    args: list[Arg] = [_stem(k), len(descriptions), *(x for pair in descriptions.items() for x in pair)]
    for e in entries:
        args += e[:4]
    return Call("index_failures", [k.failed, *_index_keys(k)], args)


def prune_failure_index(k: Keys, cursor: Arg, count: int) -> Call:
    return Call("prune_failure_index", [k.failed, *_index_keys(k)], [_stem(k), cursor, count])


def redrive_jobs(k: Keys, cutoff: int, mark_field: str, mark: str, ids: Sequence[Arg]) -> Call:
    keys = [k.failed, k.wait, k.prioritized, k.pc, k.marker, k.events, k.meta, *_index_keys(k)]
    return Call("redrive_jobs", keys, [k.base, _stem(k), cutoff, mark_field, mark, *ids])


def remove_failed_jobs(k: Keys, cutoff: int, ids: Sequence[Arg]) -> Call:
    return Call("remove_failed_jobs", [k.failed, k.events, k.meta, *_index_keys(k)], [k.base, _stem(k), cutoff, *ids])
