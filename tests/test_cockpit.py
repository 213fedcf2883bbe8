"""The incident cockpit (issue 9, items 1, 2 and 5): charts from real metrics, rows that need
attention, the workers page with Bullpen and Node BullMQ workers, heartbeats, drain rates.

Minutes come from clocks the tests set (the workers' clock writes the metrics, the overview's
clock says which minute is now), so nothing depends on when the test runs.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dashboard import Job, Queue, Worker
from dashboard.audit import AuditLog
from dashboard.catalog import Catalog
from dashboard.codec import now_ms
from dashboard.heartbeat import Heartbeat, live
from dashboard.keys import heartbeat_key, heartbeats_key
from dashboard.web import charts, queue_page
from dashboard.web.overview import Overview
from tests.interop.harness import Child, wait_until
from tests.interop.test_node_bullmq import CLI, NODE, NODE_MODULES
from tests.webkit import HX, state

MIN = 60_000
NOW = (now_ms() // MIN) * MIN + 30_000  # half a minute into the current minute
ROOT = Path(__file__).resolve().parent.parent


def fixed(ms: int) -> Callable[[], int]:
    return lambda: ms


def fail_bad(job: Job) -> Any:
    if job.name == "bad":
        raise ValueError("bad input")


def finish(r: redis.Redis, name: str, at: int, ok: int, bad: int) -> None:
    """``ok`` jobs complete and ``bad`` fail, run by a real worker whose clock says ``at``."""
    q = Queue(name, connection=r, clock=fixed(at))
    q.add_bulk([("ok", {}, {})] * ok + [("bad", {}, {})] * bad)
    Worker(name, fail_bad, connection=r, clock=fixed(at), drain_delay=0.2).run(burst=True)


def row_html(html: str, name: str) -> str:
    return html.split(f'data-queue="{name}"', 1)[1].split("</tr>", 1)[0]


def dashboard(make_app: Callable[..., Flask], **settings: Any) -> FlaskClient:
    app = make_app(**settings)
    state(app).overview.clock = fixed(NOW)
    state(app).overview.ttl = 0
    return app.test_client()


# --- charts ---------------------------------------------------------------------------------

def test_bars_scale_to_the_tallest_and_say_what_they_show() -> None:
    chart = charts.bars([0, 4, 2], [0, 0, 2], 30, 21, what="mail, last hour")
    assert chart.peak == 4 and chart.label == "mail, last hour: 6 completed, 2 failed; at most 4 a minute"
    paths = dict(chart.paths)
    # bars 10 wide with a 2 gap; 4 jobs fill the 20 usable pixels, 2 jobs half of them
    assert paths["completed"] == "M10 1h8v20h-8zM20 11h8v10h-8z"
    assert paths["failed"] == "M20 1h8v10h-8z"  # stacked on the completed bar of its minute
    assert charts.bars([0, 0], [0, 0], 10, 10, what="idle").paths == []
    assert charts.bucket([1, 2, 3, 4, 5], 2) == [1, 5, 9] and charts.bucket([1, 2], 1) == [1, 2]


def test_overview_charts_what_real_workers_recorded(make_app: Callable[..., Flask], r: redis.Redis) -> None:
    finish(r, "mail", NOW - 3 * MIN, ok=3, bad=1)
    finish(r, "mail", NOW - 1 * MIN, ok=2, bad=0)
    finish(r, "mail", NOW, ok=1, bad=2)
    series = Catalog(r).throughput(["mail"], 60, NOW)[0]
    assert series.recorded and len(series.completed) == 60
    assert series.completed[-4:] == [3, 0, 2, 1] and sum(series.completed) == 6
    assert series.failed[-4:] == [1, 0, 0, 2] and sum(series.failed) == 3
    # an hour later the same metrics are out of the window; a minute off the clock shifts them
    assert sum(Catalog(r).throughput(["mail"], 60, NOW + 60 * MIN)[0].completed) == 0
    assert Catalog(r).throughput(["mail"], 60, NOW + MIN)[0].completed[-5:] == [3, 0, 2, 1, 0]

    client = dashboard(make_app)
    row = row_html(client.get("/", headers=HX).get_data(as_text=True), "mail")
    assert 'aria-label="mail, last hour: 6 completed, 3 failed; at most 4 a minute"' in row
    assert re.search(r'<path class="completed" d="M', row) and re.search(r'<path class="failed" d="M', row)
    assert "style=" not in row  # the CSP allows no inline style: classes and SVG attributes only


def test_node_workers_metrics_are_charted_too(make_app: Callable[..., Flask], redis_url: str,
                                               r: redis.Redis, tmp_path: Path) -> None:
    if NODE is None or not NODE_MODULES.exists():
        pytest.skip("needs node and tests/interop/node_modules")
    Queue("node-mail", connection=r).add_bulk([("ok", {}, {})] * 3 + [("boom", {}, {})])
    subprocess.run([NODE, str(CLI), "work", "--redis", redis_url, "--queue", "node-mail", "--fail-names", "boom",
                    "--metrics", "100", "--expect", "4", "--out", str(tmp_path / "out")],
                   check=True, capture_output=True, timeout=60)
    series = Catalog(r).throughput(["node-mail"], 60, now_ms())[0]
    assert series.recorded and (sum(series.completed), sum(series.failed)) == (3, 1)


def test_failed_in_the_last_5_minutes_and_rows_that_need_attention(make_app: Callable[..., Flask],
                                                                     r: redis.Redis) -> None:
    finish(r, "failing", NOW - 20 * MIN, ok=0, bad=4)  # old failures: not "now"
    finish(r, "failing", NOW - 2 * MIN, ok=1, bad=3)
    finish(r, "healthy", NOW - 2 * MIN, ok=5, bad=0)
    finish(r, "old-failures", NOW - 20 * MIN, ok=0, bad=2)
    Queue("stuck", connection=r).add("x", {})  # waiting, no worker, added just now
    Queue("held", connection=r).add("x", {})
    Queue("held", connection=r).pause()
    Queue("slow", connection=r, clock=fixed(NOW - 10 * MIN)).add("x", {})
    client = dashboard(make_app, oldest_waiting_alert=300)
    html = client.get("/", headers=HX).get_data(as_text=True)

    def recent(name: str) -> str:
        return re.sub(r"<[^>]+>", "", row_html(html, name).split('class="num failed-recent">', 1)[1].split("</td>")[0])

    assert (recent("failing"), recent("old-failures"), recent("healthy")) == ("3", "0", "0")
    failing = row_html(html, "failing")
    assert failing.startswith(' class="attention"') and "failing now: 3 failed in the last 5 min" in failing
    assert 'class="attention"' not in row_html(html, "healthy")[:30]
    assert 'class="attention"' not in row_html(html, "old-failures")[:30]
    assert "1 waiting, no worker" in row_html(html, "stuck")
    assert "over 5 min" not in row_html(html, "stuck")  # added just now: not past the threshold
    held = row_html(html, "held")  # paused: its badge says so (not repeated in the reasons)
    assert held.startswith(' class="attention"') and 'badge paused' in held and "<li>paused</li>" not in held
    slow = row_html(html, "slow")
    assert re.search(r"oldest waiting \d+ min( \d+ s)? \(over 5 min\)", slow), slow


def test_strip_charts_all_queues_for_the_last_hour_or_24_hours(make_app: Callable[..., Flask],
                                                                r: redis.Redis) -> None:
    finish(r, "a", NOW - 2 * MIN, ok=4, bad=1)
    finish(r, "b", NOW - 5 * 60 * MIN, ok=7, bad=0)  # 5 hours ago: only in the 24 h view
    finish(r, "b", NOW - 2 * MIN, ok=1, bad=0)
    client = dashboard(make_app)
    page = client.get("/").get_data(as_text=True)
    assert 'id="strip"' in page and "All queues, the last hour: 5 completed, 1 failed" in page
    assert 'aria-current="true" class="current">last hour' in page
    day = client.get("/?range=24h").get_data(as_text=True)
    assert "All queues, the last 24 hours: 12 completed, 1 failed; at most 7 a 15 min" in day
    part = client.get("/throughput?range=24h", headers=HX).get_data(as_text=True)
    assert part.startswith('\n<section id="strip"') or part.lstrip().startswith('<section id="strip"')
    assert 'hx-push-url="/?range=1h"' in part and "12 completed" in part
    assert client.get("/?range=week").status_code == 400
    assert 'id="strip"' not in client.get("/", headers=HX).get_data(as_text=True)  # the poll leaves it alone


# --- workers and heartbeats ------------------------------------------------------------------

def blocking_worker(r: redis.Redis, queue: str, release: threading.Event, **kw: Any) -> tuple[Worker, threading.Thread]:
    kw.setdefault("lock_duration", 2)  # a heartbeat every second
    worker = Worker(queue, lambda job: release.wait(30), connection=r, **kw)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def test_workers_page_lists_a_bullpen_worker_and_its_running_jobs(client: FlaskClient, r: redis.Redis) -> None:
    release = threading.Event()
    q = Queue("resize", connection=r)
    ids = [q.add("img", {"i": i}).id for i in range(2)]
    worker, thread = blocking_worker(r, "resize", release, concurrency=3, name="w-a")
    try:
        wait_until(lambda: len(live(r, "bull")[0]) == 1 and len(live(r, "bull")[0][0].running) == 2, 20,
                   "a heartbeat naming both running jobs")
        html = client.get("/workers").get_data(as_text=True)
        row = html.split('data-worker-queue="resize"', 1)[1].split("</tr>", 1)[0]
        assert 'data-kind="Bullpen"' in row and "w-a" in row and socket.gethostname() in row
        assert f'<td class="num">{os.getpid()}</td>' in row and '<td class="num">3</td>' in row
        for job_id in ids:
            assert f'href="/queues/resize/jobs/{job_id}">{job_id}</a>' in row
        assert "bullpen 0.1.0" in row and "ago" in row
        assert html.count('data-worker-queue="resize"') == 1  # its named connection is not listed again
        assert '<a href="/workers">Workers</a>' in html
    finally:
        release.set()
        worker.close()
        thread.join(10)
    assert r.exists(heartbeat_key("bull", worker.id)) == 0 and r.zcard(heartbeats_key("bull")) == 0
    assert 'data-worker-queue="resize"' not in client.get("/workers").get_data(as_text=True)


def test_a_heartbeat_expires_when_its_worker_dies(client: FlaskClient, r: redis.Redis, redis_url: str,
                                                  spawn: Callable[[list[str], str], Child]) -> None:
    child = spawn([sys.executable, "-m", "dashboard", "worker", "--queue", "crashy", "--redis-url", redis_url,
                   "--handler", "examples.notifications:notify", "--lock-duration", "1"], "crashy")
    beats = wait_until(lambda: live(r, "bull")[0], 30, "the worker's heartbeat")
    assert beats[0].queue == "crashy" and beats[0].pid == child.proc.pid
    assert 0 < r.pttl(heartbeat_key("bull", beats[0].id)) <= 1500  # 3 beats of half the lock duration
    assert 'data-worker-queue="crashy"' in client.get("/workers").get_data(as_text=True)
    child.proc.send_signal(signal.SIGKILL)
    child.wait()
    wait_until(lambda: not r.exists(heartbeat_key("bull", beats[0].id)), 30, "the heartbeat to expire")
    assert live(r, "bull")[0] == []
    wait_until(lambda: 'data-worker-queue="crashy"' not in client.get("/workers").get_data(as_text=True), 30,
               "the page to drop the dead worker (its connection closes with the process)")


def test_a_late_beat_never_brings_a_stopped_worker_back(r: redis.Redis) -> None:
    beat = Heartbeat(r, "bull", "q", "w1", concurrency=1, ttl_ms=60_000)
    beat.publish([b"1", "\xff" * 300])
    [seen] = live(r, "bull")[0]
    assert seen.running == ["1", "\xff" * 200] and seen.running_count == 2
    beat.remove()
    beat.publish([])
    assert live(r, "bull")[0] == [] and r.exists(heartbeat_key("bull", "w1")) == 0


def test_hostile_heartbeats_are_skipped_and_named(client: FlaskClient, r: redis.Redis) -> None:
    r.zadd(heartbeats_key("bull"), {"junk": now_ms() + 60_000})
    r.set(heartbeat_key("bull", "junk"), "<script>not json")
    html = client.get("/workers").get_data(as_text=True)
    assert "bull::worker:junk is not a heartbeat Bullpen can read" in html and "<script>not" not in html
    r.delete(heartbeats_key("bull"))
    r.set(heartbeats_key("bull"), "a string")
    assert "cannot be read" in client.get("/workers").get_data(as_text=True)


def test_workers_page_lists_node_bullmq_workers_next_to_ours(client: FlaskClient, redis_url: str, r: redis.Redis,
                                                             tmp_path: Path,
                                                             spawn: Callable[[list[str], str], Child]) -> None:
    if NODE is None or not NODE_MODULES.exists():
        pytest.skip("needs node and tests/interop/node_modules")
    node = spawn([NODE, str(CLI), "work", "--redis", redis_url, "--queue", "mixed", "--concurrency", "4",
                  "--out", str(tmp_path / "node.jsonl")], "node-worker")
    node.expect("ready")
    release = threading.Event()
    worker, thread = blocking_worker(r, "mixed", release, concurrency=2)
    try:
        wait_until(lambda: live(r, "bull")[0], 20, "our heartbeat")
        html = client.get("/workers").get_data(as_text=True)
        rows = re.findall(r'data-worker-queue="mixed" data-kind="(\w+)"', html)
        assert sorted(rows) == ["BullMQ", "Bullpen"]
        node_row = html.split('data-kind="BullMQ"', 1)[1].split("</tr>", 1)[0]
        assert "not published" in node_row and "BullMQ-compatible" in node_row and "127.0.0.1" in node_row
    finally:
        release.set()
        worker.close()
        thread.join(10)
    node.stop()


# --- why isn't this draining? ------------------------------------------------------------------

def facts(r: redis.Redis, name: str, now: int) -> list[str]:
    overview = Overview(Catalog(r), ttl=0, clock=fixed(now))
    queue = Queue(name, connection=r)
    return queue_page.extras(queue, AuditLog(r, "bull"), overview.row(name), now)["facts"]


def test_all_workers_busy_when_active_fills_their_concurrency(r: redis.Redis) -> None:
    release = threading.Event()
    q = Queue("busy", connection=r)
    q.add_bulk([("slow", {}, {})] * 5)
    worker, thread = blocking_worker(r, "busy", release, concurrency=2)
    try:
        wait_until(lambda: q.counts().active == 2 and live(r, "bull")[0], 20, "two jobs running")
        found = facts(r, "busy", now_ms())
        assert "All workers busy: 2 jobs active, and the concurrency of the 1 connected worker adds up to 2." in found
    finally:
        release.set()
        worker.close()
        thread.join(10)


def test_growing_by_when_jobs_arrive_faster_than_they_finish(r: redis.Redis) -> None:
    finish(r, "grow", NOW - 2 * MIN, ok=9, bad=0)  # 9 jobs in 4.5 minutes: 2 a minute
    stamps = iter(range(NOW - 60_000, NOW + 10**9, 300))  # 200 jobs in the last minute
    Queue("grow", connection=r, clock=lambda: next(stamps)).add_bulk([("new", {}, {})] * 200)
    found = [f for f in facts(r, "grow", NOW) if "a minute" in f]
    # the 100th newest job came 30 s ago: about 200 a minute arrive, 2 finish
    assert found == ["Growing by 198/min: about 200 jobs a minute arrive, 2 finished over the last 5 minutes."]


def test_drains_in_about_at_the_current_rate(r: redis.Redis) -> None:
    finish(r, "drain", NOW - MIN, ok=45, bad=0)  # 45 jobs in 4.5 minutes: 10 a minute
    Queue("drain", connection=r, clock=fixed(NOW - 3_600_000)).add_bulk([("old", {}, {})] * 120)
    found = [f for f in facts(r, "drain", NOW) if "a minute" in f]
    # the backlog came an hour ago: about 1.7 a minute arrive, so 120 jobs drain at 8.3 a minute
    assert found == ["Drains in about 14 min 24 s at the current rate: about 1.7 jobs a minute arrive, "
                     "10 finished over the last 5 minutes."]
    finish(r, "few", NOW - MIN, ok=9, bad=0)
    Queue("few", connection=r).add("y", {})  # too few waiting to tell the arrival rate
    assert [f for f in facts(r, "few", NOW) if "a minute" in f] == [
        "Drains in about 30.0 s at the current rate: 2 jobs a minute finished over the last 5 minutes."]


def test_metrics_keys_of_the_wrong_type_leave_the_page_standing(make_app: Callable[..., Flask],
                                                                 r: redis.Redis) -> None:
    finish(r, "mail", NOW - MIN, ok=2, bad=1)
    r.delete("bull:mail:metrics:completed")
    r.set("bull:mail:metrics:completed", "not a hash")
    r.delete("bull:mail:metrics:failed:data")
    r.hset("bull:mail:metrics:failed:data", "x", "1")
    r.rpush("bull:other:metrics:completed:data", "inf", "-3", "1e999", "\xff", "2")
    r.hset("bull:other:metrics:completed", mapping={"count": "nan", "prevCount": "x", "prevTS": str(NOW)})
    Queue("other", connection=r).add("x", {})
    client = dashboard(make_app)
    html = client.get("/").get_data(as_text=True)
    assert 'data-queue="mail"' in html and 'data-queue="other"' in html
    [mail, other] = Catalog(r).throughput(["mail", "other"], 60, NOW)
    assert mail.problems and sum(mail.completed) == 0
    assert other.completed[-6] == 2 and sum(other.completed) == 2  # only the one count that is a count


def test_the_paused_fact_says_by_whom_why_and_until_when(r: redis.Redis) -> None:
    q = Queue("held", connection=r)
    q.add("x", {})
    q.pause("partner API down", until=3600, by="oncall")
    [fact] = [f for f in facts(r, "held", now_ms()) if f.startswith("Paused")]
    expected = (r"Paused: workers take no new jobs from this queue until it is resumed\. Paused by oncall "
                r"(just now|\d+ s ago): “partner API down”\. It resumes by itself in (59 min|1 h)\.")
    assert re.fullmatch(expected, fact), fact
