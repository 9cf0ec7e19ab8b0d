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
from cx_pipeline.fetch import HttpClient, crawl, known_from_fingerprints, review_fingerprints
from cx_pipeline.normalize import NormalizeContext, latest_versions
from cx_pipeline.pipeline.parse_files import (
    STORED_REJECT_SCHEMA,
    batch_rejects,
    events_safely,
    file_refused,
    parse_safely,
)
from cx_pipeline.sources import ParseError, ParseResult, get_format
from cx_pipeline.storage import ParquetStore, RawArchive

UTC_DT = pl.Datetime("us", "UTC")
#: crawl stop reasons after which pages past the stop were never read
INCOMPLETE_STOPS = ("blocked", "changed", "failed")

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


def _page_row(source: ReviewSource, started: datetime, stop_reason: str, **values: Any) -> dict[str, Any]:
    """One raw/review_pages row: every column present, the source's identity filled in."""
    row: dict[str, Any] = dict.fromkeys(RAW_PAGES_SCHEMA)
    row.update(source_id=source.id, brand=source.brand, format=source.format,
               default_touchpoint=source.default_touchpoint, crawl_started_at=started, stop_reason=stop_reason)
    row.update(values)
    return row


def _crawl_one(
    source: ReviewSource,
    client: HttpClient,
    archive: RawArchive,
    known: Callable[[ReviewSource, ParseResult], bool] | None,
    full_resync: bool,
    history: CrawlHistory | None = None,
) -> SourceCrawl:
    fmt = None if source.format == "auto" else get_format(source.format)
    started = datetime.now(UTC)
    validators = history.validators if history else None
    if history is not None and not full_resync and not history.last_crawl_complete(source.id):
        # the last crawl stopped early (blocked, changed, failed): pages past that point were never read, so
        # neither a known page nor a 304 may stop this one before it reaches them
        known, validators = None, None
    result = crawl(
        client,
        source.url,
        fmt,
        max_pages=source.max_pages,
        known=(lambda parsed: known(source, parsed)) if known else None,
        full_resync=full_resync,
        validators=validators,
    )
    out = SourceCrawl(
        source=source,
        stop_reason=result.stop_reason,
        problems=[f"{p.kind} at {p.url}: {p.reason}" for p in result.problems],
    )
    for page_no, page in enumerate(result.pages, start=1):
        fetched = page.fetched
        body = fetched.body or b""
        raw_key = archive.put(body) if body else (history.raw_key_for(fetched.url) if history else None)
        parsed = page.result
        out.rows.append(_page_row(
            source, started, result.stop_reason,
            format=page.format_name or source.format,
            page_no=page_no,
            requested_url=fetched.url,
            final_url=fetched.final_url,
            status=fetched.status,
            outcome=page.outcome,
            reason=page.reason,
            raw_key=raw_key,
            sha256=RawArchive.digest(body) if body else None,
            bytes=len(body),
            content_type=fetched.headers.get("content-type"),
            etag=fetched.headers.get("etag"),
            last_modified=fetched.headers.get("last-modified"),
            fetched_at=fetched.fetched_at,
            record_count=parsed.record_count if parsed else None,
            language_filter=parsed.page.language_filter if parsed and parsed.page else None,
        ))
    # a stop that served no page (network failure, robots.txt refusal) still gets a row: visible, not silent
    for problem in result.problems:
        if problem.page is None and problem.kind in _STOP_OUTCOME:
            out.rows.append(_error_row(source, started, len(out.rows) + 1, problem.url, problem.reason,
                                       outcome=_STOP_OUTCOME[problem.kind], stop_reason=result.stop_reason))
    return out


#: page-row outcome of a crawl problem that stopped the source
_STOP_OUTCOME = {"failed": "error", "blocked": "blocked", "changed": "changed"}


def _error_row(source: ReviewSource, started: datetime, page_no: int, url: str, reason: str, *,
               outcome: str = "error", stop_reason: str = "failed") -> dict[str, Any]:
    return _page_row(source, started, stop_reason, page_no=page_no, requested_url=url, final_url=url,
                     outcome=outcome, reason=reason, bytes=0, fetched_at=datetime.now(UTC))


def _crawl_one_safely(
    source: ReviewSource,
    client: HttpClient,
    archive: RawArchive,
    known: Callable[[ReviewSource, ParseResult], bool] | None,
    full_resync: bool,
    history: CrawlHistory | None,
) -> SourceCrawl:
    """``_crawl_one``, with anything it raises turned into that source's error row.

    One source's surprise (a bug, a storage hiccup writing its blob) must not cost the other sources the
    day, nor re-run their crawls through a step retry; the row names the source, URL and exception.
    """
    started = datetime.now(UTC)
    try:
        return _crawl_one(source, client, archive, known, full_resync, history)
    except Exception as exc:
        reason = f"crawl aborted: {type(exc).__name__}: {exc}"
        return SourceCrawl(source=source, rows=[_error_row(source, started, 1, source.url, reason)],
                           stop_reason="failed", problems=[f"failed at {source.url}: {reason}"])


def crawl_review_sources(
    config: SourcesConfig,
    client: HttpClient,
    archive: RawArchive,
    *,
    history: CrawlHistory | None = None,
    full_resync: bool = False,
    max_parallel_hosts: int = 4,
) -> tuple[pl.DataFrame, list[SourceCrawl]]:
    """Crawl every configured review source (hosts in parallel; the client rate-limits each host).

    With ``history`` (what earlier crawls stored) the crawl is incremental: conditional requests
    and a stop at the first page whose reviews are all stored unchanged. Each source's failure stays in
    its own rows (outcome ``blocked`` / ``changed`` / ``error`` with the reason); the others are unaffected.
    """
    sources = list(config.review_sources)
    known = history.known if history else None
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel_hosts, len(sources) or 1))) as pool:
        crawls = list(pool.map(
            lambda s: _crawl_one_safely(s, client, archive, known, full_resync, history), sources))
    rows = [r for c in crawls for r in c.rows]
    return pl.DataFrame(rows, schema=RAW_PAGES_SCHEMA), crawls


class CrawlHistory:
    """What earlier crawls stored, for incremental crawling: validators per URL, review fingerprints.

    Fingerprints are rebuilt by re-parsing the archived pages of each source's latest crawl (cheap:
    a couple of milliseconds per page), so no second index can drift from the archive.
    """

    def __init__(self, pages: pl.DataFrame | None, archive: RawArchive) -> None:
        self.archive = archive
        self._pages = pages if pages is not None and pages.height else pl.DataFrame(schema=RAW_PAGES_SCHEMA)
        latest = (
            self._pages.filter(pl.col("raw_key").is_not_null() & pl.col("outcome").is_in(["ok", "not_modified"]))
            .sort("fetched_at")
            .group_by("requested_url")
            .last()
        )
        self._by_url = {r["requested_url"]: r for r in latest.iter_rows(named=True)}
        self._fingerprints: dict[str, dict[str, str]] = {}
        last = self._pages.filter(pl.col("crawl_started_at") == pl.col("crawl_started_at").max().over("source_id"))
        self._incomplete = set(
            last.filter(pl.col("stop_reason").is_in(list(INCOMPLETE_STOPS)))["source_id"].drop_nulls().to_list())

    def last_crawl_complete(self, source_id: str) -> bool:
        """False when the source's latest stored crawl stopped at a problem before its end."""
        return source_id not in self._incomplete

    def validators(self, url: str) -> tuple[str | None, str | None]:
        row = self._by_url.get(url)
        return (row["etag"], row["last_modified"]) if row else (None, None)

    def raw_key_for(self, url: str) -> str | None:
        row = self._by_url.get(url)
        return row["raw_key"] if row else None

    def fingerprints(self, source_id: str) -> dict[str, str]:
        if source_id not in self._fingerprints:
            prints: dict[str, str] = {}
            rows = self._pages.filter((pl.col("source_id") == source_id) & (pl.col("outcome") == "ok"))
            for row in rows.sort("fetched_at").iter_rows(named=True):
                try:
                    parsed = get_format(row["format"]).parse(
                        self.archive.get(row["raw_key"]), location=row["final_url"]
                    )
                except Exception:  # an unreadable old page only costs the early stop
                    continue
                prints.update(review_fingerprints(parsed))
            self._fingerprints[source_id] = prints
        return self._fingerprints[source_id]

    def known(self, source: ReviewSource, parsed: ParseResult) -> bool:
        return known_from_fingerprints(self.fingerprints(source.id))(parsed)

    @classmethod
    def from_store(
        cls,
        store: ParquetStore,
        archive: RawArchive,
        *,
        before_day: str | None = None,
        dataset: str = "raw/review_pages",
    ) -> CrawlHistory:
        """History from the stored crawl batches; ``before_day`` keeps only earlier daily partitions so
        re-running a day repeats that day's crawl instead of shrinking it to an incremental one."""
        days = [d for d in store.partition_values(dataset, "day") if before_day is None or d < before_day]
        lf = store.scan(dataset, [{"day": d} for d in days]) if days else None
        return cls(lf.collect() if lf is not None else None, archive)


@dataclass
class ReviewParseOutput:
    events: pl.DataFrame
    summaries: pl.DataFrame
    notes: list[str]
    pages_parsed: int
    #: records refused one by one and pages refused whole, as ``events/rejects`` rows (batch column empty)
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=STORED_REJECT_SCHEMA))


def _first_present(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _summary_rows(page: dict[str, Any], parsed: ParseResult) -> list[dict[str, Any]]:
    rows = []
    for agg in parsed.aggregates:
        hist = agg.get("histogram") or {}
        rows.append(
            {
                "source_id": page["source_id"],
                "brand": page["brand"],
                "page_url": page["final_url"],
                "fetched_at": page["fetched_at"],
                "raw_key": page["raw_key"],
                "kind": agg.get("kind"),
                "name": agg.get("name") or agg.get("displayName"),
                "rating_value": agg.get("rating_value", agg.get("trustScore")),
                "rating_count": _first_present(agg, "rating_count", "review_count", "numberOfReviews"),
                "best_rating": agg.get("best_rating", 5.0 if agg.get("kind") == "business_unit" else None),
                "worst_rating": agg.get("worst_rating", 1.0 if agg.get("kind") == "business_unit" else None),
                **{f"stars_{k}": hist.get(str(k), hist.get(k)) for k in range(1, 6)},
            }
        )
    return rows


def review_events_from_pages(pages: pl.DataFrame, archive: RawArchive, keyer: CustomerKeyer) -> ReviewParseOutput:
    """Events and site summaries from archived pages (only pages fetched OK carry reviews).

    A page that cannot be read, whatever the cause (a parser bug included), is a note and a rejects row; a
    review refused inside a page is a rejects row: neither costs the other pages or sources of the day.
    """
    frames: list[pl.DataFrame] = []
    summaries: list[dict[str, Any]] = []
    notes: list[str] = []
    refused: list[pl.DataFrame] = []
    parsed_count = 0
    for page in pages.filter(pl.col("outcome") == "ok").iter_rows(named=True):
        data = archive.get(page["raw_key"])
        fmt = get_format(page["format"])
        ctx = NormalizeContext(
            brand=page["brand"],
            source_url=page["final_url"],
            raw_key=page["raw_key"],
            ingested_at=page["fetched_at"],
            keyer=keyer,
            default_touchpoint=page["default_touchpoint"],
        )
        try:
            parsed = parse_safely(fmt, data, page["final_url"])
            page_events = events_safely(parsed, ctx, fmt.kind)
        except ParseError as exc:
            notes.append(f"{page['source_id']}: {exc}")
            refused.append(file_refused("", exc, brand=page["brand"], source_kind=fmt.kind, raw_key=page["raw_key"]))
            continue
        parsed_count += 1
        notes.extend(f"{page['final_url']}: {w}" for w in parsed.warnings)
        if parsed.rejects:
            first = parsed.rejects[0].reason
            notes.append(f"{page['final_url']}: {len(parsed.rejects)} review(s) refused, e.g. {first}")
            refused.append(batch_rejects("", page["final_url"], parsed.rejects, brand=page["brand"],
                                         source_kind=fmt.kind, raw_key=page["raw_key"], parser=parsed.parser))
        frames.append(page_events)
        summaries.extend(_summary_rows(page, parsed))
    events = pl.concat(frames) if frames else empty_events()
    summary_frame = pl.DataFrame(summaries, schema=SITE_SUMMARY_SCHEMA)
    # one snapshot per source and kind per crawl: every page of a crawl repeats the same summary
    summary_frame = summary_frame.sort("fetched_at").unique(
        subset=["source_id", "kind", "name"], keep="first", maintain_order=True
    )
    # the same review can sit on two pages of one crawl (relevance sort shifts while paging)
    events = latest_versions(events).collect()
    return ReviewParseOutput(
        events=events,
        summaries=summary_frame,
        notes=notes,
        pages_parsed=parsed_count,
        rejects=pl.concat(refused) if refused else pl.DataFrame(schema=STORED_REJECT_SCHEMA),
    )
