"""The operator command line (``python -m dashboard ...``) on a real Redis: every command as a
table and as ``--json``, its audit entries, hostile names and ids, and the exit codes
(0 ok, 1 error, 2 usage, 3 not found), the last also through a real ``python -m dashboard``."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from dashboard import Queue
from dashboard.__main__ import cli
from dashboard.audit import AuditEntry, AuditLog
from dashboard.keys import worker_client_name
from tests.webkit import run_burst, seed

ROOT = Path(__file__).resolve().parent.parent


def run(url: str, *args: str, code: int = 0) -> Result:
    """``python -m dashboard --redis-url URL ARGS`` in this process; asserts the exit code."""
    result = CliRunner().invoke(cli, ["--redis-url", url, *args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def as_json(url: str, *args: str, code: int = 0) -> Any:
    return json.loads(run(url, "--json", *args, code=code).stdout)


def audit(r: redis.Redis, queue: str | None = "mail") -> list[AuditEntry]:
    return AuditLog(r, "bull").entries(queue)


def assert_cli_actor(entry: AuditEntry) -> None:
    user, _, host = entry.actor.removeprefix("cli:").partition("@")
    assert entry.actor.startswith("cli:") and user and host


# --- reads -----------------------------------------------------------------------------

def test_queues_table_and_json(r: redis.Redis, redis_url: str) -> None:
    seed(r, "mail")
    Queue("resize", connection=r).add("x", {})
    Queue("resize", connection=r).pause("deploy")
    lines = run(redis_url, "queues").stdout.splitlines()
    assert lines[0].split()[:7] == ["QUEUE", "WAITING", "PRIORITIZED", "DELAYED", "ACTIVE", "COMPLETED", "FAILED"]
    assert lines[1].split()[:7] == ["mail", "0", "0", "0", "0", "5", "5"]
    assert lines[2].split()[:2] == ["resize", "1"] and "paused" in lines[2]
    end = lines[0].index("FAILED") + len("FAILED")  # counts are right-aligned under their heading
    assert lines[1][end - 2:end] == " 5" and lines[2][end - 2:end] == " 0"
    got = as_json(redis_url, "queues")
    assert [q["name"] for q in got["queues"]] == ["mail", "resize"] and got["problems"] == []
    mail = got["queues"][0]
    assert mail["counts"] == {"waiting": 0, "prioritized": 0, "delayed": 0, "active": 0, "completed": 5,
                              "failed": 5, "waiting-children": 0, "paused": 0}
    assert (mail["paused"], mail["workers"], mail["stuck"], mail["oldest_waiting"]) == (False, 0, False, None)
    assert got["queues"][1]["paused"] is True


def test_queues_discover_finds_a_queue_only_another_tool_wrote_and_is_audited(r: redis.Redis,
                                                                                redis_url: str) -> None:
    r.hset("bull:node-only:meta", "opts.maxLenEvents", 10000)
    r.rpush("bull:node-only:wait", "1")
    r.hset("bull:node-only:1", mapping={"name": "n", "data": "{}", "opts": "{}", "timestamp": 1})
    assert as_json(redis_url, "queues")["queues"] == []
    assert [q["name"] for q in as_json(redis_url, "queues", "--discover")["queues"]] == ["node-only"]
    entry = audit(r, None)[0]
    assert (entry.action, entry.count, entry.ok) == ("rescan", 1, True)
    assert_cli_actor(entry)


def test_info_table_and_json(r: redis.Redis, redis_url: str, redis_factory: Any) -> None:
    q = seed(r, "mail")
    for i in range(3):
        q.add("later", {"i": i})
    q.set_global_rate_limit(10, 2)
    q.pause("partner API down", until=900, by="oncall")
    worker_conn = redis_factory()
    worker_conn.client_setname(worker_client_name("bull", "mail", "w1"))
    worker_conn.ping()
    text = run(redis_url, "info", "mail").stdout
    assert "paused by oncall since" in text and "reason: partner API down" in text and "(in 14m" in text
    assert "waiting 3, prioritized 0, delayed 0, active 0, completed 5, failed 5" in text
    assert "workers:        1 (w1)" in text
    assert "10 jobs per 2.0s" in text and "jobs a minute (last 5 minutes)" in text
    got = as_json(redis_url, "info", "mail")
    assert got["name"] == "mail" and got["paused"] is True and got["workers"] == 1
    assert got["pause"]["reason"] == "partner API down" and got["pause"]["by"] == "oncall"
    assert got["pause"]["until"] - got["pause"]["since"] == 900_000
    assert [w["name"] for w in got["worker_connections"]] == ["w1"]
    assert got["rate_limit"] == {"max": 10, "duration": 2000, "throttled": 0}
    assert got["finished_per_minute"] == pytest.approx(2.0)  # 10 jobs finished just now, over 5 minutes
    assert got["oldest_waiting"] == Queue("mail", connection=r).jobs("waiting", 2, 2)[0].timestamp
    assert got["counts"]["waiting"] == 3 and got["stuck"] is False


def test_info_of_a_running_queue_with_nothing_recorded(r: redis.Redis, redis_url: str) -> None:
    Queue("mail", connection=r).add("x", {})
    text = run(redis_url, "info", "mail").stdout
    assert "state:          running" in text and "no metrics recorded" in text and "rate limit:     none" in text
    assert "stuck:" in text  # ready jobs, no worker
    got = as_json(redis_url, "info", "mail")
    assert got["pause"] is None and got["rate_limit"] is None and got["finished_per_minute"] is None
    assert got["stuck"] is True


@pytest.mark.parametrize("state", ["waiting", "prioritized", "delayed", "completed", "failed"])
def test_jobs_of_each_state_table_and_json(r: redis.Redis, redis_url: str, state: str) -> None:
    q = seed(r, "mail")
    q.add("ready", {"n": 1})
    q.add("urgent", {"n": 2}, priority=1)
    q.add("later", {"n": 3}, delay=3600)
    got = as_json(redis_url, "jobs", "mail", state, "--limit", "2")
    total = {"waiting": 1, "prioritized": 1, "delayed": 1, "completed": 5, "failed": 5}[state]
    assert (got["queue"], got["state"], got["total"], got["offset"]) == ("mail", state, total, 0)
    assert len(got["jobs"]) == min(total, 2) and all(j["state"] == state for j in got["jobs"])
    first = got["jobs"][0]
    assert set(first) == {"id", "name", "state", "data", "timestamp", "delay", "priority", "processed_on",
                          "finished_on", "attempts_made", "attempts", "progress", "failed_reason", "truncated",
                          "problems"}
    lines = run(redis_url, "jobs", "mail", state, "--limit", "2").stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "CREATED", "ATTEMPTS", "DETAIL"]
    assert [line.split()[0] for line in lines[1:]] == [j["id"] for j in got["jobs"]]
    if state == "failed":
        assert f"cannot send mail #{int(got['jobs'][0]['id']) - 1}" in lines[1]
    if state == "delayed":
        assert "runs in 59m" in lines[1] or "runs in 1h00m" in lines[1]
    if state == "waiting":
        assert '{"n": 1}' in lines[1]


def test_jobs_pages_with_offset_and_refuses_bad_states_and_limits(r: redis.Redis, redis_url: str) -> None:
    q = seed(r, "mail")
    got = as_json(redis_url, "jobs", "mail", "failed", "--limit", "2", "--offset", "2")
    assert [j["id"] for j in got["jobs"]] == [j.id for j in q.jobs("failed", 2, 3)]  # the API's page, newest first
    assert len(got["jobs"]) == 2 and got["total"] == 5
    assert "Invalid value for 'STATE'" in run(redis_url, "jobs", "mail", "paused", code=2).stderr
    run(redis_url, "jobs", "mail", "failed", "--limit", "0", code=2)
    run(redis_url, "jobs", "mail", "failed", "--limit", "1001", code=2)


def test_job_table_and_json_with_log_trace_and_escapes(r: redis.Redis, redis_url: str) -> None:
    q = Queue("mail", connection=r)
    job = q.add("send\x1b[2J", {"to": "a@example.com", "note": "\x1b[31mred"}, attempts=2, backoff=3600)
    for i in range(30):
        q.add_log(job.id, f"line {i}\x07")
    run_burst(r, "mail", lambda j: 1 / 0)
    got = as_json(redis_url, "job", "mail", job.id)
    assert got["queue"] == "mail" and got["id"] == job.id and got["state"] == "delayed"  # backing off
    assert got["name"] == "send\x1b[2J" and got["data"]["note"] == "\x1b[31mred"  # JSON keeps the text exactly
    assert got["attempts_made"] == 1 and got["attempts"] == 2 and got["opts"]["attempts"] == 2
    assert got["failed_reason"] == "division by zero" and "ZeroDivisionError" in got["stacktrace"][0]
    assert got["logs"]["total"] == 30 and got["logs"]["start"] == 10 and len(got["logs"]["lines"]) == 20
    assert got["lock_ttl"] is None and got["returnvalue"] is None
    out = run(redis_url, "job", "mail", job.id, "--log", "3").stdout
    assert "\x1b" not in out and "\x07" not in out  # nothing from Redis drives the terminal
    assert "send\\x1b[2J" in out and "\\u001b[31mred" in out
    assert "state:         delayed" in out and "failed reason: division by zero" in out
    assert "stack trace (the last of 1):" in out and "ZeroDivisionError" in out
    assert "log (lines 28-30 of 30):" in out and "line 29\\x07" in out and "line 26" not in out


def test_job_cut_fields_say_so(r: redis.Redis, redis_url: str) -> None:
    job = Queue("mail", connection=r).add("big", {"blob": "x" * 200_000})
    got = as_json(redis_url, "job", "mail", job.id)
    assert got["truncated"]["data"] > 200_000 and isinstance(got["data"], str) and len(got["data"]) <= 65536
    assert "(cut: 200," in run(redis_url, "job", "mail", job.id).stdout


def test_schedulers_table_and_json(r: redis.Redis, redis_url: str) -> None:
    q = Queue("mail", connection=r)
    q.upsert_job_scheduler("every-2s", every=2, name="tick", data={"n": 1})
    q.upsert_job_scheduler("nightly", pattern="0 30 2 * * *", tz="Europe/Berlin")
    got = as_json(redis_url, "schedulers", "mail")
    assert got["queue"] == "mail"
    by_key = {s["key"]: s for s in got["schedulers"]}
    assert by_key["every-2s"]["every"] == 2000 and by_key["every-2s"]["name"] == "tick"
    assert by_key["nightly"]["pattern"] == "0 30 2 * * *" and by_key["nightly"]["tz"] == "Europe/Berlin"
    lines = run(redis_url, "schedulers", "mail").stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "NAME"]
    assert any(line.split()[:3] == ["every-2s", "tick", "2.0s"] for line in lines)
    assert any("0 30 2 * * *" in line and "Europe/Berlin" in line for line in lines)


def test_workers_table_and_json(r: redis.Redis, redis_url: str, redis_factory: Any) -> None:
    Queue("mail", connection=r).add("x", {})
    Queue("resize", connection=r).add("x", {})
    for queue, name in (("mail", "w1"), ("resize", None)):
        conn = redis_factory()
        conn.client_setname(worker_client_name("bull", queue, name))
    got = as_json(redis_url, "workers")["workers"]
    assert sorted((w["queue"], w["name"]) for w in got) == [("mail", "w1"), ("resize", None)]
    assert all(w["addr"] and isinstance(w["age"], int) and isinstance(w["idle"], int) for w in got)
    lines = run(redis_url, "workers").stdout.splitlines()
    assert lines[0].split() == ["QUEUE", "NAME", "ADDRESS", "AGE", "IDLE"] and len(lines) == 3


# --- actions ---------------------------------------------------------------------------

def test_retry_ids_goes_on_past_refusals_and_audits_each(r: redis.Redis, redis_url: str) -> None:
    q = seed(r, "mail")
    result = run(redis_url, "retry", "mail", "2", "1", "meta", "4", code=3)  # 1 completed, 2 and 4 failed
    assert result.stdout.splitlines() == ["Retried job 2 in mail.", "Retried job 1 in mail.", "Retried job 4 in mail."]
    assert result.stderr.startswith("Error: retry: 'meta' is not a job")
    assert q.job("2").state == "waiting" and q.job("4").state == "waiting" and q.job("1").state == "waiting"
    entries = audit(r)[:4][::-1]
    assert [(e.action, e.target, e.ok) for e in entries] == [
        ("retry job", "2", True), ("retry job", "1", True), ("retry job", "meta", False), ("retry job", "4", True)]
    assert entries[2].result.startswith("refused (exit 3): retry: 'meta' is not a job")
    assert_cli_actor(entries[0])


def test_retry_exit_codes_and_json_results(r: redis.Redis, redis_url: str) -> None:
    q = seed(r, "mail")
    q.add("ready", {})  # job 11, waiting: cannot be retried
    got = as_json(redis_url, "retry", "mail", "6", "999", code=3)  # only "not found" went wrong
    assert got["ok"] is False and got["count"] == 1
    assert [(x["id"], x["ok"], x["exit"]) for x in got["results"]] == [("6", True, 0), ("999", False, 3)]
    got = as_json(redis_url, "retry", "mail", "11", "999", code=1)  # an error wins over "not found"
    assert [x["exit"] for x in got["results"]] == [1, 3]
    assert "is waiting, not failed or completed" in got["results"][0]["message"]


def test_retry_all_and_promote_all_and_their_audit(r: redis.Redis, redis_url: str) -> None:
    q = seed(r, "mail")
    for i in range(3):
        q.add("later", {"i": i}, delay=3600)
    out = run(redis_url, "retry", "mail", "--all").stdout
    assert out.startswith("Retry all failed on mail: done, 5 jobs in ")
    assert q.counts().failed == 0 and q.counts().waiting == 5
    got = as_json(redis_url, "promote", "mail", "--all")
    assert (got["action"], got["ok"], got["count"]) == ("promote all", True, 3)
    assert got["message"].startswith("Promote all delayed on mail: done, 3 jobs in ")
    assert q.counts().delayed == 0
    entries = audit(r)[:2]
    assert [(e.action, e.count, e.ok) for e in entries] == [("promote all", 3, True), ("retry all", 5, True)]


def test_promote_and_remove_ids(r: redis.Redis, redis_url: str) -> None:
    q = Queue("mail", connection=r)
    later = q.add("later", {}, delay=3600)
    ready = q.add("ready", {})
    assert run(redis_url, "promote", "mail", later.id).stdout == f"Promoted job {later.id} in mail.\n"
    assert q.job(later.id).state == "waiting"
    got = as_json(redis_url, "remove", "mail", later.id, ready.id)
    assert got["ok"] and got["count"] == 2 and q.counts().total == 0
    assert [(e.action, e.target) for e in audit(r)[:3]] == [
        ("remove job", ready.id), ("remove job", later.id), ("promote job", later.id)]
    run(redis_url, "remove", "mail", code=2)  # no id


def test_clean_with_grace_and_limit(r: redis.Redis, redis_url: str) -> None:
    q = seed(r, "mail")
    assert as_json(redis_url, "clean", "mail", "completed", "--grace", "1h")["count"] == 0
    got = as_json(redis_url, "clean", "mail", "failed", "--grace", "0", "--limit", "2")
    assert (got["action"], got["count"]) == ("clean", 2) and q.counts().failed == 3
    assert run(redis_url, "clean", "mail", "completed", "--grace", "0s").stdout.startswith(
        "Clean completed on mail: done, 5 jobs in ")
    assert q.counts().completed == 0
    assert [(e.action, e.count) for e in audit(r)[:3]] == [("clean", 5), ("clean", 2), ("clean", 0)]
    for bad in (["--grace", "soon"], ["--grace", "-1"], ["--grace", "1h", "--limit", "0"], []):
        run(redis_url, "clean", "mail", "failed", *bad, code=2)
    run(redis_url, "clean", "mail", "waiting", "--grace", "0", code=2)


def test_pause_with_reason_and_time_then_resume(r: redis.Redis, redis_url: str) -> None:
    q = Queue("mail", connection=r)
    q.add("x", {})
    out = run(redis_url, "pause", "mail", "--reason", "partner API down", "--for", "15m").stdout
    assert out.startswith("Paused mail for 15m00s (until ") and out.endswith("Reason: partner API down\n")
    info = q.pause_info()
    assert info is not None and info.reason == "partner API down" and info.by.startswith("cli:")
    assert info.until is not None and info.since is not None and info.until - info.since == 900_000
    got = as_json(redis_url, "resume", "mail")
    assert got == {"queue": "mail", "action": "resume", "ok": True, "count": None, "message": "Resumed mail.",
                   "paused": False}
    assert not q.is_paused() and q.pause_info() is None
    got = as_json(redis_url, "pause", "mail")
    assert got["paused"] is True and got["until"] is None and q.is_paused()
    assert [e.action for e in audit(r)[:3]] == ["pause", "resume", "pause"]
    assert audit(r)[2].result.endswith("Reason: partner API down")


def test_add_with_options_and_duplicates(r: redis.Redis, redis_url: str) -> None:
    got = as_json(redis_url, "add", "mail", "digest", "--data", '{"day": "2026-11-28"}', "--delay", "30s",
                  "--priority", "3", "--attempts", "5", "--backoff", "exponential:2s", "--job-id", "digest-1",
                  "--remove-on-complete", "1000", "--remove-on-fail", '{"age": 3600}', "--lifo",
                  "--stack-trace-limit", "3")
    assert (got["id"], got["added"], got["delay"]) == ("digest-1", True, 30_000)
    job = Queue("mail", connection=r).job("digest-1")
    assert job.data == {"day": "2026-11-28"} and job.state == "delayed" and job.priority == 3
    assert job.opts["backoff"] == {"type": "exponential", "delay": 2000} and job.opts["attempts"] == 5
    assert job.opts["removeOnComplete"] == 1000 and job.opts["removeOnFail"] == {"age": 3600}
    assert job.opts["lifo"] is True and job.opts["stackTraceLimit"] == 3
    again = run(redis_url, "add", "mail", "digest", "--job-id", "digest-1").stdout
    assert again == "Nothing added: job digest-1 already holds that id in mail.\n"
    assert run(redis_url, "add", "new-queue", "x").stdout == "Added job 1 (x) to new-queue.\n"
    assert Queue("new-queue", connection=r).job("1").data == {}
    first = as_json(redis_url, "add", "mail", "sync", "--dedup-id", "order-7", "--dedup-ttl", "1m")
    second = as_json(redis_url, "add", "mail", "sync", "--dedup-id", "order-7")
    assert first["added"] and not second["added"] and second["id"] == first["id"]
    entries = audit(r)
    assert [(e.action, e.target, e.queue) for e in entries[:2]] == [("add job", first["id"], "mail")] * 2
    assert audit(r, "new-queue")[0].result == "Added job 1 (x) to new-queue."


@pytest.mark.parametrize("args", [
    ["--data", "{bad"], ["--data", "[" * 100_000], ["--priority", "-1"], ["--priority", "x"],
    ["--attempts", "-2"], ["--delay", "later"], ["--backoff", "weird:2s"], ["--backoff", "{nope"],
    ["--job-id", "meta"], ["--job-id", "42"], ["--job-id", "repeat:x"], ["--remove-on-complete", "-1"],
    ["--dedup-ttl", "5s"],
])
def test_add_refuses_bad_input_with_usage_errors(r: redis.Redis, redis_url: str, args: list[str]) -> None:
    result = run(redis_url, "add", "mail", "x", *args, code=2)
    assert "Error:" in result.stderr and "Traceback" not in result.stderr
    assert Queue("mail", connection=r).counts().total == 0 and audit(r) == []


# --- hostile names and ids -------------------------------------------------------------

@pytest.mark.parametrize("job_id", ["meta", "repeat:x", "de:1", "1:lock", "metrics:failed", "a:b"])
def test_bookkeeping_keys_are_not_jobs(r: redis.Redis, redis_url: str, job_id: str) -> None:
    seed(r, "mail")
    assert "is not a job" in run(redis_url, "job", "mail", job_id, code=3).stderr
    for action in ("retry", "promote", "remove"):
        run(redis_url, action, "mail", job_id, code=3)
    assert r.exists("bull:mail:meta")


@pytest.mark.parametrize("name", ["évil queue/../x", "a b", "%2F", "..", "-dash", "{tag}"])
def test_odd_queue_names_and_job_ids_are_themselves(r: redis.Redis, redis_url: str, name: str) -> None:
    q = Queue(name, connection=r)
    job = q.add("x", {}, job_id="evil/../victim")
    got = as_json(redis_url, "job", "--", name, job.id)
    assert (got["queue"], got["id"]) == (name, "evil/../victim")
    assert as_json(redis_url, "info", "--", name)["name"] == name
    run(redis_url, "remove", "--", name, job.id)
    assert q.counts().total == 0 and audit(r, name)[0].target == "evil/../victim"


def test_names_that_can_be_no_queue_are_usage_errors_and_unknown_ones_not_found(r: redis.Redis,
                                                                               redis_url: str) -> None:
    for bad in ("a:b", ""):
        assert "is not a queue name" in run(redis_url, "info", bad, code=2).stderr
        run(redis_url, "add", bad, "x", code=2)
    assert "no queue named 'nope'" in run(redis_url, "info", "nope", code=3).stderr
    run(redis_url, "jobs", "nope", "failed", code=3)
    run(redis_url, "pause", "nope", code=3)
    entry = audit(r, None)[0]  # a refusal is recorded, as the dashboard records its 404
    assert (entry.action, entry.queue, entry.ok) == ("pause", "nope", False)
    assert entry.result.startswith("refused (exit 3): no queue named 'nope'")
    assert "No such command" in run(redis_url, "frobnicate", code=2).stderr


# --- exit codes in a real process --------------------------------------------------------

def dashboard(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("DASHBOARD_")}
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                          timeout=60, env={**environ, **(env or {})}, **kwargs)


def test_exit_codes_of_a_real_process(r: redis.Redis, redis_url: str) -> None:
    q = seed(r, "mail")
    ok = dashboard("--json", "jobs", "mail", "failed", "--limit", "1", env={"REDIS_URL": redis_url})
    assert ok.returncode == 0 and json.loads(ok.stdout)["jobs"][0]["id"] == q.jobs("failed", 0, 0)[0].id
    missing = dashboard("--redis-url", redis_url, "job", "mail", "meta")
    assert missing.returncode == 3 and missing.stdout == ""
    assert missing.stderr == ("Error: 'meta' is not a job: it is the queue's settings (paused flag, rate limit, "
                              "concurrency); Bullpen shows and changes only real jobs\n")
    assert dashboard("--redis-url", redis_url, "jobs", "mail", "nope").returncode == 2
    assert dashboard("--redis-url", redis_url, "add", "mail", "x", "--data", "{").returncode == 2
    assert dashboard("--redis-url", redis_url, "info", "nope").returncode == 3
    assert dashboard("--redis-url", redis_url, "retry", "mail", "1").returncode == 0  # completed: retried
    assert dashboard("--redis-url", redis_url, "retry", "mail", "1").returncode == 1  # waiting now: not possible
    down = dashboard("queues", env={"REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"})
    assert down.returncode == 1 and down.stdout == ""
    assert down.stderr.startswith("Error: Redis is unreachable at 127.0.0.1:1/0: ")
    assert len(down.stderr.splitlines()) == 1 and "Traceback" not in down.stderr and "s3cret" not in down.stderr
    bad_env = dashboard("queues", env={"DASHBOARD_LOG_LEVEL": "LOUD"})
    assert bad_env.returncode == 2 and bad_env.stderr.startswith("Error: DASHBOARD_LOG_LEVEL must be")


def test_a_progress_bar_on_a_terminal_only(r: redis.Redis, redis_url: str) -> None:
    seed(r, "mail", count=40)
    primary, secondary = pty.openpty()
    try:
        proc = dashboard("--redis-url", redis_url, "retry", "mail", "--all", stdout=secondary)
    finally:
        os.close(secondary)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    screen = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "Retry all failed" in screen and "20/20" in screen and "done, 20 jobs" in screen
    seed(r, "mail", count=40)  # once more, to a pipe: no bar
    piped = dashboard("--redis-url", redis_url, "retry", "mail", "--all")
    assert piped.stdout.startswith("Retry all failed on mail: done, ") and "/" not in piped.stdout


def test_global_options_also_follow_the_command_name(r: redis.Redis, redis_url: str) -> None:
    Queue("mail", connection=r, prefix="app").add("x", {})
    result = CliRunner().invoke(cli, ["info", "mail", "--json", "--prefix", "app", "--redis-url", redis_url],
                                catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(result.stdout)["counts"]["waiting"] == 1
    run(redis_url, "info", "mail", code=3)  # under the default prefix "bull" there is no such queue
    assert run(redis_url, "--prefix", "", "queues", code=2).stderr == "Error: --prefix must not be empty\n"


def test_control_characters_in_ids_never_reach_the_terminal(r: redis.Redis, redis_url: str) -> None:
    Queue("mail", connection=r).add("x", {})
    for args in (["promote", "mail", "\x1b[2Jgone"], ["job", "mail", "\x1b]0;title\x07"], ["info", "\x1b[31m"]):
        result = run(redis_url, *args, code=3)
        assert "\x1b" not in result.stderr and "\x07" not in result.stderr and "\\x1b" in result.stderr
    got = as_json(redis_url, "promote", "mail", "\x1b[2Jgone", code=3)
    assert got["action"] == "promote job" and got["results"][0]["id"] == "\x1b[2Jgone"  # JSON keeps the id exactly
