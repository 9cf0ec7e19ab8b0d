"""Touchpoint mentions: which touchpoint each clause of a text talks about, and how the customer felt about it.

Why mentions and not one sentiment per text: "Fast delivery but customer service never answered" is good news for
delivery and bad news for customer service. Each text is cut into clauses (``clauses.py``), each clause is tagged
with touchpoints (``touchpoints.py``) and scored on its own; a clause that carries sentiment but names no
touchpoint counts for the event's own touchpoint (overall for a plain review). The event's sentiment is then
computed from its clauses, so the two views cannot disagree.

Survey answers repeat the respondent's comment on every measure of the response; a comment is one *text unit*
(same source, record, title, text and language) and is scored and mentioned once, on one representative event
(the comment measure when there is one), never once per measure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

from cx_pipeline.contract.taxonomy import touchpoints as taxonomy_touchpoints
from cx_pipeline.normalize.redact import redact_expr
from cx_pipeline.scoring.text.clauses import number_clauses, split_fragments
from cx_pipeline.scoring.text.touchpoints import tag_touchpoints

#: Labels below this |sentiment| are neutral. A clause carries an opinion when its label is not neutral (the
#: method's own judgement); a clause with no opinion and no touchpoint is not a mention.
OPINION_THRESHOLD = 0.05
OPINION_LABELS = ("positive", "negative", "mixed")
#: Event label "mixed": clauses at least this strong in both directions, and the event mean not clearly one way.
MIXED_CLAUSE_STRENGTH = 0.35
MIXED_MEAN_BAND = 0.25
#: Weight of a clause that follows a contrast word ("..., but X"): customers put the verdict after "but".
CONTRAST_WEIGHT = 1.5

MENTION_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "event_id": (pl.String(), "The event the text belongs to (for a survey comment: the comment measure's event, "
                 "once per response, not once per measure)."),
    "record_id": (pl.String(), "The review or survey response (contract record_id)."),
    "source": (pl.String(), "Source of the event (contract source)."),
    "brand": (pl.String(), "Brand of the event."),
    "touchpoint": (pl.String(), "Touchpoint the clause talks about; the event's own touchpoint for a clause with "
                   "sentiment but no touchpoint word."),
    "origin": (pl.String(), "text (a touchpoint word in the clause) or own_touchpoint (no touchpoint word: "
               "the event's own touchpoint)."),
    "clause": (pl.String(), "The clause(s) about this touchpoint, joined by ' | ' (e-mails, phones, IPs redacted)."),
    "clause_count": (pl.UInt32(), "How many clauses of the text mention this touchpoint."),
    "evidence": (pl.List(pl.String()), "Matched touchpoint terms 'touchpoint:term', empty for own_touchpoint."),
    "sentiment": (pl.Float64(), "Sentiment −1..1 of the clause(s) about this touchpoint (weighted mean)."),
    "sentiment_label": (pl.String(), "negative, neutral or positive (|sentiment| < 0.05 is neutral), or mixed "
                        "when its clauses disagree strongly."),
    "language": (pl.String(), "Language the clause was scored in (the event's language)."),
    "published_at": (pl.Datetime("us", "UTC"), "When the review/response was published (contract)."),
    "occurred_at": (pl.Datetime("us", "UTC"), "When the experience happened, when the source says (contract)."),
    "customer_key": (pl.String(), "Keyed hash linking one customer's events (never identity)."),
    "method": (pl.String(), "Clause sentiment method@version with its model/lexicon hashes."),
    "text_method_version": (pl.String(), "Full text-scoring version: clause rules, language id, sentiment method "
                            "and touchpoint terms with their hashes."),
}
MENTION_SCHEMA: dict[str, pl.DataType] = {name: dtype for name, (dtype, _) in MENTION_COLUMNS.items()}
MENTION_UNIQUE = ("event_id", "touchpoint")

#: scores clauses: frame with ``clause`` and ``lang`` in, same frame plus sentiment/sentiment_label/sentiment_method
_FLAT = {"keep_nulls": False, "empty_as_null": False}  # list.explode: a flat list of the group's items

ClauseScorer = Callable[[pl.DataFrame], pl.DataFrame]


def _in_taxonomy_order(touchpoints: pl.Expr) -> pl.Expr:
    """A list of touchpoints sorted in taxonomy order (unknown names last)."""
    order = {tp: i for i, tp in enumerate(taxonomy_touchpoints())}
    return touchpoints.list.eval(
        pl.element().sort_by(pl.element().replace_strict(order, default=len(order), return_dtype=pl.Int32)))


def mention_carriers(events: pl.DataFrame) -> pl.DataFrame:
    """The event columns a mention carries, by row index: built once per scoring pass, joined per batch.

    Callers outside the pipeline (a bare text + language frame) may lack event columns: those stay null.
    """
    carried = ("event_id", "record_id", "source", "brand", "published_at", "occurred_at", "customer_key")
    return events.select(
        _rep_row=pl.int_range(pl.len(), dtype=pl.UInt32),
        **{c: pl.col(c) if c in events.columns else pl.lit(None, dtype=MENTION_SCHEMA[c]) for c in carried},
    )


def text_units(events: pl.DataFrame, *, text_col: str = "text", title_col: str | None = "title") -> pl.DataFrame:
    """One row per distinct text of a record (``unit``), with the events that carry it and a representative event.

    Returns columns unit, text (title + ". " + text), lang, rep_row (row index of the representative event),
    rows (row indices of every event with this text) and own_touchpoint: where a clause with sentiment but no
    touchpoint word counts. That is the representative event's touchpoint, except for a comment repeated on
    measures of different touchpoints (a survey response), which speaks for the response as a whole: overall.
    """
    cols = events.columns
    text = pl.col(text_col).cast(pl.String)
    if title_col and title_col in cols:
        title = pl.col(title_col).cast(pl.String)
        text = (pl.when(title.is_not_null() & (title.str.strip_chars() != ""))
                .then(pl.concat_str([title, pl.lit(". "), text.fill_null("")]))
                .otherwise(text))
    is_comment = (pl.col("metric") == "comment") if "metric" in cols else pl.lit(False)
    keys = [c for c in ("source", "record_id") if c in cols]
    base = events.lazy().select(
        *[pl.col(k) for k in keys],
        _row=pl.int_range(pl.len(), dtype=pl.UInt32),
        _text=text,
        lang=pl.col("language").cast(pl.String),
        _comment=is_comment,
        _tp=pl.col("touchpoint").cast(pl.String) if "touchpoint" in cols else pl.lit("overall"),
    ).filter(pl.col("_text").is_not_null() & pl.col("_text").str.contains(r"[^\W_]"))
    return (
        base.group_by([*keys, "_text", "lang"], maintain_order=True)
        .agg(rep_row=pl.col("_row").sort_by(~pl.col("_comment"), pl.col("_row")).first(), rows=pl.col("_row"),
             _rep_tp=pl.col("_tp").sort_by(~pl.col("_comment"), pl.col("_row")).first(),
             _rep_comment=pl.col("_comment").any(), _n_tp=pl.col("_tp").n_unique())
        .select(unit=pl.int_range(pl.len(), dtype=pl.UInt32), text=pl.col("_text"), lang="lang",
                rep_row="rep_row", rows="rows",
                own_touchpoint=pl.when(pl.col("_rep_comment") | (pl.col("_n_tp") == 1)).then(pl.col("_rep_tp"))
                .otherwise(pl.lit("overall")))
        .collect()
    )


def clauses_of(units: pl.DataFrame, extra_term_files: Iterable[str | Path] = ()) -> pl.DataFrame:
    """One row per clause: unit, clause_no, clause, lang, after_contrast, touchpoints, evidence."""
    frags = split_fragments(units.select("unit", "lang", "text"), id_col="unit")
    frags = frags.join(units.select("unit", "lang"), on="unit", how="left", maintain_order="left")
    tagged = tag_touchpoints(frags, text_col="fragment", lang_col="lang", extra_term_files=tuple(extra_term_files))
    assert isinstance(tagged, pl.DataFrame)
    tagged = tagged.with_columns(has_tp=pl.col("text_touchpoints").list.len().fill_null(0) > 0)
    tagged = number_clauses(tagged, id_col="unit")
    return (
        tagged.lazy()
        .sort("unit", "fragment_no")
        .group_by("unit", "clause_no", maintain_order=True)
        .agg(
            clause=pl.col("fragment").str.join(" ").str.strip_chars_end(",:"),
            lang=pl.col("lang").first(),
            after_contrast=pl.col("boundary").first() == "contrast",
            touchpoints=pl.col("text_touchpoints").list.explode(**_FLAT).unique(maintain_order=True),
            evidence=pl.col("touchpoint_evidence").list.explode(**_FLAT).unique(maintain_order=True),
        )
        .with_columns(touchpoints=_in_taxonomy_order(pl.col("touchpoints")))
        .collect()
    )


def _label(sentiment: pl.Expr, strongest_pos: pl.Expr, strongest_neg: pl.Expr) -> pl.Expr:
    mixed = (strongest_pos >= MIXED_CLAUSE_STRENGTH) & (strongest_neg <= -MIXED_CLAUSE_STRENGTH) \
        & (sentiment.abs() < MIXED_MEAN_BAND)
    return (
        pl.when(sentiment.is_null()).then(None)
        .when(mixed).then(pl.lit("mixed"))
        .when(sentiment >= OPINION_THRESHOLD).then(pl.lit("positive"))
        .when(sentiment <= -OPINION_THRESHOLD).then(pl.lit("negative"))
        .otherwise(pl.lit("neutral"))
    )


def _weighted(group: list[str], frame: pl.LazyFrame) -> pl.LazyFrame:
    """Weighted mean sentiment per group over opinionated clauses (all clauses when none has an opinion)."""
    opinion = pl.col("sentiment_label").is_in(OPINION_LABELS)
    w = pl.when(pl.col("after_contrast")).then(pl.lit(CONTRAST_WEIGHT)).otherwise(pl.lit(1.0))
    w_op = pl.when(opinion).then(w).otherwise(0.0)
    return frame.group_by(group).agg(
        _num=(pl.col("sentiment") * w_op).sum(),
        _den=w_op.sum(),
        _plain=pl.col("sentiment").mean(),
        _pos=pl.col("sentiment").max(),
        _neg=pl.col("sentiment").min(),
        _n=pl.len().cast(pl.UInt32),
    ).with_columns(
        sentiment=pl.when(pl.col("_den") > 0).then(pl.col("_num") / pl.col("_den")).otherwise(pl.col("_plain"))
    ).with_columns(sentiment_label=pl.when(pl.col("_den") == 0).then(pl.lit("neutral"))
                   .otherwise(_label(pl.col("sentiment"), pl.col("_pos"), pl.col("_neg"))))


def unit_sentiment(clauses: pl.DataFrame) -> pl.DataFrame:
    """Per text unit: sentiment, label, touchpoints and evidence, computed from its scored clauses."""
    scored = clauses.lazy().filter(pl.col("sentiment").is_not_null())
    sent = _weighted(["unit"], scored).select("unit", "sentiment", "sentiment_label")
    tags = clauses.lazy().group_by("unit").agg(
        text_touchpoints=pl.col("touchpoints").list.explode(**_FLAT).unique(maintain_order=True),
        touchpoint_evidence=pl.col("evidence").list.explode(**_FLAT).unique(maintain_order=True),
        sentiment_method=pl.col("sentiment_method").drop_nulls().first(),
    ).with_columns(text_touchpoints=_in_taxonomy_order(pl.col("text_touchpoints")))
    return tags.join(sent, on="unit", how="left").collect()


def build_mentions(
    clauses: pl.DataFrame, units: pl.DataFrame, carriers: pl.DataFrame, *, text_method_version: str | None,
) -> pl.DataFrame:
    """MENTION_SCHEMA rows: one per event × touchpoint the text talks about (see the module docstring).

    ``carriers`` is ``mention_carriers(events)`` of the whole pass.
    """
    scored = clauses.lazy().filter(pl.col("sentiment").is_not_null())
    named = (
        scored.filter(pl.col("touchpoints").list.len() > 0)
        .explode("touchpoints").rename({"touchpoints": "touchpoint"})
        .with_columns(origin=pl.lit("text"))
    )
    unnamed = (
        scored.filter((pl.col("touchpoints").list.len() == 0) & pl.col("sentiment_label").is_in(OPINION_LABELS))
        .join(units.lazy().select("unit", "own_touchpoint"), on="unit", how="left")
        .with_columns(touchpoint=pl.col("own_touchpoint"), origin=pl.lit("own_touchpoint"))
        .drop("own_touchpoint")
    )
    cols = ["unit", "clause_no", "clause", "lang", "after_contrast", "sentiment", "sentiment_label",
            "sentiment_method", "touchpoint", "origin"]
    both = pl.concat([named.select(cols), unnamed.select(cols)], how="vertical_relaxed")
    agg = _weighted(["unit", "touchpoint"], both)
    details = both.group_by("unit", "touchpoint").agg(
        origin=pl.when((pl.col("origin") == "text").any()).then(pl.lit("text")).otherwise(pl.lit("own_touchpoint")),
        clause=pl.col("clause").sort_by("clause_no").str.join(" | "),
        language=pl.col("lang").first(),
        method=pl.col("sentiment_method").drop_nulls().first(),
    )
    # evidence per touchpoint: a clause's terms are 'touchpoint:term', so each term belongs to its own prefix
    evidence = (
        scored.select("unit", "clause_no", "evidence").explode("evidence").drop_nulls("evidence")
        .with_columns(touchpoint=pl.col("evidence").str.extract(r"^([^:]+):", 1))
        .group_by("unit", "touchpoint")
        .agg(evidence=pl.col("evidence").sort_by("clause_no").unique(maintain_order=True))
    )
    out = (
        agg.join(details, on=["unit", "touchpoint"], how="left")
        .join(evidence, on=["unit", "touchpoint"], how="left")
        .with_columns(evidence=pl.col("evidence").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .join(units.lazy().select("unit", "rep_row"), on="unit", how="left")
        .join(carriers.lazy(), left_on="rep_row", right_on="_rep_row", how="left")
        .with_columns(clause=redact_expr(pl.col("clause")), clause_count=pl.col("_n"),
                      text_method_version=pl.lit(text_method_version, dtype=pl.String))
        .sort("unit", "touchpoint")
        .select([pl.col(name).cast(dtype) for name, dtype in MENTION_SCHEMA.items()])
        .collect()
    )
    return out
