"""Bulk actions run in background threads; their progress is shared through Redis.

The web layer starts a :class:`Task` (retry all, promote all, clean, pause all ...) and
answers at once; the page then polls the task's small progress fragment until it is done.
The process running the task writes its progress to a small hash with a TTL after every
batch (:class:`TaskStore`), so a gunicorn with several workers can answer the poll from
any process. The registry keeps the newest :data:`KEEP` tasks in memory, so memory stays
bounded. This module must not import Flask.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import redis

from .job import text
from .keys import task_key

log = logging.getLogger(__name__)

#: How many tasks (running or finished) the registry remembers.
KEEP = 100
#: How long a task's progress stays readable in Redis after its last update.
TASK_TTL_SECONDS = 3600

Progress = Callable[[int], None]


@dataclass
class Task:
    """One bulk action: what, on which queue, how far it got."""

    id: str
    queue: str
    label: str
    expected: int = 0
    done: int = 0
    finished: bool = False
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task has finished (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    @property
    def percent(self) -> int:
        """Progress from 0 to 100 (100 once finished, whatever the count)."""
        if self.finished:
            return 100
        if self.expected <= 0:
            return 0
        return min(99, int(self.done * 100 / self.expected))

    @property
    def seconds(self) -> float:
        """Seconds it ran (so far)."""
        return (self.ended or time.time()) - self.started


class TaskStore:
    """Task progress in Redis, so every web process can report a task any of them started."""

    _FIELDS = [f.name for f in fields(Task) if not f.name.startswith("_")]

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def save(self, task: Task) -> None:
        values: dict[Any, Any] = {
            k: "" if v is None else str(int(v) if isinstance(v, bool) else v)
            for k, v in ((name, getattr(task, name)) for name in self._FIELDS)}
        key = task_key(self.prefix, task.id)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(key, mapping=values)
            pipe.expire(key, TASK_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError as exc:  # progress is a courtesy: the task itself goes on
            log.warning("task=%s: could not record progress: %s", task.id, exc)

    def load(self, task_id: str) -> Task | None:
        raw = {text(k): text(v) for k, v in self.client.hgetall(task_key(self.prefix, task_id)).items()}
        if not raw:
            return None
        task = Task(id=task_id, queue=raw.get("queue", ""), label=raw.get("label", ""),
                    expected=int(raw.get("expected") or 0), done=int(raw.get("done") or 0),
                    finished=raw.get("finished") == "1", error=raw.get("error") or None,
                    started=float(raw.get("started") or 0), ended=float(raw["ended"]) if raw.get("ended") else None)
        if task.finished:
            task._done.set()
        return task



class TaskRegistry:
    """Starts tasks in daemon threads and remembers the newest :data:`KEEP` of them; with a
    :class:`TaskStore`, also finds tasks other processes started."""

    def __init__(self, keep: int = KEEP, store: TaskStore | None = None) -> None:
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep
        self.store = store

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None and self.store is not None and task_id.isalnum():
            task = self.store.load(task_id)
        return task

    def running(self, queue: str, label: str) -> Task | None:
        """The unfinished task with this queue and label, if any (double clicks reuse it)."""
        with self._lock:
            return next((t for t in self._tasks.values()
                         if t.queue == queue and t.label == label and not t.finished), None)

    def start(self, queue: str, label: str, expected: int, work: Callable[[Progress], int]) -> Task:
        """Run ``work(progress)`` in a thread unless the same task is already running.

        ``work`` reports the count done so far through ``progress`` and returns the final
        count. Its exceptions are logged and kept in :attr:`Task.error`.
        """
        existing = self.running(queue, label)
        if existing is not None:
            return existing
        task = Task(id=secrets.token_hex(8), queue=queue, label=label, expected=max(expected, 0))
        with self._lock:
            self._tasks[task.id] = task
            while len(self._tasks) > self._keep:
                self._tasks.popitem(last=False)
        thread = threading.Thread(target=self._run, args=(task, work), name=f"dashboard-task-{task.id}", daemon=True)
        thread.start()
        return task

    def _save(self, task: Task) -> None:
        if self.store is not None:
            self.store.save(task)

    def _run(self, task: Task, work: Callable[[Progress], int]) -> None:
        def progress(count: int) -> None:
            task.done = count
            self._save(task)

        self._save(task)

        log.info("queue=%s task=%s %s: started (about %d jobs)", task.queue, task.id, task.label, task.expected)
        try:
            task.done = work(progress)
        except Exception as exc:  # noqa: BLE001 - a task's failure is shown on the page, not lost
            log.exception("queue=%s task=%s %s failed", task.queue, task.id, task.label)
            task.error = f"{type(exc).__name__}: {exc}"
        finally:
            task.ended = time.time()
            task.finished = True
            self._save(task)
            task._done.set()
        log.info("queue=%s task=%s %s: %d jobs in %.0f ms", task.queue, task.id, task.label, task.done,
                 task.seconds * 1000)
