"""The live demo: realistic queues, a producer thread, and handlers that behave like real ones.

``python app.py`` turns it on. Queues: ``message-notifications`` (fast, a few transient
failures), ``send-email`` (SMTP errors, retries with backoff, logs), ``resize-image``
(progress, some corrupt uploads fail for good), ``generate-report`` (slow, one job at a
time, some scheduled for later, and a job scheduler every 45 s), ``deliver-webhook`` (a
flaky partner: many retries, delayed jobs, a global rate limit of 2 a second) and
``sync-crm`` (no worker at all, so the overview warns). Every queue is capped: finished
jobs are trimmed by ``remove_on_complete``/``remove_on_fail`` and the producer stops adding
to a queue whose backlog passes :data:`BACKLOG_CAP`, so Redis never grows without bound.
This module must not import Flask.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import smtplib
import threading
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from ..catalog import Catalog
from ..embedded_workers import EmbeddedWorkers
from ..errors import Unrecoverable
from ..job import Job
from ..queue import Queue

log = logging.getLogger(__name__)

#: The producer adds no job to a queue whose waiting + delayed + prioritized count is above this.
BACKLOG_CAP = 300
#: Finished jobs kept per queue.
KEEP_COMPLETED = {"count": 500}
KEEP_FAILED = {"count": 1000}

_rng = random.Random()
_FIRST = ["ada", "grace", "linus", "margaret", "ken", "barbara", "alan", "radia", "dennis", "frances"]
_DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example"]


class UnidentifiedImageError(OSError):
    """What Pillow raises for a file that is not an image."""


class HTTPError(Exception):
    """An HTTP error answer from a partner's endpoint."""


def _pause(seconds: float) -> None:
    time.sleep(seconds)


# --- handlers ------------------------------------------------------------------------

def notify(job: Job) -> dict[str, Any]:
    _pause(_rng.uniform(0.01, 0.06))
    if _rng.random() < 0.04:
        _push_gateway_send(job.data)
    return {"delivered": True, "channel": job.data.get("channel"), "tokens": _rng.randint(1, 3)}


def _push_gateway_send(payload: dict[str, Any]) -> None:
    raise ConnectionResetError(104, "Connection reset by peer (push.example.net:443)")


def send_email(job: Job) -> dict[str, Any]:
    to = job.data.get("to", "")
    job.log(f"connecting to smtp.example.net:587 for {to}")
    _pause(_rng.uniform(0.08, 0.3))
    roll = _rng.random()
    if roll < 0.05:
        _smtp_deliver(to, refused=True)
    if roll < 0.10:
        _smtp_deliver(to, refused=False)
    job.log(f"250 2.0.0 Ok: queued as {_rng.randrange(16**10):010X}")
    return {"messageId": f"<{job.id}.{int(time.time())}@bullpen.example>", "template": job.data.get("template")}


def _smtp_deliver(to: str, refused: bool) -> None:
    if refused:
        raise smtplib.SMTPRecipientsRefused({to: (550, b"5.1.1 mailbox unavailable")})
    raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out")


def resize_image(job: Job) -> dict[str, Any]:
    sizes = job.data.get("sizes", [1600, 800, 320])
    if job.data.get("key", "").endswith(".heic") and _rng.random() < 0.5:
        _open_image(job.data["key"])
    for i, width in enumerate(sizes, 1):
        _pause(_rng.uniform(0.1, 0.35))
        job.log(f"resized to {width}px")
        job.update_progress(int(i * 100 / len(sizes)))
    return {"variants": [f"{job.data.get('key', 'img')}@{w}w.webp" for w in sizes]}


def _open_image(key: str) -> None:
    try:
        raise UnidentifiedImageError(f"cannot identify image file '/tmp/uploads/{key.rsplit('/', 1)[-1]}'")
    except UnidentifiedImageError as exc:
        raise Unrecoverable(f"corrupt upload {key}: {exc}") from exc


def generate_report(job: Job) -> dict[str, Any]:
    steps = ["querying orders", "aggregating", "rendering PDF", "uploading"]
    for i, step in enumerate(steps, 1):
        job.log(step)
        _pause(_rng.uniform(0.8, 2.0))
        job.update_progress({"step": step, "percent": int(i * 100 / len(steps))})
    if _rng.random() < 0.08:
        raise TimeoutError("timed out reading from analytics-db.internal:5432 after 30s")
    return {"url": f"https://reports.example.com/{job.data.get('report')}/{job.id}.pdf", "pages": _rng.randint(3, 40)}


def deliver_webhook(job: Job) -> dict[str, Any]:
    _pause(_rng.uniform(0.05, 0.2))
    if _rng.random() < 0.35:
        status = _rng.choice([502, 503, 504])
        raise HTTPError(f"{status} Server Error for url: {job.data.get('url')}")
    return {"status": 200, "ms": _rng.randint(40, 900)}


# --- producer ------------------------------------------------------------------------

def _email() -> str:
    return f"{_rng.choice(_FIRST)}.{_rng.randint(1, 9999)}@{_rng.choice(_DOMAINS)}"


def _notification() -> tuple[str, dict[str, Any], dict[str, Any]]:
    channel = _rng.choice(["push", "sms", "in-app"])
    return "notify", {"userId": _rng.randint(1000, 99999), "channel": channel,
                      "text": _rng.choice(["Your order shipped", "New login from Firefox", "Payment received"])}, \
        {"attempts": 3, "backoff": ("exponential", 1)}


def _email_job() -> tuple[str, dict[str, Any], dict[str, Any]]:
    template = _rng.choice(["welcome", "password-reset", "invoice", "weekly-digest"])
    return template, {"to": _email(), "template": template, "locale": _rng.choice(["en", "de", "fr"]),
                      "vars": {"name": _rng.choice(_FIRST).title(), "plan": _rng.choice(["free", "pro"])}}, \
        {"attempts": 2, "backoff": ("exponential", 2)}


def _image_job() -> tuple[str, dict[str, Any], dict[str, Any]]:
    ext = _rng.choice(["jpg", "jpg", "png", "heic"])
    key = f"uploads/2024/{_rng.randint(1, 12):02d}/IMG_{_rng.randint(1000, 9999)}.{ext}"
    return "thumbnail", {"key": key, "bucket": "media-prod", "sizes": [1600, 800, 320]}, {"attempts": 2}


def _report_job() -> tuple[str, dict[str, Any], dict[str, Any]]:
    report = _rng.choice(["monthly-sales", "churn", "inventory"])
    delay = _rng.choice([0, 0, 30, 120])
    return report, {"report": report, "accountId": _rng.randint(100, 999), "format": "pdf"}, {"delay": delay}


def _webhook_job() -> tuple[str, dict[str, Any], dict[str, Any]]:
    event = _rng.choice(["order.created", "invoice.paid", "user.deleted"])
    return event, {"url": f"https://hooks.partner{_rng.randint(1, 4)}.example/bullpen", "event": event,
                   "body": {"id": _rng.randint(1, 10**6)}}, {"attempts": 5, "backoff": ("exponential", 2)}


def _crm_job() -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "upsert-contact", {"email": _email(), "source": "signup"}, {}


#: queue -> (handler or None for "no worker", job factory, relative rate, worker concurrency)
QUEUES: dict[str, tuple[Callable[[Job], Any] | None, Callable[[], tuple[str, Any, dict[str, Any]]], float, int]] = {
    "message-notifications": (notify, _notification, 5.0, 8),
    "send-email": (send_email, _email_job, 3.0, 4),
    "resize-image": (resize_image, _image_job, 1.5, 2),
    "generate-report": (generate_report, _report_job, 0.3, 1),
    "deliver-webhook": (deliver_webhook, _webhook_job, 1.0, 2),
    "sync-crm": (None, _crm_job, 0.1, 0),
}


class Producer:
    """Adds demo jobs at about ``rate`` jobs per second in total, in a daemon thread."""

    def __init__(self, catalog: Catalog, rate: float = 4.0) -> None:
        self.queues: dict[str, Queue] = {name: catalog.queue(name) for name in QUEUES}
        self.rate = rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-producer", daemon=True)
        self.added = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def add_many(self, name: str, count: int) -> None:
        for _ in range(count):
            self.add_one(name)

    def add_one(self, name: str) -> None:
        """Add one realistic job to ``name`` unless its backlog is over the cap."""
        queue = self.queues[name]
        counts = queue.counts()
        if counts.waiting + counts.delayed + counts.prioritized >= BACKLOG_CAP:
            return
        job_name, data, opts = QUEUES[name][1]()
        queue.add(job_name, data, remove_on_complete=KEEP_COMPLETED, remove_on_fail=KEEP_FAILED, **opts)
        self.added += 1

    def _loop(self) -> None:
        names = list(QUEUES)
        weights = [QUEUES[n][2] for n in names]
        for name in names:  # something in every queue from the start
            self._guarded(functools.partial(self.add_many, name, 5))
        while not self._stop.wait(_rng.expovariate(self.rate)):
            self._guarded(lambda: self.add_one(_rng.choices(names, weights)[0]))

    def _guarded(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except RedisError as exc:
            log.warning("demo producer: Redis error (%s); retrying", exc)
            self._stop.wait(2)


def install(workers: EmbeddedWorkers | None, catalog: Catalog, rate: float = 4.0) -> Producer:
    """Register the demo handlers on ``workers`` (if any) and start the producer."""
    if workers is not None:
        for name, (handler, _factory, _rate, concurrency) in QUEUES.items():
            if handler is not None:
                workers.register(name, handler, concurrency=concurrency)
    reports, webhooks = catalog.queue("generate-report"), catalog.queue("deliver-webhook")
    try:  # a job scheduler and a rate limit, so the dashboard shows both
        reports.upsert_job_scheduler("hourly-summary", every=45, name="summary",
                                     data={"report": "hourly-summary", "format": "pdf"},
                                     opts={"removeOnComplete": KEEP_COMPLETED, "removeOnFail": KEEP_FAILED})
        webhooks.set_global_rate_limit(2, 1)  # the partner accepts two deliveries a second
    except RedisError as exc:
        log.warning("demo: could not set up the scheduler and rate limit: %s", exc)
    producer = Producer(catalog, rate)
    producer.start()
    log.info("demo: producing about %.1f jobs/s into %s (prefix %r)", rate, ", ".join(QUEUES), catalog.prefix)
    return producer


def describe() -> str:
    """One line per demo queue, for the start-up log."""
    return json.dumps({n: ("no worker" if h is None else f"{c} at a time") for n, (h, _f, _r, c) in QUEUES.items()})
