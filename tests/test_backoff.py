"""Retry backoff as BullMQ 6.7.0's Backoffs computes it: fixed, exponential, and jitter (the delay
drawn from ``delay * (1 - jitter)`` up to ``delay``), on the producer's side and the worker's."""

from __future__ import annotations

import pytest
import redis

from dashboard import Queue, Worker
from dashboard.backoff import backoff_ms
from dashboard.job import build_opts
from tests import jobs


def test_jitter_draws_as_bullmq_does() -> None:
    fixed = {"backoff": {"type": "fixed", "delay": 1000, "jitter": 0.5}}
    # Math.floor(Math.random() * delay * jitter + delay * (1 - jitter))
    assert backoff_ms(fixed, 1, rand=lambda: 0.0) == 500
    assert backoff_ms(fixed, 1, rand=lambda: 0.999) == 999
    expo = {"backoff": {"type": "exponential", "delay": 1000, "jitter": 1}}
    # maxDelay = round(2 ** (attemptsMade - 1) * delay), then the same draw
    assert backoff_ms(expo, 3, rand=lambda: 0.0) == 0
    assert backoff_ms(expo, 3, rand=lambda: 0.25) == 1000
    for spoiled in (None, "x", -0.5, 2, True, float("nan")):
        assert backoff_ms({"backoff": {"type": "fixed", "delay": 700, "jitter": spoiled}}, 1, rand=lambda: 0.0) == 700
    assert backoff_ms({"backoff": {"type": "exponential", "delay": 3}}, 2) == 6


def test_add_takes_a_jitter_as_bullmq_stores_it() -> None:
    assert build_opts(backoff=("exponential", 2.0, 0.25))["backoff"] == {"type": "exponential", "delay": 2000,
                                                                        "jitter": 0.25}
    assert build_opts(backoff={"type": "fixed", "delay": 10, "jitter": 1})["backoff"]["jitter"] == 1
    for bad in (("fixed", 1, 1.5), ("fixed", 1, "x"), {"type": "fixed", "delay": 1, "jitter": -1}):
        with pytest.raises(ValueError, match="jitter"):
            build_opts(backoff=bad)


def test_a_worker_retries_a_jittered_job_within_bullmq_bounds(r: redis.Redis) -> None:
    now = 1_795_000_000_000
    q = Queue("jit", connection=r)
    for _ in range(20):
        q.add("x", {}, attempts=2, backoff={"type": "fixed", "delay": 10_000, "jitter": 0.5})
    Worker("jit", jobs.fail, connection=r, drain_delay=0.2, clock=lambda: now).run(burst=True)
    due = [int(r.zscore("bull:jit:delayed", str(i)) or 0) // 4096 - now for i in range(1, 21)]
    assert len(due) == 20 and all(5000 <= d < 10_000 for d in due), due
    assert len(set(due)) > 1  # drawn per retry (20 equal draws: odds about 1 in 5000**19)
