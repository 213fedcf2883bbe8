"""Where a worker's drain time goes at a given concurrency: the loop's script calls against Redis's own.

    python bench/loop_trace.py [ROOT] [--concurrency 100] [--n 20000]

Starts a private redis-server, bulk-adds N no-op jobs, then drains them with one worker of ROOT's
Bullpen (default: this checkout) in burst mode in this process, with the single-call path
(``clients.DirectLine.execute``) wrapped to time each call's packing, sending and reading. Prints
jobs/s, the share of the drain the loop spent inside script calls, Redis's own time in those scripts
(``INFO commandstats``) and the medians of the three phases for the calls that carried more than
one job. The wrapper adds a few microseconds per call; compare runs of this script with each other
only (the side-by-side numbers with peers are ``bench/throughput.py``'s).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("root", type=Path, nargs="?", default=Path(__file__).resolve().parent.parent)
ap.add_argument("--concurrency", type=int, default=100)
ap.add_argument("--n", type=int, default=20000)
args = ap.parse_args()
sys.path.insert(0, str(args.root.resolve()))

from dashboard import Job, Queue, Worker, clients  # noqa: E402
from dashboard.redis_server import EmbeddedRedis  # noqa: E402

calls: list[tuple[float, float, float, int]] = []  # pack, send, read seconds; arguments
plain = clients.DirectLine.execute


def traced(self: clients.DirectLine, client: Any, *cmd: Any) -> Any:
    """DirectLine.execute on its spare connection, timed phase by phase (the fallback path untimed)."""
    if not self._lock.acquire(blocking=False):
        return plain(self, client, *cmd)
    try:
        conn = self._conn = self._conn or self._new()
        t0 = time.perf_counter()
        packed = [clients._pack(cmd)] if clients._pack is not None else conn.pack_command(*cmd)
        t1 = time.perf_counter()
        conn.send_packed_command(packed)
        t2 = time.perf_counter()
        reply = conn.read_response()
        calls.append((t1 - t0, t2 - t1, time.perf_counter() - t2, len(cmd)))
        return reply
    finally:
        self._lock.release()


clients.DirectLine.execute = traced  # type: ignore[method-assign]

with EmbeddedRedis() as server:
    url = f"redis://127.0.0.1:{server.port}/0"
    q = Queue("trace", redis_url=url)
    for start in range(0, args.n, 1000):
        q.add_bulk([("noop", {"i": i, "pad": "x" * 58}, {}) for i in range(start, min(args.n, start + 1000))])
    q.client.config_resetstat()
    calls.clear()

    def noop(job: Job) -> None:
        pass

    w = Worker("trace", noop, redis_url=url, concurrency=args.concurrency)
    t0 = time.perf_counter()
    w.run(burst=True)
    wall = time.perf_counter() - t0
    lua = q.client.info("commandstats").get("cmdstat_evalsha", {})
    many = [c for c in calls if c[3] > 60] or calls  # a call finishing or fetching more than one job
    in_calls = sum(c[0] + c[1] + c[2] for c in calls)
    print(f"{args.root} c={args.concurrency}: {w.processed / wall:,.0f} jobs/s; {len(calls)} script calls; "
          f"the loop inside them {100 * in_calls / wall:.0f}% of the drain; Redis inside the scripts "
          f"{100 * lua.get('usec', 0) / 1e6 / wall:.0f}% ({lua.get('usec_per_call', 0):.0f} us per call)")
    print("  calls carrying several jobs, median ms: pack {:.3f}  send {:.3f}  read {:.3f}".format(
        *(statistics.median(c[i] for c in many) * 1000 for i in range(3))))
