"""Several reads answered in one round trip: what a page shows besides its list, read at once.

A :class:`Read` is what one read sends (commands queued on a redis-py pipeline) and how their
replies become its value; :func:`gather` sends any number of reads in one pipeline and parses
each. A read whose answer decides what it reads next (a sorted set's members, then their
hashes) returns another ``Read`` from its parse: every such second step goes in one more round
trip, together. So a page of ten small reads costs one or two round trips instead of ten, which
on a busy host is most of their time.

Errors stay with their read: a reply that is an error (another tool's key of the wrong type)
raises only when that read's value is taken (:meth:`Answer.get`); the other reads are answered.
A connection error raises from :func:`gather` itself. This module knows no key and no command:
the modules that own the keys build the reads (``Queue.read_*``, ``AuditLog.read_entries``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from redis.exceptions import ResponseError

T = TypeVar("T")

#: Round trips one gather makes at most (a read's second step, and that one's own next step).
MAX_STEPS = 3


@dataclass(frozen=True)
class Read(Generic[T]):
    """One read: ``send`` queues its commands on a pipeline (``count`` of them); ``parse``
    turns their replies (errors in place) into the value, or into the next ``Read``."""

    send: Callable[[Any], Any]
    count: int
    parse: Callable[[list[Any]], Any]


@dataclass
class Answer(Generic[T]):
    """A read's value, or the Redis error that stopped it (raised by :meth:`get`)."""

    value: Any = None
    error: ResponseError | None = None

    def get(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[no-any-return]


def checked(replies: list[Any]) -> list[Any]:
    """``replies`` with its first error raised: for parses with no use for a partial answer."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def gather(client: Any, reads: Sequence[Read[Any]]) -> list[Answer[Any]]:
    """Each read's answer, in order, in one round trip per step (see the module docstring)."""
    answers: list[Answer[Any]] = [Answer() for _ in reads]
    todo: list[tuple[int, Read[Any]]] = list(enumerate(reads))
    for _ in range(MAX_STEPS):
        if not todo:
            break
        pipe = client.pipeline(transaction=False)
        for _, read in todo:
            read.send(pipe)
        replies = pipe.execute(raise_on_error=False)
        later: list[tuple[int, Read[Any]]] = []
        at = 0
        for i, read in todo:
            mine, at = replies[at:at + read.count], at + read.count
            try:
                value = read.parse(mine)
            except ResponseError as exc:
                answers[i].error = exc
                continue
            if isinstance(value, Read):
                later.append((i, value))
            else:
                answers[i].value = value
        todo = later
    if todo:
        raise RuntimeError(f"a read needed more than {MAX_STEPS} round trips")
    return answers


def constant(value: T) -> Read[T]:
    """A read that sends nothing and answers ``value`` (a kind of queue that has no such thing)."""
    return Read(lambda pipe: None, 0, lambda replies: value)


def one(client: Any, read: Read[T]) -> T:
    """One read on its own (its errors raised)."""
    return gather(client, [read])[0].get()  # type: ignore[no-any-return]
