"""Incremental text scoring: a second run scores nothing, an edit rescores only its record, results equal a full
recompute."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal

from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.pipeline.text_scoring_state import MENTIONS_DATASET, SCORED_DATASET, score_text_incrementally
from cx_pipeline.scoring.text.score import score_text_and_mentions
from cx_pipeline.sources.base import ParseResult, measures_frame
from cx_pipeline.storage import ParquetStore

TEXTS = [
    "Hurtig levering, men kundeservice svarede aldrig.",
    "Pakken kom for sent og var i stykker.",
    "Great product, awful delivery.",
    "Snabb leverans och trevlig personal i butiken.",
]


def _events(keyer, first_text: str) -> pl.DataFrame:
    rows = []
    for i in range(12):
        text = first_text if i == 0 else TEXTS[i % len(TEXTS)] + f" ({i})"
        for key, metric, tp, score in (("Q1", "nps", "overall", float(i % 11)), ("Q2", "csat", "delivery", 4.0),
                                       ("comment", "comment", "overall", None)):
            rows.append({"native_id": f"R_{i}", "position": f"row={i}", "measure_key": key, "metric": metric,
                         "touchpoint": tp, "score_raw": score,
                         "scale_min": None if score is None else (0.0 if metric == "nps" else 1.0),
                         "scale_max": None if score is None else (10.0 if metric == "nps" else 5.0),
                         "higher_is_better": True, "text": text, "language": "da" if i % 4 < 2 else None,
                         "published_at": datetime(2026, 11, 1 + i % 3, 12, tzinfo=UTC)})
    ctx = NormalizeContext(brand="B", source_url="f.csv", raw_key="k", ingested_at=datetime(2026, 11, 3, tzinfo=UTC),
                           keyer=keyer)
    return to_events(ParseResult("qualtrics", "q@t", measures_frame(rows), 12), ctx, source_kind="survey")


def _store_result(store: ParquetStore, result) -> None:
    store.write_partition(SCORED_DATASET, result.events)
    store.write_partition(MENTIONS_DATASET, result.mentions)


def _sorted(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.sort(keys).select(sorted(frame.columns))


def test_second_run_scores_nothing_and_an_edit_only_its_record(tmp_path, keyer) -> None:
    store = ParquetStore(str(tmp_path))
    events = _events(keyer, "Alt var fint.")
    first = score_text_incrementally(store, events)
    assert (first.full, first.rescored_records, first.reason) == (True, 12, "nothing stored yet")
    _store_result(store, first)

    second = score_text_incrementally(store, events)
    assert (second.full, second.rescored_records, second.reused_records) == (False, 0, 12)
    assert_frame_equal(_sorted(second.events, ["event_id"]), _sorted(first.events, ["event_id"]))
    assert_frame_equal(_sorted(second.mentions, ["event_id", "touchpoint"]),
                       _sorted(first.mentions, ["event_id", "touchpoint"]))

    edited = _events(keyer, "Maden var kold og kundeservice tog aldrig telefonen.")
    third = score_text_incrementally(store, edited)
    assert (third.full, third.rescored_records, third.reused_records) == (False, 1, 11)
    direct = score_text_and_mentions(edited)
    text_cols = ["event_id", "sentiment", "sentiment_label", "language", "text_touchpoints"]
    assert_frame_equal(_sorted(third.events.select(text_cols), ["event_id"]),
                       _sorted(direct.events.select(text_cols), ["event_id"]))
    assert_frame_equal(_sorted(third.mentions.drop("clause"), ["event_id", "touchpoint"]),
                       _sorted(direct.mentions.drop("clause"), ["event_id", "touchpoint"]))
    r0 = third.events.filter(pl.col("record_id").str.ends_with("R_0") & (pl.col("metric") == "comment")).row(
        0, named=True)
    assert r0["sentiment"] < 0 and "customer_service" in r0["text_touchpoints"]


def test_a_new_scoring_method_rescores_everything(tmp_path, keyer) -> None:
    store = ParquetStore(str(tmp_path))
    events = _events(keyer, "Alt var fint.")
    _store_result(store, score_text_incrementally(store, events, sentiment_method="lexicon"))
    again = score_text_incrementally(store, events)  # default cx-linear now
    assert again.full and again.reason.startswith("scoring method changed")
    assert again.events["sentiment_method"].drop_nulls().str.starts_with("cx-linear@").all()
