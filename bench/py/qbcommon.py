"""Helpers shared by every Python adapter (stdlib only; adapted from ../shared/bench).

A job's body is a no-op except for `mark()`, which appends one fixed-width
32-byte record "<finish time> <finish - enqueue time>\n" to QB_DONE_FILE.
The orchestrator counts records (file size / 32) to know when a drain is over
and reads first/last finish times and latencies from them. One O_APPEND write
per job costs a few microseconds, the same for every system.
"""
import json
import os
import sys
import time

REDIS_HOST = "127.0.0.1"
# Always the private server throughput.py started; no default, so an adapter run by hand
# can never reach another Redis by accident.
REDIS_PORT = int(os.environ["QB_REDIS_PORT"])
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
QUEUE = "qb"
DONE_FILE = os.environ.get("QB_DONE_FILE", "done.log")
RECORD = 32

_fd = None
_pid = None


def payload(i):
    """~100 bytes once serialized as JSON."""
    return {"i": i, "t": time.time(), "pad": "x" * 58}


def mark(t_enq):
    global _fd, _pid
    pid = os.getpid()
    if pid != _pid:  # lazily (re)open after fork
        _fd = os.open(DONE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _pid = pid
    now = time.time()
    os.write(_fd, b"%17.6f %13.6f\n" % (now, now - t_enq))


def emit(**kw):
    """Print one JSON result line for the orchestrator."""
    print("QBRESULT " + json.dumps(kw), flush=True)


def steady(rate, n, add_one):
    """Call add_one(i) n times at `rate` per second (absolute schedule)."""
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        add_one(i)
    return time.perf_counter() - t0


async def asteady(rate, n, add_one):
    import asyncio
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await add_one(i)
    return time.perf_counter() - t0


def parse_args(argv=None):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["enqueue", "worker", "produce", "limit", "schedule"])
    p.add_argument("--mode", default="single", choices=["single", "bulk"])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--chunk", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--conc", type=int, default=1)
    p.add_argument("--variant", default="")
    p.add_argument("--opt", action="append", default=[], help="k=v system option")
    a = p.parse_args(argv if argv is not None else sys.argv[2:])
    a.opts = dict(o.split("=", 1) for o in a.opt)
    return a
