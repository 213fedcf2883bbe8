"""The README's example: a web process adds jobs, a worker process handles them.

    python -m dashboard worker --queue message-notifications --handler examples.notifications:notify
    python -m examples.notifications 42          # what your web app does on each request
"""

from __future__ import annotations

import os
import sys

from dashboard import Job, Queue, Unrecoverable

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def notify(job: Job) -> dict[str, object]:
    """Runs in the worker process, once per job (again on retry if it raises)."""
    message_id = job.data["messageId"]
    if message_id < 0:
        raise Unrecoverable(f"message {message_id} does not exist")  # no point retrying
    job.update_progress(50)
    job.log(f"sent message {message_id} to 3 devices")
    return {"sent": True, "devices": 3}


def enqueue(message_id: int) -> str:
    """What the web process does: add the job and answer the request at once."""
    queue = Queue("message-notifications", redis_url=REDIS_URL)
    job = queue.add("notify", {"messageId": message_id}, attempts=5, backoff=("exponential", 2.0),
                    remove_on_complete=1000)
    return job.id


if __name__ == "__main__":
    print("added job", enqueue(int(sys.argv[1]) if len(sys.argv) > 1 else 42))
