"""Keys other tools wrote with the wrong type, and repeated warnings about them.

Our scripts refuse a queue key of the wrong type before changing anything, answering
``WRONGTYPE <key> is a <type>, expected a <type>`` (``lua/_guards.lua``); a job whose own
key is not a hash is skipped, and a lock that is not a string counts as lost. This module
recognizes those errors, names which of a job's keys is wrong when a script only returns a
code, and keeps a warning about one key to once a minute (:class:`Throttle`). It changes
nothing in Redis and must not import Flask.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from .clients import Client
from .codec import text
from .keys import Keys

#: Seconds between two warnings about the same key.
ONCE_EVERY = 60.0
#: Most keys a throttle remembers (then it starts over).
REMEMBERED = 10_000


class Throttle:
    """Lets a warning about one subject through at most once every ``every`` seconds."""

    def __init__(self, every: float = ONCE_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, subject: str) -> bool:
        """True when nothing about ``subject`` was let through within the last ``every`` s."""
        now = self.clock()
        with self._lock:
            last = self._last.get(subject)
            if last is not None and now - last < self.every:
                return False
            if len(self._last) >= REMEMBERED:
                self._last.clear()
            self._last[subject] = now
            return True

    def log(self, logger: logging.Logger, level: int, subject: str, msg: str, *args: Any) -> None:
        """``logger.log(level, msg, *args)`` unless ``subject`` was logged within ``every`` s."""
        if self.allow(subject):
            logger.log(level, msg + " (repeats are logged once a minute)", *args)


def is_wrongtype(error: object) -> bool:
    """True for Redis's WRONGTYPE error, or our scripts' (which name the key)."""
    return isinstance(error, redis.ResponseError) and "WRONGTYPE" in str(error)


def job_key_problems(client: Client, keys: Keys, job_ids: Iterable[str | bytes]) -> list[str]:
    """For each job, whether its hash or its lock holds another type than a hash / a string:
    one message per such key naming it. Missing keys are no problem here."""
    ids = list(job_ids)
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.type(keys.job_key(job_id))
        pipe.type(keys.job_key(job_id, ":lock"))
    types = [text(t) for t in pipe.execute()]
    found: list[str] = []
    for n, job_id in enumerate(ids):
        for key, kind, want in ((keys.job_key(job_id), types[2 * n], "hash"),
                                (keys.job_key(job_id, ":lock"), types[2 * n + 1], "string")):
            if kind not in ("none", want):
                found.append(f"{text(key)} is a {kind}, expected a {want}")
    return found
