"""The README's speed table, from one bench/throughput.py run: every row side by side, with ratios and targets.

    python bench/speed_table.py [results/throughput.jsonl]

Medians over the run's repetitions with [min–max]; a ratio is the ratio of the medians. For times
(latency, start-up, lateness) lower is better, so their ratios read "Bullpen takes x times as long".
Prints Markdown; nothing is measured here.
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEMS = ("bullpen", "node", "huey")


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cell(xs: list[float], digits: int) -> str:
    if not xs:
        return "–"
    m = statistics.median(xs)
    if len(xs) == 1 or min(xs) == max(xs):
        return f"{m:,.{digits}f}"
    return f"{m:,.{digits}f} [{min(xs):,.{digits}f}–{max(xs):,.{digits}f}]"


def ratio(a: list[float], b: list[float]) -> str:
    if not a or not b or statistics.median(b) == 0:
        return "–"
    return f"{statistics.median(a) / statistics.median(b):.2f}×"


def table(records: list[dict]) -> list[str]:
    ok = [r for r in records if not r.get("error")]

    def values(kind: str, field: str, **match: object) -> Callable[[str], list[float]]:
        return lambda s: [r[field] for r in ok if r["kind"] == kind and r["sys"] == s and field in r
                          and all(r.get(k) == v for k, v in match.items())]

    drains: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in ok:
        if r["kind"] == "drain" and "jobs_per_s" in r:
            drains[(r["sys"], r["conc"])].append(r["jobs_per_s"])
    best = {}
    for (s, c), xs in drains.items():
        if s not in best or statistics.median(xs) > statistics.median(drains[(s, best[s])]):
            best[s] = c
    rates = sorted({r["rate"] for r in ok if r["kind"] == "latency"})
    rows: list[tuple[str, Callable[[str], list[float]], int, str]] = [
        ("enqueue one at a time, jobs/s", values("enqueue", "jobs_per_s", mode="single"), 0,
         "≥ 1.2× Node, ≥ 1.0× huey"),
        ("enqueue in bulk, jobs/s", values("enqueue", "jobs_per_s", mode="bulk"), 0, "≥ 2× Node"),
        ("process, concurrency 1, jobs/s", lambda s: drains.get((s, 1), []), 0, "≥ 1.0× Node"),
        ("process, best setting, jobs/s", lambda s: drains.get((s, best.get(s, -1)), []), 0, "≥ 1.0× Node"),
    ]
    for rate in rates:
        for q, target in (("p50", "≤ huey's"), ("p99", ""), ("max", "≤ 10 ms")):
            rows.append((f"add → start {q} at {rate:g} jobs/s, ms", values("latency", f"{q}_ms", rate=rate), 1,
                         target))
    rows += [
        ("launch → first job, s", values("startup", "launch_to_first_job_s"), 2, "≤ Node's"),
        ("global rate limit 1,000/s: held jobs/s", values("ratelimit-held", "jobs_per_s"), 0, "≈ 1,000"),
        ("scheduler every 1 s: lateness p50, ms", values("lateness", "p50_ms"), 1, ""),
        ("scheduler every 1 s: lateness p99, ms", values("lateness", "p99_ms"), 1, ""),
        ("worker max RSS at best setting, MB", lambda s: [r["worker_max_rss_mb"] for r in ok if r["kind"] == "drain"
                                                         and r["sys"] == s and r["conc"] == best.get(s)
                                                         and "worker_max_rss_mb" in r], 0, ""),
    ]
    out = ["| | Bullpen | Node BullMQ 6.7 | huey 3.5 | Bullpen ÷ Node | Bullpen ÷ huey | target |",
           "|---|---|---|---|---|---|---|"]
    for label, get, digits, target in rows:
        got = {s: get(s) for s in SYSTEMS}
        if not any(got.values()):
            continue
        if label.startswith("process, best"):
            label += " (" + ", ".join(f"c={best[s]}" for s in SYSTEMS if s in best) + ")"
        out.append(f"| {label} | {cell(got['bullpen'], digits)} | {cell(got['node'], digits)} | "
                   f"{cell(got['huey'], digits)} | {ratio(got['bullpen'], got['node'])} | "
                   f"{ratio(got['bullpen'], got['huey'])} | {target} |")
    return out


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "throughput.jsonl"
    print("\n".join(table(load(source))))
