"""PyPI ``bullmq`` (3.4.4, pinned by the test fixture) driven from the interop tests.

Runs inside its own virtualenv (tests/interop/.venv-pybullmq, made by the fixture in
test_python_bullmq.py): bullmq 3.4.4 needs redis-py < 8 (layout spec §7.4), Bullpen pins 8.1.

Usage: python pybullmq_cli.py COMMAND --redis URL --queue NAME [--prefix bull] [options]

  add   stdin: JSON array of {name, data, opts}; Queue.add each    -> {"ids":["1","2"]}
  flow  stdin: a flow ({name, queueName, data, opts, children}); FlowProducer.add
        -> {"tree":{id,name,queueName,children:[...]}}  (no --queue needed)
  work  Worker that appends {id,name,data,attemptsMade,startedAt} (ms) as one JSON line per
        processor call to --out FILE; --concurrency N (1), --fail-names a,b, --expect N (stop
        after N calls; otherwise run until SIGTERM/SIGINT). Prints {"ready":true} once running
        and {"done":true,"recorded":N} after a graceful close. --record-children: each record
        also has childrenValues (the job's getChildrenValues(), read before it returns).

Every command prints JSON lines on stdout; an error prints {"error":"message"} and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any


def out(obj: Any) -> None:
    print(json.dumps(obj), flush=True)


async def add(args: argparse.Namespace) -> None:
    from bullmq import Queue

    jobs = json.loads(sys.stdin.read())
    queue = Queue(args.queue, {"connection": args.redis, "prefix": args.prefix})
    try:
        ids = []
        for spec in jobs:
            job = await queue.add(spec["name"], spec.get("data", {}), spec.get("opts", {}))
            ids.append(job.id)
    finally:
        await queue.close()
    out({"ids": ids})


def _node(node: dict[str, Any]) -> dict[str, Any]:
    job = node["job"]
    made: dict[str, Any] = {"id": job.id, "name": job.name, "queueName": job.queue.name}
    if node.get("children"):
        made["children"] = [_node(child) for child in node["children"]]
    return made


async def flow(args: argparse.Namespace) -> None:
    from bullmq import FlowProducer

    spec = json.loads(sys.stdin.read())
    producer = FlowProducer(args.redis, {"prefix": args.prefix})
    try:
        out({"tree": _node(await producer.add(spec))})
    finally:
        await producer.close()


async def work(args: argparse.Namespace) -> None:
    from bullmq import Worker

    fail_names = {n for n in args.fail_names.split(",") if n}
    recorded = 0
    stop = asyncio.Event()

    async def process(job: Any, token: str) -> Any:
        nonlocal recorded
        record = {"id": job.id, "name": job.name, "data": job.data, "attemptsMade": job.attemptsMade,
                  "startedAt": time.time() * 1000}
        if args.record_children:
            record["childrenValues"] = await job.getChildrenValues() or {}
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        recorded += 1
        if args.expect is not None and recorded >= args.expect:
            stop.set()
        if job.name in fail_names:
            raise RuntimeError(f"failed on purpose: {job.name}")
        return {"ok": True, "id": job.id}

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(args.queue, process, {"connection": args.redis, "prefix": args.prefix,
                                          "concurrency": args.concurrency})
    await asyncio.sleep(0)  # let the worker's run() start
    out({"ready": True})
    if args.expect == 0:
        stop.set()
    await stop.wait()
    await worker.close()
    out({"done": True, "recorded": recorded})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["add", "work", "flow"])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--queue", default="")
    parser.add_argument("--prefix", default="bull")
    parser.add_argument("--out")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--fail-names", default="")
    parser.add_argument("--expect", type=int)
    parser.add_argument("--record-children", action="store_true")
    args = parser.parse_args()
    try:
        asyncio.run({"add": add, "work": work, "flow": flow}[args.command](args))
    except Exception as exc:
        out({"error": f"{type(exc).__name__}: {exc}"})
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
