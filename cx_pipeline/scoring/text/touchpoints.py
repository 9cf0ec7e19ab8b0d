"""Multi-label touchpoint tagging of free text from per-language term lists, with the matched terms as evidence.

Terms are data (``data/touchpoint_terms.yaml`` plus optional brand extension files of the same shape; the term syntax
is documented at the top of that file), matched vectorized with polars' Aho-Corasick (``str.extract_many``) on
token-normalised text padded with spaces, so every pattern is whole words (``" levering "``); inflections
(``levering~``) are expanded to exact words at load time, and only explicit compound prefixes (``leverings*``) match
as a word prefix (``" leverings"``). Punctuation becomes ``|`` so a multi-word term never spans two clauses. Before
matching, the language's ``exclude`` phrases ("intet at klage over") are masked with that same barrier, so words
inside them are never evidence. The event's own ``touchpoint`` (set by the survey question mapping or the source
default) is never touched: text tagging only adds ``text_touchpoints``.

Two rules read the lexicon itself, so brand files steer them too: a term inside a longer matched term of another
touchpoint counts only for the longer one ("online store" is website, not store: ``_drop_inner_matches``), and
people and service words listed under both customer_service and store ("rådgiver", "service") count for store when
another term of the tagged text names the store, else for customer_service (``_resolve_staff_words``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import polars as pl

from cx_pipeline.contract.taxonomy import touchpoints as taxonomy_touchpoints
from cx_pipeline.scoring.text.resources import CLAUSE_PUNCT, TOKEN_PATTERN, touchpoint_terms

TOUCHPOINT_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "text_touchpoints": (pl.List(pl.String()), "Touchpoints the text mentions, in taxonomy order; empty list when "
                         "none, null when there is no text or no term list for the language."),
    "touchpoint_evidence": (pl.List(pl.String()), "Matched terms as 'touchpoint:term' (term as written in the term "
                            "file: '~' = with the language's inflections, '*' = compound prefix), in text order."),
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


#: A pattern listed under both touchpoints is a people or service word, resolved by the rest of the text.
STAFF_TOUCHPOINTS = ("customer_service", "store")


@lru_cache(maxsize=32)
def _lexicon_rules(entries: tuple[tuple[str, str, str], ...]) -> tuple[tuple[str, ...], pl.DataFrame]:
    """One language's (touchpoint, term, pattern) entries -> (people/service patterns, inner-term pairs).

    People/service patterns are listed under both STAFF_TOUCHPOINTS. An inner-term pair (pattern, touchpoint, outer)
    says the whole-word pattern, as a term of that touchpoint, lies inside the longer pattern ``outer``, which is not
    a term of that touchpoint (" store " in " online store ", website).
    """
    tps_of: dict[str, set[str]] = {}
    for touchpoint, _, pattern in entries:
        tps_of.setdefault(pattern, set()).add(touchpoint)
    staff = tuple(p for p, tps in tps_of.items() if set(STAFF_TOUCHPOINTS) <= tps)
    rows: list[tuple[str, str, str]] = []
    for outer, outer_tps in tps_of.items():
        words = outer.split()
        whole = len(words) if outer.endswith(" ") else len(words) - 1  # a prefix pattern's last word is partial
        for i in range(whole):
            for j in range(i + 1, whole + 1):
                inner = " " + " ".join(words[i:j]) + " "
                rows.extend((inner, tp, outer) for tp in tps_of.get(inner, ()) if inner != outer
                            and tp not in outer_tps)
    pairs = pl.DataFrame(rows, schema={"pattern": pl.String, "touchpoint": pl.String, "outer": pl.String},
                         orient="row")
    return staff, pairs


def _drop_inner_matches(hits: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """``hits`` without a term's matches that all lie inside longer matches of another touchpoint's term.

    "online store" matches the website term and, inside it, the store term "store": only website counts. A text
    that also says "store" on its own (more matches of "store" than of the longer terms around it) keeps it.
    """
    if pairs.height == 0 or hits.height == 0:
        return hits
    inner = hits.filter(pl.col("pattern").is_in(pairs["pattern"].unique().implode()))
    if inner.height == 0:  # the common case: nothing to compare, skip the group-bys
        return hits
    involved = pl.concat([pairs["pattern"], pairs["outer"]]).unique()
    occurrences = (
        hits.filter(pl.col("rid").is_in(inner["rid"].unique().implode()) & pl.col("pattern").is_in(involved.implode()))
        .group_by("rid", "pattern").agg(n=pl.col("pos").n_unique())
    )
    inside = (
        occurrences.join(pairs, on="pattern")
        .join(occurrences.rename({"pattern": "outer", "n": "n_outer"}), on=["rid", "outer"])
        .group_by("rid", "pattern", "touchpoint").agg(pl.col("n").first(), pl.col("n_outer").sum())
        .filter(pl.col("n") <= pl.col("n_outer"))
    )
    return hits.join(inside.select("rid", "pattern", "touchpoint"), on=["rid", "pattern", "touchpoint"], how="anti")


def _resolve_staff_words(hits: pl.DataFrame, staff_patterns: Sequence[str]) -> pl.DataFrame:
    """``hits`` (one row per matched pattern and touchpoint) with each people/service word kept for one touchpoint.

    A word listed under both customer_service and store ("rådgiver~", "service", "hjælp") counts for store when
    another term of the same text names the store ("rådgiveren i filialen", "service i butikken"), otherwise for
    customer_service ("rådgiveren var dygtig"): staff on site are the store, people on the phone, chat or mail are
    customer service.
    """
    if not staff_patterns:
        return hits
    cs, store = STAFF_TOUCHPOINTS
    staff = pl.col("pattern").is_in(list(staff_patterns))
    with_staff = hits.filter(staff)["rid"].unique()
    if with_staff.len() == 0:
        return hits
    other_store = ~staff & (pl.col("touchpoint") == store)
    names_store = hits.filter(pl.col("rid").is_in(with_staff.implode()) & other_store)["rid"].unique()
    keep_as = pl.when(pl.col("rid").is_in(names_store.implode())).then(pl.lit(store)).otherwise(pl.lit(cs))
    return hits.filter(~staff | (pl.col("touchpoint") == keep_as))


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
        staff_patterns, inner_pairs = _lexicon_rules(entries)
        hits = _resolve_staff_words(_drop_inner_matches(hits, inner_pairs), staff_patterns)
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
