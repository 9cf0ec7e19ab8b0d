"""The scored datasets computed from scored events and mentions, as plain functions over the store.

The assets in ``defs/assets/scored.py`` call these, and so does ``bench/bench_daily_cost.py``, so the benchmark
times exactly what a run does. Each reads only the columns it needs from the month partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
import polars_hash as plh

from cx_pipeline.pipeline import time_layout
from cx_pipeline.pipeline.time_layout import scan_all
from cx_pipeline.scoring import (
    AlertConfig,
    DriverConfig,
    alert_tests,
    key_drivers,
    peak_end_journeys,
    peaks_potholes,
)
from cx_pipeline.scoring.drivers import DRIVER_SCHEMA
from cx_pipeline.scoring.peaks_potholes import JOURNEY_SCHEMA, PEAK_SCHEMA, PeakConfig, peaks_from_months
from cx_pipeline.scoring.reply_latency import REPLY_SCHEMA, replied_only, reply_latency, reply_latency_from_months
from cx_pipeline.storage import ParquetStore

SCORED_DATASET = "scored/scored_events"
MENTIONS_DATASET = "scored/touchpoint_mentions"
METRICS_DATASET = "scored/cx_metrics"
DRIVERS_DATASET = "scored/key_drivers"
PEAKS_DATASET = "scored/peaks_potholes"
JOURNEYS_DATASET = "scored/customer_journeys"
REPLIES_DATASET = "scored/reply_latency"
JOURNEY_VERSION = "1"
#: what each all-history read needs (projection keeps a pass over years of events to a few columns)
_JOURNEY_COLUMNS = ("brand", "customer_key", "record_id", "touchpoint", "score_norm", "occurred_at", "published_at",
                    "is_removed")
_MENTION_COLUMNS = ("brand", "record_id", "touchpoint", "origin", "event_id", "occurred_at", "published_at")
_REPLY_COLUMNS = ("brand", "source", "source_kind", "record_id", "published_at", "replied_at", "occurred_at",
                  "is_removed")
CELLS_STATE = "_state/cx_metrics_cells"
SAMPLE_STATE = "_state/key_drivers_sample"
SAMPLE_MENTIONS_STATE = "_state/key_drivers_sample_mentions"
SAMPLE_SHARES_STATE = "_state/key_drivers_sample_shares"
_NO_TEXT = ("text", "title", "reply_text", "text_evidence")


def _scored(store: ParquetStore, *, keep_text: bool = False) -> pl.LazyFrame:
    lf = scan_all(store, SCORED_DATASET)
    if lf is None:
        raise LookupError(f"{store.url(SCORED_DATASET)}: no scored events stored yet; materialize scored_events")
    if keep_text:
        return lf
    return lf.select([c for c in lf.collect_schema().names() if c not in _NO_TEXT])


def _mentions(store: ParquetStore) -> pl.LazyFrame | None:
    return scan_all(store, MENTIONS_DATASET)


# ------------------------------------------------------------------ month rows recomputed where days changed

#: months recomputed together in one pass (bounded memory on a backfill)
MONTHS_PER_PASS = 3


@dataclass(frozen=True)
class MonthlyUpdate:
    """What an incremental month-grain build did."""

    table: pl.DataFrame
    months: list[str]
    full: bool


def _months_to_redo(store: ParquetStore, consumer: str, version: str, previous: pl.DataFrame | None,
                    ) -> tuple[set[str], set[str] | None, list[tuple[str, pl.DataFrame]]]:
    """(months to recompute, the changed days — None for a full rebuild —, manifests to mark consumed afterwards).
    A month is redone when a day in it or next to it (local time zones) was rewritten since this consumer last
    ran."""
    changed, manifests = time_layout.changed_days_of(store, (SCORED_DATASET, MENTIONS_DATASET), consumer)
    stored = store.read(_version_path(consumer))
    full = (previous is None or stored is None or not stored.height or stored["version"][0] != version)
    days = set(time_layout.stored_days(store, SCORED_DATASET)) if full else time_layout.neighbours(changed)
    return ({d[:7] for d in days if d != time_layout.UNDATED}, None if full else changed, manifests)


def _version_path(consumer: str) -> str:
    return f"_state/{consumer}_version"


def _month_days(months: list[str]) -> set[str]:
    """Every day of the months, plus the day before and after (a local month starts or ends in them)."""
    days: set[str] = set()
    for m in months:
        start = date(int(m[:4]), int(m[5:7]), 1)
        end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        at = start - timedelta(days=1)
        while at <= end:
            days.add(at.isoformat())
            at += timedelta(days=1)
    return days


def _scan(store: ParquetStore, dataset: str, days: set[str] | None, *, keep_text: bool) -> pl.LazyFrame | None:
    lf = time_layout.scan_days(store, dataset, days)
    if lf is None or keep_text:
        return lf
    return lf.select([c for c in lf.collect_schema().names() if c not in _NO_TEXT])


def _monthly(store: ParquetStore, consumer: str, dataset: str, version: str, *, keep_text: bool,
             schema: dict[str, pl.DataType],
             compute: Callable[[pl.LazyFrame, pl.LazyFrame | None], pl.DataFrame],
             all_time: Callable[[pl.DataFrame, set[str] | None], pl.DataFrame]) -> MonthlyUpdate:
    """Recompute the month rows of the months whose days changed (a few months per pass), keep the others, then
    the all-time rows (``all_time`` of the month rows), and save output, version and consumed days in that
    order so that a crash redoes work instead of skipping it."""
    previous = store.read(dataset)
    months, changed, manifests = _months_to_redo(store, consumer, version, previous)
    full = changed is None
    ordered = sorted(months)
    fresh = []
    for i in range(0, len(ordered), MONTHS_PER_PASS):
        group = ordered[i:i + MONTHS_PER_PASS]
        days = _month_days(group)
        events = _scan(store, SCORED_DATASET, days, keep_text=keep_text)
        if events is None:
            continue
        mentions = _scan(store, MENTIONS_DATASET, days, keep_text=True)
        # read the pass's days once; the analyses collect several times from them
        rows = compute(events.collect().rechunk().lazy(),
                       None if mentions is None else mentions.collect().rechunk().lazy())
        fresh.append(rows.filter((pl.col("grain") == "month") & pl.col("period").is_in(group)))
    kept = [] if full or previous is None else [
        previous.filter((pl.col("grain") == "month") & ~pl.col("period").is_in(ordered))]
    empty = pl.DataFrame(schema=pl.Schema(schema))
    month_rows = pl.concat([empty, *[f.select(list(schema)).cast(schema) for f in (*kept, *fresh)]])
    table = pl.concat([month_rows, all_time(month_rows, changed).select(list(schema)).cast(schema)])
    store.write_partition(dataset, table)
    store.write_partition(_version_path(consumer), pl.DataFrame({"version": [version]}))
    for ds, current in manifests:
        time_layout.mark_consumed(store, ds, consumer, current)
    return MonthlyUpdate(table, ordered, full)


def build_key_drivers(store: ParquetStore, config: DriverConfig) -> MonthlyUpdate:
    """Month rows where days changed; all-time rows from a uniform record sample of the whole history (at most
    ``config.max_records`` records a brand), so neither grows a run with history."""

    def compute(events: pl.LazyFrame, mentions: pl.LazyFrame | None) -> pl.DataFrame:
        return key_drivers(events, mentions=mentions, periods=("month",), config=config)

    def all_time(_: pl.DataFrame, changed: set[str] | None) -> pl.DataFrame:
        return _all_time_drivers(store, config, changed)

    return _monthly(store, "key_drivers", DRIVERS_DATASET, repr(config), keep_text=False, schema=DRIVER_SCHEMA,
                    compute=compute, all_time=all_time)


def _all_time_drivers(store: ParquetStore, config: DriverConfig, changed: set[str] | None) -> pl.DataFrame:
    """All-time drivers on a hash sample: records whose xxhash64(record_id) falls under a per-brand threshold
    sized from the brand's record count (from the metric cells).

    The sample is kept (``_state/key_drivers_sample*``) and updated from the changed days only: the threshold
    only falls as a brand's history grows, so a record left out once stays out, and the kept sample equals a
    fresh draw. A threshold that rises (records removed, a new brand) or a full run draws it again from the
    whole history."""
    counts = _records_per_brand(store, config)
    share = {b: min(1.0, 2.0 * config.max_records / n) for b, n in counts.items() if n}
    threshold = pl.col("brand").replace_strict(share, default=1.0, return_dtype=pl.Float64) * float(2**64 - 1)
    keep = plh.col("record_id").nchash.xxhash64().cast(pl.Float64) <= threshold
    stored = store.read(SAMPLE_SHARES_STATE)
    before = {} if stored is None else dict(zip(stored["brand"].to_list(), stored["share"].to_list(), strict=True))
    old = None if changed is None else store.read(SAMPLE_STATE)
    old_m = None if changed is None else store.read(SAMPLE_MENTIONS_STATE)
    redraw = (changed is None or old is None or old_m is None
              or any(v > before.get(b, -1.0) + 1e-12 for b, v in share.items()))
    days = None if redraw else changed
    events = _scan(store, SCORED_DATASET, days, keep_text=False)
    mentions = _scan(store, MENTIONS_DATASET, days, keep_text=False)
    fresh = events.filter(keep).collect() if events is not None else None
    fresh_m = mentions.select(_MENTION_COLUMNS).filter(keep).collect() if mentions is not None else None
    if not redraw:
        assert old is not None and old_m is not None and changed is not None
        gone = sorted(changed)
        fresh = pl.concat([old.filter(~time_layout.day_expr(old.columns).is_in(gone)), *([fresh] if fresh is not
                           None else [])], how="diagonal_relaxed").filter(keep)
        fresh_m = pl.concat([old_m.filter(~time_layout.day_expr(old_m.columns).is_in(gone)),
                             *([fresh_m] if fresh_m is not None else [])], how="diagonal_relaxed").filter(keep)
    if fresh is None or not fresh.height:
        return pl.DataFrame(schema=pl.Schema(DRIVER_SCHEMA))
    store.write_partition(SAMPLE_STATE, fresh)
    if fresh_m is not None:
        store.write_partition(SAMPLE_MENTIONS_STATE, fresh_m)
    store.write_partition(SAMPLE_SHARES_STATE, pl.DataFrame({"brand": list(share), "share": list(share.values())},
                                                            schema={"brand": pl.String, "share": pl.Float64}))
    out = key_drivers(fresh.rechunk().lazy(), mentions=None if fresh_m is None else fresh_m.rechunk().lazy(),
                      periods=("all",),
                      config=config)
    # n is the sample; sampled_from says how many records the brand's history holds
    sampled = pl.col("brand").replace_strict({b: n for b, n in counts.items() if share.get(b, 1.0) < 1.0},
                                             default=None, return_dtype=pl.Int64)
    return out.with_columns(sampled_from=pl.coalesce(sampled, pl.col("sampled_from")))


def _records_per_brand(store: ParquetStore, config: DriverConfig) -> dict[str, int]:
    """Records with an outcome per brand, from the day cells of cx_metrics (no pass over the events)."""
    cells = store.read(CELLS_STATE)
    if cells is None or not cells.height:
        return {}
    got = (cells.filter((pl.col("touchpoint") == config.outcome_touchpoint) & (pl.col("source") != "all")
                        & pl.col("metric").is_in(list(config.outcome_metrics)))
           .group_by("brand").agg(pl.col("n").sum()))
    return dict(zip(got["brand"].to_list(), got["n"].to_list(), strict=True))


def build_peaks_potholes(store: ParquetStore, config: PeakConfig) -> MonthlyUpdate:
    """Month rows where days changed; all-time rows summed from the month rows."""

    def compute(events: pl.LazyFrame, mentions: pl.LazyFrame | None) -> pl.DataFrame:
        return peaks_potholes(events, mentions=mentions, periods=("month",), config=config)

    return _monthly(store, "peaks_potholes", PEAKS_DATASET, repr(config), keep_text=True, schema=PEAK_SCHEMA,
                    compute=compute, all_time=lambda months, _: peaks_from_months(months, config))


def build_journeys(store: ParquetStore) -> pl.DataFrame:
    """Journeys of the customers with an event on a day rewritten since the last run, recomputed from all their
    events (one pass over the customer_key column to find them); every other journey is kept."""
    consumer = "customer_journeys"
    previous = store.read(JOURNEYS_DATASET)
    changed, current = time_layout.changed_days(store, SCORED_DATASET, consumer)
    stored = store.read(_version_path(consumer))
    full = previous is None or stored is None or not stored.height or stored["version"][0] != JOURNEY_VERSION
    events = _scan(store, SCORED_DATASET, None, keep_text=False)
    if events is not None:
        events = events.select(_JOURNEY_COLUMNS)
    if events is None:
        table = pl.DataFrame(schema=pl.Schema(JOURNEY_SCHEMA))
    elif full:
        table = peak_end_journeys(events)
    else:
        assert previous is not None
        touched_days = _scan(store, SCORED_DATASET, changed, keep_text=False)
        customers = (touched_days.select("brand", "customer_key").drop_nulls().unique().collect()
                     if touched_days is not None else pl.DataFrame(schema={"brand": pl.String,
                                                                           "customer_key": pl.String}))
        fresh = peak_end_journeys(_customer_events(store, customers))
        table = pl.concat([previous.join(customers, on=["brand", "customer_key"], how="anti"), fresh]).sort(
            "brand", "customer_key")
    store.write_partition(JOURNEYS_DATASET, table)
    store.write_partition(_version_path(consumer), pl.DataFrame({"version": [JOURNEY_VERSION]}))
    time_layout.mark_consumed(store, SCORED_DATASET, consumer, current)
    return table


def _customer_events(store: ParquetStore, customers: pl.DataFrame) -> pl.LazyFrame:
    """All events of some customers: a narrow first pass (brand, customer_key, file) finds the day files that
    hold them, and only those files are read in full."""
    files = list(time_layout.day_files(store, SCORED_DATASET).values())
    narrow = store.scan_files(files, file_path_column="_file")
    if narrow is None or not customers.height:
        return pl.LazyFrame(schema={c: pl.Null for c in _JOURNEY_COLUMNS}).select(_JOURNEY_COLUMNS)
    hits = (narrow.select("brand", "customer_key", "_file")
            .join(customers.lazy(), on=["brand", "customer_key"], how="semi")
            .select("_file").unique().collect()["_file"].to_list())
    lf = store.scan_files(sorted(hits))
    assert lf is not None
    return lf.select(_JOURNEY_COLUMNS).join(customers.lazy(), on=["brand", "customer_key"], how="semi")


def build_reply_latency(store: ParquetStore, *, time_zone: str = "UTC",
                        brand_time_zones: tuple[tuple[str, str], ...] = ()) -> MonthlyUpdate:
    """Month rows where days changed; all-time counts summed from the months, hours over the replied reviews."""
    kw = {"time_zone": time_zone, "brand_time_zones": brand_time_zones}

    def compute(events: pl.LazyFrame, _: pl.LazyFrame | None) -> pl.DataFrame:
        return reply_latency(events, periods=("month",), **kw)

    def all_time(months: pl.DataFrame, _: set[str] | None) -> pl.DataFrame:
        events = _scan(store, SCORED_DATASET, None, keep_text=False)
        if events is None:
            return pl.DataFrame(schema=pl.Schema(REPLY_SCHEMA))
        return reply_latency_from_months(months, replied_only(events.select(_REPLY_COLUMNS)), **kw)

    return _monthly(store, "reply_latency", REPLIES_DATASET, repr(kw), keep_text=False, schema=REPLY_SCHEMA,
                    compute=compute, all_time=all_time)


def build_alert_tests(store: ParquetStore, config: AlertConfig) -> pl.DataFrame:
    metrics = store.read(METRICS_DATASET)
    if metrics is None:
        raise LookupError(f"{store.url(METRICS_DATASET)}: no metrics stored yet; materialize cx_metrics")
    return alert_tests(metrics, config=config)
