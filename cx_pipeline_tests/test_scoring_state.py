"""Incremental metrics at the storage level: the second run recomputes nothing, an edit only its periods, and a
multi-month history with edits, moves and removals equals a full recompute."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal

from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.pipeline import time_layout
from cx_pipeline.pipeline.scoring_state import SCORED_DATASET, aggregates_incrementally
from cx_pipeline.scoring import metric_aggregates
from cx_pipeline.scoring.metrics import ScoringConfig
from cx_pipeline.sources.base import ParseResult, measures_frame
from cx_pipeline.storage import ParquetStore

KEYS = ["brand", "touchpoint", "source", "grain", "period", "metric"]


def _events(keyer, nps_of_first: float) -> pl.DataFrame:
    rows = []
    for i in range(40):
        day = 1 + i % 2  # two days in one ISO week and month
        rows.append(
            {
                "native_id": f"R_{i}",
                "position": f"row={i}",
                "measure_key": "Q1",
                "metric": "nps",
                "touchpoint": "overall",
                "score_raw": nps_of_first if i == 0 else float(i % 11),
                "scale_min": 0.0,
                "scale_max": 10.0,
                "higher_is_better": True,
                "published_at": datetime(2026, 11, day, 12, tzinfo=UTC),
            }
        )
    ctx = NormalizeContext(
        brand="B", source_url="f.csv", raw_key="k", ingested_at=datetime(2026, 11, 3, tzinfo=UTC), keyer=keyer
    )
    return to_events(ParseResult("qualtrics", "q@t", measures_frame(rows), 40), ctx, source_kind="survey")


def _store_days(store: ParquetStore, events: pl.DataFrame, *, only_changed: pl.DataFrame | None = None) -> None:
    """Store events by day as scored_events does; with ``only_changed`` (the previous table) only the days whose
    rows differ are rewritten, like a daily run."""
    days = set(events.select(time_layout.day_expr(events.columns)).to_series().unique().to_list())
    gone = set(time_layout.stored_days(store, SCORED_DATASET)) - days
    if only_changed is not None:
        diff = pl.concat([events.join(only_changed, on=events.columns, how="anti", nulls_equal=True),
                          only_changed.join(events, on=events.columns, how="anti", nulls_equal=True)])
        days = set(diff.select(time_layout.day_expr(diff.columns)).to_series().to_list())
    time_layout.write_days(store, SCORED_DATASET, events, [*days, *gone])


def test_second_run_recomputes_nothing_and_an_edit_only_its_periods(tmp_path, keyer) -> None:
    store = ParquetStore(str(tmp_path))
    _store_days(store, _events(keyer, 0.0))
    first, keys, full = aggregates_incrementally(store)
    assert full and keys.height > 0
    again, keys, full = aggregates_incrementally(store)
    assert not full and keys.height == 0
    assert again.equals(first)
    edited = _events(keyer, 10.0)  # R_0 (day 1) changes from detractor to promoter
    _store_days(store, edited)
    updated, keys, full = aggregates_incrementally(store)
    assert not full
    # both stored days were rewritten (by _store_days): their day cells are recomputed, everything else is rolled up
    assert sorted(keys["period"].unique().to_list()) == ["2026-11-01", "2026-11-02"]
    full_recompute = metric_aggregates(edited, periods=("day", "week", "month", "all"))
    assert_frame_equal(updated.sort(KEYS), full_recompute.sort(KEYS), check_exact=False, rel_tol=1e-9)
    day2 = updated.filter((pl.col("period") == "2026-11-02") & (pl.col("source") == "all"))
    assert day2.equals(first.filter((pl.col("period") == "2026-11-02") & (pl.col("source") == "all")))


def _history(keyer, edits: bool) -> pl.DataFrame:
    """Four months of NPS and CSAT answers around month ends (local Oslo time differs from UTC there)."""
    rows = []
    for i in range(400):
        month, day, hour = 1 + i % 4, 1 + (i * 7) % 28, (i * 5) % 24
        if i % 10 == 0:  # the last evening of a month: already the next month in Oslo
            day, hour = 28 if month == 2 else 30, 23
        when = datetime(2026, month, day, hour, 30, tzinfo=UTC)
        if edits and i == 7:
            when = datetime(2026, 4, 2, 9, tzinfo=UTC)  # edited: the experience date moves to April
        score = float(i % 11) if not (edits and i % 50 == 3) else 10.0
        for key, metric, hi in (("Q1", "nps", 10.0), ("Q2", "csat", 5.0)):
            rows.append({"native_id": f"R_{i}", "position": f"row={i}", "measure_key": key, "metric": metric,
                         "touchpoint": "overall" if metric == "nps" else "delivery",
                         "score_raw": min(score, hi) if metric == "csat" else score,
                         "scale_min": 0.0 if metric == "nps" else 1.0, "scale_max": hi, "higher_is_better": True,
                         "published_at": when, "customer_ref": f"cust{i % 97}"})
    ctx = NormalizeContext(brand="B", source_url="f.csv", raw_key="k",
                           ingested_at=datetime(2026, 5, 1, tzinfo=UTC), keyer=keyer)
    ev = to_events(ParseResult("qualtrics", "q@t", measures_frame(rows), 400), ctx, source_kind="survey")
    if edits:  # a removal, and a whole response gone
        ev = ev.with_columns(is_removed=pl.col("record_id").str.ends_with(":R_11"))
        ev = ev.filter(~pl.col("record_id").str.ends_with(":R_12"))
    return ev


def test_multi_month_history_with_edits_moves_and_removals_equals_a_full_recompute(tmp_path, keyer) -> None:
    config = ScoringConfig(brand_time_zones=(("B", "Europe/Oslo"),))
    store = ParquetStore(str(tmp_path))
    original = _history(keyer, edits=False)
    _store_days(store, original)
    aggregates_incrementally(store, config)
    edited = _history(keyer, edits=True)
    _store_days(store, edited, only_changed=original)
    updated, _, full = aggregates_incrementally(store, config)
    assert not full
    expected = metric_aggregates(edited, periods=("day", "week", "month", "all"), config=config)
    assert_frame_equal(updated.sort(KEYS), expected.sort(KEYS), check_exact=False, rel_tol=1e-9)
