"""Lexicon + rules sentiment for da/no/sv/en, vectorized (polars tokenizes distinct chunks, numpy applies the rules).

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
    "sentiment": (pl.Float64(), "Polarity in -1..1 of the text: the weighted mean of its opinion clauses, each "
                  "scored by the method in sentiment_method (cx-linear: P(positive) − P(negative); lexicon: "
                  "VADER-style normalised sum); null when there is no text or the language is unsupported."),
    "sentiment_label": (pl.String(), "negative, neutral, positive or mixed (clauses strongly in both directions)."),
    "sentiment_method": (pl.String(), "Method name@version with its model/lexicon file and sha256 (and the "
                         "language for the lexicon)."),
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


_NEG, _CONTRAST, _PSTART, _INTENS = 1, 2, 4, 8  # per (language, token) flag bits
_PUNCT, _SEND = 1, 2  # per token flag bits


class _TokenCache:
    """Per-call memo of whitespace chunks -> token ids and of token ids -> per-language rule features.

    Texts are split on ' ' into chunks ("leveringen," ...). No token spans a space, so tokenizing each distinct
    chunk once (lower-case, fold apostrophes, TOKEN_PATTERN) and repeating its tokens per occurrence gives exactly
    the tokens of the whole text. Texts reuse a far smaller vocabulary of chunks, so the regex runs on the distinct
    chunks only, and everything after it works on integer ids (numpy gathers) instead of string joins.
    """

    def __init__(self, languages: tuple[str, ...]) -> None:
        self.languages = languages
        self.tables = _tables(languages)
        self.chunk_cats = pl.Categories.random()
        self.tok_cats = pl.Categories.random()
        # polars frees a Categories' mapping when no column of that dtype is alive: these keep it for the call
        self._keep = (pl.Series([], dtype=pl.Categorical(self.chunk_cats)),
                      pl.Series([], dtype=pl.Categorical(self.tok_cats)))
        self.n_chunks = 0
        self.chunk_ntok = np.zeros(0, dtype=np.int64)
        self.chunk_start = np.zeros(0, dtype=np.int64)
        self.flat_tok = np.zeros(0, dtype=np.int64)
        self.n_toks = 0
        n_lang = len(languages)
        self.val = np.zeros((n_lang, 0))  # lexicon value (stem fallback; 0 for rule words)
        self.intens = np.zeros((n_lang, 0))
        self.flags = np.zeros((n_lang, 0), dtype=np.uint8)
        self.tok_flags = np.zeros(0, dtype=np.uint8)
        self.pidx = np.zeros(0, dtype=np.int64)
        self.windows = np.array([language_resources(lang).negation_window for lang in languages], dtype=np.int64)
        # phrase words -> 1..P, so an n-gram of ids becomes one int64 key (base P+1, plus n and language)
        phrase_words: dict[str, int] = {}
        for lang in languages:
            for toks in language_resources(lang).phrases:
                for w in toks:
                    phrase_words.setdefault(w, len(phrase_words) + 1)
        self.phrase_words = phrase_words
        self.base = len(phrase_words) + 1
        if self.base ** MAX_PHRASE_WORDS * (MAX_PHRASE_WORDS + 1) * (n_lang + 1) >= 2 ** 62:
            raise ValueError("too many distinct phrase words for int64 n-gram keys")
        keys: list[int] = []
        vals: list[float] = []
        for lid, lang in enumerate(languages):
            for toks, value in language_resources(lang).phrases.items():
                key = 0
                for w in reversed(toks):
                    key = key * self.base + phrase_words[w]
                keys.append((key * (MAX_PHRASE_WORDS + 1) + len(toks)) * (n_lang + 1) + lid)
                vals.append(value)
        order = np.argsort(np.array(keys, dtype=np.int64), kind="stable")
        self.phrase_keys = np.array(keys, dtype=np.int64)[order]
        self.phrase_vals = np.array(vals, dtype=np.float64)[order]

    def chunk_codes(self, text: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """(row index, chunk id) per ' '-separated chunk of each text, in text order."""
        chunks = pl.LazyFrame({"t": text}).select(
            r=pl.int_range(pl.len(), dtype=pl.Int64), t=pl.col("t").str.split(" ")
        ).explode("t").with_columns(code=pl.col("t").cast(pl.Categorical(self.chunk_cats)).to_physical()).collect()
        new = _new_values(chunks, self.n_chunks)
        if new.height:
            self._add_chunks(new["code"].to_numpy().astype(np.int64), new["t"])
        return chunks["r"].to_numpy(), chunks["code"].to_numpy().astype(np.int64)

    def _add_chunks(self, codes: np.ndarray, new: pl.Series) -> None:
        toks = (new.fill_null("").str.to_lowercase().str.replace_all("\u2019", "'", literal=True)
                .str.extract_all(TOKEN_PATTERN))
        ntok = toks.list.len().fill_null(0).to_numpy().astype(np.int64)
        flat = pl.DataFrame({"t": toks.explode().drop_nulls()}).with_columns(
            code=pl.col("t").cast(pl.Categorical(self.tok_cats)).to_physical())
        new_toks = _new_values(flat, self.n_toks)
        if new_toks.height:
            self._add_tokens(new_toks["code"].to_numpy().astype(np.int64), new_toks["t"])
        top = int(codes.max()) + 1
        self.chunk_start = _grow(self.chunk_start, top)
        self.chunk_ntok = _grow(self.chunk_ntok, top)
        self.chunk_start[codes] = len(self.flat_tok) + np.cumsum(ntok) - ntok
        self.chunk_ntok[codes] = ntok
        self.flat_tok = np.concatenate([self.flat_tok, flat["code"].to_numpy().astype(np.int64)])
        self.n_chunks = max(self.n_chunks, top)

    def _add_tokens(self, ids: np.ndarray, new: pl.Series) -> None:
        n_lang, n_new = len(self.languages), len(new)
        words = new.fill_null("")
        frame = pl.DataFrame({
            "lang_id": np.repeat(np.arange(n_lang, dtype=np.uint8), n_new),
            "tok": pl.concat([words] * n_lang),
        })
        feats = frame.join(_vocabulary(frame, self.languages, self.tables), on=["lang_id", "tok"], how="left",
                           maintain_order="left").select(
            "val", "intens",
            flags=pl.col("is_neg").cast(pl.UInt8) * _NEG + pl.col("is_contrast").cast(pl.UInt8) * _CONTRAST
            + pl.col("is_pstart").cast(pl.UInt8) * _PSTART + pl.col("intens").is_not_null().cast(pl.UInt8) * _INTENS,
        )
        top = int(ids.max()) + 1

        def put(old: np.ndarray, col: str, fill: float) -> np.ndarray:
            out = _grow(old, top)
            out[:, ids] = feats[col].fill_null(fill).to_numpy().reshape(n_lang, n_new)
            return out

        self.val = put(self.val, "val", 0.0)
        self.intens = put(self.intens, "intens", 1.0)
        self.flags = put(self.flags, "flags", 0)
        tok_flags = (words.is_in(list(CLAUSE_PUNCT)).cast(pl.UInt8) * _PUNCT
                     + words.is_in(list(SENTENCE_PUNCT)).cast(pl.UInt8) * _SEND)
        self.tok_flags = _grow(self.tok_flags, top)
        self.tok_flags[ids] = tok_flags.to_numpy()
        self.pidx = _grow(self.pidx, top)
        self.pidx[ids] = [self.phrase_words.get(w, 0) for w in words.to_list()]
        self.n_toks = max(self.n_toks, top)


def _new_values(frame: pl.DataFrame, known: int) -> pl.DataFrame:
    """Distinct (code, t) with code >= known, by code: the values a private Categories added in this cast (codes of
    a Categories only this call writes to are handed out densely, so every code below ``known`` is already known).
    """
    return frame.lazy().filter(pl.col("code") >= known).unique("code").sort("code").select("code", "t").collect()


def _grow(arr: np.ndarray, size: int) -> np.ndarray:
    """``arr`` zero-padded along its last axis to ``size`` (a copy)."""
    out = np.zeros((*arr.shape[:-1], max(size, arr.shape[-1])), dtype=arr.dtype)
    out[..., :arr.shape[-1]] = arr
    return out


def _next_boundary(bounds: np.ndarray, pos: np.ndarray, n_tok: int) -> np.ndarray:
    """First clause/sentence start after each position (n_tok when none): a token at ``t`` shares the unit of
    ``pos`` iff ``t < next``."""
    at = np.searchsorted(bounds, pos, side="right")
    return np.append(bounds, n_tok)[at]


def _row_sums(cache: _TokenCache, lang_id: np.ndarray, text: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weighted sum, positive mass, negative mass) per text: the rules of ``_score_tokens`` on integer arrays.

    All rule steps touch only the few positions that matter (negators, intensifiers, contrast words, phrase
    starts, tokens with a value); contributions are summed per text in text order, like the per-row loop.
    """
    rules = sentiment_rules()
    n_rows = len(text)
    row_of_chunk, codes = cache.chunk_codes(text)
    cnt = cache.chunk_ntok[codes]
    n_tok = int(cnt.sum())
    if n_tok == 0:
        return np.zeros(n_rows), np.zeros(n_rows), np.zeros(n_rows)
    ends = np.cumsum(cnt)
    tok = cache.flat_tok[np.repeat(cache.chunk_start[codes] - (ends - cnt), cnt) + np.arange(n_tok)]
    rid = np.repeat(row_of_chunk, cnt)
    # first token of each text (a text without tokens marks the next text's first token: harmless)
    chunk_first = np.ones(len(codes), dtype=bool)
    chunk_first[1:] = row_of_chunk[1:] != row_of_chunk[:-1]
    row_start = (ends - cnt)[chunk_first]
    del ends, cnt, codes, row_of_chunk, chunk_first
    lid = lang_id.astype(np.int64)[rid]
    fi = lid * cache.n_toks + tok
    flags = cache.flags.ravel().take(fi)
    tflags = cache.tok_flags.take(tok)
    base = cache.val.ravel().take(fi)

    # clause / sentence starts: first token of each text and the token after a punctuation mark
    is_start = np.zeros(n_tok + 1, dtype=bool)
    is_start[row_start] = True
    is_start[np.flatnonzero(tflags & _PUNCT) + 1] = True
    clause_starts = np.flatnonzero(is_start[:n_tok])
    is_start[:] = False
    is_start[row_start] = True
    is_start[np.flatnonzero(tflags & _SEND) + 1] = True
    sent_starts = np.flatnonzero(is_start[:n_tok])
    del is_start, tflags

    # CX phrases: longest phrase starting at each candidate token; one starting inside another is dropped
    covered = np.zeros(n_tok, dtype=bool)
    start = np.flatnonzero(flags & _PSTART)
    phrase_s = np.zeros(0, dtype=np.int64)
    phrase_v = np.zeros(0)
    if len(start) and len(cache.phrase_keys):
        best_len = np.zeros(len(start), dtype=np.int64)
        best_val = np.zeros(len(start), dtype=np.float64)
        alive = np.arange(len(start))  # candidates whose n-gram so far is all phrase words in one text
        digits = cache.pidx[tok[start]]
        place = 1
        n_lang = len(cache.languages) + 1
        for j in range(1, MAX_PHRASE_WORDS):
            st = start[alive]
            nxt = st + j
            ok = nxt < n_tok
            nxt = np.minimum(nxt, n_tok - 1)
            d = cache.pidx[tok[nxt]]
            ok &= (rid[nxt] == rid[st]) & (d > 0)
            alive, st, nxt, d = alive[ok], st[ok], nxt[ok], d[ok]
            if not len(alive):
                break
            place *= cache.base
            digits = digits[ok] + d * place
            key = (digits * (MAX_PHRASE_WORDS + 1) + (j + 1)) * n_lang + lid[st]
            at = np.minimum(np.searchsorted(cache.phrase_keys, key), len(cache.phrase_keys) - 1)
            hit = cache.phrase_keys[at] == key
            best_len[alive[hit]] = j + 1  # later (longer) n overwrites shorter
            best_val[alive[hit]] = cache.phrase_vals[at[hit]]
        m = best_len > 0
        s, ln, v = start[m], best_len[m], best_val[m]
        interior = np.zeros(n_tok, dtype=bool)
        for k in range(1, MAX_PHRASE_WORDS):
            interior[s[ln > k] + k] = True
        keep = ~interior[s]
        phrase_s, ln, phrase_v = s[keep], ln[keep], v[keep]
        for k in range(MAX_PHRASE_WORDS):
            covered[phrase_s[ln > k] + k] = True
        base[covered] = 0.0
        base[phrase_s] = base[phrase_s] + phrase_v  # a phrase value sits on its (covered, so 0-valued) first token

    def uncovered(bit: int) -> np.ndarray:
        pos = np.flatnonzero(flags & bit)
        return pos[~covered[pos]]

    scored = np.flatnonzero(base)
    negated = np.zeros(n_tok, dtype=bool)
    neg_pos = uncovered(_NEG)
    if len(neg_pos):
        limit = _next_boundary(clause_starts, neg_pos, n_tok)
        win = cache.windows[lid[neg_pos]]
        for k in range(1, int(cache.windows.max(initial=0)) + 1):
            t = neg_pos + k
            negated[t[(t < limit) & (win >= k)]] = True
    mult = np.ones(n_tok)
    int_pos = uncovered(_INTENS)
    if len(int_pos):
        ok = int_pos + 1 < _next_boundary(clause_starts, int_pos, n_tok)
        mult[int_pos[ok] + 1] = cache.intens.ravel().take(fi[int_pos[ok]])
    c = base[scored] * mult[scored] * np.where(negated[scored], rules.negation_scalar, 1.0)
    con_pos = uncovered(_CONTRAST)
    if len(con_pos):
        # in a sentence with a contrast word, tokens after its first one weigh contrast_after, the others before
        si = np.searchsorted(sent_starts, con_pos, side="right") - 1
        first = np.ones(len(si), dtype=bool)
        first[1:] = si[1:] != si[:-1]
        si, fc = si[first], con_pos[first]
        code = np.zeros(n_tok + 1, dtype=np.int8)
        np.add.at(code, sent_starts[si], 1)
        np.add.at(code, fc + 1, 1)
        np.add.at(code, np.append(sent_starts, n_tok)[si + 1], -2)
        weight = np.array([1.0, rules.contrast_before, rules.contrast_after])
        c = c * weight[np.cumsum(code[:n_tok], dtype=np.int8)[scored]]
    r = rid[scored]
    return (np.bincount(r, weights=c, minlength=n_rows),
            np.bincount(r, weights=np.maximum(c, 0.0), minlength=n_rows),
            np.bincount(r, weights=-np.minimum(c, 0.0), minlength=n_rows))


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
    valid = prep["lang_id"].is_not_null() & prep["text"].is_not_null()
    work = prep.filter(valid)
    n = prep.height
    s_all, pos_all, neg_all = np.zeros(n), np.zeros(n), np.zeros(n)
    cache = _TokenCache(langs)
    # Batches bound memory (the token arrays are ~35x the rows); the chunk/token memo is shared by all batches.
    for b in work.iter_slices(max(1, batch_rows)):
        rows = b["rid"].to_numpy()
        s_all[rows], pos_all[rows], neg_all[rows] = _row_sums(cache, b["lang_id"].to_numpy(), b["text"])
    methods = {lang: sentiment_method(lang) for lang in langs}
    joined = pl.DataFrame({"lang": prep["lang"], "valid": valid, "s": s_all, "pos": pos_all, "neg": neg_all}) \
        .with_columns(s=pl.when(pl.col("valid")).then(pl.col("s")))
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
