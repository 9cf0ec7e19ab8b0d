"""Fit the cx-linear clause sentiment model (cx_pipeline/scoring/text/classifier.py) and write its weights file.

Training data, and nothing else:
- the project's own sentences, ``cx_pipeline/scoring/text/data/training/cx_sentences_v*.csv`` (written for the
  project; positive / negative / neutral);
- the dev part (4/10, by sha256 of the text, see eval/evaluate_sentiment.py ``split_of``) of the labelled
  review sets in ../shared/fixtures: Danish Trustpilot (boksen, vestjyskbank), Swedish pos/neg sample, Norwegian
  Google Play exports and the saved Trustpilot pages. Stars 4–5 = positive, 1–2 = negative, 3 left out.
  Their texts are read in place and only hashed feature counts enter the weights; no text is written anywhere.

Regularisation and the weight of reviews against project sentences are chosen by 5-fold cross-validation on the
dev part (the ``train`` and ``tune`` folds, 4/10); the final model is fitted on the whole dev part. The ``test``
part (6/10) is never read here. The weights file records the data it was fitted on (files, row counts, sha256 of
each file) so a reader can audit it.

Usage: .venv/bin/python scripts/train_sentiment_model.py [--fixtures ../shared/fixtures] [--out MODEL.npz]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "eval"))

from evaluate_sentiment import DEFAULT_FIXTURES, f1_report, load_reviews  # noqa: E402

from cx_pipeline.scoring.text.classifier import (  # noqa: E402
    CLASSES,
    MODEL_FILE,
    N_DENSE,
    LinearModel,
    dense_features,
    hashed_features,
)
from cx_pipeline.scoring.text.resources import DATA_DIR  # noqa: E402

TRAINING_DIR = DATA_DIR / "training"
N_BUCKETS = 2 ** 20
VERSION = "1.0.0"


def project_sentences() -> pl.DataFrame:
    frames = [pl.read_csv(p, schema_overrides={"language": pl.String}).with_columns(source=pl.lit(p.name))
              for p in sorted(TRAINING_DIR.glob("cx_sentences_v*.csv"))]
    if not frames:
        raise SystemExit(f"no training sentences under {TRAINING_DIR}")
    return pl.concat(frames).select("source", "language", "text", label="polarity")


def reviews(fixtures: Path) -> pl.DataFrame:
    df = load_reviews(fixtures)
    text = pl.when(pl.col("title").is_not_null()).then(pl.col("title") + ". " + pl.col("text")) \
        .otherwise(pl.col("text"))
    return df.select("source", "language", "fold", text=text, label="gold")


def fit(rows: np.ndarray, cols: np.ndarray, dense: np.ndarray, y: np.ndarray, w: np.ndarray, *, l2: float,
        epochs: int = 300, lr: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch Adam on the weighted multinomial log loss with an L2 penalty on the hashed weights."""
    n, k = len(y), len(CLASSES)
    used, inv = np.unique(cols, return_inverse=True)  # only buckets that occur get a parameter
    W = np.zeros((k, len(used)))
    D = np.zeros((k, dense.shape[1]))
    b = np.zeros(k)
    params = [W, D, b]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(k)[y]
    wsum = w.sum()
    for t in range(1, epochs + 1):
        z = np.tile(b, (n, 1)) + dense @ D.T
        for c in range(k):
            z[:, c] += np.bincount(rows, weights=W[c, inv], minlength=n)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * w[:, None] / wsum  # n × k
        gW = np.stack([np.bincount(inv, weights=g[rows, c], minlength=len(used)) for c in range(k)]) + l2 * W
        grads = [gW, g.T @ dense, g.sum(axis=0)]
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad * grad
            param -= lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    full = np.zeros((k, N_BUCKETS))
    full[:, used] = W
    return full, D, b


FEATURE_SET: tuple[str, ...] = ("word", "negated", "pair", "lang", "prefix")


def design(frame: pl.DataFrame, features: tuple[str, ...] = FEATURE_SET) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = hashed_features(frame["text"], frame["language"], N_BUCKETS, features)
    return rows, cols, dense_features(frame["text"], frame["language"])


def sample_weights(frame: pl.DataFrame, review_weight: float) -> np.ndarray:
    """Each class weighs the same within each part (project sentences, reviews), so the 90 % positive Danish
    reviews do not teach the model that everything is positive; ``review_weight`` sets the parts' balance."""
    part = pl.when(pl.col("source").str.starts_with("cx_sentences")).then(pl.lit("own")).otherwise(pl.lit("rev"))
    counts = frame.with_columns(_part=part).with_columns(_n=pl.len().over("_part", "label"),
                                                         _classes=pl.col("label").n_unique().over("_part"),
                                                         _total=pl.len().over("_part"))
    w = counts.select(pl.col("_total") / (pl.col("_classes") * pl.col("_n"))
                      * pl.when(pl.col("_part") == "rev").then(review_weight).otherwise(1.0))
    return w.to_series().to_numpy()


def cross_validated_f1(own: pl.DataFrame, dev: pl.DataFrame, *, l2: float, review_weight: float,
                       k: int = 5) -> dict[str, float]:
    """Macro-F1 (negative iff P(pos) − P(neg) < 0) per language over ``k`` folds of the dev reviews; the project
    sentences are in every training fold. Used only to choose the regularisation and the review weight."""
    folds = dev.with_columns(_k=pl.col("text").hash(7) % k)
    preds = []
    for i in range(k):
        train = pl.concat([own, folds.filter(pl.col("_k") != i).select(own.columns)], how="vertical")
        held = folds.filter(pl.col("_k") == i)
        model = fit_model(train, l2=l2, review_weight=review_weight, meta={"version": VERSION})
        p = model.probabilities(held["text"], held["language"])
        preds.append(held.with_columns(_s=pl.Series(p[:, 2] - p[:, 0])))
    allp = pl.concat(preds)
    out = {}
    for lang in ("da", "no", "sv", "en"):
        part = allp.filter(pl.col("language") == lang)
        if part.height:
            pred = ["negative" if s < 0 else "positive" for s in part["_s"]]
            out[lang] = round(f1_report(part["label"].to_list(), pred)["macro_f1"], 4)
    return out


def fit_model(train: pl.DataFrame, *, l2: float, review_weight: float, meta: dict[str, object]) -> LinearModel:
    y = train["label"].replace_strict({c: i for i, c in enumerate(CLASSES)}, return_dtype=pl.Int64).to_numpy()
    rows, cols, dense = design(train)
    W, D, b = fit(rows, cols, dense, y, sample_weights(train, review_weight), l2=l2)
    return LinearModel(weights=W, dense=D, bias=b, meta={**meta, "features": list(FEATURE_SET)}, sha256="")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    ap.add_argument("--out", type=Path, default=MODEL_FILE)
    ap.add_argument("--l2", type=float, nargs="*", default=[1e-5, 3e-5])
    ap.add_argument("--review-weight", type=float, nargs="*", default=[1.0])
    args = ap.parse_args(argv)
    own = project_sentences()
    rev = reviews(args.fixtures)
    dev = rev.filter(pl.col("fold") != "test").select(own.columns)  # train + tune folds; test is never read
    best: tuple[float, dict[str, object]] | None = None
    for l2 in args.l2:
        for rw in args.review_weight:
            t0 = time.perf_counter()
            scores = cross_validated_f1(own, dev, l2=l2, review_weight=rw)
            mean = float(np.mean(list(scores.values())))
            print(f"l2={l2:g} review_weight={rw:g}: 5-fold CV macro-F1 on dev reviews {scores} mean {mean:.3f} "
                  f"({time.perf_counter() - t0:.1f} s)")
            if best is None or mean > best[0]:
                best = (mean, {"l2": l2, "review_weight": rw, "cv_macro_f1": scores})
    assert best is not None
    chosen = best[1]
    files = sorted(TRAINING_DIR.glob("cx_sentences_v*.csv"))
    shared = [p for p in (args.fixtures / "review_datasets").glob("*") if p.suffix == ".csv"]
    meta = {
        "version": VERSION,
        "classes": list(CLASSES),
        "n_buckets": N_BUCKETS,
        "n_dense": N_DENSE,
        "hash": "xxhash64 (polars-hash nchash) of the feature string mod n_buckets",
        "chosen": chosen,
        "trained_on": {
            "project_sentences": {p.name: {"rows": int((own["source"] == p.name).sum()),
                                           "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in files},
            "shared_reviews_dev_part": {
                "rows_by_source": dict(sorted(rev.filter(pl.col("fold") != "test").group_by("source").len().rows())),
                "files_sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(shared)},
                "fold_rule": "sha256(title+text) mod 10 < 4 (the dev part; eval/evaluate_sentiment.py split_of)",
            },
        },
    }
    final = fit_model(pl.concat([own, dev], how="vertical"), l2=float(chosen["l2"]),  # type: ignore[arg-type]
                      review_weight=float(chosen["review_weight"]), meta=meta)  # type: ignore[arg-type]
    final.save(args.out)
    print(f"chosen {chosen}; wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), sha256 "
          f"{hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
