#!/usr/bin/env python3
"""Serving benchmark: 50 polling tabs and stalled clients, gunicorn.conf.py against gunicorn's defaults.

    python bench/serving.py            # full run (~5 min); writes results/serving.md
    python bench/serving.py --quick    # smoke run (~2.5 min), less polling; writes .work/serving-quick.md

What it does:
  * starts its own redis-server (dashboard.redis_server.EmbeddedRedis: free port, 127.0.0.1, no
    persistence) and stops it at the end; it never talks to any other Redis;
  * seeds four queues under the default prefix with Queue.add_bulk (7,500 waiting jobs in all);
  * serves the app twice at once, each on a free loopback port, REDIS_URL = that server:
    "new" = ``gunicorn 'app:create_app()'`` from the repo root, so gunicorn reads gunicorn.conf.py;
    "old" = the same with ``-c /dev/null``: gunicorn's defaults (one sync worker), as the README
    served it before gunicorn.conf.py existed;
  * (a) tabs: 50 threads, each a browser tab with one keep-alive connection: it loads the
    overview page once (for the session cookie), then every 3 s (the default poll interval)
    requests the overview fragment (``GET /``, ``HX-Request: true``) and its queue page's fragment
    (``/queues/<q>?state=waiting&page=1&per=20``), as htmx sends them. *staggered*: the tabs'
    polls spread evenly over the 3 s (60 s in all); *lockstep*: all tabs poll at the same instant
    (30 s in all). The two settings take turns in 3 rounds. A late request is sent as soon as the
    previous one is done, so an overloaded server shows up as latency. Latency is client-side
    wall time from sending the request to the last byte, a new TCP connection included when the
    server closed the last one (the sync worker closes every one);
  * (b) stalled clients: N clients each send a POST announcing ``Content-Length: 1000000`` and 3
    bytes of a multipart body, then wait; meanwhile ``/healthz`` is probed back to back (50 ms
    apart, fresh connection each, 45 s client timeout) for 5 s, the probe in flight finishing;
  * prints the tables and writes them (markdown) to results/serving.md.
Only the standard library, redis-py, gunicorn (as a subprocess) and the runtime are used. The
client threads share the machine's CPUs with gunicorn and Redis.
"""
from __future__ import annotations

import argparse
import http.client
import math
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/dashboard.py would shadow the runtime package "dashboard": the repo root goes first.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT, HERE)]

from dashboard.queue import Queue  # noqa: E402
from dashboard.redis_server import EmbeddedRedis, free_port  # noqa: E402

WORK = HERE / ".work"
QUEUES = {"send-email": 4_000, "resize-image": 2_000, "message-notifications": 1_000, "reports": 500}
TABS = 50
POLL_S = 3.0  # DASHBOARD_POLL_SECONDS' default
TARGET_P99_MS = 100
ROUNDS = 3
SETTINGS = {  # label -> (description, extra gunicorn arguments, stalled-client counts to try)
    "new": ("gunicorn.conf.py: gthread, 1 process x 16 threads", [], (0, 1, 8, 16)),
    "old": ("gunicorn defaults (`-c /dev/null`): 1 sync worker", ["-c", "/dev/null"], (0, 1)),
}
STALLED_POST = (b"POST /rescan HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: multipart/form-data; boundary=bullpen\r\n"
                b"Content-Length: 1000000\r\n\r\n--b")
RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Server:
    """``gunicorn [args] 'app:create_app()'`` from the repo root on a free loopback port."""

    def __init__(self, redis_url: str, label: str, args: list[str]) -> None:
        self.port = free_port()
        self.log = WORK / f"serving-{label}.log"
        WORK.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DASHBOARD_") and k not in ("REDIS_URL", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY",
                                                               "PORT")}
        env.update(REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
        self.cmd = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}",
                    "--no-control-socket",  # gunicorn 27's default control socket is one shared path under $HOME
                    *args, "app:create_app()"]
        self._logf = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=self._logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode}; see {self.log}")
            try:
                if healthz(self.port, 5) is not None:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer /healthz within 60 s; see {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()


def healthz(port: int, timeout: float) -> float | None:
    """Milliseconds for one ``GET /healthz`` on a new connection; None unless it answered 200."""
    t = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        return (time.perf_counter() - t) * 1000 if resp.status == 200 else None
    finally:
        conn.close()


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else math.nan


@dataclass
class Tab:
    """One browser tab: a keep-alive connection, a session cookie and htmx's request headers."""

    port: int
    queue: str
    first_poll: float
    until: float
    lat: dict[str, list[float]] = field(default_factory=lambda: {"overview": [], "queue": []})
    errors: list[str] = field(default_factory=list)
    connections: int = 0
    retries: int = 0
    cookie: str = ""
    conn: http.client.HTTPConnection | None = None

    def _send(self, path: str, headers: dict[str, str]) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if self.conn.sock is None:
            self.connections += 1  # http.client connects inside request(): timed with it
        self.conn.request("GET", path, headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        cookie = resp.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        if resp.will_close:
            self.conn.close()
        return resp.status

    def get(self, path: str, target: str | None) -> tuple[int, float]:
        origin = f"http://127.0.0.1:{self.port}"
        h = {"User-Agent": "bullpen-bench/1", "Accept-Language": "en", "Sec-Fetch-Site": "same-origin"}
        if self.cookie:
            h["Cookie"] = self.cookie
        if target is None:
            h.update({"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
        else:
            h.update({"Accept": "*/*", "HX-Request": "true", "HX-Target": target, "HX-Trigger": target,
                      "HX-Current-URL": origin + path, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"})
        t = time.perf_counter()
        reused = self.conn is not None and self.conn.sock is not None
        try:
            status = self._send(path, h)
        except RETRYABLE:  # the server closed a kept-alive connection as we sent: browsers retry once
            if not reused or self.conn is None:
                raise
            self.conn.close()
            self.retries += 1
            status = self._send(path, h)
        return status, (time.perf_counter() - t) * 1000

    def run(self) -> None:
        polls = [("/", "summary", "overview"),
                 (f"/queues/{self.queue}?state=waiting&page=1&per=20", "queue", "queue")]
        try:
            self.get("/", None)  # the page load that gives the tab its session cookie (not counted)
        except OSError as exc:
            self.errors.append(f"page load: {exc!r}")
        due = self.first_poll
        while due < self.until:
            time.sleep(max(0.0, due - time.monotonic()))
            for path, target, kind in polls:
                try:
                    status, ms = self.get(path, target)
                except OSError as exc:
                    self.errors.append(repr(exc))
                    if self.conn is not None:
                        self.conn.close()
                    continue
                if status != 200:
                    self.errors.append(f"HTTP {status}")
                self.lat[kind].append(ms)
            due += POLL_S
        if self.conn is not None:
            self.conn.close()


@dataclass
class TabsResult:
    lat: dict[str, list[float]]  # "overview" / "queue" -> milliseconds
    errors: list[str]
    stuck: int  # tab threads still running at the end
    connections: int
    retries: int
    round_p99: list[float] = field(default_factory=list)  # p99 of each round, when rounds are merged

    def merge(self, other: TabsResult) -> None:
        """Add another round's results to these."""
        if not self.round_p99:
            self.round_p99.append(pct(self.lat["overview"] + self.lat["queue"], 99))
        self.round_p99.append(pct(other.lat["overview"] + other.lat["queue"], 99))
        for kind, values in other.lat.items():
            self.lat[kind] += values
        self.errors += other.errors
        self.stuck += other.stuck
        self.connections += other.connections
        self.retries += other.retries


@dataclass
class StalledResult:
    n: int
    lat: list[float]  # /healthz milliseconds
    failed: int
    answered: int  # stalled clients that got an answer (or were closed) during the probes


def run_tabs(port: int, seconds: float, stagger: bool = True) -> TabsResult:
    """(a): TABS tabs polling for ``seconds``; latency lists and counts."""
    start = time.monotonic() + 1.0
    names = list(QUEUES)
    tabs = [Tab(port, names[i % len(names)], start + (POLL_S * i / TABS if stagger else 0), start + seconds)
            for i in range(TABS)]
    threads = [threading.Thread(target=tab.run, daemon=True) for tab in tabs]
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 120)
    stuck = sum(th.is_alive() for th in threads)
    lat = {kind: [ms for tab in tabs for ms in tab.lat[kind]] for kind in ("overview", "queue")}
    return TabsResult(lat=lat, errors=[e for tab in tabs for e in tab.errors], stuck=stuck,
                      connections=sum(tab.connections for tab in tabs), retries=sum(tab.retries for tab in tabs))


def run_stalled(port: int, n: int, window: float = 5.0) -> StalledResult:
    """(b): ``n`` stalled clients connected while /healthz is probed for ``window`` seconds."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(STALLED_POST)
        socks.append(s)
    time.sleep(0.5)  # let gunicorn hand them to its threads (or its one worker)
    lat: list[float] = []
    failed = 0
    end = time.monotonic() + window
    while time.monotonic() < end:
        try:
            ms = healthz(port, 45)
        except OSError:
            ms = None
        if ms is None:
            failed += 1
        else:
            lat.append(ms)
        time.sleep(0.05)
    answered = 0
    for s in socks:
        s.setblocking(False)
        try:
            s.recv(64)  # an answer, or b"" when the server closed the connection
            answered += 1
        except BlockingIOError:
            pass  # still waiting for an answer
        except OSError:
            answered += 1  # reset: the server gave up on it
        s.close()
    return StalledResult(n=n, lat=lat, failed=failed, answered=answered)


def seed(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as r:
        for name, n in QUEUES.items():
            Queue(name, connection=r).add_bulk(("job", {"i": i, "to": f"user{i}@example.com"}, {}) for i in range(n))


def report(meta: dict[str, str], tabs: dict[str, dict[str, TabsResult]],
           stalled: dict[str, list[StalledResult]]) -> str:
    out = [f"# Serving: {TABS} polling tabs and stalled clients", "",
           f"`python bench/serving.py{meta['argv']}`, {meta['date']}, {meta['machine']}, load average "
           f"{meta['load']}; {meta['versions']}. {sum(QUEUES.values()):,} waiting jobs in {len(QUEUES)} queues. "
           "Client-side milliseconds; the client threads run on the same machine.", "",
           f"## (a) {TABS} tabs, each polling the overview fragment and a queue page fragment every {POLL_S:g} s", "",
           f"Target: p99 <= {TARGET_P99_MS} ms. *staggered*: the tabs' polls spread evenly over each {POLL_S:g} s "
           f"({meta['seconds']} s in all); *lockstep*: all {TABS} tabs poll at the same instant, the worst case "
           f"({meta['lockstep_seconds']} s in all). Both settings were up at once and took turns, in {ROUNDS} rounds; "
           "p99 is over all rounds, the bracket gives each round's.", "",
           "| setting | polls | requests | errors | p50 ms | p95 ms | p99 ms [rounds] | max ms | p99 overview "
           "| p99 queue page | TCP connections |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, patterns in tabs.items():
        for pattern, res in patterns.items():
            both = res.lat["overview"] + res.lat["queue"]
            cells = [label, pattern, f"{len(both):,}", str(len(res.errors)), f"{pct(both, 50):.1f}",
                     f"{pct(both, 95):.1f}",
                     f"**{pct(both, 99):.1f}** [{', '.join(f'{v:.0f}' for v in res.round_p99)}]",
                     f"{max(both, default=math.nan):.1f}", f"{pct(res.lat['overview'], 99):.1f}",
                     f"{pct(res.lat['queue'], 99):.1f}", f"{res.connections:,}"]
            out.append("| " + " | ".join(cells) + " |")
    out += ["", "## (b) /healthz while N clients hold a request body open (announced 1,000,000 bytes, sent 3)", "",
            "Probes back to back for 5 s (a probe in flight when the 5 s end still counts).", "",
            "| setting | stalled clients | probes | failed | p50 ms | max ms | stalled clients answered meanwhile |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for label, rows in stalled.items():
        for row in rows:
            out.append(f"| {label} | {row.n} | {len(row.lat) + row.failed} | {row.failed} | {pct(row.lat, 50):.1f} | "
                       f"{max(row.lat, default=math.nan):.1f} | {row.answered} of {row.n} |")
    out += ["", "Settings:", ""] + [f"* **{label}**: {desc}" for label, (desc, _, _) in SETTINGS.items()]
    for label, patterns in tabs.items():
        for pattern, res in patterns.items():
            if res.errors or res.stuck or res.retries:
                out += ["", f"{label}, {pattern}: first errors {res.errors[:5]}, {res.stuck} tabs still "
                            f"running at the end, {res.retries} requests retried on a closed keep-alive connection"]
    return "\n".join(out) + "\n"


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="15 s of polling; writes .work/serving-quick.md")
    args = parser.parse_args()
    seconds, lockstep_seconds = (15, 9) if args.quick else (60, 30)
    load = [loadavg()]
    tabs: dict[str, dict[str, TabsResult]] = {label: {} for label in SETTINGS}
    stalled: dict[str, list[StalledResult]] = {label: [] for label in SETTINGS}
    with EmbeddedRedis() as server:  # free port, persistence off; stopped on exit
        print(f"private redis-server {server.version} on port {server.port}", flush=True)
        seed(server.url)
        apps: dict[str, Server] = {}
        try:
            for label, (desc, extra, _) in SETTINGS.items():
                apps[label] = Server(server.url, label, extra)
                print(f"{label}: {desc}, port {apps[label].port}", flush=True)
            # (a) in ROUNDS rounds, the settings taking turns (first one rotating), so that a change
            # in the machine's load hits both; the idle server meanwhile only wakes once a second.
            labels = list(SETTINGS)
            for r in range(ROUNDS):
                for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                    for pattern, stagger, secs in (("staggered", True, seconds / ROUNDS),
                                                   ("lockstep", False, lockstep_seconds / ROUNDS)):
                        res = run_tabs(apps[label].port, secs, stagger)
                        load.append(loadavg())
                        both = res.lat["overview"] + res.lat["queue"]
                        print(f"  round {r + 1}, {label}, {pattern}, {secs:.0f} s: {len(both)} requests, "
                              f"p99 {pct(both, 99):.1f} ms, errors {len(res.errors)}", flush=True)
                        if pattern in tabs[label]:
                            tabs[label][pattern].merge(res)
                        else:
                            tabs[label][pattern] = res
            # (b) last: with the old setting a stalled client gets the sync worker killed.
            for label, (_, _, counts) in SETTINGS.items():
                for n in counts:
                    print(f"  {label}: /healthz with {n} stalled clients ...", flush=True)
                    stalled[label].append(run_stalled(apps[label].port, n))
        finally:
            for app in apps.values():
                app.stop()
    load.append(loadavg())
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    libs = ", ".join(f"{p} {version(p)}" for p in ("gunicorn", "flask", "redis"))
    meta = dict(argv=" --quick" if args.quick else "", date=time.strftime("%Y-%m-%d %H:%M"), seconds=str(seconds),
                lockstep_seconds=str(lockstep_seconds),
                machine=f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}",
                load=f"{load[0]:.2f} at the start, {min(load):.2f}-{max(load):.2f} during the run",
                versions=f"Bullpen at {commit or '?'}, {libs}, Redis {server.version}")
    md = report(meta, tabs, stalled)
    out = WORK / "serving-quick.md" if args.quick else HERE / "results" / "serving.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print("\n" + md + f"\nwritten to {out}", flush=True)


if __name__ == "__main__":
    main()
