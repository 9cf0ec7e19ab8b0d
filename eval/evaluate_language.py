"""Declared vs detected language: how often the final language is right, before (declared always kept) and after.

Four parts, all written to eval/results/language.md (+ .json):
1. eval/data/language_labelled.csv (texts written for this project, about half with a wrong declared language):
   accuracy of the final language before (``verify_declared=False``) and after (the defaults), short (< 5 words)
   vs long, and how many overrides fixed or broke a row; plus a small threshold grid to show how sensitive the
   result is (confidence and da/no gap were chosen on other texts; min_words was lowered after it, see language.py).
2. The demo Qualtrics export (cx_pipeline/sample_data/surveys/nordlys_shop_qualtrics_2025-*.csv): comments whose
   language is overridden, and comments scoring exactly 0 sentiment before/after.
3. Real reviews in ../fixtures/review_datasets (when present): overrides by direction, and a da/no gap sweep.
4. With ``--speed-rows N``: ``fill_language`` on N synthetic declared rows (bench/bench_text_scoring.py).

Usage: .venv/bin/python eval/evaluate_language.py [--speed-rows 100000]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cx_pipeline.scoring.text import language as language_module  # noqa: E402
from cx_pipeline.scoring.text.language import (  # noqa: E402
    DEFAULT_DANO_OVERRIDE_GAP,
    DEFAULT_OVERRIDE_CONFIDENCE,
    DEFAULT_OVERRIDE_MIN_WORDS,
    DEFAULT_VERIFY_MAX_CHARS,
    fill_language,
)

LABELLED = REPO / "eval" / "data" / "language_labelled.csv"
QUALTRICS = sorted((REPO / "cx_pipeline" / "sample_data" / "surveys").glob("nordlys_shop_qualtrics_2025-*.csv"))
SHORT_WORDS = 5  # "short" = fewer than this many words
FIXTURES = REPO.parent / "shared" / "fixtures" / "review_datasets"  # real reviews, outside the repo (see notes)


def load(path: Path = LABELLED) -> pl.DataFrame:
    df = pl.read_csv(path, schema={"text": pl.String, "true_language": pl.String, "declared_language": pl.String})
    return df.with_columns(
        length=pl.when(pl.col("text").str.count_matches(r"[^\W\d_]+") < SHORT_WORDS)
        .then(pl.lit("short")).otherwise(pl.lit("long")),
        declared_ok=pl.col("true_language") == pl.col("declared_language"),
    )


def run(df: pl.DataFrame, **kwargs: Any) -> pl.DataFrame:
    """Final language per row; no country (like the Qualtrics export), so da/no ties fall to the higher score."""
    frame = df.select("text", language="declared_language", country=pl.lit(None, pl.String))
    out = fill_language(frame, title_col=None, **kwargs)
    return df.with_columns(final=out["language"], confidence=out["language_confidence"])


def accuracy(scored: pl.DataFrame) -> dict[str, Any]:
    right = pl.col("final") == pl.col("true_language")
    res: dict[str, Any] = {"all": _acc(scored, right)}
    for part in ("short", "long"):
        res[part] = _acc(scored.filter(pl.col("length") == part), right)
    res["declared_right"] = _acc(scored.filter(pl.col("declared_ok")), right)
    res["declared_wrong"] = _acc(scored.filter(~pl.col("declared_ok")), right)
    for lang in scored["true_language"].unique(maintain_order=True).to_list():
        res[f"lang_{lang}"] = _acc(scored.filter(pl.col("true_language") == lang), right)
    return res


def _acc(df: pl.DataFrame, right: pl.Expr) -> dict[str, Any]:
    n = df.height
    k = int(df.select(right.sum()).item()) if n else 0
    return {"n": n, "right": k, "accuracy": round(k / n, 3) if n else None}


def override_effect(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, int]:
    changed = before["final"] != after["final"]
    was_right = before["final"] == before["true_language"]
    now_right = after["final"] == after["true_language"]
    return {
        "overridden": int(changed.sum()),
        "fixed": int((changed & ~was_right & now_right).sum()),
        "broken": int((changed & was_right & ~now_right).sum()),
        "wrong_to_other_wrong": int((changed & ~was_right & ~now_right).sum()),
    }


def labelled_report(df: pl.DataFrame) -> dict[str, Any]:
    before = run(df, verify_declared=False)
    after = run(df)
    detect_only = run(df.with_columns(declared_language=pl.lit(None, pl.String)))
    grid = []
    for conf in (0.6, 0.7, 0.8, 0.9):
        for words in (2, 3, 4):
            for gap in (0.3, 0.5, 0.7):
                scored = run(df, min_confidence=conf, min_words=words, dano_gap=gap)
                grid.append({"min_confidence": conf, "min_words": words, "dano_gap": gap,
                             **{k: accuracy(scored)[k]["accuracy"] for k in ("all", "short", "long")},
                             "broken": override_effect(before, scored)["broken"]})
    mistakes = after.filter(pl.col("final") != pl.col("true_language")).select(
        "text", "true_language", "declared_language", "final", pl.col("confidence").round(2))
    return {
        "rows": df.height,
        "declared_wrong": int((~df["declared_ok"]).sum()),
        "before": accuracy(before),
        "after": accuracy(after),
        "detect_only": accuracy(detect_only),
        "effect": override_effect(before, after),
        "grid": grid,
        "after_mistakes": mistakes.to_dicts(),
    }


# The language each distinct demo comment is written in, by reading it ("da|no": valid in both). Clues: Danish
# "tog", "uge", "venlig", "uvenlig", "fungerede", "fragten" (Norwegian "tok", "uke", "vennlig", "uvennlig").
DEMO_WRITTEN: dict[str, str] = {
    "Allt fungerade smidigt, tack!": "sv",
    "Alt fungerede perfekt, tak.": "da",
    "Call me on [phone] about my refund.": "en",
    "Customer service never answered my chat.": "en",
    "Fikk feil vare og måtte vente lenge på svar fra kundeservice.": "no",
    "Fin webshop, men fragten er dyr.": "da",
    "Great products, delivery took a bit long.": "en",
    "Great service, will buy again.": "en",
    "Grei handel, kommer tilbake.": "no",
    "Hurtig levering og pæn indpakning, tak!": "da",
    "Hurtig levering og venlig service!": "da",
    "Ingen svar fra kundeservice.": "da|no",
    "Kontakt meg gjerne på [email] om returen.": "no",
    "Kundeservice var super hjælpsom med min ombytning.": "da",
    "Kundeservice var uvenlig i telefonen.": "da",
    "Levering tog alt for lang tid.": "da",
    "Love the shop, will order again!": "en",
    "Nobody answered my emails.": "en",
    "Paketet var skadat vid leverans.": "sv",
    "Pakken kom en uge for sent.": "da",
    "Pakken kom to dage for sent, og ingen svarede på min mail.": "da",
    "Rask levering, veldig fornøyd!": "no",
    "Snabb leverans och bra kundservice.": "sv",
    "The parcel arrived late and damaged.": "en",
}


def _qualtrics_events() -> pl.DataFrame:
    from cx_pipeline.contract.identity import CustomerKeyer
    from cx_pipeline.pipeline.parse_files import parse_bytes

    keyer = CustomerKeyer("evaluate-language")
    frames = [parse_bytes(p.read_bytes(), location=p.name, keyer=keyer, brand="nordlys_shop").events for p in QUALTRICS]
    return pl.concat(frames, how="vertical_relaxed")


def _per_comment(scored: pl.DataFrame) -> pl.DataFrame:
    """One row per response comment (the parser repeats a response's comment on each of its events)."""
    return (scored.filter(pl.col("text").is_not_null())
            .group_by("record_id", maintain_order=True)
            .agg(pl.col("text").first(), pl.col("language_declared").first(), pl.col("language").first(),
                 pl.col("sentiment").drop_nulls().first())
            .with_columns(written=pl.col("text").replace_strict(DEMO_WRITTEN, default=None).str.split("|")))


def qualtrics_report() -> dict[str, Any]:
    from cx_pipeline.scoring.text import score as score_module
    from cx_pipeline.scoring.text.sentiment import score_sentiment

    events = _qualtrics_events()
    res: dict[str, Any] = {"files": [p.name for p in QUALTRICS], "events": events.height}
    for name, verify in (("before", False), ("after", True)):
        lang = fill_language(events, verify_declared=verify)
        whole = score_sentiment(lang)  # whole-text lexicon sentiment, as score_text did before clause scoring
        assert isinstance(whole, pl.DataFrame)
        # score_text (working tree) with the lexicon method; "before" = its fill_language told to trust declared
        original = score_module.fill_language
        score_module.fill_language = functools.partial(original, verify_declared=verify)  # type: ignore[assignment]
        try:
            via_score_text = score_module.score_text(events, sentiment_method="lexicon")
        finally:
            score_module.fill_language = original  # type: ignore[assignment]
        assert isinstance(via_score_text, pl.DataFrame)
        comments = _per_comment(whole)
        comments_st = _per_comment(via_score_text)
        declared = comments.filter(pl.col("language_declared").is_not_null())
        mismatch = ~pl.col("written").list.contains(pl.col("language_declared"))
        neighbour = {"da": "no", "no": "da"}
        res[name] = {
            "comments": comments.height,
            "unread_texts": int(comments["written"].is_null().sum()),
            "declared_differs_from_written": comments.filter(mismatch).height,
            "right_language": comments.filter(pl.col("written").list.contains(pl.col("language"))).height,
            "right_or_da_no_neighbour": comments.filter(
                pl.col("written").list.contains(pl.col("language"))
                | pl.col("written").list.contains(pl.col("language").replace(neighbour))).height,
            "right_of_declared_differs": comments.filter(
                mismatch & pl.col("written").list.contains(pl.col("language"))).height,
            "overridden": int((declared["language"] != declared["language_declared"]).sum()),
            "languages": dict(sorted(comments.group_by("language").len().iter_rows())),
            "zero_sentiment_whole_text_lexicon": int((comments["sentiment"] == 0).sum()),
            "zero_sentiment_of_declared_differs": comments.filter(mismatch & (pl.col("sentiment") == 0)).height,
            "zero_sentiment_score_text_lexicon": int((comments_st["sentiment"] == 0).sum()),
        }
    return res


def _real_sets(root: Path) -> dict[str, pl.DataFrame]:
    """Real reviews with a declared language: Google Play's "Reviewer Language" (often wrong), and Danish/Swedish
    review sets declared as their own language (right apart from the odd English or Norwegian review)."""
    import io

    sets: dict[str, pl.DataFrame] = {}
    gp = root / "no_googleplay_sparebank1_2018-06_stars.utf16le.csv"
    if gp.exists():
        raw = pl.read_csv(io.StringIO(gp.read_text(encoding="utf-16-le").lstrip("\ufeff")), infer_schema_length=0)
        sets["googleplay_no (Reviewer Language)"] = raw.filter(pl.col("Review Text").is_not_null()).select(
            text="Review Text", title="Review Title", language="Reviewer Language")
    for name, sep, col in (("da_trustpilot_3dk_semicolon.csv", ";", "Review"),
                           ("da_trustpilot_boksen_fasttext-labels.csv", ",", "review"),
                           ("da_trustpilot_vestjyskbank_fasttext-labels.csv", ",", "review"),
                           ("sv_reviews_pos-neg_sample1000.csv", ",", "text")):
        if (root / name).exists():
            df = pl.read_csv(root / name, separator=sep, infer_schema_length=0)
            sets[f"{name[:2]}: {name} (declared {name[:2]})"] = df.select(
                text=pl.col(col), title=pl.lit(None, pl.String), language=pl.lit(name[:2]))
    return sets


def real_report(root: Path) -> dict[str, Any]:
    """Overrides on real reviews (no labels: the counts and their direction are the evidence), plus a stress test:
    the Danish sets declared Norwegian and the Norwegian Google Play reviews declared Danish."""
    res: dict[str, Any] = {}
    sets = _real_sets(root)
    stress = {}
    for name, df in sets.items():
        if name.startswith("da:"):
            stress[f"{name.split(' ')[1]} declared no"] = df.with_columns(language=pl.lit("no"))
        if name.startswith("googleplay"):
            stress["googleplay_no declared da"] = df.with_columns(language=pl.lit("da"))
    for name, df in {**sets, **stress}.items():
        row: dict[str, Any] = {"rows": df.height,
                               "two_word_texts": int((df["text"].str.count_matches(r"[^\W\d_]+") == 2).sum())}
        for label, kwargs in (("default", {}), ("min_words=3", {"min_words": 3})):
            t0 = time.perf_counter()
            out = fill_language(df, country_col=None, **kwargs)
            secs = time.perf_counter() - t0
            moved = out.filter(pl.col("language") != pl.col("language_declared"))
            pairs = moved.group_by("language_declared", "language").len().sort("len", descending=True)
            row[label] = {"overridden": moved.height, "seconds": round(secs, 2),
                          "pairs": {f"{a}→{b}": n for a, b, n in pairs.iter_rows()}}
        res[name] = row
    danish = [df for name, df in sets.items() if name.startswith("da:")]
    if danish:
        da = pl.concat(danish)
        sweep = []
        for gap in (0.3, 0.4, 0.5, 0.6):
            as_da = fill_language(da, country_col=None, dano_gap=gap)
            as_no = fill_language(da.with_columns(language=pl.lit("no")), country_col=None, dano_gap=gap)
            sweep.append({"dano_gap": gap, "danish_reviews": da.height,
                          "declared_da_overridden_to_no": int((as_da["language"] == "no").sum()),
                          "declared_no_corrected_to_da": int((as_no["language"] == "da").sum())})
        res["dano_gap_sweep"] = sweep
    return res


def speed_report(rows: int) -> dict[str, Any]:
    from bench.bench_text_scoring import synthetic_events

    events = synthetic_events(rows)
    fill_language(events.head(200))  # load the lingua models once, outside the timings
    fill_language(events.head(200), low_accuracy=True)
    res: dict[str, Any] = {"rows": rows, "distinct_texts": events["text"].n_unique(),
                           "mean_words": round(float(events["text"].str.count_matches(r"\S+").mean() or 0), 1)}
    for name, kwargs in (("before (verify_declared=False)", {"verify_declared": False}),
                         ("after (default)", {}),
                         ("after, whole text (verify_max_chars=None)", {"verify_max_chars": None}),
                         ("after, low_accuracy=True", {"low_accuracy": True})):
        t0 = time.perf_counter()
        out = fill_language(events, **kwargs)
        secs = time.perf_counter() - t0
        res[name] = {"seconds": round(secs, 2), "rows_per_s": round(rows / secs),
                     "overridden": int((out["language"] != out["language_declared"]).sum())}
    return res


def _pct(a: dict[str, Any]) -> str:
    return f"{a['right']}/{a['n']} ({a['accuracy']:.0%})" if a["n"] else "—"


def markdown(lab: dict[str, Any], qual: dict[str, Any], real: dict[str, Any], speed: dict[str, Any] | None) -> str:
    b, a, d = lab["before"], lab["after"], lab["detect_only"]
    lines = [
        "# Language: declared vs detected",
        "",
        f"Generated by `eval/evaluate_language.py`. Rule (language.py): override a declared language when the "
        f"detector's confidence is ≥ {DEFAULT_OVERRIDE_CONFIDENCE} (da + no together for a Danish/Norwegian text "
        f"declared in a third language) and the text has ≥ {DEFAULT_OVERRIDE_MIN_WORDS} words; da ↔ no only with a "
        f"confidence gap ≥ {DEFAULT_DANO_OVERRIDE_GAP}. Detector: lingua (high accuracy) among da/no/sv/en plus "
        f"the row's declared language, on the first {DEFAULT_VERIFY_MAX_CHARS} characters of a declared row.",
        "",
        f"## Labelled set: `eval/data/language_labelled.csv` ({lab['rows']} texts, {lab['declared_wrong']} with a "
        "wrong declared language, no country)",
        "",
        "| rows | before (declared kept) | after (default rule) | detection only (declared ignored) |",
        "|---|---|---|---|",
    ]
    keys = ["all", "short", "long", "declared_right", "declared_wrong"] + [k for k in a if k.startswith("lang_")]
    labels = {"all": "all", "short": f"short (< {SHORT_WORDS} words)", "long": f"long (≥ {SHORT_WORDS} words)",
              "declared_right": "declared right", "declared_wrong": "declared wrong"}
    for k in keys:
        lines.append(f"| {labels.get(k, k.replace('lang_', 'written in '))} | {_pct(b[k])} | {_pct(a[k])} | "
                     f"{_pct(d[k])} |")
    e = lab["effect"]
    lines += [
        "",
        f"Overrides: {e['overridden']} rows changed language — {e['fixed']} fixed, {e['broken']} broke a right "
        f"declared language, {e['wrong_to_other_wrong']} went from one wrong language to another.",
        "",
        "Rows still wrong after:",
        "",
        "| text | true | declared | final | confidence |",
        "|---|---|---|---|---|",
    ]
    for m in lab["after_mistakes"]:
        lines.append(f"| {m['text']} | {m['true_language']} | {m['declared_language']} | {m['final']} | "
                     f"{m['confidence']} |")
    lines += [
        "",
        "Threshold sensitivity (accuracy; `broken` = right declared languages overridden). Confidence and da/no "
        "gap were set before this set was scored; min_words was first 3 and lowered to 2 after this grid and the "
        "real reviews below, so the short-text figure is partly tuned on these rows.",
        "",
        "| min_confidence | min_words | dano_gap | all | short | long | broken |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in lab["grid"]:
        mark = " **(default)**" if (g["min_confidence"], g["min_words"], g["dano_gap"]) == (
            DEFAULT_OVERRIDE_CONFIDENCE, DEFAULT_OVERRIDE_MIN_WORDS, DEFAULT_DANO_OVERRIDE_GAP) else ""
        lines.append(f"| {g['min_confidence']}{mark} | {g['min_words']} | {g['dano_gap']} | {g['all']:.3f} | "
                     f"{g['short']:.3f} | {g['long']:.3f} | {g['broken']} |")
    qb, qa = qual["before"], qual["after"]
    lines += [
        "",
        f"## Demo Qualtrics export ({', '.join(qual['files'])}; {qual['events']} events)",
        "",
        "One row per response comment. Sentiment: the lexicon method, on the whole text (`score_sentiment`, what "
        "`score_text` did before clause scoring) and through the working tree's `score_text(sentiment_method="
        "\"lexicon\")`.",
        "",
        "| | before | after |",
        "|---|---|---|",
        f"| comments | {qb['comments']} | {qa['comments']} |",
        f"| declared language differs from the written one (read by hand, `DEMO_WRITTEN`) | "
        f"{qb['declared_differs_from_written']} | {qa['declared_differs_from_written']} |",
        f"| final language = written language | {qb['right_language']} | {qa['right_language']} |",
        f"| … or its da/no neighbour | {qb['right_or_da_no_neighbour']} | {qa['right_or_da_no_neighbour']} |",
        f"| of the mismatched: now right | {qb['right_of_declared_differs']} | {qa['right_of_declared_differs']} |",
        f"| language differs from the declared one (overridden) | {qb['overridden']} | {qa['overridden']} |",
        f"| languages | {qb['languages']} | {qa['languages']} |",
        f"| sentiment exactly 0 (whole-text lexicon) | {qb['zero_sentiment_whole_text_lexicon']} | "
        f"{qa['zero_sentiment_whole_text_lexicon']} |",
        f"| sentiment exactly 0 (`score_text`, lexicon) | {qb['zero_sentiment_score_text_lexicon']} | "
        f"{qa['zero_sentiment_score_text_lexicon']} |",
        f"| … of them mismatched comments (whole-text lexicon) | {qb['zero_sentiment_of_declared_differs']} | "
        f"{qa['zero_sentiment_of_declared_differs']} |",
    ]
    if real:
        lines += [
            "",
            "## Real reviews (`../fixtures/review_datasets`, no labels: the overrides are the evidence)",
            "",
            "| set | rows | two-word texts | overridden (default) | by declared → final | with min_words=3 "
            "| time (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in real.items():
            if name == "dano_gap_sweep":
                continue
            pairs = ", ".join(f"{k} {v}" for k, v in r["default"]["pairs"].items())
            lines.append(f"| {name} | {r['rows']} | {r['two_word_texts']} | {r['default']['overridden']} | {pairs} | "
                         f"{r['min_words=3']['overridden']} | {r['default']['seconds']} |")
        if "dano_gap_sweep" in real:
            lines += ["", "da ↔ no gap on the real Danish reviews (all three sets):", "",
                      "| dano_gap | Danish reviews | declared da → overridden to no (wrong) | "
                      "same declared no → corrected to da |", "|---|---|---|---|"]
            for g in real["dano_gap_sweep"]:
                lines.append(f"| {g['dano_gap']} | {g['danish_reviews']} | {g['declared_da_overridden_to_no']} | "
                             f"{g['declared_no_corrected_to_da']} |")
    if speed:
        lines += [
            "",
            f"## Speed: `fill_language` on {speed['rows']:,} synthetic declared rows ({speed['distinct_texts']:,} "
            f"distinct texts, mean {speed['mean_words']} words; bench/bench_text_scoring.py generator)",
            "",
            "| run | seconds | rows/s | overridden |",
            "|---|---|---|---|",
        ]
        for name, r in speed.items():
            if isinstance(r, dict):
                lines.append(f"| {name} | {r['seconds']} | {r['rows_per_s']:,} | {r['overridden']} |")
        lines += ["", "(The synthetic texts are random words of one language with a correct declared language; "
                  "overrides there are detector disagreements on word salad, not real mismatches.)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speed-rows", type=int, default=0, help="also time fill_language on this many synthetic rows")
    ap.add_argument("--fixtures", type=Path, default=FIXTURES, help="real review sets (skipped when missing)")
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "results")
    args = ap.parse_args(argv)
    lab = labelled_report(load())
    qual = qualtrics_report()
    real = real_report(args.fixtures) if args.fixtures.exists() else {}
    speed = speed_report(args.speed_rows) if args.speed_rows else None
    md = markdown(lab, qual, real, speed)
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"labelled": lab, "qualtrics": qual, "real_reviews": real, "speed": speed,
               "thresholds": {"min_confidence": DEFAULT_OVERRIDE_CONFIDENCE, "min_words": DEFAULT_OVERRIDE_MIN_WORDS,
                              "dano_gap": DEFAULT_DANO_OVERRIDE_GAP},
               "language_module": language_module.__name__}
    (args.out / "language.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    (args.out / "language.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
