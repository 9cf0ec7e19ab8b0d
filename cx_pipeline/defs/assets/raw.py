"""Raw group: pages and files exactly as fetched, archived by content hash, with their fetch metadata."""

from datetime import UTC, datetime

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
)

from cx_pipeline.defs.automation import WORKER_TAG, run_worker_token
from cx_pipeline.defs.checks import dataset_check_result, dataset_check_spec
from cx_pipeline.defs.metadata import counts_by, frame_metadata
from cx_pipeline.defs.partitions import DAILY, SURVEY_FILES
from cx_pipeline.defs.resources import DataStore, ReviewSiteClient, SourcesFile
from cx_pipeline.pipeline.reviews import INCOMPLETE_STOPS, RAW_PAGES_SCHEMA, CrawlHistory, crawl_review_sources
from cx_pipeline.pipeline.surveys import SURVEY_FILES_SCHEMA, find_survey_file, rule_for, survey_file_row

PAGES_UNIQUE = ("source_id", "page_no")

RAW_PAGES_KEY = ["raw", "review_pages"]
RAW_SURVEYS_KEY = ["raw", "survey_files"]


class ReviewCrawlConfig(Config):
    full_resync: bool = False
    """Page through every source to its last page even where pages hold only known reviews."""


@asset(
    key=RAW_PAGES_KEY,
    group_name="raw",
    partitions_def=DAILY,
    kinds={"python", "parquet"},
    pool="review_sites",
    # no step retry: it would re-crawl every source for one source's deterministic failure (a parse error, a
    # block) and delay the day by minutes; transient network errors are retried per request by the HTTP client
    check_specs=[
        dataset_check_spec(RAW_PAGES_KEY, PAGES_UNIQUE),
        AssetCheckSpec(
            "not_blocked",
            asset=RAW_PAGES_KEY,
            # not blocking: one broken source must not hold back the events of the healthy ones; the check
            # fails with ERROR severity naming every problem source, URL and reason
            blocking=False,
            description="No review source was blocked (403/WAF/captcha/login wall), changed layout, served an "
            "unparsable page or failed to fetch; a failure names the source, URL and reason.",
        ),
    ],
    description="Every review page fetched in the day's crawl: archived bytes (raw/blobs) and fetch metadata. "
    "A source that fails keeps its own rows (outcome blocked / changed / error with the reason).",
)
def review_pages(
    context: AssetExecutionContext,
    config: ReviewCrawlConfig,
    data_store: DataStore,
    sources: SourcesFile,
    review_site_client: ReviewSiteClient,
) -> pl.DataFrame:
    cfg = sources.load()
    client = review_site_client.client(cfg)
    archive = data_store.archive()
    history = CrawlHistory.from_store(data_store.store(), archive, before_day=context.partition_key)
    pages, crawls = crawl_review_sources(cfg, client, archive, history=history, full_resync=config.full_resync)
    problems = [f"{c.source.id}: {p}" for c in crawls for p in c.problems]
    bad = pages.filter(pl.col("outcome").is_in(["blocked", "changed", "error"]))
    for row in bad.iter_rows(named=True):
        problems.append(
            f"{row['source_id']}: {row['outcome']} at {row['requested_url']} ({row['reason']}); "
            f"raw kept as {row['raw_key']}"
        )
    per_source = {c.source.id: f"{len(c.rows)} page(s), stopped: {c.stop_reason}" for c in crawls}
    failed_sources = sorted({c.source.id for c in crawls if c.stop_reason in INCOMPLETE_STOPS or c.problems})
    for line in problems:
        context.log.error(line)
    yield Output(
        pages,
        metadata=frame_metadata(
            pages,
            ["source_id", "page_no", "status", "outcome", "record_count", "language_filter", "reason"],
            pages_by_outcome=counts_by(pages, "outcome"),
            sources=per_source,
            reviews_listed=int(pages["record_count"].fill_null(0).sum()),
        ),
    )
    yield dataset_check_result(RAW_PAGES_KEY, pages, RAW_PAGES_SCHEMA, PAGES_UNIQUE)
    yield AssetCheckResult(
        asset_key=RAW_PAGES_KEY,
        check_name="not_blocked",
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description=(f"{len(failed_sources)} review source(s) with problems: {', '.join(failed_sources)}"
                     if failed_sources else "every review source crawled cleanly"),
        metadata={
            "problems": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
            "problem_sources": MetadataValue.json(failed_sources),
            "sources": MetadataValue.json(per_source),
        },
    )


@asset(
    key=RAW_SURVEYS_KEY,
    group_name="raw",
    partitions_def=SURVEY_FILES,
    kinds={"python", "parquet"},
    check_specs=[dataset_check_spec(RAW_SURVEYS_KEY, ("file_key",))],
    description="One survey export from the inbox, archived by content hash (partition = first 16 hex of SHA-256).",
)
def survey_files(context: AssetExecutionContext, data_store: DataStore, sources: SourcesFile):
    # which process runs this ingest: the inbox sensor retries the file when that process is gone
    context.instance.add_run_tags(context.run.run_id, {WORKER_TAG: run_worker_token()})
    cfg = sources.load()
    if cfg.survey_inbox is None:
        raise Failure(f"{cfg.path}: no survey_inbox configured, but survey file {context.partition_key} was requested")
    archive = data_store.archive()
    found = find_survey_file(cfg.survey_inbox, archive, context.partition_key)
    rule = rule_for(cfg.survey_inbox, found.file_name)
    row = survey_file_row(
        data=found.data,
        file_name=found.file_name,
        inbox_path=found.location,
        raw_key=found.raw_key,
        rule=rule,
        archived_at=datetime.now(UTC),
    )
    yield Output(row, metadata=frame_metadata(row, ["file_name", "bytes", "brand", "format", "raw_key"]))
    yield dataset_check_result(RAW_SURVEYS_KEY, row, SURVEY_FILES_SCHEMA, ("file_key",))
