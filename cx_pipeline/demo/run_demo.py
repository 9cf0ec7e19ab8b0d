"""``cx-pipeline demo``: every asset end to end on the bundled samples, offline, on a local SQLite instance.

It serves the sample review site on 127.0.0.1 (so the real HTTP fetch path runs), drops the bundled
survey exports into the inbox, registers them as survey-file partitions exactly as the inbox sensor
would, runs the jobs in the Dagster instance under DAGSTER_HOME (so the runs show in the UI
afterwards), and prints where the outputs are with a short summary.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from cx_pipeline.config.data_root import check_reachable, is_url, open_store
from cx_pipeline.demo.sample_site import SampleSiteServer

if TYPE_CHECKING:
    from dagster import DagsterInstance, Definitions

SAMPLE_SURVEYS = Path(__file__).resolve().parent.parent / "sample_data" / "surveys"
DEMO_SECRET = "cx-pipeline-demo-secret-do-not-use-in-production"


def _root_location(data_root: str) -> str:
    """The data root as every later step uses it: an absolute folder, or the URL as given (never a local folder
    named ``s3:``); a URL must be usable and reachable before anything is written."""
    check_reachable(open_store(data_root))  # a URL without its package, a missing bucket, a file: named now
    return data_root.rstrip("/") if is_url(data_root) else str(Path(data_root).resolve())


def _prepare_env(data_root: str, dagster_home: Path) -> None:
    if not is_url(data_root):
        Path(data_root).mkdir(parents=True, exist_ok=True)
    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(dagster_home.resolve())
    os.environ["CX_PIPELINE_DATA_ROOT"] = data_root
    os.environ.setdefault("CX_PIPELINE_INBOX", f"{data_root}/inbox")
    if not os.environ.get("CX_PIPELINE_HASH_SECRET"):
        os.environ["CX_PIPELINE_HASH_SECRET"] = DEMO_SECRET
        print("note: CX_PIPELINE_HASH_SECRET not set; using the demo secret (set your own for real data)")
    cfg = dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(
            "# local instance for the demo: SQLite storage under this folder\n"
            "telemetry:\n  enabled: false\n"
            "concurrency:\n  pools:\n    default_limit: 2\n",
            encoding="utf-8",
        )


def _drop_sample_surveys(inbox: str) -> list[str]:
    """Copy the sample exports into the inbox, a folder or a URL (through fsspec, as the inbox sensor reads it)."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(inbox)
    fs.makedirs(base, exist_ok=True)
    dropped = []
    for src in sorted(SAMPLE_SURVEYS.glob("*")):
        if src.is_file() and not src.name.startswith("."):
            with fs.open(f"{base}/{src.name}", "wb") as out:
                out.write(src.read_bytes())
            dropped.append(f"{inbox.rstrip('/')}/{src.name}")
    return dropped


def _fmt(v: object, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def print_summary(data_root: str) -> None:
    from cx_pipeline.storage import ParquetStore

    store = ParquetStore(data_root)
    events = store.read("events/touchpoint_events")
    print(f"\nOutputs under {store.root}:")
    for dataset in (
        "raw/review_pages",
        "raw/survey_files",
        "events/touchpoint_events",
        "scored/scored_events",
        "scored/touchpoint_mentions",
        "scored/cx_metrics",
        "scored/key_drivers",
        "scored/peaks_potholes",
        "scored/customer_journeys",
        "scored/reply_latency",
        "scored/alert_tests",
        "scored/cx_alerts",
    ):
        files = store.parquet_files(dataset)
        if files:
            print(f"  {dataset:<28} {len(files)} file(s)")
    if events is None:
        print("no touchpoint events were produced")
        return
    print("\nEvents per source:")
    for source, n in events.group_by("source").len().sort("source").iter_rows():
        print(f"  {source:<14} {n}")
    metrics = store.read("scored/cx_metrics")
    if metrics is None:
        return
    overall = metrics.filter((pl.col("grain") == "all") & (pl.col("source") == "all") & (pl.col("touchpoint") != "all"))
    print("\nPer brand and touchpoint, all periods and sources — value [95% CI] (n):")
    print("  NPS −100..100; CSAT = % top-2-box; stars = mean of 1–5")

    def cell(metric: str, row_filter: pl.Expr, mean: bool = False) -> dict[tuple[str, str], str]:
        out = {}
        for r in overall.filter(row_filter & (pl.col("metric") == metric)).iter_rows(named=True):
            if mean:
                out[(r["brand"], r["touchpoint"])] = f"{_fmt(r['mean'], 2)} ({r['n']})"
            else:
                out[(r["brand"], r["touchpoint"])] = (
                    f"{_fmt(r['value'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] ({r['n']})"
                )
        return out

    nps, csat, stars = (
        cell("nps", pl.lit(True)),
        cell("csat", pl.lit(True)),
        cell("star_rating", pl.lit(True), mean=True),
    )
    keys = sorted(set(nps) | set(csat) | set(stars))
    print(f"  {'brand':<13} {'touchpoint':<17} {'NPS':<25} {'CSAT':<25} {'stars':<10}")
    for key in keys:
        print(f"  {key[0]:<13} {key[1]:<17} {nps.get(key, '–'):<25} {csat.get(key, '–'):<25} {stars.get(key, '–'):<10}")
    print_mentions(store)
    print_alerts(store)


def print_alerts(store: Any) -> None:
    """The drop tests of the run: how many were tested or skipped, and every alert with its numbers."""
    tests = store.read("scored/alert_tests")
    if tests is None:
        return
    tested = tests.filter(pl.col("status") == "tested")
    print(f"\nDrop tests (scored/alert_tests): {tested.height} tested, {tests.height - tested.height} skipped "
          "with the reason logged (first period, gap, too few answers); Benjamini–Hochberg across the tests.")
    alerts = store.read("scored/cx_alerts")
    for message in (alerts["message"].to_list() if alerts is not None else []):
        print(f"  ALERT {message}")


def print_mentions(store: Any) -> None:
    """What the texts say per touchpoint: net sentiment of the clauses about it (scored/touchpoint_mentions)."""
    mentions = store.read("scored/touchpoint_mentions")
    if mentions is None or mentions.height == 0:
        print("\nNo touchpoint mentions (no scored text).")
        return
    table = (
        mentions.group_by("brand", "touchpoint")
        .agg(n=pl.len().cast(pl.Int64), pos=(pl.col("sentiment_label") == "positive").sum().cast(pl.Int64),
             neg=(pl.col("sentiment_label") == "negative").sum().cast(pl.Int64))
        .with_columns(net=100 * (pl.col("pos") - pl.col("neg")) / pl.col("n"))
        .sort("brand", "touchpoint")
    )
    print("\nWhat the texts say per touchpoint (scored/touchpoint_mentions): net sentiment = % positive − % negative "
          "mentions (n mentions):")
    for r in table.iter_rows(named=True):
        print(f"  {r['brand']:<13} {r['touchpoint']:<17} {r['net']:+6.0f}  ({r['n']}: {r['pos']} positive, "
              f"{r['neg']} negative)")


def print_report_paths(data_root: str) -> None:
    """Where the build_scored run put the report and the BI database (the scored/cx_report and cx_duckdb assets)."""
    from cx_pipeline.report import DUCKDB_FILE, REPORTS_DIR
    from cx_pipeline.storage import ParquetStore

    store = ParquetStore(data_root)
    index = store.url(REPORTS_DIR, "index.html")
    if store.fs.exists(store.path(REPORTS_DIR, "index.html")):
        print(f"\nCX report: {index}")
    else:
        print(f"\nno CX report at {index} (see the scored/cx_report step above)")
    if store.fs.exists(store.path(DUCKDB_FILE)):
        print(f"BI database (one view per dataset): {store.url(DUCKDB_FILE)}")


def _failed_checks(result: Any) -> list[str]:
    return [
        f"{e.asset_key.to_user_string()}:{e.check_name} ({e.severity.value})"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]


@dataclass
class RunSummary:
    name: str
    success: bool
    failed_checks: list[str]
    #: the failed steps' messages, so a quiet demo still says why a run failed
    errors: list[str] = field(default_factory=list)


_CLASS_PATH = re.compile(r"^[\w.]+: ")


def _failed_steps(result: Any) -> list[str]:
    """``step: message`` per failed step, without the exception's class path."""
    return [f"{e.step_key}: {_CLASS_PATH.sub('', e.step_failure_data.error.message.strip().splitlines()[-1])}"
            for e in result.all_events if e.is_step_failure and e.step_failure_data.error]


def run_all_jobs(defs: Definitions, instance: DagsterInstance, day: str, *, log_level: str = "DEBUG"
                 ) -> list[RunSummary]:
    """Ingest the day's reviews, every inbox survey file, then rebuild events and scores.

    ``log_level``: the runs' console log level (the records are stored in the instance at every level)."""
    from cx_pipeline.defs.automation import register_inbox_files

    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}

    def summary(name: str, result: Any) -> RunSummary:
        return RunSummary(name, result.success, _failed_checks(result), _failed_steps(result))

    runs = []
    result = defs.resolve_job_def("ingest_reviews").execute_in_process(
        instance=instance, partition_key=day, raise_on_error=False, run_config=run_config
    )
    runs.append(summary(f"ingest_reviews[{day}]", result))
    for key in register_inbox_files(instance):
        result = defs.resolve_job_def("ingest_survey_file").execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False, run_config=run_config
        )
        runs.append(summary(f"ingest_survey_file[{key}]", result))
    result = defs.resolve_job_def("build_scored").execute_in_process(instance=instance, raise_on_error=False,
                                                                     run_config=run_config)
    runs.append(summary("build_scored", result))
    return runs


def run_demo(*, data_root: str, dagster_home: str, verbose: bool = False) -> int:
    """Raises DataRootError when ``data_root`` is a URL that cannot be used here (its package missing, its bucket
    unreachable), before anything is written."""
    started = time.perf_counter()
    root = _root_location(data_root)
    _prepare_env(root, Path(dagster_home))
    inbox = os.environ["CX_PIPELINE_INBOX"]
    dropped = _drop_sample_surveys(inbox)
    with SampleSiteServer() as site:
        os.environ["CX_SAMPLE_SITE_URL"] = site.base_url
        from dagster import DagsterInstance

        from cx_pipeline.definitions import build_definitions

        defs = build_definitions(data_root=root)
        instance = DagsterInstance.get()
        print(f"sample review site on {site.base_url}; {len(dropped)} survey export(s) dropped into {inbox}")
        if not verbose:
            print("running the jobs (Dagster's run logs: --verbose, or the UI afterwards) …", flush=True)
        runs = run_all_jobs(defs, instance, datetime.now(UTC).strftime("%Y-%m-%d"),
                            log_level="DEBUG" if verbose else "WARNING")
        print(f"{len(site.requests)} HTTP request(s) reached the sample site")
    for run in runs:
        print(f"  {run.name}: {'ok' if run.success else 'FAILED'}")
        for error in run.errors:
            print(f"    error: {error}")
        for check in run.failed_checks:
            kind = "warning" if check.endswith("(WARN)") else "check failed"
            print(f"    {kind}: {check}")
    ok = all(run.success for run in runs)
    print_summary(root)
    print_report_paths(root)
    print(
        f"\nDemo finished in {time.perf_counter() - started:.1f}s. Open the runs in the UI with:\n"
        f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} CX_PIPELINE_DATA_ROOT={root} "
        f"CX_PIPELINE_HASH_SECRET=... .venv/bin/dagster dev -w workspace.yaml\n"
        "and, to launch ingest_reviews from the UI, serve the sample review site in another terminal:\n"
        "  cx-pipeline serve-sample-site"
    )
    if not ok:
        print("some runs failed: see the messages above", file=sys.stderr)
        return 1
    return 0
