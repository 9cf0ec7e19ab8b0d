"""Clauses and touchpoint mentions: each touchpoint gets the sentiment of the words about it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cx_pipeline.scoring.text.clauses import number_clauses, split_fragments
from cx_pipeline.scoring.text.mentions import MENTION_SCHEMA, MENTION_UNIQUE
from cx_pipeline.scoring.text.score import SCORED_TEXT_COLUMNS, score_text_and_mentions


def _events(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {"source": "trustpilot", "brand": "B", "touchpoint": "overall", "metric": "star_rating", "title": None,
            "country": None, "published_at": datetime(2025, 3, 1, tzinfo=UTC), "occurred_at": None,
            "customer_key": None, "language_origin": "declared"}
    full = [{**base, **r} for r in rows]
    return pl.DataFrame(full, schema_overrides={"title": pl.String, "country": pl.String, "customer_key": pl.String,
                                                "occurred_at": pl.Datetime("us", "UTC"),
                                                "published_at": pl.Datetime("us", "UTC")})


def _mentions(events: pl.DataFrame, **kwargs: object) -> dict[tuple[str, str], dict[str, object]]:
    out = score_text_and_mentions(events, **kwargs).mentions  # type: ignore[arg-type]
    return {(r["event_id"], r["touchpoint"]): r for r in out.iter_rows(named=True)}


# --- clauses -----------------------------------------------------------------------------------------------------


def test_fragments_split_at_sentences_contrast_and_commas() -> None:
    frame = pl.DataFrame({"rid": [0, 1, 2], "lang": ["en", "sv", "en"],
                          "text": ["Fast delivery but customer service never answered.",
                                   "Snabb leverans fast produkten var trasig. Bra pris!",
                                   "The food, however, was cold"]})
    got = split_fragments(frame).group_by("rid", maintain_order=True).agg("boundary", "fragment").sort("rid")
    assert got.row(0) == (0, ["start", "contrast"], ["Fast delivery", "but customer service never answered."])
    # Swedish "fast" is "although"; the sentence ends at "." before "Bra"
    assert got.row(1) == (1, ["start", "contrast", "sentence"],
                          ["Snabb leverans", "fast produkten var trasig.", "Bra pris!"])
    # a parenthetical "however," does not split
    assert got.row(2)[2] == ["The food,", "however,", "was cold"]
    assert got.row(2)[1] == ["start", "comma", "comma"]


def test_english_fast_is_not_a_contrast_word_and_a_final_though_does_not_split() -> None:
    got = split_fragments(pl.DataFrame({"rid": [0, 1], "lang": ["en", "en"],
                                        "text": ["Fast delivery fast answers", "The shoes look great though."]}))
    assert got["fragment"].to_list() == ["Fast delivery fast answers", "The shoes look great though."]


def test_commas_split_only_between_touchpoints() -> None:
    frags = pl.DataFrame({
        "rid": [0, 0, 0, 1, 1],
        "fragment_no": [0, 1, 2, 0, 1],
        "boundary": ["start", "comma", "comma", "start", "comma"],
        "has_tp": [True, False, True, False, True],
    })
    got = number_clauses(frags)["clause_no"].to_list()
    # "Hurtig levering, super, elendig kundeservice" -> 2 clauses; "Super, pakken kom aldrig" -> 1 clause
    assert got == [0, 0, 1, 0, 0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([*"abc æøå,.!?;\n", "men ", "but ", "Men ", ", fast ", "however, "]),
                max_size=40).map("".join),
       st.sampled_from(["da", "no", "sv", "en"]))
def test_fragments_keep_every_word(text: str, lang: str) -> None:
    frags = split_fragments(pl.DataFrame({"rid": [0], "lang": [lang], "text": [text]}))
    assert re.findall(r"[^\W_]+", " ".join(frags["fragment"].to_list())) == re.findall(r"[^\W_]+", text)
    assert frags["fragment_no"].to_list() == list(range(frags.height))


# --- mentions ---------------------------------------------------------------------------------------------------


def test_two_sided_review_gets_opposite_sentiments_per_touchpoint() -> None:
    events = _events([
        {"event_id": "e1", "record_id": "r1", "language": "en",
         "text": "Fast delivery but customer service never answered my emails."},
        {"event_id": "e2", "record_id": "r2", "language": "da",
         "text": "Maden var rigtig god, men leveringen tog over to timer."},
        {"event_id": "e3", "record_id": "r3", "language": "sv",
         "text": "Kundtjänsten var otroligt hjälpsam, men priset är alldeles för högt."},
    ])
    m = _mentions(events)
    assert m[("e1", "delivery")]["sentiment_label"] == "positive"
    assert m[("e1", "customer_service")]["sentiment_label"] == "negative"
    assert m[("e1", "delivery")]["sentiment"] > 0 > m[("e1", "customer_service")]["sentiment"]
    assert m[("e2", "product")]["sentiment"] > 0 > m[("e2", "delivery")]["sentiment"]
    assert m[("e3", "customer_service")]["sentiment"] > 0 > m[("e3", "price")]["sentiment"]
    assert m[("e1", "customer_service")]["clause"].startswith("but customer service")
    assert m[("e1", "delivery")]["evidence"] == ["delivery:delivery"] or all(
        e.startswith("delivery:") for e in m[("e1", "delivery")]["evidence"])


def test_survey_comment_is_mentioned_once_per_response_not_per_measure() -> None:
    comment = "Pakken kom aldrig frem og ingen svarede på mine mails"
    events = _events([
        {"event_id": f"e{i}", "record_id": "resp1", "source": "qualtrics", "touchpoint": tp, "metric": metric,
         "language": "da", "text": comment}
        for i, (tp, metric) in enumerate([("overall", "nps"), ("delivery", "csat"), ("customer_service", "csat"),
                                          ("overall", "comment")])
    ])
    result = score_text_and_mentions(events)
    mentions = result.mentions
    assert mentions["event_id"].unique().to_list() == ["e3"]  # the comment measure carries the mentions
    assert sorted(mentions["touchpoint"].to_list()) == ["customer_service", "delivery"]
    assert (mentions["sentiment"] < 0).all()
    # every measure of the response still has the same event-level sentiment, computed once
    assert result.events["sentiment"].n_unique() == 1 and result.events["sentiment"][0] < 0


def test_clause_without_touchpoint_goes_to_the_events_own_touchpoint() -> None:
    events = _events([
        {"event_id": "e1", "record_id": "r1", "language": "en", "text": "Absolutely terrible. Never again!"},
        {"event_id": "s1", "record_id": "resp", "source": "qualtrics", "touchpoint": "delivery", "metric": "csat",
         "language": "en", "text": "Brilliant, thank you so much"},
        {"event_id": "s2", "record_id": "resp", "source": "qualtrics", "touchpoint": "price", "metric": "csat",
         "language": "en", "text": "Brilliant, thank you so much"},
    ])
    m = _mentions(events)
    assert set(m) == {("e1", "overall"), ("s1", "overall")}
    assert m[("e1", "overall")]["origin"] == "own_touchpoint" and m[("e1", "overall")]["sentiment"] < 0
    # a comment repeated on measures of different touchpoints speaks for the response: overall
    assert m[("s1", "overall")]["sentiment"] > 0 and m[("s1", "overall")]["evidence"] == []


def test_event_sentiment_is_computed_from_its_clauses() -> None:
    events = _events([{"event_id": "e1", "record_id": "r1", "language": "en",
                       "text": "The delivery was quick. The food was cold and bland."}])
    result = score_text_and_mentions(events)
    m = {r["touchpoint"]: r for r in result.mentions.iter_rows(named=True)}
    ev = result.events.row(0, named=True)
    # two opinion clauses, equal weight: the event is their mean
    assert ev["sentiment"] == pytest.approx((m["delivery"]["sentiment"] + m["product"]["sentiment"]) / 2)


def test_mentions_schema_method_and_redaction() -> None:
    events = _events([
        {"event_id": "e1", "record_id": "r1", "language": "en",
         "text": "Customer service was rude, call me on +45 12 34 56 78 or mail a.b@example.com"},
        {"event_id": "e2", "record_id": "r2", "language": "de", "text": "Die Lieferung war schnell"},
        {"event_id": "e3", "record_id": "r3", "language": "en", "text": None},
    ])
    result = score_text_and_mentions(events)
    mentions = result.mentions
    assert dict(mentions.schema) == MENTION_SCHEMA
    assert mentions.select(MENTION_UNIQUE).is_duplicated().sum() == 0
    assert mentions["event_id"].to_list() == ["e1"]  # German is not scored; no text, no mention
    row = mentions.row(0, named=True)
    assert "[phone]" in row["clause"] and "[email]" in row["clause"] and "example.com" not in row["clause"]
    assert row["method"].startswith("cx-linear@") and "sha256:" in row["method"]
    assert row["text_method_version"].startswith("cx_text@2.") and "clauses@" in row["text_method_version"]
    scored = result.events
    assert scored.filter(pl.col("text").is_not_null() & pl.col("sentiment").is_not_null())[
        "sentiment_method"].str.starts_with("cx-linear@").all()
    for name, (dtype, _) in SCORED_TEXT_COLUMNS.items():
        assert scored.schema[name] == dtype


def test_lexicon_method_is_still_selectable() -> None:
    events = _events([{"event_id": "e1", "record_id": "r1", "language": "en", "text": "Great service, awful price"}])
    m = _mentions(events, sentiment_method="lexicon")
    assert all(r["method"].startswith("cx-lexicon@") for r in m.values())
    assert m[("e1", "customer_service")]["sentiment"] > 0 > m[("e1", "price")]["sentiment"]


def test_net_sentiment_per_touchpoint_comes_from_mentions_not_copies() -> None:
    """One comment on a response that rates delivery and customer service: the two touchpoints must not share
    the comment's one sentiment in cx_metrics."""
    from cx_pipeline.scoring.aggregates import metric_aggregates, with_mention_sentiment

    comment = "Hurtig levering, men kundeservice svarede aldrig på mine mails."
    rows = []
    for r in range(3):
        for tp, metric in (("delivery", "csat"), ("customer_service", "csat"), ("overall", "comment")):
            rows.append({"event_id": f"r{r}-{tp}", "record_id": f"r{r}", "source": "qualtrics", "touchpoint": tp,
                         "metric": metric, "language": "da", "text": comment,
                         "score_raw": None if metric == "comment" else 4.0,
                         "score_norm": None if metric == "comment" else 0.75,
                         "scale_min": None if metric == "comment" else 1.0,
                         "scale_max": None if metric == "comment" else 5.0,
                         "higher_is_better": True, "is_removed": False})
    result = score_text_and_mentions(_events(rows))
    naive = metric_aggregates(result.events, periods=("all",))
    fixed = metric_aggregates(with_mention_sentiment(result.events, result.mentions), periods=("all",))

    def net(frame: pl.DataFrame, tp: str) -> float:
        return frame.filter((pl.col("metric") == "sentiment") & (pl.col("touchpoint") == tp)
                            & (pl.col("source") == "all"))["value"].item()

    assert net(naive, "delivery") == net(naive, "customer_service")  # the copy the issue describes
    assert (net(fixed, "delivery"), net(fixed, "customer_service")) == (100.0, -100.0)
    assert fixed.filter((pl.col("metric") == "sentiment") & (pl.col("touchpoint") == "delivery")
                        & (pl.col("source") == "all"))["n_respondents"].item() == 3
