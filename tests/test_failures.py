"""Failure clusters: the fingerprint (pure: masking, traces of Python and Node) and the index
kept in Redis (built in batches, extended, and right after jobs leave failed by any path)."""

from __future__ import annotations

import json
import traceback
import uuid

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import Queue, Worker
from dashboard.failure_index import FailureIndex
from dashboard.failures import fingerprint, innermost_frame, mask
from dashboard.job import Job
from dashboard.keys import failure_index_key

# --- masking -------------------------------------------------------------------------------

KINDS = [
    st.integers(-10**12, 10**12).map(str),
    st.uuids().map(str),
    st.integers(0, 2**64).map(lambda n: f"0x{n:x}"),
    st.from_regex(r"[a-z]{1,4}[0-9]{1,6}", fullmatch=True),
    st.from_regex(r"(/[a-z0-9_]{1,8}){2,4}\.py", fullmatch=True),
    st.from_regex(r"[a-z]{1,6}@[a-z]{1,6}\.(com|org)", fullmatch=True),
]
#: Two values of one kind (two numbers, two UUIDs ...), for one place in a message.
PAIR = st.sampled_from(KINDS).flatmap(lambda kind: st.tuples(kind, kind))
WORDS = st.lists(st.sampled_from(["order", "not", "found", "for", "user", "timeout", "after", "cannot",
                                  "connect", "to", "at", "KeyError:", "(reading", "'id')", "#"]), min_size=1,
                 max_size=6)


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_masking_is_idempotent(message: str) -> None:
    once = mask(message)
    assert mask(once) == once
    assert not any(c.isdigit() and c.isascii() for c in once)


@given(WORDS, st.lists(PAIR, min_size=1, max_size=3))
@settings(max_examples=300)
def test_messages_differing_only_in_numbers_and_ids_group_together(words: list[str],
                                                                 slots: list[tuple[str, str]]) -> None:
    first = " ".join(words + [a for a, _ in slots])
    second = " ".join(words + [b for _, b in slots])
    assert mask(first) == mask(second)


def test_mask_examples() -> None:
    assert mask("order 12345 not found") == "order <n> not found"
    assert mask(f"user {uuid.uuid4()} has no card 0xdeadbeef") == "user <uuid> has no card <hex>"
    assert mask("commit 3f9a2c1d0e not found") == mask("commit a1 not found") == "commit <id> not found"
    assert mask("cannot open /var/data/2026/report.csv") == "cannot open <path>"
    assert mask("GET https://api.example.com/v1/users/7 -> 503") == "GET <url> -> <n>"
    assert mask("mail to a.b@example.com bounced   twice") == "mail to <email> bounced twice"
    assert mask("job ord-9f8a2 stuck") == "job <id> stuck"
    assert mask("order 1 failed") != mask("payment 1 failed")


# --- traces --------------------------------------------------------------------------------

def python_trace(message: str = "cannot send mail #3") -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/tasks/mail.py", line 40, in send\n    client.post(payload)\n'
        '  File "/usr/lib/python3/dist-packages/requests/api.py", line 115, in post\n    return request()\n'
        '  File "/usr/local/lib/python3.11/site-packages/urllib3/pool.py", line 9, in urlopen\n    raise e\n'
        f"ValueError: {message}\n")


def node_trace(message: str = "Cannot read properties of undefined (reading 'id')") -> str:
    return (f"TypeError: {message}\n"
            "    at async handler (/srv/app/src/worker.js:10:11)\n"
            "    at Worker.callProcessJob (/srv/app/node_modules/bullmq/dist/cjs/classes/worker.js:1:2)\n"
            "    at node:internal/process/task_queues:95:5")


def test_python_trace_gives_type_and_innermost_application_frame() -> None:
    fp = fingerprint("cannot send mail #3", python_trace())
    assert (fp.type, fp.message, fp.frame, fp.line) == ("ValueError", "cannot send mail #<n>", "tasks/mail.py in send",
                                                         40)
    assert fingerprint("cannot send mail #9", python_trace("cannot send mail #9")).id == fp.id


def test_chained_python_trace_uses_the_last_exception() -> None:
    trace = python_trace("first") + "\nDuring handling of the above exception, another exception occurred:\n\n" + (
        'Traceback (most recent call last):\n  File "/srv/app/retry.py", line 3, in again\n    x()\n'
        "app.errors.Gone: order 7 gone\n")
    fp = fingerprint("order 7 gone", trace)
    assert (fp.type, fp.frame) == ("app.errors.Gone", "app/retry.py in again")


def test_node_trace_skips_node_modules_and_internals() -> None:
    fp = fingerprint("Cannot read properties of undefined (reading 'id')", node_trace())
    assert (fp.type, fp.frame, fp.line) == ("TypeError", "src/worker.js in handler", 10)


def test_a_real_python_traceback() -> None:
    def handler() -> None:
        raise KeyError("user-42")

    try:
        handler()
    except KeyError as exc:
        trace = "".join(traceback.format_exception(exc))
    fp = fingerprint("'user-42'", trace)
    assert fp.type == "KeyError"
    assert fp.frame == "tests/test_failures.py in handler"


def test_no_trace_or_only_library_frames() -> None:
    assert fingerprint("job stalled more than allowable limit", "").frame == ""
    assert fingerprint("job stalled more than allowable limit", "").type == ""
    assert innermost_frame('  File "/usr/lib/python3.11/socket.py", line 1, in f\n') is None


# --- the index in Redis ---------------------------------------------------------------------

def failing(job: Job) -> None:
    kind = job.data["kind"]
    if kind == "mail":
        raise ValueError(f"cannot send mail #{job.data['i']} to u{job.data['i']}@example.com")
    if kind == "lookup":
        raise KeyError(f"user-{job.data['i']}")
    raise RuntimeError(f"timeout after {job.data['i']} ms")


def make_failures(r: redis.Redis, name: str, kinds: dict[str, int]) -> Queue:
    q = Queue(name, connection=r)
    q.add_bulk([("job", {"kind": kind, "i": i}, {}) for kind, n in kinds.items() for i in range(n)])
    Worker(name, failing, connection=r).run(burst=True)
    return q


def clusters(index: FailureIndex) -> dict[str, int]:
    return {c.type: c.count for c in index.overview().clusters}


def test_index_groups_failed_jobs_and_extends_incrementally(r: redis.Redis) -> None:
    q = make_failures(r, "mail", {"mail": 7, "lookup": 3, "other": 2})
    index = FailureIndex.of(q, reconcile_seconds=0)
    status = index.refresh()
    assert (status.indexed, status.failed, status.added, status.complete) == (12, 12, 12, True)
    top = index.overview()
    assert [(c.type, c.count) for c in top.clusters] == [("ValueError", 7), ("KeyError", 3), ("RuntimeError", 2)]
    mail = top.clusters[0]
    assert mail.message == "cannot send mail #<n> to <email>"
    assert mail.frame == "tests/test_failures.py in failing"
    assert mail.sample_id is not None and mail.first_ms and mail.last_ms and sum(mail.spark) == 7
    assert index.refresh().added == 0  # nothing new: nothing read again
    q.add("job", {"kind": "lookup", "i": 99})
    Worker("mail", failing, connection=r).run(burst=True)
    assert index.refresh().added == 1
    assert clusters(index) == {"ValueError": 7, "KeyError": 4, "RuntimeError": 2}


def test_index_follows_jobs_that_leave_failed_by_other_paths(r: redis.Redis) -> None:
    q = make_failures(r, "mail", {"mail": 5, "lookup": 3})
    index = FailureIndex.of(q, reconcile_seconds=0)
    index.refresh()
    mail = index.overview().clusters[0]
    q.remove(mail.sample_id)                                         # one removed
    lookup_ids = index.members(index.overview().clusters[1].id, q.clock(), 0, 10)
    q.retry(lookup_ids[0])                                           # one retried
    q.clean("failed", 0, 1)                                          # the oldest cleaned
    status = index.refresh()
    assert status.complete and status.indexed == r.zcard("bull:mail:failed") == 5
    assert sum(clusters(index).values()) == 5
    Worker("mail", failing, connection=r).run(burst=True)            # the retried one fails again
    status = index.refresh()
    assert status.complete and sum(clusters(index).values()) == 6


def test_index_of_an_empty_queue_and_bookkeeping_strays(r: redis.Redis) -> None:
    q = Queue("empty", connection=r)
    index = FailureIndex.of(q)
    assert index.refresh().complete
    assert index.overview().clusters == []
    r.zadd("bull:empty:failed", {"meta": 1})  # not a job: never indexed as one
    r.zadd("bull:empty:failed", {"gone": 2})  # a job whose hash is gone: indexed with no cause
    index.refresh()
    assert r.hkeys(failure_index_key("bull", "empty", "jobs")) == [b"gone"]


def test_cluster_removal_deletes_only_jobs_still_failed(r: redis.Redis) -> None:
    q = make_failures(r, "mail", {"mail": 6, "lookup": 2})
    index = FailureIndex.of(q, reconcile_seconds=0)
    index.refresh()
    mail = index.overview().clusters[0]
    keep = index.members(mail.id, q.clock(), 0, 1)[0]
    q.retry(keep)  # now waiting: removing the cluster must not delete it
    assert index.count_upto([mail.id], q.clock()) == 6  # the index does not know yet
    assert index.remove(mail.id, q.clock()) == 5
    assert r.exists(f"bull:mail:{keep}") and q.job(keep).state == "waiting"
    index.refresh()
    assert clusters(index) == {"KeyError": 2}


def test_huge_reasons_and_traces_are_cut_inside_redis_and_still_grouped(r: redis.Redis) -> None:
    q = Queue("big", connection=r)
    for i in range(30):
        job = q.add("x", {})
        r.zadd("bull:big:failed", {job.id: 1000 + i})
        r.hset(f"bull:big:{job.id}", mapping={"failedReason": f"boom {i} " + "x" * 5000,
                                              "stacktrace": json.dumps([python_trace("a"), python_trace(f"boom {i}")
                                                                        + "y" * 300_000])})
    r.delete("bull:big:wait")
    index = FailureIndex.of(q)
    assert index.refresh().complete
    (c,) = index.overview().clusters  # traces over 256 KB are not read: grouped by reason alone
    assert c.count == 30 and c.type == "" and c.message.startswith("boom <n> xxx")


# --- the page ------------------------------------------------------------------------------

def test_failures_page_shows_clusters_and_their_actions(client, r: redis.Redis) -> None:
    from tests.webkit import HX

    make_failures(r, "mail", {"mail": 12, "lookup": 3})
    resp = client.get("/queues/mail/failures")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    assert "15 failed jobs in 2 clusters" in html
    assert "cannot send mail #&lt;n&gt; to &lt;email&gt;" in html and "KeyError" in html
    assert "tests/test_failures.py in failing" in html and 'class="spark"' in html
    assert "Retry 12…" in html and "Remove 12" in html and "Trace of job" in html
    assert "style=" not in html  # the CSP forbids inline styles
    part = client.get("/queues/mail/failures", headers=HX)
    assert part.status_code == 200 and part.get_data(as_text=True).lstrip().startswith("<div id=\"failures\"")
    assert client.get("/queues/nope/failures").status_code == 404


def test_redrive_dialog_previews_then_runs_and_controls_answer(client, app, r: redis.Redis) -> None:
    from tests.webkit import post, state

    q = make_failures(r, "mail", {"mail": 12, "lookup": 3})
    index = FailureIndex.of(q)
    index.refresh()
    mail = index.overview().clusters[0]
    html = client.get(f"/queues/mail/redrive?cluster={mail.id}").get_data(as_text=True)
    assert "12 jobs</strong> in 1 cluster" in html and "Re-drive 12 jobs" in html
    assert "15 jobs</strong> in 2 clusters" in client.get("/queues/mail/redrive").get_data(as_text=True)
    assert client.get("/queues/mail/redrive?cluster=xyz").status_code == 400
    resp = post(client, "/queues/mail/redrive", {"cluster": mail.id, "rate": "0", "share": "50"})
    assert resp.status_code == 303
    task_id = resp.headers["Location"].rsplit("/", 1)[-1]
    task = state(app).tasks.get(task_id)
    assert task is not None and task.wait(30) and task.done == 12 and task.error is None
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "12 re-driven" in page and "0 failed again" in page
    assert q.counts().waiting == 12 and q.counts().failed == 3
    job = client.get(f"/queues/mail/jobs/{mail.sample_id}").get_data(as_text=True)
    assert "re-driven by anonymous" in job
    assert post(client, f"/tasks/{task_id}/redrive/pause", target="task").status_code == 200
    assert post(client, f"/tasks/{task_id}/redrive/explode").status_code == 404
    assert post(client, "/tasks/0123456789abcdef/redrive/pause").status_code == 404
    assert post(client, "/queues/mail/redrive", {"rate": "7"}).status_code == 400


def test_remove_cluster_and_retry_all_go_through_tasks(client, app, r: redis.Redis) -> None:
    from tests.webkit import post, state

    q = make_failures(r, "mail", {"mail": 12, "lookup": 3})
    index = FailureIndex.of(q)
    index.refresh()
    lookup = index.overview().clusters[1]
    resp = post(client, f"/queues/mail/failures/{lookup.id}/remove")
    task = state(app).tasks.get(resp.headers["Location"].rsplit("/", 1)[-1])
    assert task is not None and task.wait(30) and task.done == 3
    assert q.counts().failed == 12
    assert post(client, f"/queues/mail/failures/{lookup.id}/remove").status_code == 404
    queue_page = client.get("/queues/mail?state=failed").get_data(as_text=True)
    assert "Retry all 12…" in queue_page and "/queues/mail/redrive" in queue_page  # more than a handful: the dialog
    resp = post(client, "/queues/mail/retry-all")  # the plain form still works, through a re-drive
    task = state(app).tasks.get(resp.headers["Location"].rsplit("/", 1)[-1])
    assert task is not None and task.wait(30) and task.done == 12
    assert all(r.hexists(f"bull:mail:{j.id}", "bpRedrive") for j in q.jobs("waiting", 0, 20))


@given(st.lists(st.text(max_size=80), min_size=1, max_size=4), st.sampled_from([(",", ":"), (", ", ": ")]))
@settings(max_examples=300)
def test_the_newest_trace_is_found_in_the_raw_field_without_decoding_it(traces: list[str],
                                                                       separators: tuple[str, str]) -> None:
    from dashboard.failures import _newest_element, unescape

    raw = json.dumps(traces, separators=separators).encode()
    assert json.loads(b'"' + _newest_element(raw) + b'"') == traces[-1]
    assert unescape(_newest_element(raw).decode()) == traces[-1]


def test_raw_and_decoded_traces_give_one_fingerprint() -> None:
    from dashboard.failures import entry_raw, fingerprint_raw, index_entry

    for reason, trace in (("cannot send mail #3", python_trace()), ("Cannot read properties of undefined "
                                                                    "(reading 'id')", node_trace())):
        raw = json.dumps(["older", trace]).encode()
        assert fingerprint_raw(reason, raw) == fingerprint(reason, trace)
        assert fingerprint_raw(reason, raw) == fingerprint(reason, trace)  # the second time from the cache
        expected = index_entry("7", "100", fingerprint(reason, trace), "0")
        assert entry_raw("7", "100", reason, raw, "0") == expected
        assert entry_raw("8", "100", reason, raw, "1") == ["8", "100", expected[2], "1", expected[4]]
    assert entry_raw("meta", "1", "x", b"[]", "0") == []
    assert fingerprint_raw("x", b"not json").frame == ""


def test_failures_page_with_a_redis_user_that_cannot_write(make_app, redis_url: str, r: redis.Redis) -> None:
    make_failures(r, "mail", {"mail": 3})
    r.execute_command("ACL", "SETUSER", "reader", "on", ">secret-pw", "~*", "&*", "+@all", "-@write")
    try:
        url = redis_url.replace("redis://", "redis://reader:secret-pw@", 1)
        client = make_app(redis_url=url, read_only=True).test_client()
        resp = client.get("/queues/mail/failures")
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200 and "The failure index cannot be updated here" in html
        assert "secret-pw" not in html
    finally:
        r.execute_command("ACL", "DELUSER", "reader")
