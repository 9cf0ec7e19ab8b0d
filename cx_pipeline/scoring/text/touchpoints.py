"""Multi-label touchpoint tagging of free text from per-language term lists, with the matched terms as evidence.

Terms are data (``data/touchpoint_terms.yaml`` plus optional brand extension files of the same shape; the term syntax
is documented at the top of that file), matched vectorized with polars' Aho-Corasick (``str.extract_many``) on
token-normalised text padded with spaces, so every pattern is whole words (``" levering "``); inflections
(``levering~``) are expanded to exact words at load time, and only explicit compound prefixes (``leverings*``) match
as a word prefix (``" leverings"``). Punctuation becomes ``|`` so a multi-word term never spans two clauses. Before
matching, the language's ``exclude`` phrases ("intet at klage over") are masked with that same barrier, so words
inside them are never evidence. The event's own ``touchpoint`` (set by the survey question mapping or the source
default) is never touched: text tagging only adds ``text_touchpoints``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from cx_pipeline.contract.taxonomy import touchpoints as taxonomy_touchpoints
from cx_pipeline.scoring.text.resources import CLAUSE_PUNCT, TOKEN_PATTERN, touchpoint_terms

TOUCHPOINT_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "text_touchpoints": (pl.List(pl.String()), "Touchpoints the text mentions, in taxonomy order; empty list when "
                         "none, null when there is no text or no term list for the language."),
    "touchpoint_evidence": (pl.List(pl.String()), "Matched terms as 'touchpoint:term' (term as written in the term "
                            "file, '*' = prefix), in text order."),
}


def padded_tokens(text: pl.Expr) -> pl.Expr:
    """' tok tok | tok ' : lower-cased tokens joined by spaces, punctuation as a '|' barrier."""
    toks = (text.str.to_lowercase().str.replace_all("\u2019", "'", literal=True).str.extract_all(TOKEN_PATTERN)
            .list.eval(pl.when(pl.element().is_in(list(CLAUSE_PUNCT))).then(pl.lit("|")).otherwise(pl.element())))
    return pl.concat_str([pl.lit(" "), toks.list.join(" "), pl.lit(" ")])


def padded_texts(text: pl.Series) -> pl.Series:
    """``padded_tokens`` of every text, computed once per distinct ' '-separated chunk (no token spans a space).

    Same strings as ``padded_tokens`` (nulls stay null): each distinct chunk is tokenized once and the chunks'
    token strings are joined back per text, which avoids running the regex over every token of every text.
    """
    cats = pl.Categories.random()
    keep = pl.Series([], dtype=pl.Categorical(cats))  # polars frees the mapping when no column of it is alive
    chunks = pl.LazyFrame({"t": text}).select(
        r=pl.int_range(pl.len(), dtype=pl.UInt32), t=pl.col("t").str.split(" ")
    ).explode("t").with_columns(code=pl.col("t").cast(pl.Categorical(cats)).to_physical()).collect()
    distinct = chunks.lazy().select("code", "t").drop_nulls("code").unique("code").collect()
    top = int(distinct["code"].max() or 0) + 1  # type: ignore[arg-type]
    norm = pl.repeat(None, top, dtype=pl.String, eager=True).alias("n").scatter(
        distinct["code"], distinct.select(padded_tokens(pl.col("t")).str.slice(1).str.head(-1)).to_series()
    )  # per chunk id: the chunk's tokens, without the padding
    joined = (
        chunks.select("r", n=norm.gather(chunks["code"])).lazy()
        .filter(pl.col("n") != "")
        .group_by("r").agg(pl.col("n").str.join(" "))
    )
    del keep
    return (
        pl.LazyFrame({"r": pl.int_range(len(text), dtype=pl.UInt32, eager=True), "t": text})
        .join(joined, on="r", how="left", maintain_order="left")
        .select(pl.when(pl.col("t").is_not_null())
                .then(pl.concat_str([pl.lit(" "), pl.col("n").fill_null(""), pl.lit(" ")])).alias(text.name))
        .collect().to_series()
    )


def _mask_excluded(padded: pl.Series, exclude: Sequence[str]) -> pl.Series:
    """``padded`` with every ``exclude`` phrase replaced by a ' | ' barrier, so no term matches in or across it.

    Only rows containing a phrase are rewritten (one cheap Aho-Corasick scan decides), because real text rarely
    does. The replacement runs twice: a masked phrase consumes its closing space, which hides a phrase that
    follows directly ("ingen klager ingen klager"). Patterns come longest first, so the longest phrase wins.
    """
    if not exclude:
        return padded
    rows = padded.str.contains_any(list(exclude)).arg_true()
    if rows.len() == 0:
        return padded
    barrier = [" | "] * len(exclude)
    masked = padded.gather(rows).str.replace_many(list(exclude), barrier, leftmost=True).str.replace_many(
        list(exclude), barrier, leftmost=True)
    return padded.clone().scatter(rows, masked)


def tag_touchpoints(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    text_col: str = "text",
    lang_col: str = "language",
    title_col: str | None = None,
    extra_term_files: Iterable[str | Path] = (),
) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` plus ``text_touchpoints`` and ``touchpoint_evidence`` (see TOUCHPOINT_COLUMNS)."""
    lazy = isinstance(frame, pl.LazyFrame)
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    terms = touchpoint_terms(tuple(extra_term_files))
    order = {tp: i for i, tp in enumerate(taxonomy_touchpoints())}
    text = pl.col(text_col).cast(pl.String)
    if title_col is not None and title_col in df.columns:
        text = pl.concat_str([pl.col(title_col).cast(pl.String).fill_null(""), pl.lit(" . "), text.fill_null("")])
        text = pl.when(pl.col(text_col).is_null() & pl.col(title_col).is_null()).then(None).otherwise(text)
    from cx_pipeline.scoring.text.sentiment import _lang_norm_expr

    prep = df.select(rid=pl.int_range(pl.len(), dtype=pl.UInt32), lang=_lang_norm_expr(pl.col(lang_col)), text=text)
    prep = prep.with_columns(padded=padded_texts(prep["text"]))
    parts: list[pl.DataFrame] = []
    for lang, entries in terms.by_language.items():
        sub = prep.filter((pl.col("lang") == lang) & pl.col("text").is_not_null())
        if sub.height == 0:
            continue
        padded = _mask_excluded(sub.get_column("padded"), terms.exclude.get(lang, ()))
        patterns: list[str] = list(dict.fromkeys(e[2] for e in entries))
        lookup = pl.DataFrame(
            {"pattern": [e[2] for e in entries], "touchpoint": [e[0] for e in entries], "term": [e[1] for e in entries]}
        ).with_columns(rank=pl.col("touchpoint").replace_strict(order, return_dtype=pl.Int32))
        hits = (
            sub.select("rid").with_columns(pattern=padded.str.extract_many(patterns, overlapping=True))
            .explode("pattern")
            .drop_nulls("pattern")
            .with_row_index("pos")
            .join(lookup, on="pattern", how="inner")
        )
        tagged = hits.group_by("rid").agg(
            text_touchpoints=pl.col("touchpoint").sort_by("rank").unique(maintain_order=True),
            touchpoint_evidence=pl.concat_str([pl.col("touchpoint"), pl.lit(":"), pl.col("term")])
            .sort_by("pos").unique(maintain_order=True),
        )
        parts.append(sub.select("rid").join(tagged, on="rid", how="left"))
    empty = pl.DataFrame(schema={"rid": pl.UInt32, "text_touchpoints": pl.List(pl.String),
                                 "touchpoint_evidence": pl.List(pl.String)})
    tagged_all = pl.concat([empty, *parts], how="vertical_relaxed")
    scored = set(terms.by_language)
    out = (
        prep.join(tagged_all, on="rid", how="left", maintain_order="left")
        .select(
            text_touchpoints=pl.when(pl.col("lang").is_in(list(scored)) & pl.col("text").is_not_null())
            .then(pl.col("text_touchpoints").fill_null(pl.lit([], dtype=pl.List(pl.String)))),
            touchpoint_evidence=pl.when(pl.col("lang").is_in(list(scored)) & pl.col("text").is_not_null())
            .then(pl.col("touchpoint_evidence").fill_null(pl.lit([], dtype=pl.List(pl.String)))),
        )
    )
    result = df.with_columns(out.get_columns())
    return result.lazy() if lazy else result


def touchpoint_terms_version(extra_term_files: Sequence[str | Path] = ()) -> str:
    """'<version>' of the merged term files plus the first 16 hex of their combined sha256."""
    terms = touchpoint_terms(tuple(extra_term_files))
    return f"terms@{terms.version} sha256:{terms.sha256[:16]}"
