"""The analyst-facing touchpoint_events table: every event once, latest version, removals marked."""

from __future__ import annotations

import polars as pl

from cx_pipeline.contract import EVENT_POLARS_SCHEMA, conform, empty_events
from cx_pipeline.normalize import latest_versions

COMPLETE_CRAWL = "last_page"


def _raw_key(expr: pl.Expr) -> pl.Expr:
    return expr.str.split("#").list.first()


def mark_removed_reviews(events: pl.LazyFrame, pages: pl.LazyFrame | None) -> pl.LazyFrame:
    """Soft-delete reviews that a later *complete* crawl of their source no longer lists.

    A record is removed when its newest sighting (ingested_at) is older than the start of the latest
    complete crawl (paged to the last page) of the source that listed it. Incremental crawls that stop
    early prove nothing about absence and are ignored. A review that reappears is seen again by a
    newer crawl, so its latest version is not removed: the mark is reversible.
    """
    if pages is None:
        return events
    page_cols = pages.collect_schema().names()
    if not {"source_id", "raw_key", "fetched_at", "stop_reason", "crawl_started_at"} <= set(page_cols):
        return events
    page_source = pages.select("raw_key", "source_id").unique(subset="raw_key", keep="first")
    complete = (
        pages.filter(pl.col("stop_reason") == COMPLETE_CRAWL)
        .group_by("source_id")
        .agg(pl.col("crawl_started_at").max().alias("last_complete_crawl"))
    )
    sightings = (
        events.select("record_id", raw_key=_raw_key(pl.col("raw_ref")), ingested_at="ingested_at")
        .join(page_source, on="raw_key", how="inner")
        .group_by("record_id")
        .agg(pl.col("ingested_at").max().alias("last_seen"), pl.col("source_id").first())
        .join(complete, on="source_id", how="inner")
        .filter(pl.col("last_seen") < pl.col("last_complete_crawl"))
        .select("record_id", removed=pl.lit(True))
    )
    return (
        events.join(sightings, on="record_id", how="left")
        .with_columns(is_removed=pl.col("is_removed") | pl.col("removed").fill_null(False))
        .drop("removed")
    )


def build_touchpoint_events(parts: list[pl.LazyFrame | None], pages: pl.LazyFrame | None = None) -> pl.DataFrame:
    """Union every events partition, keep each event's latest version, mark removed reviews."""
    frames = [p.select(list(EVENT_POLARS_SCHEMA)) for p in parts if p is not None]
    if not frames:
        return empty_events()
    latest = latest_versions(pl.concat(frames, how="vertical"))
    return conform(mark_removed_reviews(latest, pages).collect())
