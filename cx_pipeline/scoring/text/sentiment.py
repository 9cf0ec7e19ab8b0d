"""Lexicon + rules sentiment for da/no/sv/en, vectorized in polars (tokenize -> explode -> join -> aggregate).

Why rules on a lexicon rather than a model: nothing may be downloaded at run time, it must score millions of rows
per run, and every score must be explainable (method, version and lexicon sha256 are recorded per row). The rules
follow VADER: negation within a few tokens flips and damps a word ("ikke dårlig" is mildly positive), intensifiers
scale the next word, "men"/"but" shifts weight to the clause after it, and a versioned CX phrase list covers
complaints that carry no sentiment word ("kom aldrig frem", "venter stadig").

``score_sentiment_rowwise`` is the same algorithm as a plain Python loop: the benchmark baseline and a test oracle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import polars as pl

from cx_pipeline.scoring.text.resources import (
    CLAUSE_PUNCT,
    SENTENCE_PUNCT,
    SUPPORTED_LANGUAGES,
    TOKEN_PATTERN,
    LanguageResources,
    language_resources,
    normalize_language,
    sentiment_method,
    sentiment_rules,
    tokenize,
)

LABELS: tuple[str, ...] = ("negative", "neutral", "positive", "mixed")
MAX_PHRASE_WORDS = 4

SENTIMENT_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "sentiment": (pl.Float64(), "Polarity in -1..1 (VADER-style normalised sum of rule-weighted lexicon values); "
                  "null when there is no text or the language is unsupported."),
    "sentiment_label": (pl.String(), "negative, neutral, positive or mixed (both polarities strong)."),
    "sentiment_method": (pl.String(), "Method name@version, language, lexicon file + sha256, CX rule file hashes."),
}


def _lang_ids(languages: Sequence[str]) -> dict[str, int]:
    return {lang: i for i, lang in enumerate(languages)}


@lru_cache(maxsize=4)
def _tables(languages: tuple[str, ...]) -> dict[str, pl.DataFrame]:
    """Join tables for all languages: token features, stem lexicon, phrase starts and phrases."""
    feats: list[dict[str, object]] = []
    lex_rows: list[tuple[int, str, float]] = []
    phrase_rows: list[tuple[int, str, int, float]] = []
    first_rows: set[tuple[int, str]] = set()
    for lid, lang in enumerate(languages):
        res = language_resources(lang)
        special = res.negators | res.contrast | set(res.intensifiers)
        for word in set(res.lexicon) | special:
            feats.append({
                "lang_id": lid, "tok": word,
                "val": 0.0 if word in special else res.lexicon.get(word, 0.0),
                "is_neg": word in res.negators, "is_contrast": word in res.contrast,
                "intens": res.intensifiers.get(word),
            })
        lex_rows.extend((lid, w, v) for w, v in res.stem_lexicon.items())
        for toks, value in res.phrases.items():
            phrase_rows.append((lid, " ".join(toks), len(toks), value))
            first_rows.add((lid, toks[0]))
    u8 = pl.UInt8
    return {
        "features": pl.DataFrame(feats, schema={"lang_id": u8, "tok": pl.String, "val": pl.Float64,
                                                "is_neg": pl.Boolean, "is_contrast": pl.Boolean,
                                                "intens": pl.Float64}),
        "stems": pl.DataFrame(lex_rows, schema={"lang_id": u8, "stem": pl.String, "stem_val": pl.Float64},
                              orient="row"),
        "phrases": pl.DataFrame(phrase_rows, schema={"lang_id": u8, "ngram": pl.String, "n": pl.Int32,
                                                     "pval": pl.Float64}, orient="row"),
        "first": pl.DataFrame(sorted(first_rows), schema={"lang_id": u8, "tok": pl.String}, orient="row")
        .with_columns(pl.lit(True).alias("is_pstart")),
    }


def _token_frame(rid: pl.Series, lang_id: pl.Series, text: pl.Series) -> pl.DataFrame:
    """One row per token, in text order, with a global position ``tid``."""
    toks = (
        pl.DataFrame({"rid": rid.cast(pl.Int64), "lang_id": lang_id, "tok": text})
        .with_columns(pl.col("tok").str.to_lowercase().str.replace_all("\u2019", "'", literal=True)
                      .str.extract_all(TOKEN_PATTERN))
        .explode("tok")
        .drop_nulls("tok")
    )
    return toks.with_row_index("tid")


def _vocabulary(tokens: pl.DataFrame, languages: tuple[str, ...], tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Per distinct (language, token): value (lexicon, else inflection-stem fallback) and rule flags.

    Working on the vocabulary instead of every token keeps the regex stemming and lexicon joins proportional to
    the number of distinct words, which grows far slower than the number of tokens.
    """
    rules = sentiment_rules()
    vocab = (
        tokens.select("lang_id", "tok").unique()
        .join(tables["features"], on=["lang_id", "tok"], how="left")
        .join(tables["first"], on=["lang_id", "tok"], how="left")
    )
    parts = [vocab.filter(pl.col("val").is_not_null())]
    missing = vocab.filter(pl.col("val").is_null())
    for lid, lang in enumerate(languages):
        sub = missing.filter(pl.col("lang_id") == lid)
        if sub.height == 0:
            continue
        stem = pl.col("tok").str.replace(language_resources(lang).stem_regex, "")
        sub = (
            sub.with_columns(stem=pl.when(stem.str.len_chars() >= rules.min_stem_length).then(stem))
            .join(tables["stems"], on=["lang_id", "stem"], how="left")
            .with_columns(val=pl.col("stem_val"))
            .drop("stem", "stem_val")
        )
        parts.append(sub)
    return pl.concat(parts, how="vertical").with_columns(
        val=pl.col("val").fill_null(0.0),
        is_neg=pl.col("is_neg").fill_null(False),
        is_contrast=pl.col("is_contrast").fill_null(False),
        is_pstart=pl.col("is_pstart").fill_null(False),
        is_punct=pl.col("tok").is_in(list(CLAUSE_PUNCT)),
        is_send=pl.col("tok").is_in(list(SENTENCE_PUNCT)),
    )


def _phrase_matches(tokens: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """(covered mask, phrase value per token) for the longest CX phrase starting at each candidate token.

    Only tokens that can start a phrase are expanded into n-grams (a few percent of tokens), so this stays cheap.
    A phrase starting inside another phrase is dropped (left-most wins).
    """
    n_tok = tokens.height
    covered = np.zeros(n_tok, dtype=bool)
    pval = np.zeros(n_tok, dtype=np.float64)
    cand = tokens.filter(pl.col("is_pstart")).select("tid", "rid", "lang_id", "tok")
    if cand.height == 0:
        return covered, pval
    tok_s = tokens["tok"]
    rid_all = tokens["rid"].to_numpy()
    start = cand["tid"].cast(pl.Int64).to_numpy()
    rid_c = rid_all[start]
    best_len = np.zeros(len(start), dtype=np.int64)
    best_val = np.zeros(len(start), dtype=np.float64)
    parts = {"p0": cand["tok"]}
    same_row = np.ones(len(start), dtype=bool)
    for j in range(1, MAX_PHRASE_WORDS):
        idx = np.minimum(start + j, n_tok - 1)
        same_row &= (start + j < n_tok) & (rid_all[idx] == rid_c)
        parts[f"p{j}"] = tok_s.gather(idx)
        ngram = pl.DataFrame(parts).select(
            lang_id=cand["lang_id"], ngram=pl.concat_str(pl.all(), separator=" "), i=pl.int_range(pl.len()))
        hit = ngram.join(tables["phrases"].filter(pl.col("n") == j + 1), on=["lang_id", "ngram"], how="inner")
        if hit.height:
            i = hit["i"].cast(pl.Int64).to_numpy()
            ok = same_row[i]
            best_len[i[ok]] = j + 1  # later (longer) n overwrites shorter
            best_val[i[ok]] = hit["pval"].to_numpy()[ok]
    m = best_len > 0
    s, ln, v = start[m], best_len[m], best_val[m]
    interior = np.zeros(n_tok, dtype=bool)
    for k in range(1, MAX_PHRASE_WORDS):
        interior[s[ln > k] + k] = True
    keep = ~interior[s]
    s, ln, v = s[keep], ln[keep], v[keep]
    for k in range(MAX_PHRASE_WORDS):
        covered[s[ln > k] + k] = True
    pval[s] = v
    return covered, pval


def _row_sums(rid: pl.Series, lang_id: pl.Series, text: pl.Series, languages: tuple[str, ...]) -> pl.DataFrame:
    """Per ``rid``: weighted sum, positive and negative mass of all token contributions."""
    rules = sentiment_rules()
    tables = _tables(languages)
    tokens = _token_frame(rid, lang_id, text)
    if tokens.height == 0:
        return pl.DataFrame(schema={"rid": pl.Int64, "s": pl.Float64, "pos": pl.Float64, "neg": pl.Float64})
    vocab = _vocabulary(tokens, languages, tables)
    tokens = tokens.join(vocab, on=["lang_id", "tok"], how="left", maintain_order="left")
    covered, pval = _phrase_matches(tokens, tables)
    windows = pl.Series([language_resources(lang).negation_window for lang in languages], dtype=pl.Int32)
    max_win = int(windows.max() or 0)  # type: ignore[arg-type]
    not_cov = ~pl.col("covered")
    t = (
        tokens.with_columns(pl.Series("covered", covered), pl.Series("pval", pval))
        .lazy()
        .select(
            "rid", "covered", "pval",
            win=pl.col("lang_id").replace_strict(list(range(len(languages))), windows.to_list(),
                                                 return_dtype=pl.Int32),
            val=pl.when(not_cov).then(pl.col("val")).otherwise(0.0),
            is_neg=pl.col("is_neg") & not_cov,
            is_contrast=pl.col("is_contrast") & not_cov,
            intens=pl.when(not_cov).then(pl.col("intens")),
            clause=((pl.col("rid") != pl.col("rid").shift(1, fill_value=-1))
                    | pl.col("is_punct").shift(1, fill_value=False)).cum_sum(),
            sent=((pl.col("rid") != pl.col("rid").shift(1, fill_value=-1))
                  | pl.col("is_send").shift(1, fill_value=False)).cum_sum(),
        )
    )
    negated = pl.lit(False)
    for k in range(1, max_win + 1):
        negated = negated | (
            pl.col("is_neg").shift(k, fill_value=False)
            & (pl.col("clause").shift(k, fill_value=0) == pl.col("clause"))
            & (pl.col("win") >= k)
        )
    same_clause_prev = pl.col("clause").shift(1, fill_value=0) == pl.col("clause")
    t = t.with_columns(
        negated=negated,
        mult=pl.when(same_clause_prev).then(pl.col("intens").shift(1)).fill_null(1.0),
        cs=pl.col("is_contrast").cast(pl.Int32).cum_sum(),
        sent_first=pl.col("sent") != pl.col("sent").shift(1, fill_value=0),
        sent_last=pl.col("sent") != pl.col("sent").shift(-1, fill_value=0),
    ).with_columns(
        base=pl.when(pl.col("sent_first")).then(pl.col("cs") - pl.col("is_contrast").cast(pl.Int32)).forward_fill(),
        total=pl.when(pl.col("sent_last")).then(pl.col("cs")).backward_fill(),
    )
    weight = (
        pl.when(pl.col("cs") - pl.col("is_contrast").cast(pl.Int32) - pl.col("base") > 0).then(rules.contrast_after)
        .when(pl.col("total") - pl.col("base") > 0).then(rules.contrast_before)
        .otherwise(1.0)
    )
    # a phrase value sits on its first token, so "ikke god service" negates the phrase "god service" too
    contrib = (
        (pl.col("val") + pl.col("pval")) * pl.col("mult")
        * pl.when(pl.col("negated")).then(rules.negation_scalar).otherwise(1.0)
    ) * weight
    return (
        t.select("rid", contrib.alias("c"))
        .filter(pl.col("c") != 0.0)
        .group_by("rid")
        .agg(
            s=pl.col("c").sum(),
            pos=pl.col("c").clip(lower_bound=0).sum(),
            neg=-pl.col("c").clip(upper_bound=0).sum(),
        )
        .collect()
    )


def _compound_and_label(s: pl.Expr, pos: pl.Expr, neg: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    rules = sentiment_rules()
    compound = s / (s * s + rules.normalization_alpha).sqrt()
    mixed = (
        (pos >= rules.mixed_min_mass) & (neg >= rules.mixed_min_mass)
        & (pl.min_horizontal(pos, neg) >= rules.mixed_min_ratio * pl.max_horizontal(pos, neg))
    )
    label = (
        pl.when(s.is_null()).then(None)
        .when(mixed).then(pl.lit("mixed"))
        .when(compound >= rules.neutral_threshold).then(pl.lit("positive"))
        .when(compound <= -rules.neutral_threshold).then(pl.lit("negative"))
        .otherwise(pl.lit("neutral"))
    )
    return compound, label


def score_sentiment(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    text_col: str = "text",
    lang_col: str = "language",
    title_col: str | None = None,
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    batch_rows: int = 100_000,
) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` plus ``sentiment``, ``sentiment_label``, ``sentiment_method`` (see SENTIMENT_COLUMNS).

    Rows whose language is not in ``languages`` or has no text get nulls. With ``title_col`` the title is scored
    as a first sentence of the text (review titles often carry the verdict). A LazyFrame is collected and returned
    lazy again: the phrase step needs positions, which a streaming plan cannot provide.
    """
    lazy = isinstance(frame, pl.LazyFrame)
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    langs = tuple(languages)
    ids = _lang_ids(langs)
    text = pl.col(text_col).cast(pl.String)
    if title_col is not None and title_col in df.columns:
        title = pl.col(title_col).cast(pl.String)
        text = (pl.when(title.is_not_null() & (title.str.strip_chars() != ""))
                .then(pl.concat_str([title, pl.lit(" . "), text.fill_null("")]))
                .otherwise(text))
    lang_norm = _lang_norm_expr(pl.col(lang_col))
    prep = df.select(
        rid=pl.int_range(pl.len(), dtype=pl.Int64),
        lang=lang_norm,
        text=text,
    ).with_columns(lang_id=pl.col("lang").replace_strict(ids, default=None, return_dtype=pl.UInt8))
    work = prep.filter(pl.col("lang_id").is_not_null() & pl.col("text").is_not_null())
    # Batches bound memory (the token frame is ~35x the rows) and keep the working set cache-sized.
    sums = pl.concat(
        [_row_sums(b["rid"], b["lang_id"], b["text"], langs) for b in work.iter_slices(max(1, batch_rows))]
        or [_row_sums(work["rid"], work["lang_id"], work["text"], langs)],
        how="vertical",
    )
    methods = {lang: sentiment_method(lang) for lang in langs}
    joined = (
        prep.select("rid", "lang", "lang_id", "text")
        .join(sums, on="rid", how="left", maintain_order="left")
        .with_columns(
            s=pl.when(pl.col("lang_id").is_not_null() & pl.col("text").is_not_null()).then(pl.col("s").fill_null(0.0)),
            pos=pl.col("pos").fill_null(0.0),
            neg=pl.col("neg").fill_null(0.0),
        )
    )
    compound, label = _compound_and_label(pl.col("s"), pl.col("pos"), pl.col("neg"))
    out = joined.select(
        sentiment=compound,
        sentiment_label=label,
        sentiment_method=pl.when(pl.col("s").is_not_null())
        .then(pl.col("lang").replace_strict(methods, default=None, return_dtype=pl.String)),
    )
    result = df.with_columns(out.get_columns())
    return result.lazy() if lazy else result


def _lang_norm_expr(col: pl.Expr) -> pl.Expr:
    """Vectorized twin of resources.normalize_language."""
    code = col.cast(pl.String).str.strip_chars().str.to_lowercase().str.replace_all("_", "-", literal=True) \
        .str.split("-").list.first()
    return code.replace({"nb": "no", "nn": "no", "nob": "no", "nno": "no", "": None})


# --- per-row baseline (same algorithm, plain Python) -----------------------------------------------------------


def _score_tokens(toks: list[str], res: LanguageResources) -> tuple[float, float, float]:
    rules = sentiment_rules()
    n = len(toks)
    covered = [False] * n
    pval = [0.0] * n
    matches: list[tuple[int, int, float]] = []
    for i in range(n):
        for ln in range(MAX_PHRASE_WORDS, 1, -1):
            key = tuple(toks[i:i + ln])
            if len(key) == ln and key in res.phrases:
                matches.append((i, ln, res.phrases[key]))
                break
    interior = set()
    for s, ln, _ in matches:
        interior.update(range(s + 1, s + ln))
    for s, ln, v in matches:
        if s not in interior:
            for k in range(s, s + ln):
                covered[k] = True
            pval[s] = v
    clause = [0] * n
    sent = [0] * n
    for i in range(1, n):
        clause[i] = clause[i - 1] + (toks[i - 1] in CLAUSE_PUNCT)
        sent[i] = sent[i - 1] + (toks[i - 1] in SENTENCE_PUNCT)
    special = res.negators | res.contrast
    is_neg = [not covered[i] and toks[i] in res.negators for i in range(n)]
    is_con = [not covered[i] and toks[i] in res.contrast for i in range(n)]
    first_contrast: dict[int, int] = {}
    for i in range(n):
        if is_con[i] and sent[i] not in first_contrast:
            first_contrast[sent[i]] = i
    total = pos = neg = 0.0
    for i, tok in enumerate(toks):
        if covered[i] or tok in special or tok in res.intensifiers:
            val = 0.0
        else:
            val = res.lexicon.get(tok)
            if val is None:
                stem = re.sub(res.stem_regex, "", tok, count=1)
                val = res.stem_lexicon.get(stem, 0.0) if len(stem) >= rules.min_stem_length else 0.0
        mult = 1.0
        if i > 0 and clause[i - 1] == clause[i] and not covered[i - 1] and toks[i - 1] in res.intensifiers:
            mult = res.intensifiers[toks[i - 1]]
        negated = any(i - k >= 0 and clause[i - k] == clause[i] and is_neg[i - k]
                      for k in range(1, res.negation_window + 1))
        c = (val + pval[i]) * mult * (rules.negation_scalar if negated else 1.0)
        fc = first_contrast.get(sent[i])
        if fc is not None:
            c *= rules.contrast_after if i > fc else rules.contrast_before
        total += c
        pos += max(c, 0.0)
        neg += -min(c, 0.0)
    return total, pos, neg


def score_text_rowwise(text: str | None, language: str | None) -> tuple[float | None, str | None]:
    """(sentiment, label) for one text: the per-row baseline of the benchmark and the tests' oracle."""
    lang = normalize_language(language)
    if text is None or lang not in SUPPORTED_LANGUAGES:
        return None, None
    rules = sentiment_rules()
    s, pos, neg = _score_tokens(tokenize(text), language_resources(lang))
    compound = s / math.sqrt(s * s + rules.normalization_alpha)
    if pos >= rules.mixed_min_mass and neg >= rules.mixed_min_mass and min(pos, neg) >= rules.mixed_min_ratio * max(
            pos, neg):
        return compound, "mixed"
    if compound >= rules.neutral_threshold:
        return compound, "positive"
    if compound <= -rules.neutral_threshold:
        return compound, "negative"
    return compound, "neutral"
