"""The job page's history: only a job failing now has a "latest" failure; retries by hand (a
re-drive, or the job's Retry button) say by whom and when, and the wait counts from them."""

from __future__ import annotations

import redis

from dashboard import Queue, Worker, history
from dashboard.job import Job
from tests.webkit import post, state


def flaky(job: Job) -> str:
    if not job.data.get("healed"):
        raise ConnectionResetError("Connection reset by peer (smtp.example.net)")
    return "sent"


def test_a_job_retried_by_hand_that_then_completed(client, r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    job = q.add("welcome", {"healed": False})
    Worker("mail", flaky, connection=r).run(burst=True)
    failed = client.get(f"/queues/mail/jobs/{job.id}").get_data(as_text=True)
    assert "Failure 1 (latest)" in failed and "Failed reason" in failed and "Retried by hand" not in failed
    assert post(client, f"/queues/mail/jobs/{job.id}/retry").status_code == 303
    r.hset(f"bull:mail:{job.id}", "data", '{"healed": true}')
    Worker("mail", flaky, connection=r).run(burst=True)
    done = client.get(f"/queues/mail/jobs/{job.id}").get_data(as_text=True)
    assert q.job(job.id).state == "completed"
    assert "(latest)" not in done and "Stack traces of earlier failures" in done
    assert "retried by anonymous" in done and "Enqueued again" in done


def test_a_redriven_job_that_failed_again(client, app, r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    q.add_bulk([("welcome", {"i": i}, {}) for i in range(3)])
    Worker("mail", flaky, connection=r).run(burst=True)
    resp = post(client, "/queues/mail/retry-all")
    task = state(app).tasks.get(resp.headers["Location"].rsplit("/", 1)[-1])
    assert task is not None and task.wait(30) and task.done == 3
    Worker("mail", flaky, connection=r).run(burst=True)
    page = client.get("/queues/mail/jobs/1").get_data(as_text=True)
    assert "re-driven by anonymous" in page and "failed again after the re-drive" in page
    assert "Failure 2 (latest)" in page


def test_attempts_recorded_by_our_worker(client, r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    job = q.add("welcome", {"healed": False}, attempts=2)
    Worker("mail", flaky, connection=r).run(burst=True)  # fails, is retried at once, fails for good
    raw: dict[bytes, bytes] = r.hgetall(f"bull:mail:{job.id}")  # type: ignore[assignment]
    outcomes = sorted(v.decode().split()[1] for k, v in raw.items() if k.startswith(b"bpAttempt:"))
    assert outcomes == ["failed", "retried"]
    page = client.get(f"/queues/mail/jobs/{job.id}").get_data(as_text=True)
    assert 'id="attempts"' in page and "failed, retried" in page and "failed (latest)" in page
    assert page.count("ConnectionResetError: Connection reset by peer") >= 2


def test_two_attempts_started_in_the_same_millisecond_are_two(client, r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    job = q.add("welcome", {"healed": False}, attempts=3)
    Worker("mail", flaky, connection=r, clock=lambda: 1_700_000_000_000).run(burst=True)  # a stopped clock
    raw: dict[bytes, bytes] = r.hgetall(f"bull:mail:{job.id}")  # type: ignore[assignment]
    names = sorted(k.decode() for k in raw if k.startswith(b"bpAttempt:"))
    assert names == [f"bpAttempt:1700000000000:{n}" for n in (1, 2, 3)]
    page = client.get(f"/queues/mail/jobs/{job.id}").get_data(as_text=True)
    assert "failed, retried" in page and "failed (latest)" in page
    assert [a.outcome for a in history.attempts(r, q.keys, job.id)] == ["retried", "retried", "failed"]


def test_the_retry_answer_already_says_who_retried(client, r: redis.Redis) -> None:
    q = Queue("mail", connection=r)
    job = q.add("welcome", {"healed": False})
    Worker("mail", flaky, connection=r).run(burst=True)
    resp = post(client, f"/queues/mail/jobs/{job.id}/retry", target="job")  # the job part htmx swaps in
    assert resp.status_code == 200 and 'id="job-redrive"' in resp.get_data(as_text=True)
    assert "retried by anonymous" in resp.get_data(as_text=True)
    assert client.get(f"/queues/mail/jobs/{job.id}").get_data(as_text=True).count("retried by anonymous") == 1
