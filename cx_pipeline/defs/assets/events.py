"""Events group: touchpoint events parsed from the raw archive, per batch and as one analyst table."""

import polars as pl
import yaml
from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from cx_pipeline.config.data_root import DataRootError, check_reachable, require_ingested, require_touchpoint_events
from cx_pipeline.contract import EVENT_SCHEMA, empty_events
from cx_pipeline.defs.assets.raw import RAW_PAGES_KEY, RAW_SURVEYS_KEY
from cx_pipeline.defs.checks import (
    dataset_check_result,
    dataset_check_spec,
    event_check_results,
    event_check_specs,
)
from cx_pipeline.defs.metadata import counts_by, frame_metadata, markdown_table
from cx_pipeline.defs.partitions import DAILY, SURVEY_FILES
from cx_pipeline.defs.resources import CustomerKeys, DataStore, SourcesFile
from cx_pipeline.pipeline.events_table import EVENTS_DATASET as TOUCHPOINT_EVENTS_DATASET
from cx_pipeline.pipeline.events_table import update_touchpoint_events
from cx_pipeline.pipeline.parse_files import (
    batch_rejects,
    file_refused,
    review_batch,
    survey_batch,
    write_batch_rejects,
)
from cx_pipeline.pipeline.reviews import SITE_SUMMARY_SCHEMA, review_events_from_pages
from cx_pipeline.pipeline.surveys import quarantine_survey_file, survey_events_from_file
from cx_pipeline.pipeline.time_layout import read_days
from cx_pipeline.sources import ParseError, ParseResult
from cx_pipeline.storage import ParquetStore

REVIEW_EVENTS_KEY = ["events", "review_events"]
SITE_SUMMARIES_KEY = ["events", "review_site_summaries"]
SURVEY_EVENTS_KEY = ["events", "survey_events"]
TOUCHPOINT_EVENTS_KEY = ["events", "touchpoint_events"]

EVENT_PREVIEW = ["source", "brand", "touchpoint", "metric", "score_raw", "language", "published_at", "title"]
EVENTS_META = {"cx/schema": "touchpoint_event"}
SUMMARY_UNIQUE = ("source_id", "kind", "name")


def survey_question_metadata(result: ParseResult | None) -> dict[str, object]:
    """The question registry's decisions, so an analyst can see and map what was left out."""
    facts = next((a for a in (result.aggregates if result else []) if a.get("kind") == "survey_questions"), None)
    if not facts:
        return {}
    mapped = pl.DataFrame(facts.get("mapped_questions") or [], infer_schema_length=None)
    unmapped = facts.get("unmapped_questions") or []
    template = yaml.safe_dump(
        {"questions": {q["key"]: {"metric": "other", "scale": None, "touchpoint": None} for q in unmapped}},
        allow_unicode=True,
        sort_keys=False,
    )
    return {
        "mapped_questions": MetadataValue.md(
            markdown_table(mapped, ["key", "metric", "scale", "touchpoint", "origin", "text"], n=50)
            if mapped.height
            else "none"
        ),
        "unmapped_questions": MetadataValue.md(
            "\n".join(f"- `{q['key']}`: {q.get('text', '')[:100]} ({q.get('reason', '')})" for q in unmapped) or "none"
        ),
        "question_map_template": MetadataValue.md(f"```yaml\n{template}```" if unmapped else "nothing to map"),
    }


@multi_asset(
    outs={
        "review_events": AssetOut(
            key=REVIEW_EVENTS_KEY,
            metadata=EVENTS_META,
            kinds={"parquet"},
            description="Touchpoint events from the day's archived review pages.",
        ),
        "review_site_summaries": AssetOut(
            key=SITE_SUMMARIES_KEY,
            kinds={"parquet"},
            description="TrustScore / AggregateRating snapshots per fetched page.",
        ),
    },
    ins={"review_pages": AssetIn(key=RAW_PAGES_KEY)},
    group_name="events",
    partitions_def=DAILY,
    check_specs=[
        *event_check_specs(REVIEW_EVENTS_KEY),
        dataset_check_spec(SITE_SUMMARIES_KEY, SUMMARY_UNIQUE),
        AssetCheckSpec(
            "reviews_found",
            asset=REVIEW_EVENTS_KEY,
            description="Pages fetched OK yielded reviews: a crawl that parsed nothing is reported, "
            "not passed as 0 new reviews.",
        ),
    ],
)
def review_events(
    context: AssetExecutionContext,
    review_pages: pl.DataFrame,
    data_store: DataStore,
    customer_keys: CustomerKeys,
):
    out = review_events_from_pages(review_pages, data_store.archive(), customer_keys.keyer())
    ev = out.events
    # the day's rejects replace the day's earlier ones, in the same step as its events
    rejects_at = write_batch_rejects(data_store.store(), review_batch(context.partition_key), out.rejects)
    context.log.info(f"{out.pages_parsed} page(s) parsed into {ev.height} event(s); {out.rejects.height} reject(s)")
    yield Output(
        ev,
        output_name="review_events",
        metadata=frame_metadata(
            ev,
            EVENT_PREVIEW,
            events_by_brand=counts_by(ev, "brand"),
            events_by_language=counts_by(ev, "language"),
            pages_parsed=out.pages_parsed,
            rejects=out.rejects.height,
            rejects_path=rejects_at or "none",
            notes=MetadataValue.md("\n".join(f"- {n}" for n in out.notes) or "none"),
        ),
    )
    yield Output(
        out.summaries,
        output_name="review_site_summaries",
        metadata=frame_metadata(out.summaries, ["source_id", "kind", "rating_value", "rating_count"]),
    )
    yield from event_check_results(REVIEW_EVENTS_KEY, ev)
    yield dataset_check_result(SITE_SUMMARIES_KEY, out.summaries, SITE_SUMMARY_SCHEMA, SUMMARY_UNIQUE)
    ok_pages = review_pages.filter(pl.col("outcome") == "ok").height
    yield AssetCheckResult(
        asset_key=REVIEW_EVENTS_KEY,
        check_name="reviews_found",
        passed=ok_pages == 0 or ev.height > 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "pages_ok": ok_pages,
            "events": ev.height,
            "reason": "no pages fetched"
            if ok_pages == 0
            else ("ok" if ev.height else "pages parsed but held no reviews"),
        },
    )


@asset(
    key=SURVEY_EVENTS_KEY,
    ins={"survey_files": AssetIn(key=RAW_SURVEYS_KEY)},
    group_name="events",
    partitions_def=SURVEY_FILES,
    metadata=EVENTS_META,
    kinds={"parquet"},
    check_specs=[
        *event_check_specs(SURVEY_EVENTS_KEY),
        AssetCheckSpec(
            "file_readable",
            asset=SURVEY_EVENTS_KEY,
            description="The survey file parsed; an unreadable file is quarantined with a reason file.",
        ),
    ],
    description="Touchpoint events from one survey export (one event per mapped measure per response).",
)
def survey_events(
    context: AssetExecutionContext,
    survey_files: pl.DataFrame,
    data_store: DataStore,
    sources: SourcesFile,
    customer_keys: CustomerKeys,
):
    row = survey_files.row(0, named=True)
    cfg = sources.load()
    batch = survey_batch(context.partition_key)
    lineage = {"brand": str(row["brand"]), "source_kind": "survey", "raw_key": str(row["raw_key"])}
    try:
        outcome = survey_events_from_file(row, data_store.archive(), customer_keys.keyer(), cfg)
    except ParseError as exc:
        write_batch_rejects(data_store.store(), batch, file_refused(batch, exc, **lineage))
        where = quarantine_survey_file(cfg, data_store.archive(), row, str(exc))
        context.log.error(f"{exc} — quarantined to {where}")
        ev = empty_events()
        yield Output(ev, metadata=frame_metadata(ev, EVENT_PREVIEW, error=str(exc), quarantined_to=where))
        yield from event_check_results(SURVEY_EVENTS_KEY, ev)
        yield AssetCheckResult(
            asset_key=SURVEY_EVENTS_KEY,
            check_name="file_readable",
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata={"file": row["file_name"], "error": str(exc), "quarantined_to": where},
        )
        return
    ev = outcome.events
    refused = outcome.result.rejects if outcome.result else []
    parser = outcome.result.parser if outcome.result else None
    stored = batch_rejects(batch, outcome.path, refused, **lineage, parser=parser)
    write_batch_rejects(data_store.store(), batch, stored)  # replaces the file's earlier rejects
    extra = survey_question_metadata(outcome.result)
    yield Output(
        ev,
        metadata=frame_metadata(
            ev,
            EVENT_PREVIEW,
            file=row["file_name"],
            format=outcome.format or "",
            responses=outcome.result.record_count if outcome.result else 0,
            rejects=len(refused),
            events_by_metric=counts_by(ev, "metric"),
            notes=MetadataValue.md("\n".join(f"- {n}" for n in outcome.notes) or "none"),
            **extra,
        ),
    )
    yield from event_check_results(SURVEY_EVENTS_KEY, ev)
    yield AssetCheckResult(
        asset_key=SURVEY_EVENTS_KEY,
        check_name="file_readable",
        passed=True,
        metadata={"file": row["file_name"], "format": outcome.format or ""},
    )


def checked_store(data_store: DataStore, sources: SourcesFile, *, need_events: bool = False) -> ParquetStore:
    """The data root's store once it is known to be reachable and to hold ingested batches (and, with
    ``need_events``, touchpoint events): an unreachable or empty root fails here in one sentence naming the
    root and the remedy, never retried, instead of empty tables that pass their checks and break cx_metrics."""
    store = data_store.store()
    inbox = sources.load().survey_inbox
    try:
        check_reachable(store)
        (require_touchpoint_events if need_events else require_ingested)(store, inbox.path if inbox else None)
    except DataRootError as exc:
        raise Failure(str(exc), allow_retries=False) from None
    return store


class TouchpointEventsConfig(Config):
    full_rebuild: bool = False
    """Rebuild every day from all batch files (after deleting batches by hand, or to verify the incremental
    table); a daily run merges only new or changed batch files."""


@asset(
    key=TOUCHPOINT_EVENTS_KEY,
    deps=[
        AssetDep(REVIEW_EVENTS_KEY, partition_mapping=AllPartitionMapping()),
        AssetDep(SURVEY_EVENTS_KEY, partition_mapping=AllPartitionMapping()),
        AssetDep(RAW_PAGES_KEY, partition_mapping=AllPartitionMapping()),
    ],
    group_name="events",
    metadata={**EVENTS_META, "cx/partition_by": ["month", "day"]},
    kinds={"parquet"},
    check_specs=event_check_specs(TOUCHPOINT_EVENTS_KEY),
    description="The analyst table: every touchpoint event once (latest version), removed reviews marked, "
    "Hive-partitioned by month and day of the experience date. A run merges only new or changed batch files into "
    "the days they reach.",
)
def touchpoint_events(context: AssetExecutionContext, config: TouchpointEventsConfig, data_store: DataStore,
                      sources: SourcesFile):
    """Thin wiring over ``update_touchpoint_events``: it reads the batch files itself (one listing, only the new
    ones), so the run's cost follows the new batches, not the history."""
    store = checked_store(data_store, sources)
    update = update_touchpoint_events(store, full=config.full_rebuild)
    written = sorted(d for d, rows in update.days_written.items() if rows)
    touched = read_days(store, TOUCHPOINT_EVENTS_DATASET, written, schema=EVENT_SCHEMA)
    ev = touched if touched is not None else empty_events()
    context.log.info(f"{update.batches_read} batch file(s), {update.events_in} event(s) merged into "
                     f"{len(update.days_written)} day(s) ({update.reason})")
    return MaterializeResult(
        metadata=frame_metadata(
            ev,
            EVENT_PREVIEW,
            days_rewritten=len(update.days_written),
            rows_rewritten=sum(update.days_written.values()),
            batch_files_read=update.batches_read,
            events_merged=update.events_in,
            full_rebuild=update.full,
            reason=update.reason,
            events_by_source=counts_by(ev, "source"),
        ),
        check_results=event_check_results(TOUCHPOINT_EVENTS_KEY, ev),
    )
