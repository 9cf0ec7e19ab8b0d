"""The touchpoint-event contract: the single definition every writer, check and doc derives from.

One row is one measurement of the customer experience at one touchpoint, taken from one review or
one survey response. A survey response with an NPS answer, two CSAT questions and a comment becomes
several events sharing one ``record_id``.

Change this file and the data dictionary (``docs/data_dictionary.md``) together: a test regenerates
the dictionary from this schema and fails when they disagree (``cx-pipeline dictionary`` rewrites it).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

SCHEMA_VERSION = "1.2"  # 1.1: location; 1.2: weight

SOURCE_KINDS = ("review", "survey")
METRICS = ("star_rating", "nps", "csat", "ces", "rating", "comment")
LANGUAGE_ORIGINS = ("declared", "detected", "unknown")

UTC_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool
    description: str


COLUMNS: tuple[Column, ...] = (
    # identity
    Column(
        "event_id",
        pa.string(),
        False,
        "Deterministic id: hash of source, record_id, measure_key. The same source record and measure "
        "always give the same id, so re-fetching never duplicates.",
    ),
    Column(
        "record_id",
        pa.string(),
        False,
        "The review or survey response the event came from, namespaced by source "
        "(e.g. 'trustpilot:5faa…', 'qualtrics:SV_x:R_2YP…'). Events of one response share it.",
    ),
    Column(
        "measure_key",
        pa.string(),
        False,
        "Which measurement inside the record: 'stars', a survey question id such as 'Q54', 'comment'.",
    ),
    Column(
        "content_hash",
        pa.string(),
        False,
        "Hash of everything measured (score, texts, reply, dates). Differs between versions of one "
        "event_id, so an edited review or a new company reply is a new version.",
    ),
    Column(
        "source",
        pa.string(),
        False,
        "Source format: trustpilot, jsonld, microdata, qualtrics, surveymonkey, typeform, google_forms, csv, …",
    ),
    Column("source_kind", pa.string(), False, "review or survey."),
    Column("brand", pa.string(), False, "The company/brand the feedback is about, from the sources config."),
    # what was measured
    Column(
        "touchpoint",
        pa.string(),
        False,
        "Touchpoint from the versioned taxonomy (see taxonomy_version): overall, website, delivery, "
        "customer_service, product, price, returns, store, app, other.",
    ),
    Column("taxonomy_version", pa.string(), False, "Version of the touchpoint taxonomy used."),
    Column("metric", pa.string(), False, "star_rating, nps, csat, ces, rating or comment."),
    Column("score_raw", pa.float64(), True, "The answer as given on its own scale; null for comment events."),
    Column("scale_min", pa.float64(), True, "Lowest value of the scale the answer was given on."),
    Column("scale_max", pa.float64(), True, "Highest value of the scale the answer was given on."),
    Column("higher_is_better", pa.bool_(), True, "Scale direction; false for e.g. legacy effort scales."),
    Column(
        "score_norm",
        pa.float64(),
        True,
        "Direction-aware 0..1: (x-min)/(max-min), or (max-x)/(max-min) where lower is better.",
    ),
    # when
    Column("occurred_at", UTC_TS, True, "When the experience happened, where the source says (UTC)."),
    Column("published_at", UTC_TS, True, "When the review was published or the response recorded (UTC)."),
    Column("updated_at", UTC_TS, True, "When the source last changed the record (edit), if ever (UTC)."),
    Column("ingested_at", UTC_TS, False, "When this pipeline read the raw page or file (UTC)."),
    # text
    Column("language", pa.string(), True, "ISO 639-1 code of the text (da, no, sv, en, …)."),
    Column("language_origin", pa.string(), False, "declared (by the source), detected (by this pipeline) or unknown."),
    Column("title", pa.string(), True, "Review title, if any."),
    Column(
        "text",
        pa.string(),
        True,
        "Review text or the response's free-text comment, newlines kept, emails/phones redacted.",
    ),
    Column("reply_text", pa.string(), True, "The company's public reply, if any."),
    Column("replied_at", UTC_TS, True, "When the company replied (UTC)."),
    Column("is_verified", pa.bool_(), True, "Source's verification flag (e.g. invited / verified purchase)."),
    Column("country", pa.string(), True, "ISO 3166-1 alpha-2 country of the customer, where given."),
    Column(
        "location",
        pa.string(),
        True,
        "The business location the feedback is about (a store or branch), where the source names one.",
    ),
    Column(
        "customer_key",
        pa.string(),
        True,
        "Keyed hash (HMAC-SHA256, secret from CX_PIPELINE_HASH_SECRET) of the best customer identifier: "
        "links one customer's events without storing identity. Never a name or email.",
    ),
    Column(
        "weight",
        pa.float64(),
        True,
        "Survey weight of the response (from a mapped weight column, e.g. post-stratification); null = 1. Every "
        "cx_metrics value weights answers by it.",
    ),
    Column(
        "is_removed",
        pa.bool_(),
        False,
        "True when the record disappeared from its source (soft delete; reversible if it reappears).",
    ),
    # lineage
    Column("source_url", pa.string(), False, "The page URL or file the record was read from."),
    Column("raw_ref", pa.string(), False, "Which stored raw page/file and where in it: '<archive key>#<position>'."),
    Column("parser", pa.string(), False, "Parser name and version that produced the event, e.g. 'trustpilot@1.0'."),
    Column("schema_version", pa.string(), False, "Version of this contract."),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def _arrow_schema() -> pa.Schema:
    fields = [pa.field(c.name, c.type, nullable=c.nullable, metadata={"description": c.description}) for c in COLUMNS]
    return pa.schema(fields, metadata={"cx_pipeline.schema": "touchpoint_event", "schema_version": SCHEMA_VERSION})


EVENT_SCHEMA: pa.Schema = _arrow_schema()


def polars_schema() -> pl.Schema:
    """The contract as a polars schema (used to build and validate frames)."""
    empty = pl.from_arrow(EVENT_SCHEMA.empty_table())
    assert isinstance(empty, pl.DataFrame)
    return empty.schema


EVENT_POLARS_SCHEMA: pl.Schema = polars_schema()


class ContractError(ValueError):
    """A frame does not satisfy the touchpoint-event contract."""


def contract_violations(frame: pl.DataFrame | pa.Table) -> list[str]:
    """Every way ``frame`` breaks the contract (columns, types, nulls, enum values); empty when valid."""
    df = frame if isinstance(frame, pl.DataFrame) else pl.from_arrow(frame)
    assert isinstance(df, pl.DataFrame)
    problems: list[str] = []
    names = set(df.columns)
    for col in COLUMNS:
        if col.name not in names:
            problems.append(f"missing column {col.name!r}")
            continue
        want = EVENT_POLARS_SCHEMA[col.name]
        got = df.schema[col.name]
        if got != want and got != pl.Null:
            problems.append(f"column {col.name!r} has type {got}, contract says {want}")
        if not col.nullable:
            nulls = df[col.name].null_count()
            if nulls:
                problems.append(f"column {col.name!r} has {nulls} null(s) but is required")
    extra = names - set(COLUMN_NAMES)
    if extra:
        problems.append(f"unexpected column(s) {sorted(extra)}")
    if problems:
        return problems
    for name, allowed in (("source_kind", SOURCE_KINDS), ("metric", METRICS), ("language_origin", LANGUAGE_ORIGINS)):
        bad = df.filter(~pl.col(name).is_in(list(allowed)))[name].unique().to_list()
        if bad:
            problems.append(f"column {name!r} has values outside {list(allowed)}: {bad[:5]}")
    out_of_range = df.filter((pl.col("score_norm") < 0) | (pl.col("score_norm") > 1)).height
    if out_of_range:
        problems.append(f"{out_of_range} row(s) with score_norm outside 0..1")
    return problems


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast the contract columns in contract order; raise ContractError if impossible."""
    missing = [c for c in COLUMN_NAMES if c not in frame.columns]
    if missing:
        raise ContractError(f"missing contract column(s): {missing}")
    try:
        out = frame.select([pl.col(n).cast(EVENT_POLARS_SCHEMA[n]) for n in COLUMN_NAMES])
    except pl.exceptions.PolarsError as exc:  # pragma: no cover - message carries the column
        raise ContractError(f"cannot cast to the contract: {exc}") from exc
    problems = contract_violations(out)
    if problems:
        raise ContractError("; ".join(problems))
    return out


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    """Contract-shaped arrow table with the column descriptions attached (kept in the Parquet footer)."""
    return conform(frame).to_arrow().cast(EVENT_SCHEMA)


def empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema=EVENT_POLARS_SCHEMA)


def data_dictionary_markdown() -> str:
    """The data dictionary for docs/, generated from COLUMNS so the two cannot drift."""
    lines = [
        "# Touchpoint-event data dictionary",
        "",
        f"Contract version **{SCHEMA_VERSION}**. Generated from `cx_pipeline/contract/event_schema.py` by "
        "`cx-pipeline dictionary`; a test fails when this file and the schema disagree.",
        "",
        "| column | type | required | description |",
        "|---|---|---|---|",
    ]
    for c in COLUMNS:
        lines.append(f"| `{c.name}` | `{c.type}` | {'yes' if not c.nullable else 'no'} | {c.description} |")
    return "\n".join(lines) + "\n"
