from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.scoring.reply_latency import REPLY_SCHEMA, reply_latency
from cx_pipeline.sources.base import ParseResult, measures_frame

T = datetime(2026, 11, 2, 10, tzinfo=UTC)


def _events(keyer, replies: list[float | None]) -> pl.DataFrame:
    rows = [
        {
            "native_id": f"r{i}",
            "position": f"reviews[{i}]",
            "measure_key": "stars",
            "metric": "star_rating",
            "score_raw": 3.0,
            "scale_min": 1.0,
            "scale_max": 5.0,
            "higher_is_better": True,
            "published_at": T,
            "reply_text": None if h is None else "Tak!",
            "replied_at": None if h is None else T + timedelta(hours=h),
        }
        for i, h in enumerate(replies)
    ]
    ctx = NormalizeContext(brand="B", source_url="u", raw_key="k", ingested_at=T, keyer=keyer)
    return to_events(ParseResult("trustpilot", "t@1", measures_frame(rows), len(rows)), ctx, source_kind="review")


def test_reply_rate_and_latency_by_hand(keyer) -> None:
    # 5 reviews, replies after 2, 4, 10 and -1 (skew → 0) hours; one unanswered
    out = reply_latency(_events(keyer, [2.0, 4.0, None, 10.0, -1.0]), periods=("all",))
    assert out.schema == pl.Schema(REPLY_SCHEMA)
    row = out.row(0, named=True)
    assert (row["reviews"], row["replied"], row["touchpoint"]) == (5, 4, "customer_service")
    assert row["reply_rate"] == 0.8
    assert row["median_hours"] == 3.0  # median of 0, 2, 4, 10
    assert row["mean_hours"] == 4.0
    assert row["p90_hours"] == pytest.approx(8.2)  # position 0.9·(4 − 1) = 2.7: 4 + 0.7·(10 − 4)
    # Wilson 95 %, p̂ = .8, n = 5: (.8 + .38416 − 1.96·√(.032 + .038416)) / 1.76832
    assert row["reply_rate_ci_low"] == pytest.approx(0.37553, abs=1e-4)
    assert row["low_n"] is True


def test_removed_reviews_and_surveys_are_left_out(keyer) -> None:
    ev = _events(keyer, [1.0, None]).with_columns(is_removed=pl.col("record_id") == "trustpilot:r1")
    out = reply_latency(ev, periods=("all",))
    assert out["reviews"].to_list() == [1] and out["replied"].to_list() == [1]


def test_reviews_sit_in_the_same_month_as_in_cx_metrics(keyer) -> None:
    """Experienced in October, published in November: both datasets put the review in October."""
    from cx_pipeline.scoring.aggregates import metric_aggregates

    events = _events(keyer, [5.0]).with_columns(occurred_at=pl.lit(datetime(2026, 10, 28, tzinfo=UTC)))
    replies = reply_latency(events, periods=("month",))
    metrics = metric_aggregates(events, periods=("month",))
    assert replies["period"].to_list() == ["2026-10"]
    assert set(metrics["period"]) == {"2026-10"}
