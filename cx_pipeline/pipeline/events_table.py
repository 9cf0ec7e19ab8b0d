"""The analyst-facing touchpoint_events table: every event once, latest version, removals marked."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cx_pipeline.contract import EVENT_POLARS_SCHEMA, EVENT_SCHEMA, conform, empty_events
from cx_pipeline.normalize import latest_versions
from cx_pipeline.pipeline import time_layout
from cx_pipeline.storage import ParquetStore

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


# ------------------------------------------------------------------------------- incremental, by day

EVENTS_DATASET = "events/touchpoint_events"
BATCH_DATASETS = ("events/review_events", "events/survey_events")
PAGES_DATASET = "raw/review_pages"
INDEX_DATASET = "_state/touchpoint_events_index"
BATCHES_STATE = "_state/touchpoint_events_batches"
CRAWLS_STATE = "_state/touchpoint_events_complete_crawls"
BATCHES_PER_CHUNK = 60
_VERSION = ["updated_at", "ingested_at", "content_hash"]
INDEX_SCHEMA = {"event_id": pl.String(), "updated_at": pl.Datetime("us", "UTC"),
                "ingested_at": pl.Datetime("us", "UTC"), "content_hash": pl.String(), "is_removed": pl.Boolean(),
                "crawl_source": pl.String()}
INDEX_COLUMNS = {**INDEX_SCHEMA, "day": pl.String()}


@dataclass(frozen=True)
class EventsUpdate:
    """What one build of the analyst table did: which days it rewrote and from how many batch files."""

    days_written: dict[str, int]
    batches_read: int
    events_in: int
    full: bool
    reason: str


def _batch_listing(store: ParquetStore) -> pl.DataFrame:
    """Every batch file, relative to the data root (a moved or re-mounted root is not new data), with its
    fingerprint (size and ETag or modification time: a copy that does not keep modification times is merged
    again, which gives the same table, only slower)."""
    root = store.path("").rstrip("/") + "/"
    rows = [(path.removeprefix(root), stamp) for ds in BATCH_DATASETS for path, stamp in store.list_files(ds).items()]
    return pl.DataFrame(rows, schema={"path": pl.String(), "fingerprint": pl.String()}, orient="row")


def _read_batches(store: ParquetStore, paths: list[str]) -> pl.DataFrame:
    lf = store.scan_files([store.path(p) for p in paths], schema=EVENT_SCHEMA)
    if lf is None:
        return empty_events()
    return conform(latest_versions(lf).collect())


def _pages_of(store: ParquetStore, paths: list[str]) -> pl.DataFrame | None:
    """The crawl pages of the review batches among ``paths`` (same day partition), for removals."""
    days = sorted({p.split("day=", 1)[1].split("/", 1)[0] for p in paths if "/review_events/day=" in p})
    if not days:
        return None
    lf = store.scan(PAGES_DATASET, [{"day": d} for d in days])
    if lf is None:
        return None
    cols = lf.collect_schema().names()
    if not {"source_id", "raw_key", "stop_reason", "crawl_started_at"} <= set(cols):
        return None
    return lf.select("source_id", "raw_key", "stop_reason", "crawl_started_at").collect()


def _index(store: ParquetStore, days: list[str] | None = None) -> pl.LazyFrame:
    """The event index (on which day each stored event lives, its version and crawl source), lazily: callers
    filter it to the events they need, so a daily merge never holds the history's index in memory."""
    lf = time_layout.scan_days(store, INDEX_DATASET, days)
    if lf is None:
        return pl.LazyFrame(schema=INDEX_COLUMNS)
    return lf.select(*INDEX_COLUMNS).cast(INDEX_COLUMNS)


def _merge_chunk(store: ParquetStore, paths: list[str], crawls: pl.DataFrame) -> tuple[dict[str, int], int,
                                                                                          pl.DataFrame]:
    """Merge the events of some batch files into the stored days; returns (days written, events read,
    the updated last-complete-crawl table)."""
    new = _read_batches(store, paths)
    pages = _pages_of(store, paths)
    new = new.with_columns(_day=time_layout.day_expr(new.columns))
    crawl_source = pl.lit(None, dtype=pl.String)
    if pages is not None and pages.height:
        page_source = pages.select("raw_key", "source_id").unique(subset="raw_key", keep="first")
        new = new.with_columns(_raw_key=_raw_key(pl.col("raw_ref"))).join(
            page_source.rename({"source_id": "_crawl_source"}), left_on="_raw_key", right_on="raw_key",
            how="left").drop("_raw_key")
        crawl_source = pl.col("_crawl_source")
        done = (pages.filter(pl.col("stop_reason") == COMPLETE_CRAWL).group_by("source_id")
                .agg(pl.col("crawl_started_at").max().alias("last_complete")))
        crawls = (pl.concat([crawls, done]).group_by("source_id").agg(pl.col("last_complete").max()))
    new = new.with_columns(_crawl_source=crawl_source)
    # where is each incoming event stored today, and which version wins (the full build's rule: the last by
    # update time, ingestion time, content hash; a tie goes to the incoming copy, e.g. a re-parsed page)
    index = _index(store)
    old = index.join(new.lazy().select("event_id"), on="event_id", how="semi").collect()
    candidates = pl.concat([
        old.select("event_id", *_VERSION, _origin=pl.lit(0)),
        new.select("event_id", *_VERSION, _origin=pl.lit(1)),
    ]).sort(["event_id", *_VERSION, "_origin"], nulls_last=False)
    won = candidates.group_by("event_id").last().filter(pl.col("_origin") == 1).select("event_id")
    winners = new.join(won, on="event_id", how="semi")
    # a winner keeps the crawl source it had when this batch's pages do not name one
    winners = winners.join(old.select("event_id", _old_source="crawl_source", _old_day="day"), on="event_id",
                           how="left").with_columns(_crawl_source=pl.coalesce("_crawl_source", "_old_source"))
    moved_from = set(winners.filter(pl.col("_old_day").is_not_null() & (pl.col("_old_day") != pl.col("_day")))
                     ["_old_day"].to_list())
    touched = set(winners["_day"].to_list()) | moved_from
    # removals: a complete crawl newer than an event's last sighting removes it (and a later sighting restores)
    previous_crawls = store.read(CRAWLS_STATE)
    advanced = crawls if previous_crawls is None else crawls.join(
        previous_crawls, on=["source_id", "last_complete"], how="anti")
    if advanced.height:
        stale = (index.join(advanced.lazy(), left_on="crawl_source", right_on="source_id", how="inner")
                 .filter((pl.col("ingested_at") < pl.col("last_complete")) & ~pl.col("is_removed"))
                 .join(won.lazy(), on="event_id", how="anti").select("day").unique().collect())
        touched |= set(stale["day"].to_list())
    written: dict[str, int] = {}
    if touched:
        days = sorted(touched)
        stored = time_layout.read_days(store, EVENTS_DATASET, days, schema=EVENT_SCHEMA)
        stored_index = _index(store, days).collect()
        rows = empty_events() if stored is None else stored
        rows = rows.join(stored_index.select("event_id", _crawl_source="crawl_source"), on="event_id", how="left")
        rows = rows.join(won, on="event_id", how="anti")
        merged = pl.concat([rows, winners.select(rows.columns)], how="vertical_relaxed")
        merged = merged.join(crawls, left_on="_crawl_source", right_on="source_id", how="left").with_columns(
            is_removed=pl.when(pl.col("last_complete").is_not_null())
            .then(pl.col("ingested_at") < pl.col("last_complete")).otherwise(pl.col("is_removed")))
        merged = merged.drop("last_complete")
        events = conform(merged)
        written = time_layout.write_days(store, EVENTS_DATASET, events, days, schema=EVENT_SCHEMA)
        idx = merged.select(*[c for c in INDEX_SCHEMA if c != "crawl_source"], "occurred_at", "published_at",
                            crawl_source="_crawl_source")
        idx = idx.with_columns(day=time_layout.day_expr(idx.columns)).select(*INDEX_COLUMNS, "occurred_at",
                                                                             "published_at")
        time_layout.write_days(store, INDEX_DATASET, idx, days)
    store.write_partition(CRAWLS_STATE, crawls)
    return written, new.height, crawls


def update_touchpoint_events(store: ParquetStore, *, full: bool = False,
                             batches_per_chunk: int = BATCHES_PER_CHUNK) -> EventsUpdate:
    """Bring ``events/touchpoint_events`` up to date with the batch datasets, touching only the days that
    the new or changed batch files reach.

    Equal to :func:`build_touchpoint_events` over every batch (tested): each event once in its latest version,
    removed reviews marked. A batch file that disappeared, a missing state or ``full`` rebuilds from scratch —
    by the same merge, ``batches_per_chunk`` files at a time, so a backfill's memory is bounded by a chunk and
    the days it touches, not by the history.
    """
    listing = _batch_listing(store)
    seen = store.read(BATCHES_STATE)
    reason = "new or changed batch files merged into their days"
    if full:
        reason = "full rebuild requested"
    elif seen is None or not time_layout.stored_days(store, INDEX_DATASET):
        full, reason = True, "nothing stored yet"
    elif seen.join(listing, on="path", how="anti").height:
        full, reason = True, "a batch file was removed since the last build"
    if full:
        time_layout.delete_all(store, EVENTS_DATASET)
        time_layout.delete_all(store, INDEX_DATASET)
        store.write_partition(CRAWLS_STATE, pl.DataFrame(schema={"source_id": pl.String(),
                                                                 "last_complete": pl.Datetime("us", "UTC")}))
        todo = listing
    else:
        assert seen is not None
        todo = listing.join(seen, on=["path", "fingerprint"], how="anti")
    paths = sorted(todo["path"].to_list())
    crawls = store.read(CRAWLS_STATE)
    if crawls is None:
        crawls = pl.DataFrame(schema={"source_id": pl.String(), "last_complete": pl.Datetime("us", "UTC")})
    written: dict[str, int] = {}
    events_in = 0
    for i in range(0, len(paths), batches_per_chunk):
        got, n, crawls = _merge_chunk(store, paths[i:i + batches_per_chunk], crawls)
        written.update(got)
        events_in += n
    store.write_partition(BATCHES_STATE, listing)  # last: a crash before this re-merges (idempotent), never skips
    return EventsUpdate(written, len(paths), events_in, full, reason)
