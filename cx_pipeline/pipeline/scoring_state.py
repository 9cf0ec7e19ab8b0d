"""Incremental metric aggregation: recompute the day cells of the days that changed, roll every grain up from cells.

scored_events and touchpoint_mentions are stored by day (``time_layout``); their manifests say which days were
rewritten since this step last ran. For those days the step

* reads them and their neighbour days (a day cut in a local time zone starts on the previous UTC day or ends on
  the next), only the columns aggregation needs;
* recomputes the cells (``scoring.aggregates.day_cells``: sufficient statistics per brand × touchpoint ×
  source × metric × local day) of every local day those UTC days reach, now or at the last run (the mapping is
  kept in ``_state/cx_metrics_day_keys``), so an event that moved or vanished updates the day it left;
* replaces those cells in ``_state/cx_metrics_cells`` and rolls day, ISO week, month and all-time rows up from
  all cells.

A daily run therefore reads a few days of events and sums the cells (one row per cell and day: thousands, not
millions), whatever the history. A first run, another state version or changed settings (time zones,
thresholds) recompute everything from the stored events (the backfill path).
"""

from __future__ import annotations

import polars as pl

from cx_pipeline.pipeline import time_layout
from cx_pipeline.scoring import AGGREGATE_SCHEMA
from cx_pipeline.scoring.aggregates import (
    CELL_KEYS,
    GRAINS,
    PERIOD_KEYS,
    aggregates_from_cells,
    day_cells,
    time_base_expr,
    with_mention_sentiment,
    with_periods,
)
from cx_pipeline.scoring.metrics import ScoringConfig
from cx_pipeline.storage import ParquetStore

AGGREGATES_DATASET = "scored/cx_metrics"
SCORED_DATASET = "scored/scored_events"
MENTIONS_DATASET = "scored/touchpoint_mentions"
CONSUMER = "cx_metrics"
CELLS_STATE = "_state/cx_metrics_cells"
DAY_KEYS_STATE = "_state/cx_metrics_day_keys"
VERSION_STATE = "_state/cx_metrics_version"
STATE_VERSION = "5"  # 5: day cells
DAYS_PER_PASS = 62
#: the columns aggregation reads (a few days of events without their texts)
_COLUMNS = ("event_id", "content_hash", "is_removed", "brand", "touchpoint", "metric", "source", "occurred_at",
            "published_at", "score_raw", "score_norm", "scale_min", "scale_max", "higher_is_better", "sentiment",
            "sentiment_label", "record_id", "customer_key", "weight")
_MENTION_COLUMNS = ("event_id", "touchpoint", "sentiment", "sentiment_label", "brand", "source", "record_id",
                    "customer_key", "occurred_at", "published_at")


def _read(store: ParquetStore, dataset: str, days: set[str] | None, columns: tuple[str, ...]) -> pl.LazyFrame | None:
    lf = time_layout.scan_days(store, dataset, days)
    if lf is None:
        return None
    names = lf.collect_schema().names()
    return lf.select([c for c in columns if c in names])


def _events(store: ParquetStore, days: set[str] | None) -> pl.LazyFrame | None:
    """Scored events of some days (all with None) with net sentiment per touchpoint from their mentions."""
    scored = _read(store, SCORED_DATASET, days, _COLUMNS)
    if scored is None:
        return None
    mentions = _read(store, MENTIONS_DATASET, days, _MENTION_COLUMNS)
    return scored if mentions is None else with_mention_sentiment(scored, mentions)


def _day_keys(events: pl.LazyFrame, config: ScoringConfig) -> pl.DataFrame:
    """(utc_day, brand, local day) for every event: which local day cells each stored UTC day feeds."""
    cols = events.collect_schema().names()
    stamped = events.select("brand", _ts=time_base_expr(cols), utc_day=time_layout.day_expr(cols))
    return (with_periods(stamped, ["day"], time_zone=config.time_zone, brand_time_zones=config.brand_time_zones)
            .select("utc_day", "brand", "period_start").unique().collect())


def _version(config: ScoringConfig) -> str:
    return f"{STATE_VERSION}|{config!r}"  # any setting (time zones, thresholds) changes every row


def _save(store: ParquetStore, aggregates: pl.DataFrame, cells: pl.DataFrame, day_keys: pl.DataFrame,
          version: str, manifests: list[tuple[str, pl.DataFrame]]) -> None:
    """Outputs first, then state, then what was consumed: a crash anywhere redoes work, never skips it."""
    store.write_partition(AGGREGATES_DATASET, aggregates)
    store.write_partition(CELLS_STATE, cells)
    store.write_partition(DAY_KEYS_STATE, day_keys)
    store.write_partition(VERSION_STATE, pl.DataFrame({"version": [version]}))
    for dataset, current in manifests:
        time_layout.mark_consumed(store, dataset, CONSUMER, current)


def aggregates_incrementally(
    store: ParquetStore, config: ScoringConfig | None = None, *, full: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """(aggregates, recomputed (brand, grain, period) keys, whether everything was recomputed).

    Net sentiment per touchpoint comes from the mentions (``with_mention_sentiment``). The result equals
    ``metric_aggregates`` over every stored event (tested).
    """
    cfg = config or ScoringConfig()
    version = _version(cfg)
    changed, manifests = time_layout.changed_days_of(store, (SCORED_DATASET, MENTIONS_DATASET), CONSUMER)
    previous = store.read(AGGREGATES_DATASET)
    cells = store.read(CELLS_STATE)
    day_keys = store.read(DAY_KEYS_STATE)
    stored_version = store.read(VERSION_STATE)
    usable = (
        not full
        and previous is not None and cells is not None and day_keys is not None
        and stored_version is not None and stored_version.height == 1 and stored_version["version"][0] == version
        and set(previous.columns) == set(AGGREGATE_SCHEMA)
    )
    if not usable:
        cells, day_keys = _cells_of_days(store, time_layout.stored_days(store, SCORED_DATASET), cfg, None)
        if not cells.height:
            empty = pl.DataFrame(schema=AGGREGATE_SCHEMA)
            return empty, empty.select(PERIOD_KEYS), True
        aggregates = aggregates_from_cells(cells, GRAINS, cfg)
        _save(store, aggregates, cells, day_keys, version, manifests)
        return aggregates, aggregates.select(PERIOD_KEYS).unique(), True
    assert previous is not None and cells is not None and day_keys is not None
    if not changed:
        return previous, previous.select(PERIOD_KEYS).clear(), False
    fresh, now_keys = _cells_of_days(store, sorted(changed), cfg, day_keys)
    before = day_keys.filter(pl.col("utc_day").is_in(sorted(changed)))
    local_days = pl.concat([now_keys, before]).select("brand", "period_start").unique()
    cells = pl.concat([cells.join(local_days, on=["brand", "period_start"], how="anti"),
                       fresh.select(cells.columns)], how="vertical_relaxed").sort(list(CELL_KEYS), nulls_last=False)
    aggregates = aggregates_from_cells(cells, GRAINS, cfg)
    day_keys = pl.concat([day_keys.filter(~pl.col("utc_day").is_in(sorted(changed))), now_keys])
    _save(store, aggregates, cells, day_keys, version, manifests)
    recomputed = local_days.select("brand", grain=pl.lit("day"), period=pl.col("period_start").dt.strftime("%Y-%m-%d"))
    return aggregates, recomputed, False


def _cells_of_days(store: ParquetStore, days: list[str], cfg: ScoringConfig,
                   previous_keys: pl.DataFrame | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Day cells of every local day the UTC ``days`` reach (now, or at the last run per ``previous_keys``), and the
    (utc_day, brand, local day) keys of those days; ``DAYS_PER_PASS`` UTC days (and their neighbours) at a time,
    so a backfill's memory is bounded by a pass."""
    cells, keys = [], []
    for i in range(0, len(days), DAYS_PER_PASS):
        chunk = days[i:i + DAYS_PER_PASS]
        events = _events(store, time_layout.neighbours(chunk))
        if events is None:
            continue
        events = events.collect().rechunk().lazy()  # read once: day keys and cells both need it
        now = _day_keys(events, cfg).filter(pl.col("utc_day").is_in(chunk))
        reached = now if previous_keys is None else pl.concat([now, previous_keys.filter(
            pl.col("utc_day").is_in(chunk))])
        cells.append(day_cells(events, cfg).join(reached.select("brand", "period_start").unique(),
                                                 on=["brand", "period_start"], how="semi"))
        keys.append(now)
    if not cells:
        return pl.DataFrame(), pl.DataFrame(schema={"utc_day": pl.String, "brand": pl.String,
                                                    "period_start": pl.Date})
    # a local day on a pass boundary is computed by both passes, from the same complete events: keep one
    return (pl.concat(cells, how="vertical_relaxed").unique(subset=list(CELL_KEYS), keep="last")
            .sort(list(CELL_KEYS), nulls_last=False), pl.concat(keys))
