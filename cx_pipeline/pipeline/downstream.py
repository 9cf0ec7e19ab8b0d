"""The scored datasets computed from scored events and mentions, as plain functions over the store.

The assets in ``defs/assets/scored.py`` call these, and so does ``bench/bench_daily_cost.py``, so the benchmark
times exactly what a run does. Each reads only the columns it needs from the month partitions.
"""

from __future__ import annotations

import polars as pl

from cx_pipeline.pipeline.time_layout import scan_all
from cx_pipeline.scoring import (
    AlertConfig,
    DriverConfig,
    alert_tests,
    key_drivers,
    peak_end_journeys,
    peaks_potholes,
)
from cx_pipeline.scoring.peaks_potholes import PeakConfig
from cx_pipeline.scoring.reply_latency import reply_latency
from cx_pipeline.storage import ParquetStore

SCORED_DATASET = "scored/scored_events"
MENTIONS_DATASET = "scored/touchpoint_mentions"
METRICS_DATASET = "scored/cx_metrics"
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


def build_key_drivers(store: ParquetStore, config: DriverConfig) -> pl.DataFrame:
    return key_drivers(_scored(store), mentions=_mentions(store), config=config)


def build_peaks_potholes(store: ParquetStore, config: PeakConfig) -> pl.DataFrame:
    return peaks_potholes(_scored(store, keep_text=True), mentions=_mentions(store), config=config)


def build_journeys(store: ParquetStore) -> pl.DataFrame:
    return peak_end_journeys(_scored(store))


def build_reply_latency(store: ParquetStore, *, time_zone: str = "UTC",
                        brand_time_zones: tuple[tuple[str, str], ...] = ()) -> pl.DataFrame:
    return reply_latency(_scored(store), time_zone=time_zone, brand_time_zones=brand_time_zones)


def build_alert_tests(store: ParquetStore, config: AlertConfig) -> pl.DataFrame:
    metrics = store.read(METRICS_DATASET)
    if metrics is None:
        raise LookupError(f"{store.url(METRICS_DATASET)}: no metrics stored yet; materialize cx_metrics")
    return alert_tests(metrics, config=config)
