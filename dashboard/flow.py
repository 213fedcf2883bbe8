"""FlowProducer: add trees of jobs (flows) in BullMQ 6.7.0's keys, parents waiting for children.

A flow node is a dict ``{"name", "queue_name", "data", "opts", "children", "prefix"}`` (only
``name`` and ``queue_name`` required); any node may sit in any queue. A node with children is
stored in its queue's ``waiting-children`` with a ``:dependencies`` set of its children's full
keys; each child carries BullMQ's ``parentKey`` and ``parent`` fields (and ``opts.parent``).
The whole tree is written by one call of ``lua/add_flow.lua``, so it is all there or not at
all. Whichever worker (ours or BullMQ's) finishes the last child moves the parent on; the
parent's handler reads its children's results with ``job.children_values()``
(:mod:`dashboard.family`). Everything is validated before anything is written. This module
must not import Flask.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import scripts
from .clients import Client, connect
from .codec import dumps, now_ms, text
from .errors import BullpenError
from .job import Job, build_opts
from .keys import Keys, validate_queue_name
from .queue import Queue

#: Python option name -> BullMQ's flag on the child (``parent.<flag>`` and ``opts.<flag>``):
#: what a child's final failure does to its parent. At most one per child, as in BullMQ.
FAILURE_OPTIONS = {"fail_parent_on_failure": "fpof", "continue_parent_on_failure": "cpof",
                   "ignore_dependency_on_failure": "idof", "remove_dependency_on_failure": "rdof"}
#: The keys a flow node may have.
NODE_KEYS = ("name", "queue_name", "data", "opts", "children", "prefix")
#: Deepest tree accepted (a guard against cycles in hand-built dicts).
MAX_DEPTH = 100


class FlowError(BullpenError):
    """The flow could not be added (its root's parent is missing); nothing was written."""


@dataclass
class JobNode:
    """One job of an added flow and the nodes of its children (BullMQ's ``JobNode``)."""

    job: Job
    queue_name: str
    children: list[JobNode] = field(default_factory=list)
    job_prefix: str = "bull"


@dataclass
class _Node:
    args: list[scripts.Arg]
    node: JobNode


class FlowProducer:
    """Adds flows under one Redis connection; each node may name its own queue (and prefix)."""

    def __init__(self, redis_url: str | None = None, *, connection: Client | None = None, prefix: str = "bull",
                 clock: Callable[[], int] = now_ms) -> None:
        self.prefix = prefix
        self.client = connect(redis_url, connection)
        self.scripts = scripts.Scripts(self.client)
        self.clock = clock
        self._queues: dict[tuple[str, str], Queue] = {}

    def __repr__(self) -> str:
        return f"FlowProducer(prefix={self.prefix!r})"

    def add(self, flow: dict[str, Any]) -> JobNode:
        """Add one flow atomically; returns its tree of jobs with their ids.

        ``opts`` take ``Queue.add()``'s keyword names (delay, priority, attempts, backoff,
        job_id, lifo, remove_on_complete, remove_on_fail, stack_trace_limit) and, on a child,
        one of :data:`FAILURE_OPTIONS`; the root may name an existing parent with
        ``"parent": {"id": ..., "queue": "<prefix>:<queue>"}`` (``FlowError`` when it is gone).
        Node ids are random UUIDs unless ``job_id`` is given, as BullMQ's. Raises ``ValueError``
        / ``TypeError`` before anything is written when a node or option is invalid."""
        return self.add_bulk([flow])[0]

    def add_bulk(self, flows: Sequence[dict[str, Any]]) -> list[JobNode]:
        """Add several flows in one atomic call (see :meth:`add`)."""
        now = self.clock()
        nodes: list[_Node] = []
        roots = [self._collect(flow, None, nodes, now, 0) for flow in flows]
        if not nodes:
            return []
        for prefix, name in {(n.node.job_prefix, n.node.queue_name) for n in nodes}:
            self._queue(name, prefix)._register()
        first = nodes[0].node
        route = Keys(first.job_prefix, first.queue_name).job(first.job.id)
        results = self.scripts.run(scripts.add_flow(route, [n.args for n in nodes]))
        if isinstance(results, int):
            missing = [text(r.args[9]) for r in nodes if r.node in roots and r.args[9]]
            raise FlowError(f"add flow: a parent job named by a flow's root does not exist ({', '.join(missing)})")
        for n, result in zip(nodes, results):
            if not isinstance(result, int):
                n.node.job.id = text(result)
        return roots

    def _queue(self, name: str, prefix: str) -> Queue:
        found = self._queues.get((prefix, name))
        if found is None:
            found = self._queues[(prefix, name)] = Queue(name, connection=self.client, prefix=prefix,
                                                         clock=self.clock)
        return found

    def _collect(self, node: Any, parent: tuple[Keys, str, dict[str, Any]] | None, out: list[_Node], now: int,
                 depth: int) -> JobNode:
        """Validate ``node`` and its subtree and append their script arguments, parents first."""
        if not isinstance(node, dict):
            raise TypeError(f"a flow node must be a dict, got {type(node).__name__}")
        unknown = sorted(str(k) for k in node if k not in NODE_KEYS)
        if unknown:
            raise ValueError(f"unknown flow node key(s) {unknown}; allowed: {', '.join(NODE_KEYS)}")
        if depth > MAX_DEPTH:
            raise ValueError(f"flow deeper than {MAX_DEPTH} levels")
        name, queue_name = node.get("name"), node.get("queue_name")
        if not isinstance(name, str):
            raise TypeError(f"flow node name must be a string, got {name!r}")
        prefix = node.get("prefix", self.prefix)
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"flow node prefix must be a non-empty string, got {prefix!r}")
        queue = self._queue(validate_queue_name(queue_name), prefix)
        children = node.get("children") or []
        if not isinstance(children, list):
            raise TypeError(f"flow node children must be a list, got {type(children).__name__}")
        data = {} if node.get("data") is None else node["data"]
        data_json = dumps(data, f"job data for {name!r}")
        options = dict(node.get("opts") or {})
        flags = [FAILURE_OPTIONS[k] for k in FAILURE_OPTIONS if options.pop(k, False)]
        if len(flags) > 1:
            raise ValueError(f"flow node {name!r}: the failure options cannot be used together: {flags}")
        if "deduplication" in options:
            raise ValueError(f"flow node {name!r}: deduplication is not available on flow nodes (use Queue.add)")
        external = options.pop("parent", None)
        if external is not None:
            if parent is not None or depth:
                raise ValueError("only a flow's root may name an existing parent")
            parent = _external_parent(external)
        if flags and parent is None:
            raise ValueError(f"flow node {name!r}: {flags[0]} needs a parent")
        try:
            opts = build_opts(**options)
        except TypeError as exc:
            raise ValueError(f"unknown job option: {exc}") from None
        job_id = opts.get("jobId") or str(uuid.uuid4())
        parent_key = parent_json = ""
        if parent is not None:
            parent_keys, parent_id, parent_info = parent
            opts["parent"] = {"id": parent_id, "queue": parent_keys.base[:-1]}
            parent_key = parent_keys.job(parent_id)
            info = dict(parent_info)
            for flag in flags:
                opts[flag] = info[flag] = True
            parent_json = json.dumps(info, separators=(",", ":"))
        job = Job(id=job_id, name=name, data=data, opts=opts, timestamp=now, delay=opts["delay"],
                  priority=opts.get("priority", 0), _queue=queue)
        job.parent_key = parent_key or None
        args: list[scripts.Arg] = [queue.keys.base, job_id, name, data_json, dumps(opts, "job options"), now,
                                   opts["delay"], opts.get("priority", 0), "1" if opts.get("lifo") else "0",
                                   parent_key, parent_json, "1" if children else "0"]
        tree = JobNode(job, queue.name, job_prefix=prefix)
        out.append(_Node(args, tree))
        info = {"id": job_id, "queueKey": queue.keys.base[:-1]}
        tree.children = [self._collect(child, (queue.keys, job_id, info), out, now, depth + 1) for child in children]
        return tree


def _external_parent(value: Any) -> tuple[Keys, str, dict[str, Any]]:
    """An existing parent named BullMQ's way: ``{"id": ..., "queue": "<prefix>:<queue>"}``."""
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not isinstance(value.get("queue"), str):
        raise ValueError(f"parent must be {{'id': str, 'queue': '<prefix>:<queue>'}}, got {value!r}")
    prefix, _, queue = value["queue"].rpartition(":")
    if not prefix or not queue:
        raise ValueError(f"parent queue must be '<prefix>:<queue>', got {value['queue']!r}")
    return Keys(prefix, queue), value["id"], {"id": value["id"], "queueKey": value["queue"]}
