"""Pages cost O(page) whatever the size of the jobs on them: fields are cut inside Redis, the
log is paged, and the whole value is a download away. Checked in bytes (what Redis sends and
what the page weighs), never in time."""

from __future__ import annotations

import json
import re

import redis
from flask.testing import FlaskClient

from dashboard import Queue
from dashboard.keys import Keys
from tests.webkit import rows

MB = 1024 * 1024


def sent(r: redis.Redis) -> int:
    return int(r.info("stats")["total_net_output_bytes"])


def huge_failed_jobs(r: redis.Redis, count: int, size: int) -> Queue:
    q = Queue("big", connection=r)
    k = Keys("bull", "big")
    for i in range(count):
        job = q.add("import", {"i": i})
        r.lrem(k.wait, 0, job.id)
        r.hset(k.job(job.id), mapping={"data": json.dumps({"blob": "x" * size}), "failedReason": "boom " * 1000,
                                       "finishedOn": 1795000000000 + i, "atm": 1})
        r.zadd(k.failed, {job.id: 1795000000000 + i})
    return q


def test_the_failed_tab_of_huge_jobs_reads_about_a_kilobyte_per_row(client: FlaskClient, r: redis.Redis) -> None:
    huge_failed_jobs(r, 60, 5 * MB)
    before = sent(r)
    resp = client.get("/queues/big?state=failed&per=100")
    read = sent(r) - before
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and len(rows(html)) == 60
    assert read < 60 * 4096 + 64 * 1024, f"Redis sent {read:,} bytes for 60 rows"
    assert len(html) < 400_000, len(html)


def test_the_job_page_of_a_huge_job_is_small_and_everything_downloads(client: FlaskClient, r: redis.Redis) -> None:
    q = Queue("big", connection=r)
    job = q.add("import", {"blob": "d" * (5 * MB)})
    k = Keys("bull", "big")
    traces = [f"Traceback {i}\n" + "t" * MB for i in range(10)]
    r.hset(k.job(job.id), mapping={"stacktrace": json.dumps(traces), "failedReason": "r" * (2 * MB),
                                   "returnvalue": json.dumps("v" * (2 * MB))})
    r.rpush(k.logs(job.id), *[f"line {i} " + "l" * 50_000 for i in range(1000)])
    before = sent(r)
    resp = client.get(f"/queues/big/jobs/{job.id}")
    read = sent(r) - before
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert read < 2 * MB, f"Redis sent {read:,} bytes for one job page"
    assert len(html) < 1_500_000, len(html)
    assert "line 999 " in html and "line 0 " not in html  # the newest page of the log
    for what in ("data", "returnvalue", "stacktrace", "failedReason", "logs"):
        assert f"/download/{what}" in html, what
    assert len(client.get(f"/queues/big/jobs/{job.id}/download/data").get_data()) > 5 * MB
    assert json.loads(client.get(f"/queues/big/jobs/{job.id}/download/stacktrace").get_data()) == traces
    assert client.get(f"/queues/big/jobs/{job.id}/download/failedReason").get_data() == b"r" * (2 * MB)
    log = client.get(f"/queues/big/jobs/{job.id}/download/logs").get_data(as_text=True).splitlines()
    assert len(log) == 1000 and log[0].startswith("line 0 ")


def test_log_pages_walk_back_to_the_first_line(client: FlaskClient, r: redis.Redis) -> None:
    q = Queue("logs", connection=r)
    job = q.add("chatty", {})
    r.rpush(Keys("bull", "logs").logs(job.id), *[f"line {i}" for i in range(250)])
    html = client.get(f"/queues/logs/jobs/{job.id}").get_data(as_text=True)
    assert "line 249\n" in html and "line 149\n" not in html and "showing 151–250" in html
    seen = 0
    while (older := re.search(r'href="([^"]+)">‹ Older', html)) is not None and seen < 5:
        html = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
        seen += 1
    assert "line 0\n" in html and "showing 1–" in html
