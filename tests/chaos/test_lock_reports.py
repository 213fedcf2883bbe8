"""A worker's "lock lost while running" warning must be true: found by the chaos test.

The chaos test reads these warnings to explain duplicate runs, and an operator reads them as
"this job may run twice". In the chaos runs the warning also appeared for jobs that ran once
and completed normally. Cause (dashboard/worker.py): ``_renew_loop`` renews a snapshot of
``_inflight``, and a job stays in ``_inflight`` until the main loop has the reply to the
batch that finished it; when the renewal lands between ``move_to_finished`` (which deletes
the lock) and that reply, ``extend_locks`` finds no lock and the worker warns.

The test below runs 2,000 short jobs with a 50 ms lock (renewed every 25 ms, so the race is
hit 10-30 times per run here) and no stalled recovery during the run. A job whose result was
accepted then provably held its lock to the end (``move_to_finished`` checks the token, and
only a stalled recovery followed by a new take could have put a lock back), so any "lock
lost" warning about a completed job is a false alarm. Marked xfail(strict): once the worker
is fixed the test passes, the strict mark turns that into a failure, and the mark goes.
"""

from __future__ import annotations

import logging
import re
import time

import pytest
import redis

from dashboard import Job, Queue, Worker
from dashboard.codec import text
from dashboard.keys import Keys

pytestmark = pytest.mark.chaos

JOBS = 2000
LOST = re.compile(r"job=(\S+): lock lost while running")


def short_job(job: Job) -> str:
    time.sleep(0.002)
    return job.id


@pytest.mark.xfail(strict=True, reason="RUNTIME BUG (dashboard/worker.py _renew_loop): 'lock lost while running' "
                                       "is logged for jobs whose finish is in flight; see the module docstring")
def test_lock_lost_warning_is_only_logged_for_a_lock_really_lost(r: redis.Redis,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    q = Queue("lw", connection=r)
    q.add_bulk([("n", None, {}) for _ in range(JOBS)])
    worker = Worker("lw", short_job, connection=r, concurrency=8, lock_duration=0.05, stalled_interval=60)
    with caplog.at_level(logging.WARNING, logger="dashboard.worker"):
        worker.run(burst=True)
    warned = {m.group(1) for rec in caplog.records if (m := LOST.search(rec.getMessage()))}
    completed = {text(m) for m in r.zrange(Keys("bull", "lw").completed, 0, -1)}
    assert completed, "the worker completed nothing"
    false_alarms = sorted(warned & completed, key=int)
    assert false_alarms == [], f"{len(false_alarms)} completed job(s) reported as having lost their lock"
