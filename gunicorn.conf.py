"""gunicorn settings for ``gunicorn 'app:create_app()'``, read from the working directory.

gunicorn loads ``./gunicorn.conf.py`` by itself when started from the repository root (no
``-c`` needed). ``GUNICORN_CMD_ARGS`` and command-line flags override everything here, e.g.
``gunicorn -b 0.0.0.0:8000 --threads 32 'app:create_app()'``; ``-c /dev/null`` ignores this
file. What it sets, and why:

* **One process, 16 threads** (``gthread``). A slow or stalled client ties up one thread,
  never the process, so ``/healthz`` and the polling tabs keep being answered. One process
  because Flask signs the session (which holds the CSRF token) with
  ``DASHBOARD_SECRET_KEY``, random per process when unset: with several processes and no
  shared key, a form rendered by one fails the CSRF check in another. To run several, set
  ``DASHBOARD_SECRET_KEY`` to the same secret everywhere and pass ``-w N``.
  ``WEB_CONCURRENCY`` (set by some platforms) is ignored for the same reason.
* **A stalled request is cut off after ``timeout`` seconds** (``pre_request`` below):
  gthread reads a request body in its thread with no time limit, so a client that sends
  ``Content-Length: 1000000`` and three bytes would hold that thread for as long as it
  keeps the connection open. Its socket now gives up after ``timeout`` seconds (reading
  the body; writing the answer as a whole), the request ends with 400 and the thread is
  free. ``--timeout`` changes both this and gunicorn's own worker heartbeat timeout.
* **Keep-alive 5 s**, longer than the default 3 s poll, so each tab polls over one
  connection (idle connections wait in gunicorn's poller, not in a thread). Behind a load
  balancer, make it longer than the balancer's idle timeout (``--keep-alive 75``).
* Not set, so gunicorn's defaults apply: the bind address (``127.0.0.1:8000``, or
  ``0.0.0.0:$PORT`` when ``PORT`` is set; ``-b`` replaces it), the request line and header
  limits (4094 bytes, 100 fields of 8190 bytes), and the control socket.

This file reads no environment variable and none of Bullpen's settings
(``dashboard/config.py`` owns those); it holds gunicorn settings and one hook.
"""

from __future__ import annotations

from typing import Any

worker_class = "gthread"
workers = 1  # see above: more processes need a shared DASHBOARD_SECRET_KEY
threads = 16  # requests in progress at once, stalled ones included
timeout = 30  # seconds; also bounds a stalled request's socket I/O (pre_request)
graceful_timeout = 30  # on SIGTERM: requests and embedded workers' jobs get this long to finish
keepalive = 5  # seconds an idle connection is kept for the next poll


def pre_request(worker: Any, req: Any) -> None:
    """Give the request's socket a timeout of ``timeout`` seconds (0 leaves it blocking).

    gunicorn resets the socket to blocking before each request on a connection, so this
    applies to the body and the answer of this request only.
    """
    worker.log.debug("%s %s", req.method, req.path)  # what gunicorn's default hook does
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if worker.cfg.timeout and sock is not None:
        sock.settimeout(worker.cfg.timeout)


def on_starting(server: Any) -> None:
    """Remind whoever starts several processes that they need one shared secret key."""
    if server.cfg.workers > 1:
        server.log.warning("%d worker processes: give them all the same DASHBOARD_SECRET_KEY, or forms "
                           "rendered by one process fail the CSRF check in another", server.cfg.workers)
