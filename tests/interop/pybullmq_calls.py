"""PyPI ``bullmq`` (3.4.4): call Queue methods by name, for the interop tests that compare its
answers with ours (``pybullmq_cli.py`` has its producer and worker). Runs in the virtualenv the
``pybullmq`` fixture builds (tests/interop/test_python_bullmq.py).

Usage: python pybullmq_calls.py --redis URL --queue NAME [--prefix bull]
  stdin: JSON array of calls, each {"queue": "getDeduplicationJobId", "args": [...]}; a method
         that returns a Job answers {"id", "name", "data", "opts"}, a coroutine is awaited.
  stdout: one JSON line {"results": [...]}; a call that raises answers {"error": "message"} in
          its place, and the calls after it still run.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
from typing import Any


async def run(args: argparse.Namespace) -> list[Any]:
    from bullmq import Job, Queue

    calls = json.loads(sys.stdin.read())
    queue = Queue(args.queue, {"connection": args.redis, "prefix": args.prefix})
    results: list[Any] = []
    try:
        for call in calls:
            try:
                value = getattr(queue, call["queue"])(*call.get("args", []))
                if inspect.isawaitable(value):
                    value = await value
                if isinstance(value, Job):
                    value = {"id": value.id, "name": value.name, "data": value.data, "opts": value.opts}
                json.dumps(value)
                results.append(value)
            except Exception as exc:  # noqa: BLE001 - reported in place, as the usage says
                results.append({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await queue.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--prefix", default="bull")
    args = parser.parse_args()
    sys.stdout.write(json.dumps({"results": asyncio.run(run(args))}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
