"""Review pages: crawl the configured sources into the raw archive, then parse archived pages to events.

Fetching and parsing are separate steps on purpose: every page is archived exactly as fetched
(blocked and changed pages too, for inspection), and events are always built from the archive, so a
new parser version can rebuild them without refetching.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from cx_pipeline.config import ReviewSource, SourcesConfig
from cx_pipeline.contract import empty_events
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.fetch import HttpClient, crawl
from cx_pipeline.normalize import NormalizeContext, latest_versions, to_events
from cx_pipeline.sources import ParseError, ParseResult, get_format
from cx_pipeline.storage import RawArchive

UTC_DT = pl.Datetime("us", "UTC")

#: one row per fetched page (the raw review_pages dataset)
RAW_PAGES_SCHEMA: dict[str, pl.DataType] = {
    "source_id": pl.String(),
    "brand": pl.String(),
    "format": pl.String(),
    "default_touchpoint": pl.String(),
    "page_no": pl.Int64(),
    "requested_url": pl.String(),
    "final_url": pl.String(),
    "status": pl.Int64(),
    "outcome": pl.String(),  # ok | not_modified | blocked | changed | error
    "reason": pl.String(),
    "raw_key": pl.String(),
    "sha256": pl.String(),
    "bytes": pl.Int64(),
    "content_type": pl.String(),
    "etag": pl.String(),
    "last_modified": pl.String(),
    "fetched_at": UTC_DT,
    "record_count": pl.Int64(),
    "language_filter": pl.String(),
    "crawl_started_at": UTC_DT,
    "stop_reason": pl.String(),
}

#: business-unit / AggregateRating snapshots, one row per page that carried one
SITE_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "source_id": pl.String(),
    "brand": pl.String(),
    "page_url": pl.String(),
    "fetched_at": UTC_DT,
    "raw_key": pl.String(),
    "kind": pl.String(),
    "name": pl.String(),
    "rating_value": pl.Float64(),
    "rating_count": pl.Int64(),
    "best_rating": pl.Float64(),
    "worst_rating": pl.Float64(),
    "stars_1": pl.Int64(),
    "stars_2": pl.Int64(),
    "stars_3": pl.Int64(),
    "stars_4": pl.Int64(),
    "stars_5": pl.Int64(),
}


@dataclass
class SourceCrawl:
    source: ReviewSource
    rows: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""
    problems: list[str] = field(default_factory=list)


def _crawl_one(
    source: ReviewSource,
    client: HttpClient,
    archive: RawArchive,
    known: Callable[[ReviewSource, ParseResult], bool] | None,
    full_resync: bool,
) -> SourceCrawl:
    fmt = None if source.format == "auto" else get_format(source.format)
    started = datetime.now(UTC)
    result = crawl(
        client, source.url, fmt, max_pages=source.max_pages,
        known=(lambda parsed: known(source, parsed)) if known else None, full_resync=full_resync,
    )
    out = SourceCrawl(source=source, stop_reason=result.stop_reason, problems=list(result.problems))
    for page_no, page in enumerate(result.pages, start=1):
        fetched = page.fetched
        body = fetched.body or b""
        raw_key = archive.put(body) if body else None
        parsed = page.result
        out.rows.append({
            "source_id": source.id, "brand": source.brand, "format": page.format_name or source.format,
            "default_touchpoint": source.default_touchpoint, "page_no": page_no,
            "requested_url": fetched.url, "final_url": fetched.final_url, "status": fetched.status,
            "outcome": page.outcome, "reason": page.reason, "raw_key": raw_key,
            "sha256": RawArchive.digest(body) if body else None, "bytes": len(body),
            "content_type": fetched.headers.get("content-type"), "etag": fetched.headers.get("etag"),
            "last_modified": fetched.headers.get("last-modified"), "fetched_at": fetched.fetched_at,
            "record_count": parsed.record_count if parsed else None,
            "language_filter": parsed.page.language_filter if parsed and parsed.page else None,
            "crawl_started_at": started, "stop_reason": result.stop_reason,
        })
    return out


def crawl_review_sources(
    config: SourcesConfig,
    client: HttpClient,
    archive: RawArchive,
    *,
    known: Callable[[ReviewSource, ParseResult], bool] | None = None,
    full_resync: bool = False,
    max_parallel_hosts: int = 4,
) -> tuple[pl.DataFrame, list[SourceCrawl]]:
    """Crawl every configured review source (hosts in parallel; the client rate-limits each host)."""
    sources = list(config.review_sources)
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel_hosts, len(sources) or 1))) as pool:
        crawls = list(pool.map(lambda s: _crawl_one(s, client, archive, known, full_resync), sources))
    rows = [r for c in crawls for r in c.rows]
    return pl.DataFrame(rows, schema=RAW_PAGES_SCHEMA), crawls


@dataclass
class ReviewParseOutput:
    events: pl.DataFrame
    summaries: pl.DataFrame
    notes: list[str]
    pages_parsed: int


def _first_present(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _summary_rows(page: dict[str, Any], parsed: ParseResult) -> list[dict[str, Any]]:
    rows = []
    for agg in parsed.aggregates:
        hist = agg.get("histogram") or {}
        rows.append({
            "source_id": page["source_id"], "brand": page["brand"], "page_url": page["final_url"],
            "fetched_at": page["fetched_at"], "raw_key": page["raw_key"], "kind": agg.get("kind"),
            "name": agg.get("name") or agg.get("displayName"),
            "rating_value": agg.get("rating_value", agg.get("trustScore")),
            "rating_count": _first_present(agg, "rating_count", "review_count", "numberOfReviews"),
            "best_rating": agg.get("best_rating", 5.0 if agg.get("kind") == "business_unit" else None),
            "worst_rating": agg.get("worst_rating", 1.0 if agg.get("kind") == "business_unit" else None),
            **{f"stars_{k}": hist.get(str(k), hist.get(k)) for k in range(1, 6)},
        })
    return rows


def review_events_from_pages(pages: pl.DataFrame, archive: RawArchive, keyer: CustomerKeyer) -> ReviewParseOutput:
    """Events and site summaries from archived pages (only pages fetched OK carry reviews)."""
    frames: list[pl.DataFrame] = []
    summaries: list[dict[str, Any]] = []
    notes: list[str] = []
    parsed_count = 0
    for page in pages.filter(pl.col("outcome") == "ok").iter_rows(named=True):
        data = archive.get(page["raw_key"])
        fmt = get_format(page["format"])
        try:
            parsed = fmt.parse(data, location=page["final_url"])
        except ParseError as exc:
            notes.append(f"{page['source_id']}: {exc}")
            continue
        parsed_count += 1
        notes.extend(f"{page['final_url']}: {w}" for w in parsed.warnings)
        ctx = NormalizeContext(
            brand=page["brand"], source_url=page["final_url"], raw_key=page["raw_key"],
            ingested_at=page["fetched_at"], keyer=keyer, default_touchpoint=page["default_touchpoint"],
        )
        frames.append(to_events(parsed, ctx, source_kind=fmt.kind))
        summaries.extend(_summary_rows(page, parsed))
    events = pl.concat(frames) if frames else empty_events()
    # the same review can sit on two pages of one crawl (relevance sort shifts while paging)
    events = latest_versions(events).collect()
    return ReviewParseOutput(
        events=events, summaries=pl.DataFrame(summaries, schema=SITE_SUMMARY_SCHEMA), notes=notes,
        pages_parsed=parsed_count,
    )
