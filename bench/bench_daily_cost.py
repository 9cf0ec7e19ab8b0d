"""Benchmark: what one new day costs, per downstream step, after 1 week, 3 months, 1 year and 3 years of history.

For each history length and daily rate, a synthetic review history in the contract schema is written as daily
batch files (``events/review_events/day=…``, with crawl pages) and built once through the real steps (the
backfill path: the analyst table, text scoring, metrics and the other scored datasets). Then one new day of
events arrives and every downstream step runs as its own child process, so each wall time and peak RSS is that
step's alone. The new day is run on ``--repeats`` copies of the built store (modification times kept) and each
step's median is reported, so one noisy measurement does not decide a ratio:

    touchpoint_events → scored_events → cx_metrics → alert_tests, key_drivers, peaks_potholes,
    customer_journeys, reply_latency

Usage:
    .venv/bin/python bench/bench_daily_cost.py --quick          # 1 week vs 3 years at 2,000 events/day
    .venv/bin/python bench/bench_daily_cost.py                  # all histories at 2,000/day, short ones at 20,000
    .venv/bin/python bench/bench_daily_cost.py --rates 20000 --histories 7,90

Writes bench/results/daily_cost.md; the last line printed is ``ratio_3y_vs_1w=<x> peak_rss_gb=<y>``: the daily
run's total time with the longest history over the shortest (at the first rate), and the largest step RSS seen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STEPS = ("touchpoint_events", "scored_events", "cx_metrics", "alert_tests", "key_drivers", "peaks_potholes",
         "customer_journeys", "reply_latency")
FIRST_DAY = datetime(2024, 1, 1, 6, tzinfo=UTC)
LABELS = {7: "1 week", 90: "3 months", 365: "1 year", 1095: "3 years"}


def _write_day(store, i: int, rate: int) -> None:
    from cx_pipeline.contract import EVENT_SCHEMA
    from cx_pipeline_tests.synthetic_history import day_events

    day = FIRST_DAY + timedelta(days=i)
    key = day.strftime("%Y-%m-%d")
    ev = day_events(day, rate, seed=i, start_id=i * rate)
    pages = pl.DataFrame({"source_id": "tp-nordlys", "raw_key": [f"raw/blobs/{key}/page{k}.gz" for k in range(5)],
                          "fetched_at": day, "stop_reason": "known_reviews", "crawl_started_at": day,
                          "outcome": "ok"})
    store.write_partition("events/review_events", ev, {"day": key}, schema=EVENT_SCHEMA)
    store.write_partition("raw/review_pages", pages, {"day": key})


def _run_step(store, step: str) -> int:
    """One step exactly as its asset runs it; returns the rows it produced or touched."""
    from cx_pipeline.pipeline import downstream
    from cx_pipeline.pipeline.events_table import update_touchpoint_events
    from cx_pipeline.pipeline.scoring_state import aggregates_incrementally
    from cx_pipeline.pipeline.text_scoring_state import update_scored_days
    from cx_pipeline.scoring import AlertConfig, DriverConfig, ScoringConfig
    from cx_pipeline.scoring.peaks_potholes import PeakConfig

    if step == "touchpoint_events":
        return sum(update_touchpoint_events(store).days_written.values())
    if step == "scored_events":
        return update_scored_days(store).rescored_records
    if step == "cx_metrics":
        return aggregates_incrementally(store, ScoringConfig())[1].height
    if step == "alert_tests":
        return downstream.build_alert_tests(store, AlertConfig()).height
    if step == "key_drivers":
        return len(downstream.build_key_drivers(store, DriverConfig()).months)
    if step == "peaks_potholes":
        return len(downstream.build_peaks_potholes(store, PeakConfig()).months)
    if step == "customer_journeys":
        return downstream.build_journeys(store).height
    if step == "reply_latency":
        return len(downstream.build_reply_latency(store).months)
    raise ValueError(step)


def _child(mode: str, root: str, days: int, rate: int) -> dict[str, object]:
    from cx_pipeline.storage import ParquetStore

    store = ParquetStore(root)
    t0 = time.perf_counter()
    rows = 0
    if mode == "history":
        for i in range(days):
            _write_day(store, i, rate)
        for step in STEPS:
            _run_step(store, step)
    elif mode == "new_day":
        _write_day(store, days, rate)
    else:
        rows = _run_step(store, mode)
    return {"mode": mode, "seconds": time.perf_counter() - t0, "rows": rows,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(mode: str, root: str, days: int, rate: int) -> dict[str, object]:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--root", root, "--days", str(days),
                           "--rate", str(rate)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(days: int, rate: int, repeats: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cx-daily-") as base:
        root = f"{base}/built"
        history = run_child("history", root, days, rate)
        runs = []
        for r in range(repeats):
            copy = f"{base}/day{r}"
            shutil.copytree(root, copy, copy_function=shutil.copy2)
            run_child("new_day", copy, days, rate)
            runs.append({s: run_child(s, copy, days, rate) for s in STEPS})
            shutil.rmtree(copy)
        steps = {s: {"seconds": statistics.median(float(run[s]["seconds"]) for run in runs),
                     "maxrss_mb": max(float(run[s]["maxrss_mb"]) for run in runs)} for s in STEPS}
    return {"days": days, "rate": rate, "history_seconds": history["seconds"],
            "history_rss_mb": history["maxrss_mb"], "steps": steps,
            "total": sum(float(s["seconds"]) for s in steps.values()),
            "peak_rss_mb": max(float(s["maxrss_mb"]) for s in steps.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 week and 3 years at 2,000 events/day")
    ap.add_argument("--rates", default="2000,20000")
    ap.add_argument("--histories", default=None, help="days of history, comma-separated")
    ap.add_argument("--repeats", type=int, default=3, help="copies of the built store the new day runs on")
    ap.add_argument("--child")
    ap.add_argument("--root")
    ap.add_argument("--days", type=int)
    ap.add_argument("--rate", type=int)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.root, args.days, args.rate)))
        return 0
    if args.quick:
        plan = [(2000, 7), (2000, 1095)]
    else:
        rates = [int(r) for r in args.rates.split(",")]
        histories = [int(d) for d in (args.histories or "7,90,365,1095").split(",")]
        plan = [(r, d) for r in rates for d in histories if r * d <= 8_000_000]  # 24 GB ceiling: ~9 M events
    results = []
    for rate, days in plan:
        t0 = time.perf_counter()
        res = measure(days, rate, args.repeats)
        results.append(res)
        print(f"{rate:,}/day × {LABELS.get(days, f'{days} days')}: daily run {res['total']:.1f} s, peak RSS "
              f"{res['peak_rss_mb'] / 1024:.2f} GB (history built in {res['history_seconds']:.0f} s; "
              f"{time.perf_counter() - t0:.0f} s in all)", flush=True)
    lines = [
        "# Daily cost benchmark",
        "",
        f"`bench/bench_daily_cost.py{' --quick' if args.quick else ''}`, {time.strftime('%Y-%m-%d')}, "
        f"{platform.machine()}, {os.cpu_count()} cores, polars {pl.__version__}. Synthetic review history "
        "(one star rating with a short text per review, experience dates up to 20 days before publication), "
        f"built once by the real steps; then one new day, each step timed in its own process (median of {args.repeats} "
        "runs on copies of the store).",
        "",
        "| events/day | history | events stored | " + " | ".join(STEPS) + " | daily total (s) | peak RSS (GB) |",
        "|---|---|---|" + "---|" * len(STEPS) + "---|---|",
    ]
    for r in results:
        cells = " | ".join(f"{float(r['steps'][s]['seconds']):.2f}" for s in STEPS)
        lines.append(f"| {r['rate']:,} | {LABELS.get(r['days'], str(r['days']) + ' d')} | "
                     f"{r['rate'] * r['days']:,} | {cells} | {r['total']:.1f} | {r['peak_rss_mb'] / 1024:.2f} |")
    lines += ["", "Peak RSS per step (MB):", "",
              "| events/day | history | " + " | ".join(STEPS) + " |", "|---|---|" + "---|" * len(STEPS)]
    for r in results:
        cells = " | ".join(f"{float(r['steps'][s]['maxrss_mb']):.0f}" for s in STEPS)
        lines.append(f"| {r['rate']:,} | {LABELS.get(r['days'], str(r['days']) + ' d')} | {cells} |")
    first_rate = results[0]["rate"]
    same = [r for r in results if r["rate"] == first_rate]
    shortest, longest = min(same, key=lambda r: r["days"]), max(same, key=lambda r: r["days"])
    ratio = float(longest["total"]) / float(shortest["total"])
    peak = max(float(r["peak_rss_mb"]) for r in results) / 1024
    lines += ["", f"Ratio of the daily total, {LABELS.get(longest['days'])} over {LABELS.get(shortest['days'])} "
              f"at {first_rate:,}/day: **{ratio:.2f}×**; largest step peak RSS: **{peak:.2f} GB**."]
    out = args.out or REPO / "bench" / "results" / ("daily_cost_quick.md" if args.quick else "daily_cost.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"ratio_3y_vs_1w={ratio:.2f} peak_rss_gb={peak:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
