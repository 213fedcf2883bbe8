#!/usr/bin/env python3
"""What a round trip to Redis costs when the client sleeps on its socket, and when it looks first.

    python bench/wakeup.py [--n 20000] [--rounds 3]

Starts its own redis-server (free port, no persistence) and times N back-to-back PINGs on one raw
socket, three ways: blocking (``recv`` sleeps until the reply, as redis-py does), and looking
(``poll(0)`` then ``sched_yield`` until the socket is readable, then ``recv``: what
``dashboard.clients.LookingParser`` does for up to ``SPIN_SECONDS``), with the client and Redis
left to the scheduler, pinned to two different CPUs, and pinned to the same CPU. On a VM a reply
from another vCPU wakes a sleeping thread late; looking saves that wake-up. Prints µs per round
trip (median of the rounds, [min-max]); nothing is written. Needs 2 CPUs or more to pin apart.
"""
from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from dashboard.redis_server import EmbeddedRedis  # noqa: E402


def rtt(sock: socket.socket, n: int, look: bool) -> float:
    """µs per PING round trip."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    t0 = time.perf_counter()
    for _ in range(n):
        sock.sendall(b"PING\r\n")
        if look:
            while not poller.poll(0):
                os.sched_yield()
        sock.recv(64)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    placements = [("left to the scheduler", None, None)]
    if len(cpus) >= 2:
        placements += [("pinned to two CPUs", cpus[0], cpus[1]), ("pinned to one CPU", cpus[0], cpus[0])]
    with EmbeddedRedis() as server:
        print(f"redis-server pid {server.pid} on port {server.port}; {a.n:,} PINGs per measurement, "
              f"{a.rounds} rounds; µs per round trip, median [min-max]")
        for label, redis_cpu, client_cpu in placements:
            assert server.pid is not None
            os.sched_setaffinity(server.pid, cpus if redis_cpu is None else [redis_cpu])
            os.sched_setaffinity(0, cpus if client_cpu is None else [client_cpu])
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rtt(sock, 1000, False)
            got: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(a.rounds):
                for look in (False, True):
                    got[look].append(rtt(sock, a.n, look))
            sock.close()
            cells = [f"{statistics.median(xs):5.1f} [{min(xs):.1f}-{max(xs):.1f}]" for xs in (got[False], got[True])]
            print(f"  {label:22s} blocking {cells[0]}   looking {cells[1]}")
        os.sched_setaffinity(0, cpus)


if __name__ == "__main__":
    main()
