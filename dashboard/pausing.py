"""Pausing a queue, with a reason, who did it, and an optional time to resume by itself.

BullMQ's own pause is the ``paused`` field of the queue's meta hash, and that is what every
worker (ours and Node's) obeys. Bullpen adds a record of why, by whom, since when and until
when at :func:`~dashboard.keys.pause_key`, where BullMQ never looks. An automatic resume
happens exactly once: :meth:`QueuePausing.resume_if_due` resumes and deletes the record in
one script, so whichever dashboard process gets there first does it. Mixed into
:class:`~dashboard.queue.Queue`; this module must not import Flask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from . import gather, scripts
from .codec import text, to_ms
from .gather import Read, checked
from .keys import Keys, pause_key


@dataclass
class PauseInfo:
    """Why a queue is paused. Times are ms since the epoch; ``until`` None: until resumed."""

    reason: str
    by: str
    since: int | None
    until: int | None


class QueuePausing:
    """Pause, resume and the pause record, for :class:`~dashboard.queue.Queue`."""

    client: Any
    keys: Keys
    prefix: str
    name: str
    scripts: scripts.Scripts
    clock: Callable[[], int]

    def pause(self, reason: str = "", *, until: float | timedelta | None = None, by: str = "") -> None:
        """Stop workers (ours and BullMQ's) from taking jobs; jobs stay where they are.
        ``until`` (seconds from now) resumes the queue by itself once, whoever is running."""
        now = self.clock()
        resume_at = now + to_ms(until, "until") if until is not None else 0
        self.scripts.run(scripts.pause_queue(self.keys, self._record, "pause", str(reason)[:500], str(by)[:200],
                                             now, resume_at))

    def resume(self) -> None:
        """Let workers take jobs again (and wake them); forgets the pause record."""
        while self.scripts.run(scripts.pause_queue(self.keys, self._record, "resume")) > 0:
            pass

    def resume_if_due(self) -> bool:
        """Resume the queue when its pause record says it is time; True when this call did it
        (exactly one caller does)."""
        left = self.scripts.run(scripts.pause_queue(self.keys, self._record, "resume-if-due", self.clock()))
        if left < 0:
            return False
        if left > 0:
            self.resume()  # the rest of a legacy paused list
        return True

    def pause_info(self) -> PauseInfo | None:
        """The pause record (who, why, since, until), or None when there is none."""
        return gather.one(self.client, self.read_pause_info())

    def read_pause_info(self) -> Read[PauseInfo | None]:
        """:meth:`pause_info` as a :class:`~dashboard.gather.Read`."""
        return Read(lambda pipe: pipe.hgetall(self._record), 1, lambda replies: _pause_info(checked(replies)[0]))

    @property
    def _record(self) -> str:
        return pause_key(self.prefix, self.name)


def _pause_info(record: dict[Any, Any]) -> PauseInfo | None:
    raw = {text(k): text(v) for k, v in record.items()}
    if not raw:
        return None
    since, until = raw.get("since", ""), raw.get("until", "")
    return PauseInfo(raw.get("reason", ""), raw.get("by", ""), int(since) if since.isdigit() else None,
                     int(until) if until.isdigit() and until != "0" else None)
