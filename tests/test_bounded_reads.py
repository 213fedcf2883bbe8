"""Bounded reads for the dashboard: listings, the job page and log pages cut long values inside Redis.

Sizes are checked where they matter: on what Redis actually sent (INFO ``total_net_output_bytes``)
and on what the Job holds. No timings here; ``bench/bounded_reads.py`` measures those.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from dashboard import JobState, Queue
from dashboard.job import Job
from dashboard.keys import Keys
from dashboard.reads import DETAIL, LISTING, Caps, log_lines, log_page, partial_strings

NOW = 1_795_000_000_000
MB = 1024 * 1024


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    return Queue("mail", connection=r)


def failed(r: redis.Redis, job_id: str, **fields: Any) -> None:
    """A failed job as a worker (ours or BullMQ's) leaves it, with any field overridden."""
    base: dict[Any, Any] = {
        "name": "send", "data": '{"to":"a@b.c"}', "opts": '{"attempts":3}', "timestamp": NOW, "delay": 0,
        "priority": 0, "processedOn": NOW, "finishedOn": NOW + 5, "atm": 3, "ats": 3, "failedReason": "boom",
        "stacktrace": '["Traceback: boom"]'}
    base.update(fields)
    r.hset(f"bull:mail:{job_id}", mapping=base)
    r.zadd("bull:mail:failed", {job_id: NOW + int(job_id)})


def sent_bytes(r: redis.Redis, read: Callable[[], Any]) -> tuple[Any, int]:
    """What ``read`` returned and how many bytes Redis sent while it ran (this test's server only)."""
    before = r.info("stats")["total_net_output_bytes"]
    out = read()
    return out, r.info("stats")["total_net_output_bytes"] - before


def test_listing_of_huge_jobs_sends_about_a_kilobyte_per_job(q: Queue, r: redis.Redis) -> None:
    huge = json.dumps({"blob": "x" * (5 * MB)})
    for i in range(1, 5):
        failed(r, str(i), data=huge)
    big = json.dumps({"blob": "y" * (200 * 1024)})  # under the copy limit: cut inside Redis, previewed
    for i in range(5, 9):
        failed(r, str(i), data=big, failedReason="E" * 100_000)
    jobs, sent = sent_bytes(r, lambda: q.jobs("failed", 0, 9, summary=True))
    assert [j.id for j in jobs] == ["8", "7", "6", "5", "4", "3", "2", "1"]
    assert sent < 8 * 3 * 1024  # before bounded reads: 21 MB
    for job in jobs:
        assert isinstance(job.data, str) and len(job.data.encode()) <= 1024
        assert job.problems == [] and job.name == "send" and job.attempts == 3 and job.attempts_made == 3
        assert job.state is JobState.FAILED and job.finished_on == NOW + 5
    previewed = jobs[0]
    assert previewed.data == big[:1024] and previewed.truncated == {"data": len(big), "failedReason": 100_000}
    assert previewed.failed_reason == "E" * 1024
    too_big = jobs[-1]
    assert too_big.data == "" and too_big.truncated == {"data": len(huge)}
    assert too_big.failed_reason == "boom"


def test_each_long_field_is_cut_by_a_call_of_its_own(q: Queue, r: redis.Redis) -> None:
    """The first pass (one script call for the page) copies no long field; then one script call
    per long field, so a page of big jobs never makes Redis copy several of them in one go."""
    for i in range(1, 4):
        failed(r, str(i), data=json.dumps({"d": "d" * 50_000}), failedReason="F" * 5000)
    old = r.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    r.config_set("slowlog-log-slower-than", 0)
    try:
        r.slowlog_reset()
        q.jobs("failed", 0, 9, summary=True)
        args = [e["command"].decode().split() for e in r.slowlog_get(1000) if e["command"].startswith(b"EVALSHA")]
    finally:
        r.config_set("slowlog-log-slower-than", old)
    copy_limits = sorted(int(a[3 + int(a[2])]) for a in args)  # EVALSHA sha numkeys keys... limit ...
    assert copy_limits == [0] + [LISTING.copy_limit] * 6
    first = next(a for a in args if int(a[3 + int(a[2])]) == 0)
    assert first[2] == "3"  # the whole page in one call
    assert all(a[2] == "1" for a in args if a is not first)  # each cut: a call for one job (and one field)


def test_small_jobs_read_as_before(q: Queue, r: redis.Redis) -> None:
    q.add("a", {"x": 1, "s": "é" * 10}, attempts=2)
    q.add("b", [1, 2, 3], delay=5)
    r.hset("bull:mail:1", mapping={"progress": '{"pct":50}', "failedReason": "boom", "defa": "later", "pb": "w1"})
    (summary,) = q.jobs("waiting", 0, 9, summary=True)
    (full,) = q.jobs("waiting", 0, 9)
    assert summary.truncated == {} and summary.problems == []
    for name in ("id", "name", "data", "opts", "timestamp", "delay", "priority", "attempts_made", "progress",
                 "failed_reason", "deferred_failure", "processed_by", "state"):
        assert getattr(summary, name) == getattr(full, name), name
    assert summary.data == {"x": 1, "s": "é" * 10} and summary.progress == {"pct": 50}
    detail = q.job("1", caps=DETAIL)
    assert detail == q.job("1") and detail is not None and detail.truncated == {}
    assert q.job("2", caps=DETAIL) == q.job("2") and q.job("404", caps=DETAIL) is None


def test_one_page_mixes_whole_jobs_cut_jobs_and_gone_ones(q: Queue, r: redis.Redis) -> None:
    """Whole small jobs come back as the hash's values, the others field by field, in the same call."""
    q.add("whole", {"x": 1})
    q.add("long", {"s": "y" * 3000})  # data over its 1 KB listing cap in a small hash
    q.add("gone", {})
    q.add("whole too", [1, 2])
    r.delete("bull:mail:3")
    jobs = {j.name: j for j in q.jobs("waiting", 0, 9, summary=True)}
    assert set(jobs) == {"whole", "long", "whole too"}
    for name in ("whole", "whole too"):
        assert jobs[name].truncated == {} and jobs[name].problems == []
        assert jobs[name].data == q.job(jobs[name].id).data
    assert jobs["long"].truncated == {"data": len(json.dumps({"s": "y" * 3000}, separators=(",", ":")))}
    assert isinstance(jobs["long"].data, str) and len(jobs["long"].data.encode()) <= 1024
    assert jobs["long"].problems == []


def test_a_cut_field_is_text_not_a_problem_but_bad_json_still_is(q: Queue, r: redis.Redis) -> None:
    failed(r, "1", data=json.dumps({"k": "v" * 5000}), opts=json.dumps({"attempts": 3, "pad": "p" * 9000}),
           progress=json.dumps(["p"] * 2000))
    failed(r, "2", data="{not json")
    cut, bad = q.jobs("failed", 0, 9, summary=True)[::-1]
    assert cut.problems == [] and cut.opts == {} and isinstance(cut.progress, str)
    assert set(cut.truncated) == {"data", "opts", "progress"}
    assert cut.data.startswith('{"k": "vvv')
    assert bad.data == "{not json" and any("'data'" in p for p in bad.problems) and bad.truncated == {}


def test_cuts_never_split_a_utf8_character_even_for_a_decoding_client(
        r: redis.Redis, redis_factory: Callable[..., redis.Redis]) -> None:
    data = '{"text":"' + "€" * 2000 + '"}'  # Node's JSON.stringify keeps non-ASCII as is; '€' is 3 bytes
    failed(r, "1", data=data)
    for client in (r, redis_factory(decode_responses=True)):
        (job,) = Queue("mail", connection=client).jobs("failed", 0, 0, summary=True)
        assert data.startswith(job.data) and "\ufffd" not in job.data
        assert 1021 <= len(job.data.encode()) <= 1024 and job.truncated == {"data": len(data.encode())}


def test_job_page_caps_each_field_and_each_trace(q: Queue, r: redis.Redis) -> None:
    traces = [f"trace {i} " + "t" * (30_000 if i % 2 else 10) for i in range(25)]
    failed(r, "1", data=json.dumps({"d": "d" * 100_000}), returnvalue=json.dumps("r" * 100_000),
           failedReason="F" * 20_000, stacktrace=json.dumps(traces))
    job = q.job("1", caps=DETAIL)
    assert job is not None and job.state is JobState.FAILED and job.problems == []
    assert len(job.data) == 65536 and len(job.returnvalue) == 65536 and job.failed_reason == "F" * 8192
    assert job.stacktrace[0].startswith("trace 5 ") and len(job.stacktrace) == 20  # the newest 20 of 25
    assert job.stacktrace[-1] == traces[-1][:16384] and job.stacktrace[1] == traces[6]
    assert job.truncated["stacktrace"] == len(json.dumps(traces))
    assert {k: v for k, v in job.truncated.items() if k.startswith("stacktrace.")} == {
        f"stacktrace.{i}": len(traces[i + 5]) for i in range(20) if len(traces[i + 5]) > 16384}
    whole = q.job("1")
    assert whole is not None and whole.stacktrace == traces and whole.truncated == {}


def test_traces_too_long_to_split_show_the_head_and_beyond_the_copy_limit_nothing(q: Queue, r: redis.Redis) -> None:
    traces = ['Traceback "quoted"\n' + "x" * 1_100_000, "second"]
    failed(r, "1", stacktrace=json.dumps(traces))  # 1.1 MB: over the decode limit
    roomy = Caps(DETAIL.fields, copy_limit=2 * MB)
    job = q.job("1", caps=roomy)
    assert job is not None and len(job.stacktrace) == 1
    assert job.stacktrace[0] == traces[0][:16384 - 5]  # '["' and three escapes ('\"', '\n') are not text
    assert job.truncated == {"stacktrace": len(json.dumps(traces))}
    beyond = q.job("1", caps=DETAIL)  # over DETAIL's 1 MB copy limit: not read at all
    assert beyond is not None and beyond.stacktrace == []
    assert beyond.truncated == {"stacktrace": len(json.dumps(traces))}
    assert beyond.failed_reason == "boom" and beyond.problems == []


def test_partial_strings_of_a_cut_json_array() -> None:
    assert partial_strings('["a\\"b", "c') == ['a"b', "c"]
    assert partial_strings('["a", "line\\') == ["a", "line"]
    assert partial_strings('["a", "\\u00e') == ["a", ""]
    assert partial_strings('["done"]') == ["done"]
    assert partial_strings('["a", 3, "b"]') == ["a"]
    assert partial_strings("not json") == []


def test_log_pages_count_from_the_oldest_and_cut_long_lines(q: Queue, r: redis.Redis) -> None:
    job = q.add("a", {})
    for i in range(250):
        job.log(f"{i} " + ("z" * 5000 if i == 240 else "ok"))
    page = q.log_page(job.id, -100, 100)
    assert (page.total, page.start, len(page.lines)) == (250, 150, 100)
    assert page.lines[0] == "150 ok" and page.lines[-1] == "249 ok"
    assert page.lines[90] == ("240 " + "z" * 5000)[:2048] and page.cut == {90: 5004}
    first = q.log_page(job.id, 0, 10, line_cap=-1)
    assert first.lines == [f"{i} ok" for i in range(10)] and first.start == 0 and first.cut == {}
    assert q.log_page(job.id, 300, 10).lines == [] and q.log_page(job.id, -1000, 2).start == 0
    assert q.log_page("404", -100, 100) == q.log_page("404", 0, 5)
    assert q.log_page("404", 0, 5).total == 0
    assert q.logs(job.id, 2) == ["248 ok", "249 ok"]  # the old call still returns whole lines
    assert list(log_lines(r, Keys("bull", "mail"), job.id, chunk=7)) == q.logs(job.id)
    assert len(list(q.log_lines(job.id))) == 250
    with pytest.raises(ValueError):
        q.log_page(job.id, 0, 0)


def test_a_log_page_of_long_lines_stops_at_its_byte_budget_keeping_the_end_it_is_anchored_to(
        q: Queue, r: redis.Redis) -> None:
    job = q.add("a", {})
    for i in range(40):
        job.log(f"{i:02d} " + "w" * (997 if i % 3 else 97))  # 1,000 or 100 bytes
    job.log("")
    run, keys = q.scripts, Keys("bull", "mail")
    tail = log_page(run, keys, job.id, -20, 20, line_cap=8, budget=5000)
    assert tail.total == 41 and tail.lines[-1] == "" and tail.lines[-2] == "39 wwwww"
    assert tail.start == 41 - len(tail.lines) and tail.lines[0] == f"{tail.start:02d} wwwww"
    lengths = [len(x) for x in q.logs(job.id)[tail.start:]]  # the oldest line read passed the budget
    assert sum(lengths) >= 5000 > sum(lengths[1:])
    head = log_page(run, keys, job.id, 0, 20, line_cap=-1, budget=2500)
    assert head.start == 0 and head.lines == q.logs(job.id)[:5] and head.cut == {}  # 100+1000+1000+100+1000
    one = log_page(run, keys, job.id, 1, 5, budget=10)
    assert one.start == 1 and len(one.lines) == 1  # at least one line, however long


def test_downloads_read_one_whole_field(q: Queue, r: redis.Redis) -> None:
    data = json.dumps({"blob": "b" * (3 * MB)})
    failed(r, "1", data=data)
    assert q.job_field("1", "data") == data.encode()
    assert q.job_field("1", "stacktrace") == b'["Traceback: boom"]'
    assert q.job_field("1", "returnvalue") is None and q.job_field("404", "data") is None


def test_a_key_of_the_wrong_type_is_a_problem_not_an_exception(q: Queue, r: redis.Redis) -> None:
    r.set("bull:mail:9", "a string, not a hash")
    r.lpush("bull:mail:wait", "9")
    q.add("a", {})
    ok, odd = q.jobs("waiting", 0, 9, summary=True)
    assert ok.id == "1" and ok.problems == []
    assert odd.id == "9" and odd.state is JobState.UNKNOWN and "not a hash" in odd.problems[0]
    detail = q.job("9", caps=DETAIL)
    assert detail is not None and detail.state is JobState.UNKNOWN and detail.problems
    assert q.job_field("9", "data") is None
    r.set("bull:mail:1:logs", "not a list")
    page = q.log_page("1")
    assert page.lines == [] and page.problem and "not a list" in page.problem


def test_job_from_hash_keeps_cut_fields_as_text() -> None:
    job = Job.from_hash("1", {b"data": b'{"a": [1, 2', b"opts": b'{"attempts"', b"name": b"n"},
                        cut={"data": 5000, "opts": 900})
    assert job.data == '{"a": [1, 2' and job.opts == {} and job.problems == []
    assert job.truncated == {"data": 5000, "opts": 900}
    assert LISTING.fields["data"] == 1024 and "stacktrace" not in LISTING.fields
