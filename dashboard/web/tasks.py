"""Bulk actions run in background threads; their progress is shared through Redis.

The web layer starts a :class:`Task` (retry all, promote all, clean, pause all ...) and
answers at once; the page then polls the task's small progress fragment until it is done.
The process running the task writes its progress to a small hash with a TTL after every
batch (:class:`~dashboard.task_store.TaskStore`), so a gunicorn with several workers can answer the poll from
any process. The registry keeps the newest :data:`KEEP` tasks in memory, so memory stays
bounded. This module must not import Flask.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from redis.exceptions import RedisError, ResponseError

from ..task_store import TaskStore

log = logging.getLogger(__name__)

#: Task ids are 16 hex digits (secrets.token_hex(8)).
_TASK_ID = re.compile(r"[0-9a-f]{16}")

#: How many tasks (running or finished) the registry remembers.
KEEP = 100

Progress = Callable[[int], None]

_running = threading.local()


def current_task_id() -> str | None:
    """Inside a task's ``work``: the id of that task (e.g. to name its control record)."""
    task_id: str | None = getattr(_running, "task_id", None)
    return task_id


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


def _fields(task: Task) -> dict[str, str]:
    """A task as the flat strings :class:`~dashboard.task_store.TaskStore` keeps."""
    return {f.name: "" if (v := getattr(task, f.name)) is None else str(int(v) if isinstance(v, bool) else v)
            for f in fields(Task) if not f.name.startswith("_")}


def _from_fields(task_id: str, raw: dict[str, str]) -> Task:
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
        if task is None and self.store is not None and _TASK_ID.fullmatch(task_id):
            try:
                raw = self.store.load(task_id)
                task = _from_fields(task_id, raw) if raw else None
            except (ResponseError, ValueError) as exc:  # a record of another type or shape: say so
                task = Task(id=task_id, queue="", label="Unknown task", finished=True,
                            error=f"its progress record cannot be read ({exc})")
                task._done.set()
        return task

    def running(self, queue: str, label: str) -> Task | None:
        """The unfinished task with this queue and label, if any (double clicks reuse it)."""
        with self._lock:
            return next((t for t in self._tasks.values()
                         if t.queue == queue and t.label == label and not t.finished), None)

    def start(self, queue: str, label: str, expected: int, work: Callable[[Progress], int],
              on_done: Callable[[Task], None] | None = None) -> Task:
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
        thread = threading.Thread(target=self._run, args=(task, work, on_done), name=f"dashboard-task-{task.id}",
                                  daemon=True)
        thread.start()
        return task

    def _save(self, task: Task) -> None:
        if self.store is None:
            return
        try:
            self.store.save(task.id, _fields(task))
        except RedisError as exc:  # progress is a courtesy: the task itself goes on
            log.warning("task=%s: could not record progress: %s", task.id, exc)

    def _run(self, task: Task, work: Callable[[Progress], int], on_done: Callable[[Task], None] | None) -> None:
        def progress(count: int) -> None:
            task.done = count
            self._save(task)

        self._save(task)
        _running.task_id = task.id
        log.info("queue=%s task=%s %s: started (about %d jobs)", task.queue, task.id, task.label, task.expected)
        try:
            task.done = work(progress)
        except Exception as exc:
            log.exception("queue=%s task=%s %s failed", task.queue, task.id, task.label)
            # an exception meant for the user (a re-drive's brake, a cancel) is shown as its message
            task.error = str(exc) if getattr(exc, "for_user", False) else f"{type(exc).__name__}: {exc}"
        finally:
            task.ended = time.time()
            task.finished = True
            self._save(task)
            task._done.set()
        log.info("queue=%s task=%s %s: %d jobs in %.0f ms", task.queue, task.id, task.label, task.done,
                 task.seconds * 1000)
        if on_done is not None:
            try:
                on_done(task)
            except Exception:  # a failing callback must not hide the task's own result
                log.exception("queue=%s task=%s: after-task callback failed", task.queue, task.id)
