"""Report group: the HTML CX report per brand and the DuckDB file BI tools connect to.

Both read the scored datasets from the data root (not through the IO manager), because they need every dataset at
once and write files rather than a table; ``deps`` keeps them downstream of what they read.
"""

from typing import Any

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from cx_pipeline.defs.assets.events import TOUCHPOINT_EVENTS_KEY
from cx_pipeline.defs.assets.scored import (
    ALERT_TESTS_KEY,
    ALERTS_KEY,
    DRIVERS_KEY,
    JOURNEYS_KEY,
    MENTIONS_KEY,
    METRICS_KEY,
    PEAKS_KEY,
    REPLIES_KEY,
    SCORED_EVENTS_KEY,
)
from cx_pipeline.defs.metadata import markdown_table
from cx_pipeline.defs.resources import DataStore
from cx_pipeline.report import ReportInputError, build_report, write_bi_database

REPORT_KEY = ["scored", "cx_report"]
DUCKDB_KEY = ["scored", "cx_duckdb"]
REPORT_INPUTS = [SCORED_EVENTS_KEY, MENTIONS_KEY, METRICS_KEY, DRIVERS_KEY, PEAKS_KEY, ALERT_TESTS_KEY, ALERTS_KEY,
                 REPLIES_KEY]


@asset(
    key=REPORT_KEY,
    deps=REPORT_INPUTS,
    group_name="scored",
    kinds={"html"},
    description="A self-contained HTML report per brand plus an index page under <data root>/reports/: headline "
    "metrics with intervals, key drivers, peaks and potholes, what changed, replies, coverage and trust. Opens "
    "offline from a file.",
)
def cx_report(context: AssetExecutionContext, data_store: DataStore) -> MaterializeResult:
    import polars as pl

    try:
        result = build_report(data_store.store())
    except ReportInputError as exc:  # missing or unreadable inputs: a retry reads the same data root
        raise Failure(str(exc), allow_retries=False) from None
    # numeric metadata per brand, so the UI plots each headline's trend across materializations
    meta: dict[str, Any] = {
        "report": MetadataValue.path(result.index),
        "build_seconds": MetadataValue.float(round(result.seconds, 2)),
        "largest_page_kb": MetadataValue.float(round(max(b.bytes for b in result.brands) / 1024, 1)),
        "brands": len(result.brands),
    }
    if "://" not in result.index:
        meta["open"] = MetadataValue.url(f"file://{result.index}")
    for b in result.brands:
        for name, value in b.headline.items():
            if value is not None:
                meta[f"{b.brand} / {name}"] = MetadataValue.float(round(float(value), 2))
    summary = pl.DataFrame([{"brand": b.brand, "page": b.file, "kB": round(b.bytes / 1024),
                             **{k: round(v, 2) for k, v in b.headline.items() if v is not None}}
                            for b in result.brands], infer_schema_length=None)
    meta["summary"] = MetadataValue.md(markdown_table(summary))
    context.log.info(f"report: {result.index} ({len(result.brands)} brand(s), {result.seconds:.1f}s)")
    return MaterializeResult(metadata=meta)


@asset(
    key=DUCKDB_KEY,
    deps=[*REPORT_INPUTS, TOUCHPOINT_EVENTS_KEY, JOURNEYS_KEY],
    group_name="scored",
    kinds={"duckdb"},
    description="<data root>/cx.duckdb: one view per dataset (schemas raw, events, scored) over its Parquet files, "
    "rebuilt on each build, so DuckDB, DBeaver, Metabase or Superset connect to one file.",
)
def cx_duckdb(context: AssetExecutionContext, data_store: DataStore) -> MaterializeResult:
    store = data_store.store()
    if not store.is_local:  # an object-store root must not fail the whole scored build over a convenience file
        reason = f"{store.root} is not a local folder: cx.duckdb's views read the Parquet files by path"
        context.log.warning(f"cx.duckdb not written: {reason}")
        return MaterializeResult(metadata={"skipped": reason})
    db = write_bi_database(store)
    return MaterializeResult(metadata={
        "path": MetadataValue.path(db.path),
        "views": MetadataValue.md("\n".join(f"- `{v}`" for v in db.views)),
        "view_count": len(db.views),
        "skipped": MetadataValue.md("\n".join(f"- {d}: {why}" for d, why in db.skipped.items()) or "none"),
    })
