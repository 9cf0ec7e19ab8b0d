"""Measures (what a parser read) → touchpoint events (the contract). Vectorized over polars frames."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
import polars_hash as plh

from cx_pipeline.contract import COLUMN_NAMES, SCHEMA_VERSION, conform, empty_events
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.contract.taxonomy import check_touchpoint, taxonomy_version, touchpoints
from cx_pipeline.normalize.redact import redact_expr
from cx_pipeline.sources.base import MEASURE_SCHEMA, ParseError, ParseResult

#: columns whose change makes a new version of an event
_VERSIONED = ("score_raw", "title", "text", "reply_text", "replied_at", "updated_at", "is_verified")


@dataclass(frozen=True)
class NormalizeContext:
    brand: str
    source_url: str
    raw_key: str
    ingested_at: datetime
    keyer: CustomerKeyer
    default_touchpoint: str = "overall"
    source_kind: str | None = None  # defaults to the format's kind


def _hash_concat(columns: list[pl.Expr], name: str) -> pl.Expr:
    """SHA-256 (first 32 hex) of the parts joined by U+001F, vectorized (polars-hash); identical to
    ``hashlib.sha256`` of the same string, so ids stay stable across polars versions and machines."""
    parts = [c.cast(pl.String).fill_null("\x00") for c in columns]
    return plh.concat_str(*parts, separator="\x1f").chash.sha2_256().str.slice(0, 32).alias(name)


def _customer_keys(refs: pl.Series, keyer: CustomerKeyer) -> pl.Series:
    """Keyed hash per distinct identifier (normalized in polars, hashed once each), mapped back to rows."""
    norm = refs.str.strip_chars().str.to_lowercase()
    norm = norm.set(norm == "", None)  # type: ignore[arg-type]
    uniques = norm.drop_nulls().unique()
    lookup = pl.DataFrame({"_ref": uniques, "_key": pl.Series(keyer.keys(uniques.to_list()), dtype=pl.String)})
    return norm.to_frame("_ref").join(lookup, on="_ref", how="left", maintain_order="left")["_key"]


def to_events(result: ParseResult, ctx: NormalizeContext, *, source_kind: str) -> pl.DataFrame:
    """Contract events for one parsed page/file. Deterministic given the same inputs."""
    m = result.measures
    if m.height == 0:
        return empty_events()
    missing = set(MEASURE_SCHEMA) - set(m.columns)
    if missing:
        raise ParseError(ctx.source_url, f"parser {result.parser} emitted measures without {sorted(missing)} "
                                         "(a parser bug)")
    check_touchpoint(ctx.default_touchpoint, where=f"default touchpoint for {ctx.source_url}")
    source = result.source
    ingested = ctx.ingested_at
    bad_tp = (
        m.lazy()
        .select(pl.col("touchpoint").drop_nulls().unique())
        .filter(~pl.col("touchpoint").is_in(list(touchpoints())))
        .collect()["touchpoint"]
        .to_list()
    )
    if bad_tp:
        raise ParseError(ctx.source_url, f"parser {result.parser} produced unknown touchpoint(s) {bad_tp}")
    keys = _customer_keys(m["customer_ref"], ctx.keyer)
    span = pl.col("scale_max") - pl.col("scale_min")
    # one lazy plan, collected once: no full-size intermediate frames between the steps
    df = (
        m.lazy()
        .drop("customer_ref")  # the clear identifier leaves here; only its keyed hash goes on
        .with_columns(
            customer_key=pl.lit(keys),
            touchpoint=pl.col("touchpoint").fill_null(ctx.default_touchpoint),
            record_id=pl.lit(f"{source}:") + pl.col("native_id"),
            score_norm=pl.when(span > 0)
            .then(
                pl.when(pl.col("higher_is_better").fill_null(True))
                .then((pl.col("score_raw") - pl.col("scale_min")) / span)
                .otherwise((pl.col("scale_max") - pl.col("score_raw")) / span)
            )
            .otherwise(None)
            .clip(0.0, 1.0),
            text=redact_expr(pl.col("text")),
            title=redact_expr(pl.col("title")),
            reply_text=redact_expr(pl.col("reply_text")),  # support staff sign with their address/hotline
            language=pl.col("language").str.to_lowercase(),
        )
        .with_columns(
            _hash_concat([pl.lit("event"), pl.lit(source), pl.col("record_id"), pl.col("measure_key")], "event_id"),
            _hash_concat([pl.col(c) for c in _VERSIONED], "content_hash"),
            source=pl.lit(source),
            source_kind=pl.lit(source_kind),
            brand=pl.lit(ctx.brand),
            taxonomy_version=pl.lit(taxonomy_version()),
            ingested_at=pl.lit(ingested).cast(pl.Datetime("us", "UTC")),
            language_origin=pl.when(pl.col("language").is_not_null())
            .then(pl.lit("declared"))
            .otherwise(pl.lit("unknown")),
            is_removed=pl.lit(False),
            source_url=pl.lit(ctx.source_url),
            raw_ref=pl.lit(f"{ctx.raw_key}#") + pl.col("position"),
            parser=pl.lit(result.parser),
            schema_version=pl.lit(SCHEMA_VERSION),
        )
        .select(list(COLUMN_NAMES))
        .collect()
    )
    return conform(df)


def latest_versions(events: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Each event once: its latest version (by source update time, then ingestion time)."""
    lf = events.lazy()
    return (
        lf.sort(["event_id", "updated_at", "ingested_at", "content_hash"], nulls_last=False)
        .group_by("event_id", maintain_order=True)
        .last()
        .sort(["brand", "source", "record_id", "measure_key"])
    )
