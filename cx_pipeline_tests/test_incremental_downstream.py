"""A daily run of every scored step equals the same datasets computed at once over all stored events (issue 11).

Six weeks of reviews arrive day by day (late experience dates, returning customers, company replies) through the
real incremental steps; the month rows of drivers, peaks and reply latency, the all-time rows derived from months
and the journeys of returning customers must equal a direct computation over the final scored events.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cx_pipeline.contract import EVENT_SCHEMA
from cx_pipeline.pipeline import downstream
from cx_pipeline.pipeline.events_table import update_touchpoint_events
from cx_pipeline.pipeline.scoring_state import aggregates_incrementally
from cx_pipeline.pipeline.text_scoring_state import update_scored_days
from cx_pipeline.pipeline.time_layout import scan_all
from cx_pipeline.scoring import DriverConfig, ScoringConfig, key_drivers, peak_end_journeys, peaks_potholes
from cx_pipeline.scoring.peaks_potholes import PeakConfig
from cx_pipeline.scoring.reply_latency import reply_latency
from cx_pipeline.storage import ParquetStore
from cx_pipeline_tests.synthetic_history import day_events, start_of

DAYS = 45
PER_DAY = 25
ZONES = {"time_zone": "UTC", "brand_time_zones": (("Nordlys", "Europe/Oslo"),)}


def _run_day(store: ParquetStore, i: int) -> None:
    day = start_of(2026, 1, 1) + timedelta(days=i)
    ev = day_events(day, PER_DAY, seed=i, start_id=i * PER_DAY, customer_pool=120, reply_share=0.4)
    store.write_partition("events/review_events", ev, {"day": day.strftime("%Y-%m-%d")}, schema=EVENT_SCHEMA)
    update_touchpoint_events(store)
    update_scored_days(store)
    aggregates_incrementally(store, ScoringConfig(**ZONES))
    downstream.build_key_drivers(store, DriverConfig(**ZONES))
    downstream.build_peaks_potholes(store, PeakConfig(**ZONES))
    downstream.build_journeys(store)
    downstream.build_reply_latency(store, **ZONES)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> ParquetStore:
    store = ParquetStore(str(tmp_path_factory.mktemp("daily")))
    for i in range(DAYS):
        _run_day(store, i)
    return store


def _all(store: ParquetStore, dataset: str) -> pl.LazyFrame:
    lf = scan_all(store, dataset)
    assert lf is not None
    return lf


def _same(got: pl.DataFrame, expected: pl.DataFrame, keys: list[str]) -> None:
    assert got.height == expected.height > 0
    assert_frame_equal(got.sort(keys, nulls_last=True), expected.sort(keys, nulls_last=True), check_exact=False,
                       rel_tol=1e-9, abs_tol=1e-9)


def test_peaks_and_potholes_equal_a_direct_computation(history: ParquetStore) -> None:
    stored = history.read(downstream.PEAKS_DATASET)
    direct = peaks_potholes(_all(history, downstream.SCORED_DATASET), mentions=_all(history,
                            downstream.MENTIONS_DATASET), config=PeakConfig(**ZONES))
    assert stored is not None and stored.filter(grain="month").height >= 3
    _same(stored, direct, ["brand", "grain", "period", "touchpoint"])


def test_reply_latency_equals_a_direct_computation(history: ParquetStore) -> None:
    stored = history.read(downstream.REPLIES_DATASET)
    direct = reply_latency(_all(history, downstream.SCORED_DATASET), **ZONES)
    assert stored is not None and stored.filter(grain="all")["replied"][0] > 0
    _same(stored, direct, ["brand", "source", "grain", "period"])


def test_journeys_of_returning_customers_equal_a_direct_computation(history: ParquetStore) -> None:
    stored = history.read(downstream.JOURNEYS_DATASET)
    direct = peak_end_journeys(_all(history, downstream.SCORED_DATASET))
    assert stored is not None and stored["n_moments"].max() >= 5
    _same(stored, direct, ["brand", "customer_key"])


def test_key_drivers_equal_a_direct_computation(history: ParquetStore) -> None:
    stored = history.read(downstream.DRIVERS_DATASET)
    direct = key_drivers(_all(history, downstream.SCORED_DATASET), mentions=_all(history,
                         downstream.MENTIONS_DATASET), config=DriverConfig(**ZONES))
    assert stored is not None and stored.filter(grain="month").height >= 3
    _same(stored, direct, ["brand", "grain", "period", "method", "outcome", "touchpoint"])


def test_the_kept_driver_sample_equals_a_fresh_draw(tmp_path) -> None:
    """All-time drivers run on a stable hash sample kept between runs; updating it from the changed days gives
    the same sample (and the same drivers) as drawing it again from the whole history."""
    store = ParquetStore(str(tmp_path))
    config = DriverConfig(max_records=60, **ZONES)
    for i in range(12):
        _run_day(store, i)
    downstream._all_time_drivers(store, config, None)  # draw and keep the sample
    day = start_of(2026, 1, 1) + timedelta(days=12)
    ev = day_events(day, PER_DAY, seed=12, start_id=12 * PER_DAY, customer_pool=120, reply_share=0.4)
    store.write_partition("events/review_events", ev, {"day": day.strftime("%Y-%m-%d")}, schema=EVENT_SCHEMA)
    update_touchpoint_events(store)
    changed = update_scored_days(store).days
    aggregates_incrementally(store, ScoringConfig(**ZONES))
    kept = downstream._all_time_drivers(store, config, set(changed))
    drawn = downstream._all_time_drivers(store, config, None)
    assert kept.height > 0 and kept["sampled_from"].drop_nulls().len() > 0
    assert kept["n"].max() <= 60
    _same(kept, drawn, ["brand", "grain", "period", "method", "outcome", "touchpoint"])
