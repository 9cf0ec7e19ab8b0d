"""Incremental metric aggregation: recompute only the periods that the rewritten months of scored events reach.

scored_events and touchpoint_mentions are stored by month (``month_layout``); their manifests say which months
were rewritten since this step last ran. For those months the step

* reads them and their neighbour months (a week or a month cut in a local time zone reaches into the next or
  previous UTC month), only the columns aggregation needs;
* recomputes the day/week/month periods their events belong to now or belonged to at the last run (kept per
  month in ``_state/cx_metrics_month_keys``), so an event that moved or vanished updates the period it left;
* replaces those months' *cells* (``_state/cx_metrics_cells``: additive sufficient statistics per brand ×
  touchpoint × source × metric × month) and sums all cells into the whole-history rows.

So a daily run costs a few months of events plus a sum over a few thousand cells, whatever the history. A first
run, a different state version or a changed reporting time zone computes everything (the backfill path).
"""

from __future__ import annotations

import polars as pl

from cx_pipeline.pipeline import month_layout
from cx_pipeline.scoring import AGGREGATE_SCHEMA, metric_aggregates
from cx_pipeline.scoring.aggregates import (
    ALL,
    PERIOD_KEYS,
    aggregates_from_cells,
    month_cells,
    time_base_expr,
    with_mention_sentiment,
    with_periods,
)
from cx_pipeline.scoring.metrics import ScoringConfig
from cx_pipeline.storage import ParquetStore

DATED_GRAINS = ("day", "week", "month")
GRAINS = (*DATED_GRAINS, ALL)
AGGREGATES_DATASET = "scored/cx_metrics"
SCORED_DATASET = "scored/scored_events"
MENTIONS_DATASET = "scored/touchpoint_mentions"
CONSUMER = "cx_metrics"
CELLS_STATE = "_state/cx_metrics_cells"
MONTH_KEYS_STATE = "_state/cx_metrics_month_keys"
VERSION_STATE = "_state/cx_metrics_version"
STATE_VERSION = "4"  # 4: month cells and month keys
_SORT = ("brand", "grain", "period_start", "period", "touchpoint", "source", "metric")
#: the columns aggregation reads (a month of events without texts is small)
_COLUMNS = ("event_id", "content_hash", "is_removed", "brand", "touchpoint", "metric", "source", "occurred_at",
            "published_at", "score_raw", "score_norm", "scale_min", "scale_max", "higher_is_better", "sentiment",
            "sentiment_label", "record_id", "customer_key", "weight")
_MENTION_COLUMNS = ("event_id", "touchpoint", "sentiment", "sentiment_label", "brand", "source", "record_id",
                    "customer_key", "occurred_at", "published_at")


def _read(store: ParquetStore, dataset: str, months: set[str], columns: tuple[str, ...]) -> pl.LazyFrame | None:
    stored = set(month_layout.stored_months(store, dataset))
    wanted = sorted(months & stored) if months else sorted(stored)
    if not wanted:
        return None
    lf = store.scan(dataset, [{month_layout.MONTH: m} for m in wanted])
    if lf is None:
        return None
    names = lf.collect_schema().names()
    return lf.select([c for c in columns if c in names])


def _events(store: ParquetStore, months: set[str]) -> pl.LazyFrame | None:
    scored = _read(store, SCORED_DATASET, months, _COLUMNS)
    if scored is None:
        return None
    mentions = _read(store, MENTIONS_DATASET, months, _MENTION_COLUMNS)
    return scored if mentions is None else with_mention_sentiment(scored, mentions)


def _month_keys(events: pl.LazyFrame, config: ScoringConfig) -> pl.DataFrame:
    """(month, brand, grain, period) of every dated period each UTC storage month's events fall in."""
    cols = events.collect_schema().names()
    stamped = events.select("brand", _ts=time_base_expr(cols)).with_columns(
        month=pl.col("_ts").dt.convert_time_zone("UTC").dt.strftime("%Y-%m"))
    return (with_periods(stamped, DATED_GRAINS, time_zone=config.time_zone,
                         brand_time_zones=config.brand_time_zones)
            .select("month", *PERIOD_KEYS).unique().collect())


def _version(config: ScoringConfig) -> str:
    return f"{STATE_VERSION}|{config!r}"  # any setting (time zones, thresholds) changes every row


def _finish_run(store: ParquetStore, aggregates: pl.DataFrame, cells: pl.DataFrame, month_keys: pl.DataFrame,
                version: str, manifests: list[tuple[str, pl.DataFrame]]) -> None:
    """Outputs first, then state, then what was consumed: a crash anywhere re-does work, never skips it."""
    store.write_partition(AGGREGATES_DATASET, aggregates)
    store.write_partition(CELLS_STATE, cells)
    store.write_partition(MONTH_KEYS_STATE, month_keys)
    store.write_partition(VERSION_STATE, pl.DataFrame({"version": [version]}))
    for dataset, current in manifests:
        month_layout.mark_consumed(store, dataset, CONSUMER, current)


def aggregates_incrementally(
    store: ParquetStore, config: ScoringConfig | None = None, *, full: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """(aggregates, recomputed (brand, grain, period) keys, whether everything was recomputed).

    Net sentiment per touchpoint comes from the mentions (``with_mention_sentiment``). The result equals
    ``metric_aggregates`` over every stored event (tested).
    """
    cfg = config or ScoringConfig()
    version = _version(cfg)
    changed, current = month_layout.changed_months(store, SCORED_DATASET, CONSUMER)
    changed_m, current_m = month_layout.changed_months(store, MENTIONS_DATASET, CONSUMER)
    changed |= changed_m
    manifests = [(SCORED_DATASET, current), (MENTIONS_DATASET, current_m)]
    previous = store.read(AGGREGATES_DATASET)
    cells = store.read(CELLS_STATE)
    month_keys = store.read(MONTH_KEYS_STATE)
    stored_version = store.read(VERSION_STATE)
    usable = (
        not full
        and previous is not None and cells is not None and month_keys is not None
        and stored_version is not None and stored_version.height == 1 and stored_version["version"][0] == version
        and set(previous.columns) == set(AGGREGATE_SCHEMA)
    )
    if not usable:
        events = _events(store, set())
        if events is None:
            empty = pl.DataFrame(schema=AGGREGATE_SCHEMA)
            return empty, empty.select(PERIOD_KEYS), True
        dated = metric_aggregates(events, periods=DATED_GRAINS, config=cfg)
        cells = month_cells(events, cfg)
        aggregates = pl.concat([dated, aggregates_from_cells(cells, cfg)]).sort(_SORT, nulls_last=False)
        _finish_run(store, aggregates, cells, _month_keys(events, cfg), version, manifests)
        return aggregates, aggregates.select(PERIOD_KEYS).unique(), True
    assert previous is not None and cells is not None and month_keys is not None
    if not changed:
        return previous, previous.select(PERIOD_KEYS).clear(), False
    events = _events(store, month_layout.neighbours(changed))
    now_keys = (_month_keys(events, cfg) if events is not None
                else month_keys.clear()).filter(pl.col("month").is_in(sorted(changed)))
    before = month_keys.filter(pl.col("month").is_in(sorted(changed)))
    keys = pl.concat([now_keys, before]).select(PERIOD_KEYS).unique()
    if events is not None and keys.height:
        fresh = metric_aggregates(events, periods=keys["grain"].unique().to_list(), config=cfg, only_periods=keys)
        month_periods = keys.filter(grain="month")
        fresh_cells = month_cells(events, cfg, only_periods=month_periods) if month_periods.height \
            else cells.clear()
    else:
        fresh, fresh_cells = previous.clear(), cells.clear()
    cell_keys = ["brand", "grain", "period"]
    cells = pl.concat([cells.join(keys.filter(grain="month"), on=cell_keys, how="anti"),
                       fresh_cells.select(cells.columns)], how="vertical_relaxed")
    whole = aggregates_from_cells(cells, cfg)
    kept = previous.filter(pl.col("grain") != ALL).join(keys, on=list(PERIOD_KEYS), how="anti")
    aggregates = (pl.concat([kept.select(list(AGGREGATE_SCHEMA)).cast(AGGREGATE_SCHEMA), fresh, whole])
                  .sort(_SORT, nulls_last=False))
    month_keys = pl.concat([month_keys.filter(~pl.col("month").is_in(sorted(changed))), now_keys])
    _finish_run(store, aggregates, cells, month_keys, version, manifests)
    return aggregates, pl.concat([keys, whole.select(PERIOD_KEYS).unique()]), False
