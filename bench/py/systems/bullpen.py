"""Bullpen (this repo's dashboard package). Bulk = Queue.add_bulk in chunks of --chunk.
Worker: one Worker in this process, --conc handler threads, logging at WARNING.
limit: a global rate limit of --rate jobs per second; schedule: a job scheduler every 1 s
(bench/features.py)."""
import logging
import time

from qbcommon import QUEUE, REDIS_URL, emit, mark, payload, steady

from dashboard import Queue, Worker


def _queue():
    return Queue(QUEUE, redis_url=REDIS_URL)


def enqueue(a):
    q = _queue()
    t0 = time.perf_counter()
    if a.mode == "single":
        for i in range(a.n):
            q.add("noop", payload(i))
    else:
        for s in range(0, a.n, a.chunk):
            q.add_bulk([("noop", payload(i), {}) for i in range(s, min(a.n, s + a.chunk))])
    emit(seconds=time.perf_counter() - t0, n=a.n)


def produce(a):
    q = _queue()
    emit(seconds=steady(a.rate, a.n, lambda i: q.add("noop", payload(i))), n=a.n)


def noop(job):
    mark(job.data["t"])


def worker(a):
    logging.basicConfig(level=logging.WARNING)
    Worker(QUEUE, noop, redis_url=REDIS_URL, concurrency=a.conc).run()


def limit(a):
    _queue().set_global_rate_limit(int(a.rate), 1.0)


def schedule(a):
    _queue().upsert_job_scheduler("bench-every", every=1.0, name="noop", data=payload(0))
