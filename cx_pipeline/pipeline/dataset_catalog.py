"""Every dataset the pipeline writes, with its layout and schema, from the schemas the code declares.

``docs/datasets.md`` is generated from this catalog (``cx-pipeline dictionary``) and a test fails
when it is stale, so the docs cannot drift from what the assets write.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from cx_pipeline.pipeline.column_docs import (
    AGGREGATE_DOCS,
    DRIVER_DOCS,
    JOURNEY_DOCS,
    PEAK_DOCS,
    REJECT_DOCS,
    REPLY_DOCS,
)
from cx_pipeline.pipeline.parse_files import REJECTS_DATASET, STORED_REJECT_SCHEMA
from cx_pipeline.pipeline.reviews import RAW_PAGES_SCHEMA, SITE_SUMMARY_SCHEMA
from cx_pipeline.pipeline.surveys import SURVEY_FILES_SCHEMA
from cx_pipeline.scoring import AGGREGATE_SCHEMA, ALERT_SCHEMA, DRIVER_SCHEMA, JOURNEY_SCHEMA, PEAK_SCHEMA
from cx_pipeline.scoring.alerts import ALERT_TEST_COLUMNS, ALERT_TEST_SCHEMA
from cx_pipeline.scoring.reply_latency import REPLY_SCHEMA
from cx_pipeline.scoring.text import SCORED_TEXT_COLUMNS
from cx_pipeline.scoring.text.mentions import MENTION_COLUMNS


@dataclass(frozen=True)
class Dataset:
    path: str
    layout: str
    what: str
    schema: dict[str, pl.DataType] | None  # None: the touchpoint-event contract
    extra_descriptions: dict[str, str] | None = None


RAW_PAGES_NOTES = {
    "source_id": "Review source id from the sources file.",
    "page_no": "Position of the page in this crawl (1-based).",
    "requested_url": "URL asked for (with forced parameters such as languages=all).",
    "final_url": "URL after redirects (only to configured hosts).",
    "status": "HTTP status; null when no response arrived.",
    "outcome": "ok, not_modified (304), blocked, changed, superseded or error.",
    "reason": "Why a page is blocked/changed/failed, in words.",
    "raw_key": "Key of the archived body under raw/blobs (kept for blocked pages too).",
    "etag": "ETag for the next conditional request.",
    "last_modified": "Last-Modified for the next conditional request.",
    "record_count": "Reviews the page listed.",
    "language_filter": "Language filter the page says it applied (must be 'all' on Trustpilot).",
    "crawl_started_at": "Start of the crawl this page belongs to (UTC).",
    "stop_reason": "Why the crawl stopped: last_page, max_pages, known_reached, blocked, changed, failed.",
}
SUMMARY_NOTES = {
    "kind": "business_unit (Trustpilot) or aggregate_rating (schema.org).",
    "rating_value": "TrustScore or AggregateRating ratingValue.",
    "rating_count": "Number of reviews/ratings the page states.",
    "stars_1": "Star histogram (Trustpilot), count of 1-star reviews; stars_2..stars_5 likewise.",
}
SURVEY_FILE_NOTES = {
    "file_key": "Partition key: first 16 hex of the file's SHA-256.",
    "inbox_path": "Where the file is now (processed/ after archiving).",
    "format": "Format from the inbox rules, or auto (detected from content).",
    "archived_at": "When the file was taken from the inbox (UTC); the events' ingested_at.",
}

CATALOG: tuple[Dataset, ...] = (
    Dataset(
        "raw/blobs/", "`<sha256[:2]>/<sha256>.gz`", "Every fetched page and dropped file, exactly as received.", {}
    ),
    Dataset(
        "raw/review_pages",
        "`day=YYYY-MM-DD/`",
        "One row per page fetched by the day's crawl.",
        RAW_PAGES_SCHEMA,
        RAW_PAGES_NOTES,
    ),
    Dataset(
        "raw/survey_files",
        "`file=<sha256[:16]>/`",
        "One row per survey export taken from the inbox.",
        SURVEY_FILES_SCHEMA,
    ),
    Dataset("events/review_events", "`day=YYYY-MM-DD/`", "Touchpoint events from the day's review pages.", None),
    Dataset(
        "events/review_site_summaries",
        "`day=YYYY-MM-DD/`",
        "TrustScore / AggregateRating snapshot per source and fetch.",
        SITE_SUMMARY_SCHEMA,
    ),
    Dataset("events/survey_events", "`file=<sha256[:16]>/`", "Touchpoint events from one survey export.", None),
    Dataset(
        REJECTS_DATASET,
        "`batch=reviews-YYYY-MM-DD/` or `batch=survey-<sha256[:16]>/`",
        "Records (or values) the parsers refused one by one, and pages/files refused whole, with the reason; written "
        "with each batch's events and replaced with them.",
        STORED_REJECT_SCHEMA,
        REJECT_DOCS,
    ),
    Dataset(
        "events/touchpoint_events",
        "`month=YYYY-MM/` (UTC month of the experience date, else publication; `undated`)",
        "The analyst table: every event once (latest version), removed reviews marked.",
        None,
    ),
    Dataset(
        "scored/scored_events",
        "`month=YYYY-MM/` (UTC month of the experience date, else publication; `undated`)",
        "touchpoint_events plus the text-scoring columns below.",
        {name: dtype for name, (dtype, _) in SCORED_TEXT_COLUMNS.items()},
        {name: desc for name, (_, desc) in SCORED_TEXT_COLUMNS.items()},
    ),
    Dataset(
        "scored/touchpoint_mentions",
        "`month=YYYY-MM/` (UTC month of the experience date, else publication; `undated`)",
        "One row per event × touchpoint its text talks about: each text is cut into clauses (sentences and "
        "contrast words), each clause tagged and scored on its own; a clause with sentiment but no touchpoint "
        "word counts for the event's own touchpoint. A survey comment is mentioned once per response.",
        {name: dtype for name, (dtype, _) in MENTION_COLUMNS.items()},
        {name: desc for name, (_, desc) in MENTION_COLUMNS.items()},
    ),
    Dataset(
        "scored/cx_metrics",
        "one file",
        "NPS/CSAT/CES/stars/rating/sentiment per brand × touchpoint × source × "
        "period (day, ISO week, month, all) with n, respondents, design effect, bounded CI, unit and low-n flag.",
        AGGREGATE_SCHEMA,
        AGGREGATE_DOCS,
    ),
    Dataset(
        "scored/key_drivers",
        "one file",
        "Shapley regression and text-impact drivers per brand and period, with bootstrap intervals and units.",
        DRIVER_SCHEMA,
        DRIVER_DOCS,
    ),
    Dataset(
        "scored/peaks_potholes",
        "one file",
        "Peak and pothole rates per touchpoint with Wilson CIs and examples.",
        PEAK_SCHEMA,
        PEAK_DOCS,
    ),
    Dataset(
        "scored/customer_journeys",
        "one file",
        "Peak-end score per customer journey (keyed hash, no identity).",
        JOURNEY_SCHEMA,
        JOURNEY_DOCS,
    ),
    Dataset(
        "scored/reply_latency",
        "one file",
        "Reply rate (Wilson CI) and hours to reply for public reviews, per brand × source × period.",
        REPLY_SCHEMA,
        REPLY_DOCS,
    ),
    Dataset(
        "scored/alert_tests",
        "one file",
        "Every series × period of the drop tests: tested (z, one-sided p, Benjamini–Hochberg adjusted p, flagged) "
        "or skipped with the reason, so what was not tested is visible.",
        ALERT_TEST_SCHEMA,
        ALERT_TEST_COLUMNS,
    ),
    Dataset(
        "scored/cx_alerts",
        "one file",
        "The flagged drops of scored/alert_tests with a message naming the numbers.",
        ALERT_SCHEMA,
        {**ALERT_TEST_COLUMNS, "message": "The alert in words, with values, z, p, adjusted p and n."},
    ),
)


def footer_schema(dataset: str) -> pa.Schema | None:
    """The arrow schema of a non-event dataset with each column's description as field metadata (the Parquet
    footer), from the catalog; None for datasets without a declared schema."""
    entry = next((d for d in CATALOG if d.path == dataset), None)
    if entry is None or not entry.schema:
        return None
    arrow = pl.DataFrame(schema=entry.schema).to_arrow().schema
    docs = entry.extra_descriptions or {}
    return pa.schema([f.with_metadata({"description": docs[f.name]}) if f.name in docs else f for f in arrow])


def described_schema(frame: pl.DataFrame, dataset: str) -> pa.Schema:
    """The frame's arrow schema with a description on every column the catalog or the event contract documents,
    for datasets that extend the contract (scored events) or are written part by part (month partitions)."""
    from cx_pipeline.contract import EVENT_SCHEMA

    docs: dict[str, bytes] = {}
    for known in (EVENT_SCHEMA, footer_schema(dataset)):
        if known is None:
            continue
        for f in known:
            if f.metadata and b"description" in f.metadata:
                docs[f.name] = f.metadata[b"description"]
    arrow = frame.to_arrow().schema
    return pa.schema([f.with_metadata({"description": docs[f.name]}) if f.name in docs else f for f in arrow])


def catalog_markdown() -> str:
    lines = [
        "# Datasets",
        "",
        "Generated from the schemas declared in the code by `cx-pipeline dictionary`; a test fails when this file "
        "is stale. Paths are relative to the data root (`CX_PIPELINE_DATA_ROOT`). Partition columns are folder "
        "names (Hive style); the touchpoint-event columns are described in [data_dictionary.md](data_dictionary.md).",
        "",
    ]
    for ds in CATALOG:
        lines += [f"## `{ds.path}`", "", f"{ds.what} Layout: {ds.layout}.", ""]
        if ds.schema is None:
            lines += ["Columns: the touchpoint-event contract (see data_dictionary.md).", ""]
            continue
        if not ds.schema:
            continue
        if ds.path == "scored/scored_events":
            lines += ["Columns: the touchpoint-event contract, plus:", ""]
        lines += ["| column | type | description |", "|---|---|---|"]
        for name, dtype in ds.schema.items():
            desc = (ds.extra_descriptions or {}).get(name, "")
            lines.append(f"| `{name}` | `{dtype}` | {desc} |")
        lines.append("")
    return "\n".join(lines)
