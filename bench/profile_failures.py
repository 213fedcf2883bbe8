#!/usr/bin/env python3
"""Profile of building the failure index from nothing (what the failures page's first load does).

    python bench/profile_failures.py            # 50,000 failed jobs, as bench/failures.py seeds them

Starts its own redis-server (EmbeddedRedis), seeds the failed jobs the way bench/dashboard.py
does, then builds the whole index (FailureIndex.refresh without a time budget) three times
from nothing, reporting wall time, this process's CPU and Redis's CPU (INFO cpu) for each, and
a fourth time under cProfile. Writes bench/results/profile-failures.txt (for 50,000 jobs). The
machine is shared: wall times follow its load (reported); CPU times vary less.
"""
from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT, HERE)] + [str(HERE)]

import redis  # noqa: E402

from dashboard import failures  # noqa: E402
from dashboard.failure_index import FailureIndex  # noqa: E402
from dashboard.queue import Queue  # noqa: E402
from dashboard.redis_server import EmbeddedRedis  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failed", type=int, default=50_000)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("bench_dashboard", HERE / "dashboard.py")
    assert spec and spec.loader
    bd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bd)
    out: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        out.append(line)

    with EmbeddedRedis() as server:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        bd.R = r
        seeded = bd.seed(0, args.failed, 0)
        q = Queue(bd.QUEUE, connection=r)
        index = FailureIndex.of(q)
        r.config_set("slowlog-log-slower-than", 1000)

        def from_nothing() -> None:
            for key in r.scan_iter(match=f"{q.keys.prefix}::failures:*", count=1000):
                r.delete(key)
            for cache in (failures._MASK_CACHE, failures._TRACE_CACHE, failures._RAW_CACHE, failures._ENTRY_CACHE,
                          failures._DESCRIBED):
                cache.clear()
            r.slowlog_reset()

        def redis_cpu() -> float:
            info = r.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        say(f"# Failure index built from nothing: {args.failed:,} failed jobs "
            f"({seeded['trace_bytes']:,} bytes of stacktrace each), Redis {server.version}")
        say(f"`python bench/profile_failures.py --failed {args.failed}` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        for n in range(3):
            from_nothing()
            load = Path("/proc/loadavg").read_text().split()[0]
            c0, p0, t0 = redis_cpu(), time.process_time(), time.perf_counter()
            status = index.refresh(60)
            wall, py, rc = time.perf_counter() - t0, time.process_time() - p0, redis_cpu() - c0
            slow = max((e["duration"] for e in r.slowlog_get(10_000)), default=0) / 1000
            say(f"build {n + 1}: {wall * 1000:.0f} ms wall, Python CPU {py * 1000:.0f} ms, "
                f"Redis CPU {rc * 1000:.0f} ms, longest command {slow:.1f} ms, complete={status.complete}, "
                f"load average {load}")
        from_nothing()
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        index.refresh(60)
        profile.disable()
        say(f"\nbuild under cProfile: {(time.perf_counter() - t0) * 1000:.0f} ms wall (profiling slows Python)")
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats(order).print_stats(30)
            say(text.getvalue().replace(str(ROOT) + "/", "").replace(sys.prefix, "<python>"))
    if args.failed == 50_000:
        (HERE / "results" / "profile-failures.txt").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
