"""Shared by the interop tests: child processes that speak JSON lines, bounded waits, records.

Long-running children (Node, PyPI bullmq and Bullpen workers) print JSON lines on stdout
(``{"ready":true}``, ``{"done":...}``), read by a thread, and append one JSON line per job they
run to a file. The ``spawn`` fixture stops every child at teardown (SIGTERM, wait, SIGKILL), so
none outlives its test. Waits poll a condition against a deadline (:func:`wait_until`).
"""

from __future__ import annotations

import json
import queue as stdqueue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

T = TypeVar("T")


def now_ms() -> float:
    return time.time() * 1000


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.01) -> T:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_records(*paths: Path) -> list[dict[str, Any]]:
    """The JSON lines the workers appended (one per handler call), file by file. A last line
    still being written (no newline yet) is left for the next read."""
    records: list[dict[str, Any]] = []
    for path in paths:
        if path.exists():
            complete = path.read_text().rpartition("\n")[0]
            records += [json.loads(line) for line in complete.splitlines() if line.strip()]
    return records


def blocked_on_marker(r: redis.Redis) -> bool:
    """True while some client (an idle BullMQ worker) sits in BZPOPMIN, i.e. the marker is empty."""
    return any(c.get("cmd") == "bzpopmin" and "b" in c.get("flags", "") for c in r.client_list())


class Child:
    """A long-running child process whose stdout is JSON lines (read by a thread)."""

    def __init__(self, argv: list[str], name: str, log_dir: Path) -> None:
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - open while the child lives
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, bufsize=1)
        self.lines: stdqueue.Queue[dict[str, Any] | None] = stdqueue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"text": line.rstrip()})
        self.lines.put(None)

    def stderr_tail(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()[-2000:]

    def expect(self, key: str, timeout: float = 20) -> dict[str, Any]:
        """The next stdout line that has ``key``; fails on an error line, exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no {key!r} line within {timeout}s\n{self.stderr_tail()}")
            try:
                msg = self.lines.get(timeout=remaining)
            except stdqueue.Empty:
                continue
            if msg is None:
                raise AssertionError(f"{self.name} exited ({self.proc.poll()}) before a {key!r} line\n"
                                     f"{self.stderr_tail()}")
            if "error" in msg:
                raise AssertionError(f"{self.name}: {msg['error']}\n{self.stderr_tail()}")
            if key in msg:
                return msg

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 10) -> int:
        """Wait for the exit (SIGKILL after ``timeout``); returns the exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(2)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()
        if not self._stderr.closed:
            self._stderr.close()
        return self.proc.returncode

    def stop(self, timeout: float = 10) -> int:
        self.terminate()
        return self.wait(timeout)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[list[str], str], Child]]:
    """Start children; every one still running is terminated (then killed) at teardown."""
    children: list[Child] = []

    def start(argv: list[str], name: str) -> Child:
        child = Child(argv, name, tmp_path)
        children.append(child)
        return child

    yield start
    for child in children:
        child.terminate()
    for child in children:  # also for children that exited by themselves: wait() closes their pipes
        child.wait(5)
