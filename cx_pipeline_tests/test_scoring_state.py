"""Incremental metrics at the storage level: the second run recomputes nothing, an edit only its periods."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal

from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.pipeline.scoring_state import aggregates_incrementally
from cx_pipeline.scoring import metric_aggregates
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


def test_second_run_recomputes_nothing_and_an_edit_only_its_periods(tmp_path, keyer) -> None:
    store = ParquetStore(str(tmp_path))
    first, keys, full = aggregates_incrementally(store, _events(keyer, 0.0))
    assert full and keys.height > 0
    again, keys, full = aggregates_incrementally(store, _events(keyer, 0.0))
    assert not full and keys.height == 0
    assert again.equals(first)
    edited = _events(keyer, 10.0)  # R_0 (day 1) changes from detractor to promoter
    updated, keys, full = aggregates_incrementally(store, edited)
    assert not full
    assert sorted(keys["period"].to_list()) == ["2026-11", "2026-11-01", "2026-W44", "all"]
    full_recompute = metric_aggregates(edited, periods=("day", "week", "month", "all"))
    assert_frame_equal(updated.sort(KEYS), full_recompute.sort(KEYS), check_exact=False, rel_tol=1e-9)
    day2 = updated.filter((pl.col("period") == "2026-11-02") & (pl.col("source") == "all"))
    assert day2.equals(first.filter((pl.col("period") == "2026-11-02") & (pl.col("source") == "all")))
