#!/usr/bin/env python3
"""Dashboard benchmark: server time of the dashboard's pages and bulk actions on a big queue.

    python bench/dashboard.py            # full run: 200,000 waiting, 50,000 failed, 10,000 completed (~2 min)
    python bench/dashboard.py --quick    # smoke run: a tenth of the jobs, 10 requests per row (~40 s);
                                         # writes bench/.work/dashboard-quick.md, not results/
    python bench/dashboard.py --profile  # plus py-spy profiles of the page requests (results/profile-dashboard.txt)
    python bench/dashboard.py --metrics-only  # only the Prometheus /metrics scrape at 200 queues (~15 s);
                                              # writes bench/.work/dashboard-metrics.md

What it does (see bench/README.md, "Dashboard", for the method and what each number means):
  * starts its own redis-server (dashboard.redis_server.EmbeddedRedis: free port, 127.0.0.1, no
    persistence) and stops it at the end; it never talks to any other Redis;
  * seeds queue ``send-email`` under the default prefix ``bull`` with Node BullMQ 6.7.0 itself
    (node/seed_dashboard.js: addBulk, then a Node Worker completes the oldest 10,000 and fails
    the next 50,000 three times each, then the 200,000 waiting are added), or with ``--seed
    python`` as issue 3's runs did (Queue.add_bulk, then the oldest moved to completed and to
    failed with what our worker leaves: 3 real Python tracebacks from
    dashboard.outcome.run_handler); plus two small queues so the overview has more than one row;
  * serves the app as production does: ``gunicorn -w 1 --threads 2 'app:create_app()'`` on a
    free port of 127.0.0.1, REDIS_URL = the private server, demo and embedded workers off;
  * measures with a keep-alive http.client connection, the headers a browser and htmx send
    (session cookie, CSRF token, Sec-Fetch-*, Origin), client-side wall time per request and
    gunicorn's own request time (%(D)s in its access log, matched by an X-Bench-Seq header);
  * while measuring, a separate probe process PINGs the private Redis every 5 ms (longest
    round trip = longest stall a client saw); SLOWLOG at 10 ms; INFO commandstats per phase;
  * RSS of the gunicorn worker (VmRSS/VmHWM from /proc) after start-up and after the run;
  * then adds CHART_QUEUES (50) queues with 24 h of BullMQ's per-minute metrics and times the
    overview drawing a chart on each row (full page and htmx fragment, uncached: 1.1 s apart);
  * then adds small queues up to METRICS_QUEUES (200) in all, with BullMQ's metrics counters as
    recording workers leave them and a few paused, and times the Prometheus ``GET /metrics`` scrape;
  * writes results/dashboard.md (tables) and results/dashboard.jsonl (raw), prints the tables.
Only the standard library, redis-py, gunicorn (as a subprocess) and the runtime are used here.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The runtime package is also called "dashboard": the repo root must come before bench/
# (which Python puts first, as this script's directory), or `import dashboard` finds this file.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT, HERE)] + [str(HERE)]

import redis  # noqa: E402
import throughput as tp  # noqa: E402  (venv(), med(), fmt(), PYSPY_PIN, WORK)

from dashboard import scripts as bp_scripts  # noqa: E402
from dashboard.job import Job  # noqa: E402
from dashboard.outcome import run_handler  # noqa: E402
from dashboard.queue import Queue  # noqa: E402
from dashboard.redis_server import EmbeddedRedis, free_port  # noqa: E402

WORK = tp.WORK
QUEUE = "send-email"
PREFIX = "bull"
SMALL_QUEUES = {"resize-image": 2_000, "message-notifications": 500}  # name -> waiting jobs
TRACE_LIMIT = 10
ATTEMPTS = 3

# Targets and peer numbers, as issue 3 ("Speed") states them.
TARGET_COUNTS_MS = 5
TARGET_PAGE_MS = 20
TARGET_RETRY_S = 5
TARGET_STALL_MS = 50
TARGET_RSS_MB = 60
TARGET_METRICS_MS = 50  # issue 10: one scrape with 200 queues, server time
METRICS_QUEUES = 200
TARGET_CHARTS_MS = 20  # issue 9: overview with charts for 50 queues, server time
CHART_QUEUES = 50
TARGET_FAILED_MS = 20  # issue 11: the 100-row failed list, server time
PEER_FAILED = "bull-board 23.5 ms (issue 11: its JSON for 100 failed rows)"
PEER_COUNTS = "11–20 ms"
PEER_PAGE = "27–129 ms"
PEER_DEEP = "12 ms (bull-board) / 28.9 s (rq-dashboard)"
PEER_RETRY = "11.7–62.9 s (rq-dashboard: no progress)"
PEER_STALL = "bull-board: Redis blocked 4 s emptying 250k"
PEER_RSS = "44–83 MB"

R: redis.Redis


# ------------------------------------------------------------------------------- seeding
APP_FILES = {  # fake application modules (registered in linecache so tracebacks show source)
    "/srv/app/mailer/tasks.py": '''\
import json
import smtplib
import urllib.request

from mailer.templates import render


class DeliveryError(Exception):
    pass


def send_email(job):
    message = render(job.data["template"], job.data["vars"], job.data.get("locale", "en"))
    relay = job.data.get("relay", "smtp")
    if relay == "api":
        return post_to_provider(job.data["to"], message)
    try:
        with smtplib.SMTP(SMTP_HOST, SMTP_PORT, timeout=2) as smtp:
            smtp.send_message(message, to_addrs=[job.data["to"]])
    except ConnectionRefusedError as exc:
        raise DeliveryError(f"SMTP relay {SMTP_HOST}:{SMTP_PORT} refused the connection; "
                            f"mail to {job.data['to']} not sent") from exc


def post_to_provider(to, message):
    body = json.dumps({"to": to, "subject": message["Subject"], "html": message.get_content()}).encode()
    request = urllib.request.Request(PROVIDER_URL, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=2) as response:
        return json.load(response)
''',
    "/srv/app/mailer/templates.py": '''\
import json
from email.message import EmailMessage

TEMPLATES = {}


def render(name, variables, locale):
    template = load(name, locale)
    message = EmailMessage()
    message["Subject"] = template["subject"].format_map(variables)
    message.set_content(template["body"].format_map(variables))
    return message


def load(name, locale):
    raw = TEMPLATES[(name, locale)]
    return json.loads(raw)
''',
}

TEMPLATE_NAMES = ["password-reset", "welcome", "invoice", "weekly-digest", "order-shipped"]


def make_traces() -> list[tuple[str, str]]:
    """Real tracebacks, as dashboard.outcome.run_handler formats them, for five failure
    kinds. The recipient is ``{TO}`` in the text, replaced per job. Returns (reason, trace)."""
    import linecache
    import types

    closed = free_port()  # nothing listens there: connection refused, at once
    mods = {}
    for path, src in APP_FILES.items():
        linecache.cache[path] = (len(src), None, src.splitlines(True), path)
        name = "mailer." + Path(path).stem
        mod = types.ModuleType(name)
        mod.__file__ = path
        mods[name] = mod
    pkg = types.ModuleType("mailer")
    pkg.__path__ = []
    saved = {k: sys.modules.get(k) for k in ["mailer", *mods]}
    sys.modules["mailer"] = pkg
    sys.modules.update(mods)
    try:
        templates = mods["mailer.templates"]
        exec(compile(APP_FILES["/srv/app/mailer/templates.py"], "/srv/app/mailer/templates.py", "exec"),
             templates.__dict__)
        tasks = mods["mailer.tasks"]
        exec(compile(APP_FILES["/srv/app/mailer/tasks.py"], "/srv/app/mailer/tasks.py", "exec"), tasks.__dict__)
        tasks.__dict__.update(SMTP_HOST="127.0.0.1", SMTP_PORT=closed,
                              PROVIDER_URL=f"http://127.0.0.1:{closed}/v3/mail/send")
        ok = json.dumps({"subject": "Reset your password, {name}", "body": "Hi {name}, follow {link}"})
        templates.TEMPLATES.update({("password-reset", "en"): ok, ("welcome", "en"): ok,
                                    ("invoice", "en"): '{"subject": "Invoice {number}", "body": ',
                                    ("order-shipped", "en"): ok})

        variants = [
            (tasks.send_email, dict(template="password-reset", vars={"name": "Ada", "link": "https://x.test/r/1"})),
            (tasks.send_email, dict(template="welcome", relay="api", vars={"name": "Ada", "link": "x"})),
            (tasks.send_email, dict(template="invoice", vars={"number": 1})),
            (tasks.send_email, dict(template="order-shipped", vars={"name": "Ada"})),  # KeyError 'link'
            (tasks.send_email, dict(template="weekly-digest", vars={})),  # KeyError in TEMPLATES
        ]
        out = []
        for handler, data in variants:
            job = Job(id="1", name="send", data=dict(to="{TO}", **data), opts={"attempts": ATTEMPTS})
            outcome = run_handler(handler, job)
            out.append((outcome.value, outcome.trace))
        return out
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def job_data(i: int) -> dict:
    t = TEMPLATE_NAMES[i % len(TEMPLATE_NAMES)]
    return {"to": f"user{i}@example.com", "template": t, "locale": "en",
            "vars": {"name": f"User {i}", "link": f"https://app.example.com/t/{i:08x}", "account": 10_000 + i % 977},
            "campaign": f"cmp-{i % 37}"}


def seed(n_wait: int, n_failed: int, n_completed: int) -> dict:
    """Add n jobs with Queue.add_bulk (backdated timestamps), then move the oldest to completed
    and failed the way dashboard/lua/move_to_finished.lua leaves them. Returns facts for the report."""
    t0 = time.perf_counter()
    total = n_wait + n_failed + n_completed
    start = int(time.time() * 1000) - 6 * 3600 * 1000
    step = max(1, (4 * 3600 * 1000) // total)  # jobs spread over 4 h, the newest 2 h old
    tick = iter(range(start, start + step * (total + 10), step))
    q = Queue(QUEUE, connection=R, prefix=PREFIX, clock=lambda: next(tick))
    opts = dict(attempts=ATTEMPTS, backoff=("exponential", 2))
    chunk = 20_000
    for first in range(1, total + 1, chunk):
        q.add_bulk(("send", job_data(i), opts) for i in range(first, min(first + chunk, total + 1)))
    added = time.perf_counter() - t0

    traces = make_traces()
    keys = q.keys
    moved = 0
    for target, n in (("completed", n_completed), ("failed", n_failed)):
        left = n
        while left:
            ids = R.rpop(keys.wait, min(1000, left)) or []  # oldest first: ids come out 1, 2, 3 ...
            pipe = R.pipeline(transaction=False)
            for raw in ids:
                jid = raw.decode()
                i = int(jid)
                ts = start + (i - 1) * step
                if target == "completed":
                    processed = ts + 150 + i % 50
                    finished = processed + 80 + i % 400
                    rv = json.dumps({"messageId": f"<{i:08x}.{ts}@mail.example.com>",
                                     "accepted": [f"user{i}@example.com"], "rejected": [],
                                     "ms": finished - processed}, separators=(",", ":"))
                    pipe.hset(keys.job(jid), mapping={"processedOn": processed, "ats": 1, "atm": 1,
                                                      "returnvalue": rv, "finishedOn": finished})
                else:
                    reason, trace = traces[i % len(traces)]
                    to = f"user{i}@example.com"
                    processed = ts + 6000 + i % 50  # third attempt, after 2 s and 4 s of backoff
                    finished = processed + 40 + i % 300
                    stack = [trace.replace("{TO}", to)] * ATTEMPTS
                    pipe.hset(keys.job(jid), mapping={
                        "processedOn": processed, "ats": ATTEMPTS, "atm": ATTEMPTS,
                        "stacktrace": json.dumps(stack[-TRACE_LIMIT:], separators=(",", ":")),
                        "failedReason": reason.replace("{TO}", to), "finishedOn": finished})
                pipe.zadd(keys.state(target), {jid: finished})
            pipe.execute()
            left -= len(ids)
            moved += len(ids)
            if not ids:
                break
    for name, n in SMALL_QUEUES.items():
        Queue(name, connection=R, prefix=PREFIX).add_bulk(("resize" if "image" in name else "notify",
                                                            {"id": i, "w": 640}, {}) for i in range(n))
    counts = q.counts()
    assert (counts.waiting, counts.failed, counts.completed) == (n_wait, n_failed, n_completed), counts
    sample = R.hget(keys.job(str(n_completed + n_failed // 2)), "stacktrace") or b""
    return dict(seed_s=time.perf_counter() - t0, add_s=added, total=total, failed_id=str(n_completed + n_failed // 2),
                trace_bytes=len(sample), used_memory_mb=R.info("memory")["used_memory"] / 2**20,
                reasons=[r for r, _ in traces])


def seed_node(n_wait: int, n_failed: int, n_completed: int) -> dict:
    """The same queue made by Node BullMQ 6.7.0 itself (``node/seed_dashboard.js``): ids
    1 .. completed+failed added with ``addBulk`` and run by a Node ``Worker`` (concurrency 100,
    metrics on) that completes the first ``n_completed`` and fails the next ``n_failed`` three
    times each (BullMQ's own retries and Node stack traces), then the waiting jobs added.
    Returns facts for the report, as :func:`seed` does."""
    t0 = time.perf_counter()
    port = R.connection_pool.connection_kwargs["port"]
    env = dict(os.environ, QB_REDIS_PORT=str(port), NODE_PATH=str(tp.node_modules()))
    done = subprocess.run(["node", str(HERE / "node" / "seed_dashboard.js"), QUEUE, str(n_wait), str(n_failed),
                           str(n_completed)], env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"node seeding failed: {done.stderr[-2000:]}")
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    for name, n in SMALL_QUEUES.items():
        Queue(name, connection=R, prefix=PREFIX).add_bulk(("resize" if "image" in name else "notify",
                                                            {"id": i, "w": 640}, {}) for i in range(n))
    q = Queue(QUEUE, connection=R, prefix=PREFIX)
    counts = q.counts()
    assert (counts.waiting, counts.failed, counts.completed) == (n_wait, n_failed, n_completed), counts
    failed_id = str(n_completed + n_failed // 2)
    sample = R.hget(q.keys.job(failed_id), "stacktrace") or b""
    reasons = sorted({(R.hget(q.keys.job(str(n_completed + i)), "failedReason") or b"").decode()[:60]
                      for i in range(1, 6)})
    return dict(seed_s=time.perf_counter() - t0, add_s=timings["add_s"], work_s=timings["work_s"],
                total=n_wait + n_failed + n_completed, failed_id=failed_id, trace_bytes=len(sample),
                used_memory_mb=R.info("memory")["used_memory"] / 2**20, reasons=reasons, made_by="node")


def seed_queues(total: int) -> int:
    """Add small queues until ``total`` are registered: 5 waiting jobs each, BullMQ's metrics
    counters (``metrics:completed|failed`` count) as a recording worker leaves them, every
    tenth one paused. Returns how many queues there are."""
    have = len(Queue.names(R, PREFIX))
    for i in range(max(0, total - have)):
        q = Queue(f"bench-queue-{i:03d}", connection=R, prefix=PREFIX)
        q.add_bulk(("tick", {"i": j}, {}) for j in range(5))
        pipe = R.pipeline(transaction=False)
        pipe.hset(q.keys.metrics("completed"), mapping={"count": 1000 + i, "prevTS": int(time.time() * 1000),
                                                        "prevCount": 990 + i})
        pipe.hset(q.keys.metrics("failed"), mapping={"count": i, "prevTS": int(time.time() * 1000), "prevCount": i})
        pipe.execute()
        if i % 10 == 0:
            q.pause("bench", by="bench")
    return len(Queue.names(R, PREFIX))


def seed_charts(count: int) -> int:
    """Add ``count`` queues, each with a waiting job or two and an hour of
    BullMQ's per-minute metrics as a recording worker leaves them (``metrics:<status>`` hash
    with ``count``/``prevCount``/``prevTS``, ``metrics:<status>:data`` newest first, one entry
    per minute, 24 h kept = 1,440 entries as BullMQ's ``maxDataPoints`` default): the
    overview then draws a chart on every row. Returns how many queues there are."""
    now = int(time.time() * 1000)
    for i in range(count):
        q = Queue(f"chart-queue-{i:03d}", connection=R, prefix=PREFIX)
        q.add_bulk(("tick", {"i": j}, {}) for j in range(1 + i % 3))
        pipe = R.pipeline(transaction=False)
        for status, scale in (("completed", 40 + i), ("failed", 1 + i % 7)):
            per_minute = [scale + (m * 7 + i) % (scale + 1) for m in range(1440)]
            pipe.hset(q.keys.metrics(status), mapping={"count": sum(per_minute) + scale, "prevCount": sum(per_minute),
                                                       "prevTS": now - 20_000})
            pipe.rpush(q.keys.metrics(status, data=True), *per_minute)
        pipe.execute()
    return len(Queue.names(R, PREFIX))


# ------------------------------------------------------------------------------- probe
def probe_main(port: int, out: str) -> None:
    """PING every ~5 ms; one line per PING: wall time, round trip ms. Ends on SIGTERM."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
    with open(out, "w") as f:
        while not stop:
            wall, t = time.time(), time.perf_counter()
            r.ping()
            f.write(f"{wall:.4f} {(time.perf_counter() - t) * 1000:.3f}\n")
            time.sleep(0.005)


# ------------------------------------------------------------------------------- app + client
class App:
    """gunicorn serving app:create_app() on a free loopback port."""

    def __init__(self, redis_url: str, workdir: Path) -> None:
        self.port = free_port()
        self.access = workdir / "dashboard-access.log"
        self.log = workdir / "dashboard-server.log"
        for p in (self.access, self.log):
            if p.exists():
                p.unlink()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_") and k != "REDIS_URL"}
        env.update(REDIS_URL=redis_url, DASHBOARD_DEMO="0", DASHBOARD_EMBEDDED_WORKERS="0",
                   DASHBOARD_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
        self.cmd = [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "2",
                    "--bind", f"127.0.0.1:{self.port}", "--access-logfile", str(self.access),
                    "--access-logformat", "%({x-bench-seq}i)s %(m)s %(U)s %(s)s %(D)s %(B)s",
                    "--error-logfile", "-",
                    "--no-control-socket",  # gunicorn 27's default socket is one shared path under $HOME
                    "app:create_app()"]
        self._logf = open(self.log, "wb")  # noqa: SIM115
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=self._logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode}; see {self.log}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    c.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer /healthz within 60 s; see {self.log}")
            time.sleep(0.05)
        self.startup_s = time.perf_counter() - t0
        kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        self.worker_pid = int(kids[0])

    def rss(self) -> dict:
        out = {}
        for pid, who in ((self.worker_pid, "worker"), (self.proc.pid, "master")):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[f"{who}_{key}_mb"] = int(value.split()[0]) / 1024
        return out

    def server_times(self) -> dict[int, tuple[str, int, float]]:
        """seq -> (path, status, server ms) from gunicorn's access log."""
        out = {}
        if self.access.exists():
            for line in self.access.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 5 and parts[0].isdigit():
                    out[int(parts[0])] = (parts[2], int(parts[3]), int(parts[4]) / 1000)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()


class Board:
    """bull-board 9.10.2's Express server (node_board/serve.js) on the same Redis, mounted at /board."""

    PINS = {"@bull-board/api": "9.10.2", "@bull-board/express": "9.10.1", "bullmq": "6.7.0", "express": "5.3.0"}

    def __init__(self, redis_port: int, queues: list[str]) -> None:
        modules = self.install()
        self.port = free_port()
        self.log = WORK / "dashboard-board.log"
        self._logf = open(self.log, "w")  # noqa: SIM115
        env = dict(os.environ, QB_REDIS_PORT=str(redis_port), NODE_PATH=str(modules))
        self.proc = subprocess.Popen(["node", str(HERE / "node_board" / "serve.js"), str(self.port), *queues],
                                     env=env, stdout=self._logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "READY" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bull-board did not start; see {self.log}")
            time.sleep(0.05)

    @classmethod
    def install(cls) -> Path:
        dest = WORK / "board"
        modules = dest / "node_modules"
        try:
            if all(json.loads((modules / p / "package.json").read_text())["version"] == v for p, v in cls.PINS.items()):
                return modules
        except (OSError, ValueError, KeyError):
            pass
        dest.mkdir(parents=True, exist_ok=True)
        for f in ("package.json", "package-lock.json"):
            (dest / f).write_bytes((HERE / "node_board" / f).read_bytes())
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=dest, check=True)
        return modules

    def server_times(self) -> dict[int, tuple[str, int, float]]:
        out = {}
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "SEQ" and parts[1].isdigit():
                out[int(parts[1])] = ("/board", 200, float(parts[2]))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()


def board_rows(c: Client, n: int, deep_page: int, per: int) -> None:
    """bull-board's JSON for the same rows as our pages (its own page size: jobsPerPage)."""
    api = f"/board/api/queues?activeQueue={QUEUE}&jobsPerPage={per}"
    for key, label, query in (
            ("board_page1", f"bull-board JSON: waiting page 1, {per} rows", "status=waiting&page=1"),
            ("board_deep", f"bull-board JSON: waiting page {deep_page:,}, {per} rows",
             f"status=waiting&page={deep_page}"),
            ("board_failed1", f"bull-board JSON: failed page 1, {per} rows", "status=failed&page=1")):
        body = c.request("GET", f"{api}&{query}")["body"]
        got = [q for q in json.loads(body)["queues"] if q["name"] == QUEUE][0]["jobs"]
        if len(got) != per:
            raise SystemExit(f"{label}: bull-board answered {len(got)} jobs")
        measure(c, key, label, f"{api}&{query}", n)


class Client:
    """One keep-alive connection, a cookie jar of one, and the headers browsers/htmx send."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.conn: http.client.HTTPConnection | None = None
        self.cookie = ""
        self.last = 0.0
        self.seq = 0
        self.reconnects = 0
        self.page = self.origin + "/"

    def _connection(self) -> http.client.HTTPConnection:
        # gunicorn closes idle keep-alive connections after 2 s: reconnect before that happens
        if self.conn is None or time.monotonic() - self.last > 1.5:
            if self.conn is not None:
                self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.reconnects += 1
        return self.conn

    def request(self, method: str, path: str, *, hx_target: str | None = None, form: dict | None = None,
                csrf: str | None = None) -> dict:
        """One request as the browser sends it: a navigation, or an htmx request swapping #hx_target."""
        self.seq += 1
        h = {"User-Agent": "bullpen-bench/1 (like Chromium)", "Accept-Language": "en",
             "X-Bench-Seq": str(self.seq)}
        if self.cookie:
            h["Cookie"] = self.cookie
        if hx_target is None:
            h.update({"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Site": "same-origin",
                      "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Referer": self.page})
        else:
            h.update({"Accept": "*/*", "HX-Request": "true", "HX-Current-URL": self.page, "HX-Target": hx_target,
                      "HX-Trigger": hx_target, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors",
                      "Sec-Fetch-Dest": "empty", "Referer": self.page})
        body = None
        if method == "POST":
            body = "&".join(f"{k}={v}" for k, v in (form or {}).items()).encode()
            h.update({"Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin})
            if csrf and hx_target is not None:
                h["X-CSRF-Token"] = csrf  # htmx sends it from hx-headers on <body>
        conn = self._connection()
        t = time.perf_counter()
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        ms = (time.perf_counter() - t) * 1000
        self.last = time.monotonic()
        cookie = resp.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            self.conn = None
        if hx_target is None and method == "GET":
            self.page = self.origin + path
        return dict(seq=self.seq, status=resp.status, ms=ms, bytes=len(data), body=data.decode("utf-8", "replace"),
                    trigger=resp.getheader("HX-Trigger"))


# ------------------------------------------------------------------------------- redis stats
def stats() -> tuple[dict, float]:
    info = R.info("commandstats")
    cpu = R.info("cpu")
    return ({k[8:]: (v["calls"], v["usec"]) for k, v in info.items() if k.startswith("cmdstat_")},
            float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]))


def stats_delta(before, after, n: int) -> dict:
    (c0, cpu0), (c1, cpu1) = before, after
    own = ("ping", "info", "config|resetstat", "config|set", "slowlog|get", "slowlog|reset", "config")
    d = {}
    for k in c1:
        calls = c1[k][0] - c0.get(k, (0, 0))[0]
        usec = c1[k][1] - c0.get(k, (0, 0))[1]
        if calls > 0 and k not in own:
            d[k] = (calls, usec)
    top = sorted(d.items(), key=lambda kv: -kv[1][1])[:4]
    return dict(cmds_per_req=sum(v[0] for v in d.values()) / max(n, 1),
                redis_ms_per_req=sum(v[1] for v in d.values()) / 1000 / max(n, 1),
                redis_cpu_ms_per_req=(cpu1 - cpu0) * 1000 / max(n, 1),
                top=[(k, round(c / max(n, 1), 1), round(u / c, 1)) for k, (c, u) in top])


# ------------------------------------------------------------------------------- measuring
PHASES: list[dict] = []  # name, t0, t1 (wall) for the probe attribution
RECORDS: list[dict] = []


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def pause(c: Client, seconds: float, warm: bool) -> None:
    """Wait; with `warm`, keep the server busy meanwhile (GET /healthz every 0.1 s, untimed)."""
    end = time.perf_counter() + seconds
    while warm and time.perf_counter() < end - 0.1:
        c.request("GET", "/healthz")
        time.sleep(0.1)
    time.sleep(max(0.0, end - time.perf_counter()))


def measure(c: Client, key: str, label: str, path: str, n: int, *, hx_target: str | None = None,
            spacing: float = 0.0, warm: bool = False, expect_rows: int | None = None, warmup: int = 3) -> dict:
    """n timed requests after `warmup` untimed ones; `spacing` s between requests (with `warm`,
    filled with untimed /healthz requests so the server is not idle when the timed one comes)."""
    for _ in range(warmup):
        r = c.request("GET", path, hx_target=hx_target)
        if r["status"] not in (200, 286):
            raise SystemExit(f"{label}: GET {path} answered {r['status']}: {r['body'][:500]}")
        if spacing:
            pause(c, spacing, warm)
    R.config_resetstat()
    before = stats()
    t0 = time.time()
    samples = []
    for _ in range(n):
        r = c.request("GET", path, hx_target=hx_target)
        if r["status"] not in (200, 286):
            raise SystemExit(f"{label}: GET {path} answered {r['status']}: {r['body'][:500]}")
        samples.append(r)
        if spacing:
            pause(c, spacing, warm)
    t1 = time.time()
    PHASES.append(dict(name=key, t0=t0, t1=t1))
    rec = dict(kind="http", key=key, label=label, path=path, htmx=hx_target is not None, n=n,
               ms=[round(s["ms"], 3) for s in samples], seqs=[s["seq"] for s in samples],
               bytes=statistics.median(s["bytes"] for s in samples),
               rows=samples[-1]["body"].count('data-job="'),
               redis=stats_delta(before, stats(), n))
    if expect_rows is not None and rec["rows"] != expect_rows:
        raise SystemExit(f"{label}: expected {expect_rows} rows, page has {rec['rows']}")
    RECORDS.append(rec)
    print(f"  {label:<58} median {statistics.median(rec['ms']):7.2f} ms  p95 {pct(rec['ms'], 95):7.2f} ms"
          f"  {rec['bytes'] / 1024:6.0f} KiB  rows {rec['rows']}", flush=True)
    return rec


def bulk(c: Client, key: str, label: str, page: str, action: str, form: dict, expect: int,
         poll: float = 0.1) -> dict:
    """Open `page`, POST the action as htmx does (CSRF header + form field, same-origin), then
    poll the task's progress fragment until it reports done. Time = POST sent -> done seen."""
    r = c.request("GET", page)
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', r["body"])
    if not m:
        raise SystemExit(f"{label}: no CSRF token on {page}")
    token = m.group(1)
    R.config_resetstat()
    before = stats()
    t0w, t0 = time.time(), time.perf_counter()
    post = c.request("POST", action, hx_target="task", form=dict(csrf_token=token, **form), csrf=token)
    if post["status"] != 200:
        raise SystemExit(f"{label}: POST {action} answered {post['status']}: {post['body'][:500]}")
    tid = re.search(r'data-task="([0-9a-f]+)"', post["body"])
    if not tid:
        raise SystemExit(f"{label}: no task id in the answer: {post['body'][:500]}")
    polls = []
    body = post["body"]
    while "done," not in body and "stopped after" not in body:
        if time.perf_counter() - t0 > 600:
            raise SystemExit(f"{label}: not done after 600 s")
        time.sleep(poll)
        r = c.request("GET", f"/tasks/{tid.group(1)}", hx_target="task")
        if r["status"] not in (200, 286):
            raise SystemExit(f"{label}: progress poll answered {r['status']}: {r['body'][:300]}")
        polls.append(r)
        body = r["body"]
    seconds = time.perf_counter() - t0
    t1w = time.time()
    PHASES.append(dict(name=key, t0=t0w, t1=t1w))
    done = re.search(r'task-count">([\d,]+)</span> jobs in ([^.<]+(?:\.\d+)?[^.<]*)\.', body)
    count = int(done.group(1).replace(",", "")) if done else -1
    rec = dict(kind="bulk", key=key, label=label, seconds=round(seconds, 3), count=count, expect=expect,
               task_says=done.group(2).strip() if done else body[-200:], post_ms=round(post["ms"], 2),
               polls=len(polls), poll_ms=[round(p["ms"], 2) for p in polls], seqs=[post["seq"]],
               redis=stats_delta(before, stats(), 1), error="stopped after" in body)
    RECORDS.append(rec)
    print(f"  {label:<58} {seconds:7.2f} s  ({count:,} jobs; task says {rec['task_says']}; "
          f"{len(polls)} progress polls, median {statistics.median(rec['poll_ms'] or [0]):.1f} ms)", flush=True)
    if count != expect:
        print(f"  WARNING: {label}: expected {expect:,} jobs, task reports {count:,}", flush=True)
    return rec


def profile_pages(app: App, c: Client, pages: list[tuple[str, str, str | None, float]], n: int,
                  header: bool = True) -> str:
    """py-spy --gil on the gunicorn worker while it serves n requests of each page (spaced by
    the last item, in seconds: 1.1 lets the overview's 1 s snapshot cache expire)."""
    spy = tp.venv("tools", [tp.PYSPY_PIN]) / "bin" / "py-spy"
    out = ["# py-spy --gil samples of the gunicorn worker (GIL holder only = its Python CPU), "
           f"{n} requests per page (uncached: {max(5, n // 7)}, 1.1 s apart), 1000 Hz: 1 sample = 1 ms",
           f"# {time.strftime('%Y-%m-%d %H:%M')}, {versions()}; data as in dashboard.md", ""] if header else []
    for label, path, target, spacing in pages:
        count = n if not spacing else max(5, n // 7)
        raw = WORK / "profile-dashboard.raw"
        if raw.exists():
            raw.unlink()
        spy_p = subprocess.Popen([str(spy), "record", "--pid", str(app.worker_pid), "--rate", "1000", "--gil",
                                  "--nonblocking", "--format", "raw", "-o", str(raw)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        for _ in range(count):
            c.request("GET", path, hx_target=target)
            time.sleep(spacing)
        spy_p.send_signal(signal.SIGINT)
        spy_p.wait(30)
        if not raw.exists():
            return "py-spy wrote no profile (ptrace not permitted?)\n"
        self_t, incl, total = tp.fold_pyspy(raw)
        total = max(total, 1)
        ms = lambda v, count=count: f"{v / count:5.2f} ms"  # noqa: E731  (1 sample = 1 ms at 1000 Hz)
        out += [f"## {label}: {path}{' (htmx)' if target else ''}: {count} requests, {total / count:.1f} ms of "
                "Python (GIL held) per request", "", "self time (top 15):"]
        out += [f"  {100 * v / total:5.1f}%  {ms(v)}  {k}" for k, v in self_t.most_common(15)]
        out += ["inclusive, project code and templates only (top 25):"]
        ours = [(k, v) for k, v in incl.most_common() if "dashboard/" in k or ".html)" in k or "app.py" in k]
        out += [f"  {100 * v / total:5.1f}%  {ms(v)}  {k}" for k, v in ours[:25]]
        out += ["inclusive, libraries (top 20 below the request entry point):"]
        libs = [(k, v) for k, v in incl.most_common() if (k, v) not in ours and 100 * v / total < 90]
        out += [f"  {100 * v / total:5.1f}%  {ms(v)}  {k}" for k, v in libs[:20]]
        out.append("")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------- report
def fmt(x, digits=1):
    return tp.fmt(x, digits)


def verdict(value, target) -> str:
    return "met" if value <= target else "**missed**"


def probe_max(samples: list[tuple[float, float]], t0: float, t1: float) -> tuple[float, float]:
    xs = [rtt for t, rtt in samples if t0 <= t <= t1]
    return (max(xs), pct(xs, 99)) if xs else (0.0, 0.0)


def report(meta: dict, server: dict[int, tuple[str, int, float]], probe: list[tuple[float, float]],
           slow: list[dict], rss_idle: dict, rss_after: dict, failures: dict | None = None) -> str:
    by = {r["key"]: r for r in RECORDS}

    def srv(rec):
        xs = [server[s][2] for s in rec["seqs"] if s in server]
        return statistics.median(xs) if xs else None

    out = ["# Dashboard speed: Bullpen's web UI on a big queue", "",
           f"Measured {meta['date']} by `python bench/dashboard.py {' '.join(meta['argv'])}`. "
           f"{meta['machine']}; load average (1 min) {meta['load_start']:.2f} at the start, "
           f"{meta['load_end']:.2f} at the end.",
           f"Redis {meta['redis']} (private, no persistence), Python {meta['python']}, {meta['versions']}.",
           f"Data: queue `{QUEUE}` under prefix `{PREFIX}` with {meta['n_wait']:,} waiting, {meta['n_failed']:,} "
           f"failed ({ATTEMPTS} attempts, {ATTEMPTS} stack traces each, {meta['seed']['trace_bytes'] / 1024:.1f} KiB "
           f"of `stacktrace` per job) and {meta['n_completed']:,} completed (with `returnvalue`), "
           + ("made by Node BullMQ 6.7.0 itself (`addBulk`, then a Node `Worker` completing and failing the oldest "
              f"jobs: {meta['seed'].get('work_s', 0):.0f} s; `node/seed_dashboard.js`)"
              if meta['seed'].get('made_by') == "node" else "added with `Queue.add_bulk` and moved to failed and "
              "completed with Python tracebacks written in place (`--seed python`)")
           + ", plus "
           + ", ".join(f"`{k}` ({v:,} waiting)" for k, v in SMALL_QUEUES.items())
           + f"; Redis used {meta['seed']['used_memory_mb']:.0f} MB after seeding ({meta['seed']['seed_s']:.0f} s).",
           f"Server: `{meta['server_cmd']}`, up and answering `/healthz` {meta['startup_s']:.1f} s after launch.",
           f"Client: one keep-alive `http.client` connection on loopback, {meta['n']} timed requests per row after "
           "3 untimed; median and p95 of the client-side time (request sent -> last byte read); "
           "\"server\" = median of gunicorn's own request time (`%(D)s`).", "",
           "## Summary against the targets of issues 3, 9, 10 and 11", "",
           "Targets of issue 3 are client medians; those marked \"server\" (issues 9, 10, 11) are gunicorn's "
           "median. \"Redis stall\" is the probe's longest PING round trip while the row was measured.", "",
           "| measurement | median | p95 | server | Redis stall | target | | peers |",
           "|---|---|---|---|---|---|---|---|"]

    def stall(key):
        phase = next((p for p in PHASES if p["name"] == key), None)
        return f"{probe_max(probe, phase['t0'], phase['t1'])[0]:.1f} ms" if phase else "–"

    def http_row(key, target, peers, label=None, on_server=False):
        rec = by.get(key)
        if rec is None:
            return
        m = statistics.median(rec["ms"])
        s = srv(rec)
        tgt, vd = "–", ""
        if target:
            tgt = f"≤ {target} ms" + (" server" if on_server else "")
            vd = verdict(s if on_server and s is not None else m, target)
        out.append(f"| {label or rec['label']} | {fmt(m, 2)} ms | {fmt(pct(rec['ms'], 95), 2)} ms "
                   f"| {fmt(s, 2) if s is not None else 'n/a'} ms | {stall(key)} | {tgt} | {vd} | {peers} |")

    http_row("counts_warm", TARGET_COUNTS_MS, PEER_COUNTS)
    http_row("counts_idle", TARGET_COUNTS_MS, PEER_COUNTS)
    http_row("counts_poll", TARGET_COUNTS_MS, PEER_COUNTS)
    http_row("page1", TARGET_PAGE_MS, PEER_PAGE)
    http_row("page1_hx", TARGET_PAGE_MS, PEER_PAGE)
    http_row("deep", TARGET_PAGE_MS, PEER_DEEP)
    http_row("deep_hx", TARGET_PAGE_MS, PEER_DEEP)
    http_row("failed1", TARGET_FAILED_MS, f"{PEER_FAILED}; issue 3: {PEER_PAGE}", on_server=True)
    http_row("job", TARGET_PAGE_MS, "–")
    http_row("charts_page", TARGET_CHARTS_MS, "–", on_server=True)
    http_row("charts_hx", TARGET_CHARTS_MS, "–", on_server=True)
    http_row("charts_poll", TARGET_CHARTS_MS, "–", on_server=True)
    http_row("metrics", TARGET_METRICS_MS, "–", on_server=True)
    for key in ("board_page1", "board_deep", "board_failed1"):
        http_row(key, None, "same data, same run (`node_board/serve.js`)")
    http_row("healthz", None, "–")
    http_row("healthz_idle", None, "–")
    for key, target, peers in (("retry", TARGET_RETRY_S, PEER_RETRY), ("clean", None, "–")):
        rec = by.get(key)
        if rec is None:
            continue
        tgt = f"≤ {target} s" if target else "(none; same bound as retry-all)"
        vd = verdict(rec["seconds"], target) if target else ("met" if rec["seconds"] <= TARGET_RETRY_S else "slow")
        out.append(f"| {rec['label']} | {rec['seconds']:.2f} s | – | task says {rec['task_says']} | {stall(key)} "
                   f"| {tgt} | {vd} | {peers} |")
    # Stalls while a row was measured; between rows the bench itself seeds queues or runs py-spy.
    def measured(t: float, slack: float = 0.0) -> bool:
        return any(p["t0"] - slack <= t <= p["t1"] + slack for p in PHASES)

    during = [(t, rtt) for t, rtt in probe if measured(t)]
    between = max((rtt for t, rtt in probe if not measured(t)), default=0.0)
    overall = max((rtt for _, rtt in during), default=0.0)
    slow_between = [e for e in slow if not measured(e["t"], 1.0)]
    slow = [e for e in slow if measured(e["t"], 1.0)]
    slow_max = max((e["ms"] for e in slow), default=0.0)
    out.append(f"| Longest Redis stall: probe PING every 5 ms, max round trip while rows were measured "
               f"(between rows, while the bench seeded queues: {between:.1f} ms) | {overall:.1f} ms | "
               f"{pct([r for _, r in during], 99) if during else 0:.2f} ms (p99) | {len(during):,} PINGs | – "
               f"| ≤ {TARGET_STALL_MS} ms | {verdict(overall, TARGET_STALL_MS)} | {PEER_STALL} |")
    out.append(f"| Longest Redis stall: SLOWLOG (≥ 10 ms) while rows were measured, longest command "
               f"({len(slow_between)} more between rows) | "
               f"{f'{slow_max:.1f} ms' if slow else 'none logged'} | – | {len(slow)} entries | – "
               f"| ≤ {TARGET_STALL_MS} ms | {verdict(slow_max, TARGET_STALL_MS)} | |")
    idle = rss_idle["worker_VmRSS_mb"]
    out.append(f"| App RSS idle (gunicorn worker, after start-up, before load) | {idle:.1f} MB | – | "
               f"master {rss_idle['master_VmRSS_mb']:.1f} MB | – | ≤ {TARGET_RSS_MB} MB "
               f"| {verdict(idle, TARGET_RSS_MB)} | {PEER_RSS} |")
    out.append(f"| App RSS after the run (peak) | {rss_after['worker_VmRSS_mb']:.1f} MB | – | "
               f"peak {rss_after['worker_VmHWM_mb']:.1f} MB | – | – | | |")
    out.append("")
    pairs = [(ours, theirs) for ours, theirs in (("page1", "board_page1"), ("page1_hx", "board_page1"),
                                                 ("deep", "board_deep"), ("deep_hx", "board_deep"),
                                                 ("failed1", "board_failed1")) if ours in by and theirs in by]
    if pairs:
        out += ["### Against bull-board's JSON for the same rows (issue 11: no page slower)", "",
                "Server time: gunicorn's for our HTML page, bull-board's Express middleware's (arrival to "
                "`finish`) for its JSON; medians.", "",
                "| our page | server | bull-board JSON | server | ours / theirs | |", "|---|---|---|---|---|---|"]
        for ours, theirs in pairs:
            a, b = srv(by[ours]), srv(by[theirs])
            if a is None or b is None:
                continue
            out.append(f"| {by[ours]['label']} | {a:.2f} ms | {by[theirs]['label']} | {b:.2f} ms | {a / b:.2f}× "
                       f"| {'not slower' if a <= b else '**slower**'} |")
        out.append("")
    if failures:
        out += [f"### Failure clusters of {failures['failed']:,} failed jobs, and a throttled re-drive (issue 9)", "",
                "Run by this command as `python bench/failures.py --failed N` on a Redis of its own (load average "
                f"{failures['load']} at its end): the page `/queues/<name>/failures` served in-process (Flask test "
                "client; server time), targets ≤ 1 s the first time and ≤ 50 ms after; a PING every 5 ms from "
                "another process gives the longest Redis stall of each step (target ≤ 50 ms).", "",
                "| measurement | result | longest PING meanwhile |", "|---|---|---|"]
        out += [f"| {label} | {value} | {ping} |" for label, value, ping in failures["rows"]]
        out.append("")

    out += ["## Where the time goes (per request, Redis side)", "",
            "| measurement | request | KiB | rows | Redis cmds/req | Redis ms/req (commandstats) "
            "| top commands: calls/req × µs/call | probe max / p99 during it |",
            "|---|---|---|---|---|---|---|---|"]
    for rec in RECORDS:
        ph = next((p for p in PHASES if p["name"] == rec["key"]), None)
        pm = probe_max(probe, ph["t0"], ph["t1"]) if ph else (0, 0)
        rd = rec["redis"]
        top = ", ".join(f"{k} {c:g} × {u:g}" for k, c, u in rd["top"])
        if rec["kind"] == "http":
            req = f"GET `{rec['path']}`" + (" (htmx)" if rec["htmx"] else "")
            out.append(f"| {rec['label']} | {req} | {rec['bytes'] / 1024:.0f} | {rec['rows']} "
                       f"| {rd['cmds_per_req']:.0f} "
                       f"| {rd['redis_ms_per_req']:.2f} | {top} "
                       f"| {pm[0]:.1f} / {pm[1]:.1f} ms |")
        else:
            out.append(f"| {rec['label']} | POST + {rec['polls']} progress polls (median "
                       f"{statistics.median(rec['poll_ms'] or [0]):.1f} ms, max {max(rec['poll_ms'] or [0]):.1f} ms) "
                       f"| – | – | {rd['cmds_per_req']:,.0f} (whole task) | {rd['redis_ms_per_req']:,.0f} "
                       f"| {top} | {pm[0]:.1f} / {pm[1]:.1f} ms |")
    out.append("")
    if slow:
        groups = defaultdict(list)
        for e in slow:
            groups[e["cmd"]].append(e["ms"])
        out += ["## SLOWLOG (commands that ran ≥ 10 ms inside Redis)", "",
                "| command | entries | longest | median |", "|---|---|---|---|"]
        for cmd, xs in sorted(groups.items(), key=lambda kv: -max(kv[1])):
            out.append(f"| `{cmd}` | {len(xs)} | {max(xs):.1f} ms | {statistics.median(xs):.1f} ms |")
        out.append("")
    else:
        out += ["SLOWLOG: no command ran ≥ 10 ms inside Redis during the measurements.", ""]
    worst = sorted(probe, key=lambda x: -x[1])[:5]
    if worst:
        names = []
        for t, rtt in worst:
            ph = next((p["name"] for p in PHASES if p["t0"] <= t <= p["t1"]), "between phases")
            names.append(f"{rtt:.1f} ms ({ph})")
        out += ["Five longest probe round trips: " + ", ".join(names) + ".", ""]
    out += ["The probe runs in its own process; on this 2-vCPU box its round trip also includes waiting for a "
            "CPU while gunicorn, Redis and the client are busy, so it is an upper bound of what Redis itself "
            "blocked; SLOWLOG is Redis's own measure. Method: `bench/README.md`. Raw data: "
            "`results/dashboard.jsonl`.", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------- main
def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 20,000 waiting / 5,000 failed / 1,000 completed, 10 requests per row")
    ap.add_argument("--waiting", type=int, help="waiting jobs (default 200000; --quick 20000)")
    ap.add_argument("--failed", type=int, help="failed jobs (default 50000; --quick 5000)")
    ap.add_argument("--completed", type=int, help="completed jobs (default 10000; --quick 1000)")
    ap.add_argument("--n", type=int, help="timed requests per row (default 30; --quick 10)")
    ap.add_argument("--deep", type=int, help="offset of the deep page (default: 75%% of waiting = 150,000)")
    ap.add_argument("--profile", action="store_true", help="also profile the page requests with py-spy "
                    "(results/profile-dashboard.txt; before retry-all, outside the timed rows)")
    ap.add_argument("--out", help="where dashboard.md/.jsonl go (default results/; --quick: bench/.work/)")
    ap.add_argument("--seed", choices=("node", "python"), default="node",
                    help="who makes the big queue: Node BullMQ 6.7.0 itself, adding and running the jobs (default; "
                         "issue 11), or Queue.add_bulk plus Python tracebacks written in place (issue 3's runs)")
    ap.add_argument("--no-board", dest="board", action="store_false",
                    help="skip the bull-board rows (its JSON for the same pages, node_board/; npm ci on first use)")
    ap.add_argument("--charts", type=int, default=CHART_QUEUES,
                    help=f"queues with an hour of metrics for the overview-with-charts rows (default {CHART_QUEUES})")
    ap.add_argument("--no-failures", dest="failures", action="store_false",
                    help="skip the failure clusters and re-drive rows (bench/failures.py)")
    ap.add_argument("--metrics-only", action="store_true", help="only time the /metrics scrape at "
                    f"{METRICS_QUEUES} queues (writes bench/.work/dashboard-metrics.md)")
    ap.add_argument("--probe", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    q = args.quick
    args.waiting = args.waiting or (20_000 if q else 200_000)
    args.failed = args.failed or (5_000 if q else 50_000)
    args.completed = args.completed or (1_000 if q else 10_000)
    args.n = args.n or (10 if q else 30)
    args.out = args.out or str(WORK if q else HERE / "results")
    args.deep = args.deep if args.deep is not None else (args.waiting * 3 // 4) // 100 * 100
    return args


def versions() -> str:
    from importlib.metadata import version
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "app.py", "dashboard", "templates"],
                           capture_output=True, text=True).stdout.strip()
    libs = ", ".join(f"{p} {version(p)}" for p in ("flask", "gunicorn", "redis", "hiredis", "jinja2"))
    return f"Bullpen at {commit or '?'}{' + uncommitted app changes' if dirty else ''}; {libs}"


def main() -> None:
    global R
    args = parse_args()
    if args.probe:
        probe_main(int(args.probe[0]), args.probe[1])
        return
    if args.metrics_only:
        metrics_main(args)
        return
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    load_start = float(Path("/proc/loadavg").read_text().split()[0])
    with EmbeddedRedis() as server:  # free port, persistence off; stopped on exit
        print(f"private redis-server {server.version} on port {server.port} (pid {server.pid})", flush=True)
        R = redis.Redis(host="127.0.0.1", port=server.port)
        app = probe_p = None
        try:
            print(f"seeding {args.waiting:,} waiting, {args.failed:,} failed, {args.completed:,} completed "
                  f"in {QUEUE!r} ...", flush=True)
            seeded = (seed_node if args.seed == "node" else seed)(args.waiting, args.failed, args.completed)
            print(f"  seeded in {seeded['seed_s']:.1f} s (add_bulk {seeded['add_s']:.1f} s); Redis uses "
                  f"{seeded['used_memory_mb']:.0f} MB; failed reasons: {seeded['reasons']}", flush=True)

            app = App(server.url, WORK)
            print(f"gunicorn on 127.0.0.1:{app.port} (master {app.proc.pid}, worker {app.worker_pid}), "
                  f"healthz after {app.startup_s:.1f} s", flush=True)
            time.sleep(1.0)
            rss_idle = app.rss()
            print(f"  idle RSS: worker {rss_idle['worker_VmRSS_mb']:.1f} MB, "
                  f"master {rss_idle['master_VmRSS_mb']:.1f} MB", flush=True)

            R.config_set("slowlog-log-slower-than", 10_000)
            R.config_set("slowlog-max-len", 10_000)
            R.slowlog_reset()
            probe_file = WORK / "dashboard-probe.txt"
            probe_p = subprocess.Popen([sys.executable, __file__, "--probe", str(server.port), str(probe_file)])
            time.sleep(0.5)

            c = Client(app.port)
            n = args.n
            per = 100
            deep_page = args.deep // per + 1
            q = f"/queues/{QUEUE}"
            print("measuring (client-side ms per request):", flush=True)
            c.request("GET", "/")  # the overview as a browser opens it: session cookie with the CSRF token
            spaced = max(5, n * 2 // 3)
            measure(c, "counts_warm", "Overview counts fragment, uncached (1.1 s apart, server kept busy)", "/",
                    spaced, hx_target="summary", spacing=1.1, warm=True, warmup=1)
            measure(c, "counts_idle", "Overview counts fragment, uncached, server idle 1.1 s before each", "/",
                    spaced, hx_target="summary", spacing=1.1, warmup=1)
            measure(c, "counts_poll", "Overview counts fragment, back to back (1 s snapshot cache)", "/", n,
                    hx_target="summary")
            measure(c, "healthz", "Reference: GET /healthz back to back", "/healthz", n)
            measure(c, "healthz_idle", "Reference: GET /healthz, server idle 1.1 s before each", "/healthz", spaced,
                    spacing=1.1, warmup=1)
            measure(c, "page1", f"Queue page 1, waiting, {per} rows (full page)", f"{q}?state=waiting&page=1&per={per}",
                    n, expect_rows=per)
            measure(c, "page1_hx", f"Queue page 1, waiting, {per} rows (htmx partial)",
                    f"{q}?state=waiting&page=1&per={per}", n, hx_target="queue", expect_rows=per)
            measure(c, "deep", f"Waiting page at offset {args.deep:,}, {per} rows (full page)",
                    f"{q}?state=waiting&page={deep_page}&per={per}", n, expect_rows=per)
            measure(c, "deep_hx", f"Waiting page at offset {args.deep:,}, {per} rows (htmx partial)",
                    f"{q}?state=waiting&page={deep_page}&per={per}", n, hx_target="queue", expect_rows=per)
            measure(c, "failed1", f"Queue page 1, failed, {per} rows (full page)", f"{q}?state=failed&page=1&per={per}",
                    n, expect_rows=per)
            measure(c, "job", f"Job detail, failed job with {ATTEMPTS} tracebacks (full page)",
                    f"{q}/jobs/{seeded['failed_id']}", n)
            board = None
            if args.board:
                board = Board(server.port, [QUEUE, *SMALL_QUEUES])
                try:
                    bc = Client(board.port)
                    bc.seq = 1_000_000  # its own numbers, apart from gunicorn's in the merged server times
                    board_rows(bc, n, deep_page, per)
                finally:
                    board.stop()
            profiles = []
            if args.profile:
                print("profiling pages with py-spy (not timed) ...", flush=True)
                profiles.append(profile_pages(app, c, [
                    ("counts, uncached", "/", "summary", 1.1),
                    ("counts, cached", "/", "summary", 0),
                    ("page 1 waiting", f"{q}?state=waiting&page=1&per={per}", "queue", 0),
                    ("deep page", f"{q}?state=waiting&page={deep_page}&per={per}", "queue", 0),
                    ("page 1 failed", f"{q}?state=failed&page=1&per={per}", None, 0),
                    ("job detail", f"{q}/jobs/{seeded['failed_id']}", None, 0)], 100, header=True))
            charted = seed_charts(args.charts)
            label = f"Overview with charts, {charted} queues ({args.charts} charted)"
            measure(c, "charts_page", f"{label}: full page, uncached (1.1 s apart)", "/", spaced, spacing=1.1,
                    warmup=1)
            measure(c, "charts_hx", f"{label}: htmx fragment as tabs poll it, uncached (1.1 s apart)", "/", spaced,
                    hx_target="summary", spacing=1.1, warmup=1)
            measure(c, "charts_poll", f"{label}: htmx fragment back to back (1 s snapshot)", "/", n,
                    hx_target="summary")
            if args.profile:
                profiles.append(profile_pages(app, c, [
                    (f"{label}: full page, uncached", "/", None, 1.1),
                    (f"{label}: htmx fragment, uncached", "/", "summary", 1.1)], 100, header=False))
            queues = seed_queues(METRICS_QUEUES)
            measure(c, "metrics", f"Prometheus /metrics scrape, {queues} queues", "/metrics", n)
            if args.profile:
                profiles.append(profile_pages(app, c, [(f"/metrics, {queues} queues", "/metrics", None, 0)], 100,
                                              header=False))
                (out_dir / "profile-dashboard.txt").write_text("".join(profiles))
                print("".join(profiles), flush=True)
            bulk(c, "retry", f"Retry all {args.failed:,} failed (POST -> task done)", f"{q}?state=failed&per={per}",
                 f"{q}/retry-all", {}, args.failed)
            bulk(c, "clean", f"Clean {args.completed:,} completed (POST -> task done)",
                 f"{q}?state=completed&per={per}", f"{q}/clean", dict(state="completed", grace="0", limit="0"),
                 args.completed)
            counts = Queue(QUEUE, connection=R, prefix=PREFIX).counts()
            if counts.failed or counts.completed or counts.waiting != args.waiting + args.failed:
                print(f"  WARNING: counts after the bulk actions: {counts}", flush=True)
            time.sleep(0.5)
            rss_after = app.rss()
            probe_p.send_signal(signal.SIGTERM)
            probe_p.wait(10)
            probe = []
            for line in probe_file.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2:
                    probe.append((float(parts[0]), float(parts[1])))
            names = {sha: name for name, sha in bp_scripts._SHAS.items()}
            slow = []
            for e in R.slowlog_get(10_000):
                cmd = e["command"].decode(errors="replace") if isinstance(e["command"], bytes) else str(e["command"])
                words = cmd.split()
                if words and words[0].upper() == "EVALSHA" and len(words) > 1:
                    cmd = f"EVALSHA {names.get(words[1], words[1][:8])}"
                else:
                    cmd = " ".join(words[:2])[:60]
                slow.append(dict(cmd=cmd, ms=e["duration"] / 1000, t=e["start_time"]))
            app.stop()
            failures = run_failures(args.failed) if args.failures else None
            server_times = app.server_times()
            if board is not None:
                server_times.update(board.server_times())
            meta = dict(date=time.strftime("%Y-%m-%d %H:%M"), argv=sys.argv[1:],
                        machine=f"{os.cpu_count()} CPUs ({platform.machine()})", load_start=load_start,
                        load_end=float(Path("/proc/loadavg").read_text().split()[0]), redis=server.version,
                        python=platform.python_version(), versions=versions(), n=n, n_wait=args.waiting,
                        n_failed=args.failed, n_completed=args.completed, seed=seeded, startup_s=app.startup_s,
                        server_cmd="gunicorn --workers 1 --threads 2 --bind 127.0.0.1:<free port> 'app:create_app()'")
            md = report(meta, server_times, probe, slow, rss_idle, rss_after, failures)
            name = "dashboard-quick" if args.quick else "dashboard"
            (out_dir / f"{name}.md").write_text(md)
            with open(out_dir / f"{name}.jsonl", "w") as f:
                f.write(json.dumps(dict(kind="meta", **meta, rss_idle=rss_idle,
                                        rss_after=rss_after)) + "\n")
                for rec in RECORDS:
                    rec = dict(rec, server_ms=[server_times[s][2] for s in rec["seqs"] if s in server_times])
                    f.write(json.dumps(rec) + "\n")
                f.write(json.dumps(dict(kind="slowlog", entries=slow)) + "\n")
                f.write(json.dumps(dict(kind="probe", pings=len(probe), max_ms=max((r for _, r in probe), default=0),
                                        phases=PHASES)) + "\n")
            print("\n" + md, flush=True)
        finally:
            if probe_p is not None and probe_p.poll() is None:
                probe_p.send_signal(signal.SIGTERM)
                probe_p.wait(10)
            if app is not None:
                app.stop()
            R.close()
    name = "dashboard-quick" if args.quick else "dashboard"
    print(f"done in {time.time() - t_start:.0f} s; results: {out_dir / (name + '.md')}", flush=True)


def run_failures(failed: int) -> dict | None:
    """bench/failures.py in a process (and on a Redis) of its own: failure clusters of ``failed`` jobs, first
    and repeat loads, and a throttled re-drive of 10,000 of them; its rows, or None if it failed."""
    out = WORK / "failures.json"
    out.unlink(missing_ok=True)
    print(f"failure clusters and re-drive: bench/failures.py --failed {failed} ...", flush=True)
    done = subprocess.run([sys.executable, str(HERE / "failures.py"), "--failed", str(failed), "--json", str(out)])
    if done.returncode != 0 or not out.exists():
        print(f"  WARNING: bench/failures.py exited {done.returncode}; its rows are left out", flush=True)
        return None
    return json.loads(out.read_text())


def metrics_main(args) -> None:
    """``--metrics-only``: 200 small queues, gunicorn as in the full run, n timed scrapes."""
    global R
    WORK.mkdir(parents=True, exist_ok=True)
    load_start = float(Path("/proc/loadavg").read_text().split()[0])
    with EmbeddedRedis() as server:
        R = redis.Redis(host="127.0.0.1", port=server.port)
        queues = seed_queues(METRICS_QUEUES)
        app = App(server.url, WORK)
        try:
            c = Client(app.port)
            rec = measure(c, "metrics", f"Prometheus /metrics scrape, {queues} queues", "/metrics", args.n)
        finally:
            app.stop()
            R.close()
        times = app.server_times()
        srv = [times[s][2] for s in rec["seqs"] if s in times]
    load_end = float(Path("/proc/loadavg").read_text().split()[0])
    md = (f"# Prometheus /metrics scrape, {queues} queues\n\nMeasured {time.strftime('%Y-%m-%d %H:%M')} by "
          f"`python bench/dashboard.py {' '.join(sys.argv[1:])}`; {os.cpu_count()} CPUs, load average (1 min) "
          f"{load_start:.2f} at the start, {load_end:.2f} at the end; Redis {server.version}; {versions()}.\n\n"
          "| measurement | median | p95 | server median | server max | target (server) | |\n"
          "|---|---|---|---|---|---|---|\n"
          f"| {rec['label']} ({rec['n']} requests, {rec['bytes'] / 1024:.0f} KiB, "
          f"{rec['redis']['cmds_per_req']:.0f} Redis commands each) | {statistics.median(rec['ms']):.2f} ms "
          f"| {pct(rec['ms'], 95):.2f} ms | {statistics.median(srv):.2f} ms | {max(srv):.2f} ms "
          f"| ≤ {TARGET_METRICS_MS} ms | {verdict(statistics.median(srv), TARGET_METRICS_MS)} |\n")
    (WORK / "dashboard-metrics.md").write_text(md)
    print("\n" + md, flush=True)


if __name__ == "__main__":
    main()
