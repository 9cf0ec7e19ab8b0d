from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.pipeline.events_table import build_touchpoint_events
from cx_pipeline.sources.base import ParseResult, measures_frame

T1 = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=1)


def _page(ids: list[str], fetched: datetime, raw_key: str, keyer, text: str = "ok") -> pl.DataFrame:
    rows = [
        {
            "native_id": i,
            "position": f"reviews[{n}]",
            "measure_key": "stars",
            "metric": "star_rating",
            "score_raw": 4.0,
            "scale_min": 1.0,
            "scale_max": 5.0,
            "higher_is_better": True,
            "text": text,
        }
        for n, i in enumerate(ids)
    ]
    ctx = NormalizeContext(
        brand="B", source_url="http://site/review/b", raw_key=raw_key, ingested_at=fetched, keyer=keyer
    )
    return to_events(
        ParseResult("trustpilot", "trustpilot@t", measures_frame(rows), len(rows)), ctx, source_kind="review"
    )


def _pages(rows: list[tuple[str, datetime, str]]) -> pl.LazyFrame:
    return pl.DataFrame(
        [
            {"source_id": "s", "raw_key": k, "fetched_at": t, "crawl_started_at": t, "stop_reason": stop}
            for k, t, stop in rows
        ],
        schema={
            "source_id": pl.String,
            "raw_key": pl.String,
            "fetched_at": pl.Datetime("us", "UTC"),
            "crawl_started_at": pl.Datetime("us", "UTC"),
            "stop_reason": pl.String,
        },
    ).lazy()


def test_review_missing_from_a_complete_crawl_is_soft_deleted(keyer) -> None:
    day1 = _page(["a", "b"], T1, "k1", keyer)
    day2 = _page(["a"], T2, "k2", keyer)
    out = build_touchpoint_events(
        [day1.lazy(), day2.lazy()], _pages([("k1", T1, "last_page"), ("k2", T2, "last_page")])
    )
    assert out.height == 2
    assert dict(zip(out["record_id"], out["is_removed"], strict=True)) == {"trustpilot:a": False, "trustpilot:b": True}


def test_incremental_crawl_proves_nothing_and_reappearance_reverses(keyer) -> None:
    day1 = _page(["a", "b"], T1, "k1", keyer)
    day2 = _page(["a"], T2, "k2", keyer)
    out = build_touchpoint_events(
        [day1.lazy(), day2.lazy()], _pages([("k1", T1, "last_page"), ("k2", T2, "known_reached")])
    )
    assert not out["is_removed"].any()
    day3 = _page(["a", "b"], T2 + timedelta(days=1), "k3", keyer)
    pages = _pages([("k1", T1, "last_page"), ("k2", T2, "last_page"), ("k3", T2 + timedelta(days=1), "last_page")])
    out = build_touchpoint_events([day1.lazy(), day2.lazy(), day3.lazy()], pages)
    assert not out["is_removed"].any()


def test_edit_gives_one_row_with_the_latest_text(keyer) -> None:
    day1 = _page(["a"], T1, "k1", keyer, text="first")
    day2 = _page(["a"], T2, "k2", keyer, text="edited")
    out = build_touchpoint_events([day2.lazy(), day1.lazy()], None)
    assert out["text"].to_list() == ["edited"]
