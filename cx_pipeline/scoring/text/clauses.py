"""Cut texts into clauses so that each touchpoint gets the sentiment of the words about it.

One review often judges several touchpoints in opposite directions ("Fast delivery but customer service never
answered"); a single sentiment per review copied to every touchpoint hides exactly what an analyst needs. The
rules (data/clauses.yaml) are deliberately simple and vectorized: sentences end at . ! ? ; and line breaks; a
contrast word starts a new clause; a comma starts one only when both sides name a touchpoint, so
"The food, however, was cold" stays one clause while "Fast delivery, rude staff" becomes two.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import polars as pl
import yaml

from cx_pipeline.scoring.text.resources import DATA_DIR, normalize_language

CLAUSE_RULES_FILE = DATA_DIR / "clauses.yaml"

# Private-use markers: cannot occur in redacted customer text after the replacement below strips them.
_SENT, _COMMA, _CONTRAST = "\ue000", "\ue001", "\ue002"
_MARKERS = _SENT + _COMMA + _CONTRAST


@dataclass(frozen=True)
class ClauseRules:
    version: str
    sha256: str
    contrast: dict[str, tuple[str, ...]]  # language -> contrast words/phrases

    @property
    def label(self) -> str:
        return f"clauses@{self.version} sha256:{self.sha256[:16]}"


@lru_cache(maxsize=4)
def clause_rules(path: Path = CLAUSE_RULES_FILE) -> ClauseRules:
    raw = path.read_bytes()
    data = yaml.safe_load(raw.decode("utf-8"))
    contrast: dict[str, tuple[str, ...]] = {}
    for lang, words in (data.get("contrast") or {}).items():
        code = normalize_language(str(lang))
        if code is None or len(code) != 2:
            raise ValueError(f"{path}: contrast key {lang!r} is not a language code (quote 'no' in YAML)")
        contrast[code] = tuple(str(w).lower() for w in words)
    return ClauseRules(version=str(data["version"]), sha256=hashlib.sha256(raw).hexdigest(), contrast=contrast)


def _contrast_pattern(words: tuple[str, ...]) -> str:
    """Case-insensitive whole-word match of any contrast word, with an optional comma before it.

    A contrast word followed by a comma is parenthetical ("The food, however, was cold"), and one that ends its
    sentence ("The shoes look great though.") starts nothing: neither splits.
    """
    alts = "|".join(sorted((re.escape(w).replace(r"\ ", r"\s+") for w in words), key=len, reverse=True))
    return rf"(?i),?\s+({alts})(\s+[^\s,.!?;])"


def mark_boundaries(text: pl.Expr, lang: pl.Expr, rules: ClauseRules | None = None) -> pl.Expr:
    """The text with a marker character in front of every fragment that starts at a sentence, comma or contrast."""
    rules = rules or clause_rules()
    t = text.str.replace_all(f"[{_MARKERS}]", "")
    t = t.str.replace_all(r"([.!?;]+)(?:\s+|$)|\s*[\r\n]+\s*", f"${{1}}{_SENT}")
    marked = t
    for code, words in rules.contrast.items():
        if words:
            marked = pl.when(lang == code).then(
                t.str.replace_all(_contrast_pattern(words), f"{_CONTRAST}${{1}}${{2}}")
            ).otherwise(marked)
    return marked.str.replace_all(r",\s+", f",{_COMMA}")


def split_fragments(
    frame: pl.DataFrame, *, text_col: str = "text", lang_col: str = "lang", id_col: str = "rid",
    rules: ClauseRules | None = None,
) -> pl.DataFrame:
    """One row per fragment: ``id_col``, ``fragment_no``, ``boundary`` (start/sentence/comma/contrast), ``fragment``.

    Fragments without a letter or digit (stray punctuation) are dropped; ``fragment_no`` counts the kept ones.
    """
    lang = pl.col(lang_col).cast(pl.String)  # already normalised by the caller (nb/nn -> no)
    pieces = (
        frame.lazy()
        .select(pl.col(id_col), piece=mark_boundaries(pl.col(text_col).cast(pl.String), lang, rules)
                .str.extract_all(f"[{_MARKERS}]?[^{_MARKERS}]+"))
        .explode("piece")
        .drop_nulls("piece")
        .with_columns(
            boundary=pl.col("piece").str.slice(0, 1).replace_strict(
                {_SENT: "sentence", _COMMA: "comma", _CONTRAST: "contrast"}, default="start"),
            fragment=pl.col("piece").str.replace_all(f"[{_MARKERS}]", "").str.strip_chars(),
        )
        .filter(pl.col("fragment").str.contains(r"[^\W_]"))
        .with_columns(fragment_no=pl.int_range(pl.len(), dtype=pl.UInt32).over(id_col))
        # the first kept fragment of a text starts it, whatever marker preceded it
        .with_columns(boundary=pl.when(pl.col("fragment_no") == 0).then(pl.lit("start"))
                      .otherwise(pl.col("boundary")))
        .select(id_col, "fragment_no", "boundary", "fragment")
        .collect()
    )
    return pieces


def number_clauses(fragments: pl.DataFrame, *, has_touchpoint: str = "has_tp", id_col: str = "rid") -> pl.DataFrame:
    """``fragments`` (sorted by id, fragment_no) plus ``clause_no``, 0-based within its text.

    A fragment starts a clause at the start of a text, of a sentence and at a contrast word. After a comma it
    starts one only when it names a touchpoint and the clause so far already did; otherwise it belongs to the
    clause before it ("The food, however, was cold").
    """
    hard = pl.col("boundary").is_in(["start", "sentence", "contrast"])
    tp = pl.col(has_touchpoint).cast(pl.UInt32)
    return (
        fragments.sort(id_col, "fragment_no")
        .with_columns(_segment=hard.cast(pl.UInt32).cum_sum().over(id_col))
        .with_columns(_tp_before=(tp.cum_sum() - tp).over(id_col, "_segment"))
        .with_columns(_new=hard | ((pl.col("boundary") == "comma") & pl.col(has_touchpoint)
                                   & (pl.col("_tp_before") > 0)))
        .with_columns(clause_no=(pl.col("_new").cast(pl.UInt32).cum_sum().over(id_col) - 1))
        .drop("_segment", "_tp_before", "_new")
    )
