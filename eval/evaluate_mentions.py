"""Touchpoint mentions vs a hand-labelled set (eval/data/mentions_labelled.csv): touchpoint P/R, mention polarity.

Each text of the set is scored as one plain review (own touchpoint ``overall``) by the same code as the assets
(``score_text_and_mentions``). Gold: the set's ``touchpoint:polarity`` list. A predicted mention matches a gold
one when the touchpoint is the same; touchpoint precision/recall count matches; mention polarity accuracy is the
share of matched mentions whose label equals the gold polarity (``mixed`` is never right).

Split: dev when sha256(id|text) mod 10 < 4, else test. Only dev errors may be looked at (``--show-dev-errors``);
the headline numbers are the test part. The set was written by a different author than the term lists and the
training sentences, without seeing them (eval/data/mentions_README.md).

Usage: .venv/bin/python eval/evaluate_mentions.py [--method cx-linear] [--show-dev-errors N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cx_pipeline.scoring.text.score import (  # noqa: E402
    DEFAULT_SENTIMENT_METHOD,
    SENTIMENT_METHODS,
    score_text_and_mentions,
)

LABELLED = REPO / "eval" / "data" / "mentions_labelled.csv"
LANGS = ("da", "no", "sv", "en")


def split_of(id_: str, text: str) -> str:
    return "dev" if int(hashlib.sha256(f"{id_}|{text}".encode()).hexdigest(), 16) % 10 < 4 else "test"


def load(path: Path = LABELLED) -> pl.DataFrame:
    df = pl.read_csv(path, schema={"id": pl.String, "language": pl.String, "text": pl.String, "mentions": pl.String})
    return df.with_columns(
        split=pl.struct("id", "text").map_elements(lambda r: split_of(r["id"], r["text"]), return_dtype=pl.String)
    )


def as_events(df: pl.DataFrame) -> pl.DataFrame:
    """One plain-review event per labelled text (the columns ``score_text_and_mentions`` reads)."""
    n = df.height
    return pl.DataFrame({
        "event_id": df["id"], "record_id": df["id"], "source": ["eval"] * n, "brand": ["eval"] * n,
        "touchpoint": ["overall"] * n, "metric": ["star_rating"] * n, "title": [None] * n, "text": df["text"],
        "language": df["language"], "language_origin": ["declared"] * n, "country": [None] * n,
        "published_at": [datetime(2026, 1, 1, tzinfo=UTC)] * n, "occurred_at": [None] * n,
        "customer_key": [None] * n,
    }, schema_overrides={"title": pl.String, "country": pl.String, "occurred_at": pl.Datetime("us", "UTC"),
                         "customer_key": pl.String})


def gold_of(mentions: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (mentions or "").split(";"):
        if item:
            tp, pol = item.split(":")
            out[tp] = pol
    return out


def score(df: pl.DataFrame, method: str) -> dict[str, dict[str, str]]:
    mentions = score_text_and_mentions(as_events(df), sentiment_method=method).mentions
    pred: dict[str, dict[str, str]] = {i: {} for i in df["id"]}
    for r in mentions.iter_rows(named=True):
        pred[r["event_id"]][r["touchpoint"]] = r["sentiment_label"]
    return pred


def metrics(rows: list[tuple[dict[str, str], dict[str, str]]], *, with_overall: bool = True) -> dict[str, float]:
    tp = fp = fn = right = 0
    for gold, pred in rows:
        g = {k: v for k, v in gold.items() if with_overall or k != "overall"}
        p = {k: v for k, v in pred.items() if with_overall or k != "overall"}
        both = g.keys() & p.keys()
        tp += len(both)
        fp += len(p.keys() - g.keys())
        fn += len(g.keys() - p.keys())
        right += sum(g[k] == p[k] for k in both)
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    return {"gold": tp + fn, "predicted": tp + fp, "matched": tp, "precision": prec, "recall": rec,
            "polarity_accuracy": right / tp if tp else float("nan")}


def evaluate(df: pl.DataFrame, method: str) -> tuple[list[dict[str, object]], dict[str, dict[str, str]]]:
    pred = score(df, method)
    results: list[dict[str, object]] = []
    for split in ("dev", "test"):
        part = df.filter(pl.col("split") == split)
        for lang in (None, *LANGS):
            sub = part if lang is None else part.filter(pl.col("language") == lang)
            rows = [(gold_of(m), pred[i]) for i, m in zip(sub["id"], sub["mentions"], strict=True)]
            for with_overall in (True, False):
                results.append({"split": split, "language": lang or "all", "texts": sub.height,
                                "touchpoints": "all" if with_overall else "named only",
                                **metrics(rows, with_overall=with_overall)})
    return results, pred


def markdown(results: list[dict[str, object]], method: str) -> str:
    lines = [f"Method `{method}`. Touchpoints 'all' includes `overall` (sentiment with no touchpoint word); "
             "'named only' leaves it out.", "",
             "| split | lang | texts | touchpoints | gold | predicted | precision | recall | polarity accuracy |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['split']} | {r['language']} | {r['texts']} | {r['touchpoints']} | {r['gold']} "
                     f"| {r['predicted']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['polarity_accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", choices=SENTIMENT_METHODS, default=DEFAULT_SENTIMENT_METHOD)
    ap.add_argument("--show-dev-errors", type=int, default=0, help="print N dev texts with errors (never test)")
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "results")
    args = ap.parse_args(argv)
    df = load()
    results, pred = evaluate(df, args.method)
    md = markdown(results, args.method)
    print(md)
    shown = 0
    for r in df.filter(pl.col("split") == "dev").iter_rows(named=True):
        if shown >= args.show_dev_errors:
            break
        gold = gold_of(r["mentions"])
        if gold != pred[r["id"]]:
            print(f"{r['id']}: {r['text']}\n   gold {gold}\n   pred {pred[r['id']]}")
            shown += 1
    stem = "mentions" if args.method == DEFAULT_SENTIMENT_METHOD else "mentions_" + args.method.replace("+", "_")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text(md, encoding="utf-8")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
