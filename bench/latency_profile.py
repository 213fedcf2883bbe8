"""py-spy on a Bullpen worker under a steady load: where the add -> start time goes.

    python bench/latency_profile.py [ROOT] [OUT]   # ROOT: a Bullpen checkout (default: this one)

Starts a private redis-server (dashboard.redis_server.EmbeddedRedis), a Bullpen worker at
concurrency 32 (bench/py/qb.py, as bench/throughput.py runs it), warms it with 5 jobs, attaches
py-spy (--gil: the GIL holder only, 1000 Hz; the py-spy of bench/.work/v-tools, made by
`throughput.py --profile`), adds 2,000 jobs one by one at 200 jobs/s, and writes the latency
distribution of those jobs and the folded profile to OUT (default results/profile-latency-run.txt).
Running it with another checkout's ROOT gives the A/B kept in results/profile-latency.txt.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE.parent
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "results" / "profile-latency-run.txt"
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))

import throughput as tp  # noqa: E402  (fold_pyspy)

from dashboard.redis_server import EmbeddedRedis  # noqa: E402

DONE = Path("/tmp/bullpen-latency-profile-done.log")


def main() -> None:
    if DONE.exists():
        DONE.unlink()
    spy = HERE / ".work" / "v-tools" / "bin" / "py-spy"
    raw = HERE / ".work" / "profile-latency.raw"
    qb = [sys.executable, str(ROOT / "bench" / "py" / "qb.py"), "bullpen"]
    with EmbeddedRedis() as srv:
        env = dict(os.environ, QB_DONE_FILE=str(DONE), QB_REDIS_PORT=str(srv.port), PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT / "bench" / "py"), str(ROOT)]))
        worker = subprocess.Popen([*qb, "worker", "--conc", "32"], env=env)
        subprocess.run([*qb, "produce", "--rate", "50", "--n", "5"], env=env, check=True)
        time.sleep(1)
        py_spy = subprocess.Popen([str(spy), "record", "--pid", str(worker.pid), "--rate", "1000", "--gil",
                                   "--nonblocking", "--format", "raw", "-o", str(raw)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        subprocess.run([*qb, "produce", "--rate", "200", "--n", "2000"], env=env, check=True)
        time.sleep(0.5)
        py_spy.send_signal(signal.SIGINT)
        py_spy.wait(20)
        worker.send_signal(signal.SIGINT)
        worker.wait(20)
    data = DONE.read_bytes()
    records = [data[i:i + 32].split() for i in range(0, len(data), 32)][5:]
    lat = sorted(float(r[1]) * 1000 for r in records if len(r) == 2)

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    self_t, incl, total = tp.fold_pyspy(raw)
    lines = ["# Bullpen worker c=32 under 200 jobs/s (2000 jobs, single adds): py-spy --gil samples (GIL holder only)",
             f"# add->start ms over {len(lat)} jobs: p50 {q(.5):.2f} p90 {q(.9):.2f} p99 {q(.99):.2f} "
             f"max {lat[-1]:.2f}; load {os.getloadavg()[0]:.2f}",
             f"# {total} samples at 1000 Hz over ~11 s: the worker holds the GIL this share of the time", "",
             "## self time (top 25)"]
    lines += [f"{100 * v / total:5.1f}%  {k}" for k, v in self_t.most_common(25)]
    lines += ["", "## inclusive time (top 40)"]
    lines += [f"{100 * v / total:5.1f}%  {k}" for k, v in incl.most_common(40)]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:30]))


if __name__ == "__main__":
    main()
