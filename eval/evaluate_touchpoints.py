"""Touchpoint tagging vs a hand-labelled sample (eval/data/touchpoint_labelled.csv): precision/recall per touchpoint.

Split: dev when sha256(language|text) mod 10 < 4, else test. Term lists may be edited looking at dev only;
the report's headline numbers are the test part.

Usage: .venv/bin/python eval/evaluate_touchpoints.py [--show-dev-errors]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cx_pipeline.contract.taxonomy import touchpoints as taxonomy  # noqa: E402
from cx_pipeline.scoring.text.touchpoints import tag_touchpoints, touchpoint_terms_version  # noqa: E402

LABELLED = REPO / "eval" / "data" / "touchpoint_labelled.csv"


def split_of(language: str, text: str) -> str:
    return "dev" if int(hashlib.sha256(f"{language}|{text}".encode()).hexdigest(), 16) % 10 < 4 else "test"


def load(path: Path = LABELLED) -> pl.DataFrame:
    df = pl.read_csv(path, schema={"language": pl.String, "text": pl.String, "touchpoints": pl.String})
    return df.with_columns(
        gold=pl.col("touchpoints").fill_null("").str.split(";").list.eval(pl.element().filter(pl.element() != "")),
        split=pl.struct("language", "text").map_elements(lambda r: split_of(r["language"], r["text"]),
                                                         return_dtype=pl.String),
    )


def prf(rows: list[tuple[set[str], set[str]]], touchpoint: str | None) -> dict[str, float]:
    tp = fp = fn = 0
    for gold, pred in rows:
        g = gold if touchpoint is None else gold & {touchpoint}
        p = pred if touchpoint is None else pred & {touchpoint}
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    return {"support": tp + fn, "predicted": tp + fp, "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec + rec and prec == prec and rec == rec else float("nan")}


def evaluate(df: pl.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    tagged = tag_touchpoints(df, text_col="text", lang_col="language")
    assert isinstance(tagged, pl.DataFrame)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split in ("dev", "test"):
        part = tagged.filter(pl.col("split") == split)
        rows = [(set(g), set(p)) for g, p in zip(part["gold"].to_list(), part["text_touchpoints"].to_list(),
                                                 strict=True)]
        res = {tp: prf(rows, tp) for tp in taxonomy() if tp not in ("overall", "other")}
        res["ALL (micro)"] = prf(rows, None)
        for lang in ("da", "no", "sv", "en"):
            lp = part.filter(pl.col("language") == lang)
            lrows = [(set(g), set(p)) for g, p in zip(lp["gold"].to_list(), lp["text_touchpoints"].to_list(),
                                                      strict=True)]
            res[f"ALL {lang} (micro, n={lp.height})"] = prf(lrows, None)
        res["_n"] = {"comments": float(part.height)}
        out[split] = res
    return out


def markdown(results: dict[str, dict[str, dict[str, float]]], split: str) -> str:
    r = results[split]
    lines = [f"{split}: {int(r['_n']['comments'])} comments", "",
             "| touchpoint | support | predicted | precision | recall | F1 |", "|---|---|---|---|---|---|"]
    for name, m in r.items():
        if name == "_n":
            continue
        lines.append(f"| {name} | {m['support']:.0f} | {m['predicted']:.0f} | {m['precision']:.2f} "
                     f"| {m['recall']:.2f} | {m['f1']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "results")
    ap.add_argument("--show-dev-errors", action="store_true")
    args = ap.parse_args(argv)
    df = load()
    results = evaluate(df)
    version = touchpoint_terms_version()  # which term lists produced these numbers
    md = f"term lists: {version}\n\n" + markdown(results, "test") + "\n" + markdown(results, "dev")
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "touchpoints.json").write_text(json.dumps({"terms_version": version, **results}, indent=2),
                                               encoding="utf-8")
    (args.out / "touchpoints.md").write_text(md, encoding="utf-8")
    if args.show_dev_errors:
        dev = tag_touchpoints(df.filter(pl.col("split") == "dev"))
        assert isinstance(dev, pl.DataFrame)
        bad = dev.filter(pl.col("gold").list.sort() != pl.col("text_touchpoints").list.sort())
        with pl.Config(fmt_str_lengths=120, tbl_rows=200, tbl_width_chars=250):
            print(bad.select("language", "text", "gold", "touchpoint_evidence"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
