"""What each survey question measures: metric, scale, direction, label→value map and touchpoint.

Exports say little about their questions, so defaults are inferred from the question text and the
answers seen (0–10 "recommend" → NPS, satisfaction → CSAT, ease/effort → CES, "rate" → rating, free
text → comment) in da/no/sv/en. Inference is deliberately conservative: a question it is not sure of
is ``other`` (not emitted) and listed in ``unmapped`` so an analyst can map it in a config mapping
(dict or YAML) instead of polluting CX metrics with demographics or attention checks.

Config format (YAML or the equivalent dict)::

    questions:
      Q1:                       # export tag / column key; globs allowed ("Q3_*")
        metric: nps             # nps | csat | ces | rating | comment | other (= ignore)
        scale: [0, 10]
        touchpoint: overall
      "text:*levering*":        # or match the question text (case-insensitive glob)
        metric: csat
        scale: [1, 5]
        higher_is_better: true
        labels: {"Meget utilfreds": 1, "Meget tilfreds": 5}
        no_basis: ["Ved ikke"]  # answers meaning "no basis for evaluation" → null score
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cx_pipeline.contract.taxonomy import check_touchpoint
from cx_pipeline.sources.base import CpuBudget

#: "weight" marks a column of survey weights: not a question, it weights the response's answers in cx_metrics
QUESTION_METRICS = ("nps", "csat", "ces", "rating", "comment", "other", "weight")

_RECOMMEND = re.compile(
    r"recommend|recommand|anbefal|rekommender|empfehl|empfiehl|aanbevel|(?:^|[^a-z])nps(?:[^a-z]|$)|likelihood", re.I
)
_SATISFACTION = re.compile(r"satisf|tilfreds|fornøyd|fornoyd|nöjd|nojd|zufrieden|(?:^|[^a-z])csat(?:[^a-z]|$)", re.I)
_EASE = re.compile(
    r"\beas(?:y|e|ier|ily)\b|\beffortless|\bnem(?:t)?\b|\benkel(?:t)?\b|\blett\b|\blätt|(?:^|[^a-z])ces(?:[^a-z]|$)",
    re.I,
)
_EFFORT = re.compile(r"\beffort\b|anstreng|ansträng|\binnsats\b", re.I)
_RATING = re.compile(
    r"\brat(?:e|ing)\b|\bvurder|\bbedøm|\bbetyg|\bstars?\b|\bstjern|\bscore\b|\bbewert|\bévalu|"
    r"feel about|think (?:of|about)|opinion of|synes om|tycker om|halten sie von|pensez-vous|"
    r"value for money|verdi for pengene|værdi for pengene|valuta för pengarna|preis-leistung|rapport qualité",
    re.I,
)
#: endpoint labels of a quality scale ("Svært dårlig … Svært bra", "Poor … Excellent"): a rating of what it names
_QUALITY_ENDS = re.compile(
    r"(?:dårlig|dålig|\bbad\b|\bpoor|schlecht|mauvais|worse)[^…]*…[^…]*"
    r"(?:\bbra\b|\bgod|\bgood|\bgut\b|\bbon|excellent|utmerket|utmärkt|bedre|better|bättre|besser|meilleur)",
    re.I,
)
#: the item measures something bad happening (errors, problems, effort, waiting): more of it is worse
_NEGATIVE = re.compile(
    r"incorrect|misleading|\bwrong\b|\berrors?\b|\bproblems?\b|\bissues?\b|complain|frustrat|stress|difficult|"
    r"\bwait(?:ed|ing)?\b|\bfejl|\bfeil|\bfel\b|problem|klage|klaga|beschwer|fehler|\bplainte|\berreur",
    re.I,
)
#: the question names the whole experience, so an unnamed touchpoint is 'overall' rather than 'other'
_OVERALL = re.compile(
    r"overall|in general|all in all|samlet|overordnet|generelt|totalt|helhet|sammantaget|insgesamt|global|"
    r"dans l'ensemble|your experience|din oplevelse|din opplevelse|din upplevelse|ihre erfahrung|votre expérience|"
    r"\b(?:rate|vurdere?|bedöma|betygsätta|bewerten|évaluer|noter) (?:us|os|oss|uns|nous)\b|"
    r"^(?:rating|score|stars|karakter|betyg|vurdering|note)$",
    re.I,
)
_IDENTITY = re.compile(
    r"(?:^|[^a-z])(?:id|e-?mail|mail|name|navn|namn|phone|telefon|mobil|address|adresse|adress|ip)(?:[^a-z]|$)"
    r"|prolific|mturk|worker|participant",
    re.I,
)
_COMMENT = re.compile(
    r"comment|kommentar|feedback|suggest|forslag|förslag|anything else|noget andet|noe annet|"
    r"något annat|tell us|fortæl|fortell|berätta|why\b|hvorfor|varför",
    re.I,
)
_OTHER_SPECIFY = re.compile(
    r"other.{0,20}specify|andet.{0,20}angiv|annet.{0,20}spesifiser|annat.{0,20}ange|^(?:other|andet|annet|annat)$",
    re.I,
)

#: touchpoint keywords (first match wins: "nettbutikk" is the website, not a store)
TOUCHPOINT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("returns", re.compile(r"\breturn|\bretur|refund|refusion|refusjon|återbetal|reklamation|reklamasjon", re.I)),
    (
        "delivery",
        re.compile(
            r"deliver|shipping|\blevering|\bleverans|\blevere|\bleverer|\bfragt|\bfrakt|parcel|"
            r"\bpakke|\bpaket",
            re.I,
        ),
    ),
    (
        "customer_service",
        re.compile(
            r"customer (?:service|support|care)|kundeservice|kundservice|kundtjänst|"
            r"kundesenter|kundecenter|\bsupport",
            re.I,
        ),
    ),
    ("app", re.compile(r"\bapp\b|\bappen\b|\bapps\b|mobile app", re.I)),
    (
        "website",
        re.compile(
            r"website|web ?shop|webbutik|hjemmeside|nettside|nettbutikk?|netbutik|webbplats|hemsida|"
            r"\bcheckout|online shop",
            re.I,
        ),
    ),
    (
        "price",
        re.compile(
            r"\bprice|\bpricing|\bpris|value for money|verdi for pengene|værdi for pengene|valuta för pengarna|"
            r"\bprix\b|\bpreis",
            re.I,
        ),
    ),
    ("store", re.compile(r"\bstores?\b|\bbutik(?:ken)?\b|\bbutikk(?:en)?\b|in-store|\bshop assistant", re.I)),
    ("product", re.compile(r"\bproducts?\b|\bprodukt|\bvaren?\b|\bvarer(?:ne)?\b|\bvaror(?:na)?\b", re.I)),
)

#: how a reader renders a declared missing code (SPSS user-missing 98 …): an answer without a score
MISSING_CODE = "(missing code)"
_NO_BASIS = frozenset(
    {
        "n/a",
        "na",
        "n.a.",
        "not applicable",
        "no basis for evaluation",
        "don't know",
        "dont know",
        "do not know",
        "i don't know",
        "not sure",
        "ved ikke",
        "vet ikke",
        "vet inte",
        "ikke relevant",
        "inte aktuellt",
        "ej aktuellt",
        "weiß nicht",
        "keine angabe",
        "ne sait pas",
        "je ne sais pas",
        "sans opinion",
        "prefer not to say",
        "no answer",
        "nan",
        "#n/a",
        "null",
        "none",
        MISSING_CODE,
    }
)
#: built-in label scales, lower-cased; a column maps to one only if every answer is in it (or is no-basis)
LABEL_SCALES: dict[str, dict[str, float]] = {
    "satisfaction": {
        "very dissatisfied": 1,
        "extremely dissatisfied": 1,
        "dissatisfied": 2,
        "somewhat dissatisfied": 2,
        "neutral": 3,
        "neither satisfied nor dissatisfied": 3,
        "satisfied": 4,
        "somewhat satisfied": 4,
        "very satisfied": 5,
        "extremely satisfied": 5,
        "meget utilfreds": 1,
        "utilfreds": 2,
        "hverken tilfreds eller utilfreds": 3,
        "tilfreds": 4,
        "meget tilfreds": 5,
        "svært misfornøyd": 1,
        "veldig misfornøyd": 1,
        "misfornøyd": 2,
        "verken fornøyd eller misfornøyd": 3,
        "nøytral": 3,
        "fornøyd": 4,
        "svært fornøyd": 5,
        "veldig fornøyd": 5,
        "mycket missnöjd": 1,
        "missnöjd": 2,
        "varken nöjd eller missnöjd": 3,
        "nöjd": 4,
        "mycket nöjd": 5,
    },
    "agreement5": {
        "strongly disagree": 1,
        "disagree": 2,
        "neither agree nor disagree": 3,
        "neutral": 3,
        "agree": 4,
        "strongly agree": 5,
        "helt uenig": 1,
        "uenig": 2,
        "hverken enig eller uenig": 3,
        "verken enig eller uenig": 3,
        "enig": 4,
        "helt enig": 5,
        "instämmer inte alls": 1,
        "instämmer inte": 2,
        "varken eller": 3,
        "instämmer": 4,
        "instämmer helt": 5,
    },
    "agreement7": {
        "strongly disagree": 1,
        "disagree": 2,
        "somewhat disagree": 3,
        "neither agree nor disagree": 4,
        "neutral": 4,
        "somewhat agree": 5,
        "agree": 6,
        "strongly agree": 7,
    },
    "ease": {
        "very difficult": 1,
        "difficult": 2,
        "somewhat difficult": 2,
        "neither easy nor difficult": 3,
        "somewhat easy": 4,
        "easy": 4,
        "very easy": 5,
        "meget svært": 1,
        "svært": 2,
        "hverken let eller svært": 3,
        "let": 4,
        "meget let": 5,
        "veldig vanskelig": 1,
        "vanskelig": 2,
        "verken lett eller vanskelig": 3,
        "lett": 4,
        "veldig lett": 5,
        "mycket svårt": 1,
        "svårt": 2,
        "varken lätt eller svårt": 3,
        "lätt": 4,
        "mycket lätt": 5,
    },
}
#: ordered quality labels: "Excellent … Poor" (5 points, Excellent = 5) and the bipolar "Very good … Very poor"
#: scales of da/no/sv/de/fr questionnaires; a rating of what the question names
LABEL_SCALES["quality"] = {"excellent": 5, "very good": 4, "good": 3, "fair": 2, "poor": 1}
LABEL_SCALES["quality_bipolar"] = {
    "very good": 5,
    "good": 4,
    "average": 3,
    "neither good nor bad": 3,
    "neither good nor poor": 3,
    "ok": 3,
    "okay": 3,
    "bad": 2,
    "poor": 2,
    "very bad": 1,
    "very poor": 1,
    "fremragende": 5,
    "meget god": 5,
    "meget godt": 5,
    "god": 4,
    "godt": 4,
    "middel": 3,
    "hverken god eller dårlig": 3,
    "dårlig": 2,
    "dårligt": 2,
    "meget dårlig": 1,
    "meget dårligt": 1,
    "utmerket": 5,
    "svært bra": 5,
    "veldig bra": 5,
    "meget bra": 5,
    "bra": 4,
    "middels": 3,
    "verken bra eller dårlig": 3,
    "svært dårlig": 1,
    "veldig dårlig": 1,
    "utmärkt": 5,
    "mycket bra": 5,
    "varken bra eller dålig": 3,
    "dålig": 2,
    "mycket dålig": 1,
    "ausgezeichnet": 5,
    "sehr gut": 5,
    "gut": 4,
    "befriedigend": 3,
    "teils/teils": 3,
    "schlecht": 2,
    "sehr schlecht": 1,
    "très bon": 5,
    "très bien": 5,
    "bon": 4,
    "bien": 4,
    "moyen": 3,
    "mauvais": 2,
    "très mauvais": 1,
}
#: unipolar intensity ("Not at all confident … Extremely confident"): how much of what the question names
_UNIPOLAR = re.compile(r"^(not at all|slightly|a little|somewhat|moderately|fairly|very|extremely) (\S+(?: \S+)?)$")
_UNIPOLAR_LEVEL = {
    "not at all": 1.0,
    "slightly": 2.0,
    "a little": 2.0,
    "somewhat": 3.0,
    "moderately": 3.0,
    "fairly": 3.0,
    "very": 4.0,
    "extremely": 5.0,
}
_INTENSE = re.compile(r"^(?:very|extremely|strongly|completely|totally) (.+)$")
_MILD = re.compile(r"^(?:somewhat|slightly|fairly|rather|mostly|a little) (.+)$")
_MIDDLE = re.compile(r"^(?:neither|neutral|varken|hverken|verken)\b")
NPS_GROUPS = {"promoter": "promoter", "passive": "passive", "detractor": "detractor"}
_STANDARD_SCALES = ((1.0, 5.0), (1.0, 7.0), (1.0, 10.0), (0.0, 10.0))


def normalize_label(value: str) -> str:
    return re.sub(r"\s+", " ", value.replace("\u2019", "'")).strip().lower()


#: printable ASCII + Latin-1 letters: the only whitespace is ' ' and polars lower-cases exactly like str.lower
_PLAIN_LABEL = r"^[ -~\u00c0-\u00ff]*$"


def normalize_labels(values: pl.Series) -> pl.Series:
    """``normalize_label`` of every value: columnar for plain text, per value only for the rest."""
    plain = values.str.contains(_PLAIN_LABEL)
    fast = values.filter(plain).str.replace_all(" +", " ").str.strip_chars(" ").str.to_lowercase()
    other = values.filter(~plain)
    if other.len():
        fast = pl.concat([fast, other.map_elements(normalize_label, return_dtype=pl.String)])
    return fast


@dataclass(frozen=True)
class QuestionSpec:
    """One question column and what it measures. ``metric='other'`` means: not emitted."""

    key: str
    column: str
    text: str
    metric: str
    scale_min: float | None = None
    scale_max: float | None = None
    higher_is_better: bool | None = None
    labels: Mapping[str, float] = field(default_factory=dict)
    no_basis: frozenset[str] = _NO_BASIS
    touchpoint: str | None = None
    origin: str = "inferred"  # inferred | config
    reason: str = ""

    @property
    def mapped(self) -> bool:
        return self.metric != "other"

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for run metadata and the analyst's mapping template."""
        return {
            "key": self.key,
            "text": self.text[:200],
            "metric": self.metric,
            "scale": [self.scale_min, self.scale_max] if self.scale_min is not None else None,
            "higher_is_better": self.higher_is_better,
            "touchpoint": self.touchpoint,
            "origin": self.origin,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class QuestionConfig:
    """Analyst overrides, matched in order against the key (glob) or, with ``text:``, the question text."""

    rules: tuple[tuple[str, Mapping[str, Any]], ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> QuestionConfig:
        if not data:
            return cls()
        questions = data.get("questions", data)
        if not isinstance(questions, Mapping):
            raise ValueError("question config: 'questions' must be a mapping of key/glob → settings")
        rules: list[tuple[str, Mapping[str, Any]]] = []
        for pattern, settings in questions.items():
            if isinstance(settings, str):
                settings = {"metric": settings}
            if not isinstance(settings, Mapping):
                raise ValueError(f"question config {pattern!r}: expected a mapping, got {type(settings).__name__}")
            _validate_settings(str(pattern), settings)
            rules.append((str(pattern), dict(settings)))
        return cls(tuple(rules))

    @classmethod
    def from_yaml(cls, source: str | Path) -> QuestionConfig:
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        return cls.from_mapping(yaml.safe_load(text) or {})

    def match(self, key: str, text: str) -> Mapping[str, Any] | None:
        for pattern, settings in self.rules:
            if pattern.startswith("text:"):
                if fnmatch.fnmatch(text.lower(), pattern[5:].lower()):
                    return settings
            elif key == pattern or fnmatch.fnmatchcase(key, pattern):
                return settings
        return None


def _validate_settings(pattern: str, s: Mapping[str, Any]) -> None:
    metric = s.get("metric")
    if metric not in QUESTION_METRICS:
        raise ValueError(f"question config {pattern!r}: metric must be one of {QUESTION_METRICS}, got {metric!r}")
    scale = s.get("scale")
    if (
        metric in ("nps", "csat", "ces", "rating")
        and scale is not None
        and (not isinstance(scale, list | tuple) or len(scale) != 2 or float(scale[0]) >= float(scale[1]))
    ):
        raise ValueError(f"question config {pattern!r}: scale must be [min, max] with min < max")
    if s.get("touchpoint") is not None:
        check_touchpoint(str(s["touchpoint"]), where=f"question config {pattern!r}")


@dataclass(frozen=True)
class ColumnStats:
    """What the answers of one column look like (computed columnar, once per column)."""

    non_empty: int
    distinct: int
    numeric_share: float
    num_min: float | None
    num_max: float | None
    sample: tuple[str, ...]  # up to 60 distinct normalized non-numeric labels
    mean_words: float
    multi_select_vocab: int
    #: smallest non-negative answer (negative numbers are "no basis" codes, not answers on the scale)
    num_min_answer: float | None = None


def column_stats(values: pl.Series) -> ColumnStats:
    """Stats from the column's distinct answers and their counts: per-row work is one hash aggregation."""
    raw = values.cast(pl.String)
    counts = (
        raw.value_counts(name="__n")
        .select(pl.col(raw.name).str.strip_chars().replace("", None).alias("v"), pl.col("__n"))
        .filter(pl.col("v").is_not_null())
        .group_by("v")
        .agg(pl.col("__n").sum())
    )
    if counts.height == 0:
        return ColumnStats(0, 0, 0.0, None, None, (), 0.0, 0)
    # a formula wrapping a number (=10, +7) counts as a numeric answer here: the reader refuses that cell on its
    # own, and a few of them must not make the question look like text
    counts = counts.with_columns(
        num=leading_number(pl.col("v").str.replace(r"^[=+@]+", "")), words=pl.col("v").str.count_matches(r"\S+")
    )
    non_empty = int(counts["__n"].sum())
    numeric = counts.filter(pl.col("num").is_not_null())
    # the scale is read from the answers a standard scale can hold (≤ 10) when they are the majority: an 11 or a
    # 99 among them is one bad answer (refused alone), not a sign that the question has another scale
    on_scale = numeric.filter(pl.col("num") <= _LARGEST_SCALE_MAX)
    if on_scale.height < numeric.height and int(on_scale["__n"].sum()) * 2 > int(numeric["__n"].sum()):
        numeric = on_scale
    answered = numeric.filter(pl.col("num") >= 0)["num"]
    text_answers = counts.filter(pl.col("num").is_null())
    normalized = normalize_labels(text_answers["v"])
    labels = normalized.unique().sort()
    # "don't know" / declared missing codes are answers without a score: they do not make a numeric column mixed
    no_basis = int(text_answers["__n"].filter(normalized.is_in(list(_NO_BASIS))).sum()) if text_answers.height else 0
    words = int((counts["words"].cast(pl.Int64) * counts["__n"]).sum()) / non_empty
    head = raw.head(_VOCAB_HEAD_SCAN)
    head = head.str.strip_chars().replace("", None).drop_nulls()
    if head.len() < 5000 and raw.len() > _VOCAB_HEAD_SCAN:
        head = raw.str.strip_chars().replace("", None).drop_nulls()
    vocab = head.head(5000).str.split(", ").explode().n_unique()
    return ColumnStats(
        non_empty=non_empty,
        distinct=counts.height,
        numeric_share=int(numeric["__n"].sum()) / max(non_empty - no_basis, 1),
        num_min=float(numeric["num"].min()) if numeric.height else None,  # type: ignore[arg-type]
        num_max=float(numeric["num"].max()) if numeric.height else None,  # type: ignore[arg-type]
        sample=tuple(labels.head(60).to_list()),
        mean_words=float(words),
        multi_select_vocab=vocab,
        num_min_answer=float(answered.min()) if answered.len() else None,  # type: ignore[arg-type]
    )


_VOCAB_HEAD_SCAN = 20_000
_LARGEST_SCALE_MAX = 10.0


def leading_number(s: pl.Series | pl.Expr) -> Any:
    """Numeric value of '7', '7.5', '7,5', '10 - Extremely likely', '-1'; null otherwise."""
    pattern = r"^\s*(-?\d+(?:[.,]\d+)?)\s*(?:$|[-–:=.)]\s*\D|\s+\D)"
    expr_or_series = s.str.extract(pattern, 1).str.replace(",", ".")
    return expr_or_series.cast(pl.Float64, strict=False)


def infer_touchpoint(text: str) -> str | None:
    for touchpoint, pattern in TOUCHPOINT_PATTERNS:
        if pattern.search(text):
            return touchpoint
    return None


def _fit_scale(lo: float, hi: float, n: int = 0) -> tuple[float, float] | None:
    """The smallest standard scale holding the answers; a 1–3 scale only when enough answers show it (a
    handful of 1–3 answers on a 1–5 question must not shrink its scale)."""
    if hi == 3 and lo >= 1 and n >= 10:
        return 1.0, 3.0
    for smin, smax in _STANDARD_SCALES:
        if lo >= smin and hi <= smax:
            return smin, smax
    return None


def _label_family(labels: tuple[str, ...]) -> str | None:
    answers = [lab for lab in labels if lab not in _NO_BASIS]
    if not answers:
        return None
    for family, scale in LABEL_SCALES.items():
        if family == "agreement7":
            continue
        if family == "quality" and not {"excellent", "fair"} & set(answers):
            continue  # "very good / good / poor" alone is the bipolar scale, where good = 4
        if all(a in scale for a in answers):
            return family
    if all(a in LABEL_SCALES["agreement7"] for a in answers):
        return "agreement7"
    return None


def _unipolar(labels: tuple[str, ...]) -> dict[str, float] | None:
    """Codes for 'Not at all X … Extremely X' answers about one or two stems (spelling variants), else None."""
    answers = [lab for lab in labels if lab not in _NO_BASIS]
    matches = [_UNIPOLAR.match(a) for a in answers]
    if not answers or not all(matches):
        return None
    stems = {m.group(2) for m in matches if m}
    if len(stems) > 2 or len({m.group(1) for m in matches if m}) < 2:
        return None
    return {a: _UNIPOLAR_LEVEL[m.group(1)] for a, m in zip(answers, matches, strict=True) if m}


def _graded(family: str, labels: tuple[str, ...]) -> tuple[dict[str, float], float] | None:
    """Codes from each answer's intensity when the family's fixed codes would give two different answers one
    code (a 'Difficult' next to a 'Somewhat difficult' is the extreme, not the same step). None: keep the family's."""
    scale = LABEL_SCALES[family]
    answers = [lab for lab in labels if lab not in _NO_BASIS]
    mid = (min(scale.values()) + max(scale.values())) / 2
    levels: dict[str, int] = {}
    for a in answers:
        if _MIDDLE.match(a):
            levels[a] = 0
            continue
        m = _INTENSE.match(a)
        stem, lvl = (m.group(1), 3) if m else (a, 2)
        if not m and (mild := _MILD.match(a)):
            stem, lvl = mild.group(1), 1
        base = scale.get(stem, scale.get(a))
        if base is None:
            return None
        levels[a] = lvl if base > mid else -lvl if base < mid else 0
    fixed = {a: scale[a] for a in answers}
    collide = any(
        fixed[a] == fixed[b] and levels[a] != levels[b] for i, a in enumerate(answers) for b in answers[i + 1 :]
    )
    if not collide:
        return None
    sides = {1: sorted({v for v in levels.values() if v > 0}), -1: sorted({-v for v in levels.values() if v < 0})}
    if max(len(v) for v in sides.values()) == 3:
        return {a: 4.0 + lvl for a, lvl in levels.items()}, 7.0
    has_very = any(3 in v for v in sides.values())
    rank: dict[int, int] = {0: 0}
    for sign, present in sides.items():
        if len(present) == 2:
            rank[sign * present[1]], rank[sign * present[0]] = sign * 2, sign
        elif present:
            lvl = present[0]
            step = 2 if lvl == 3 or (lvl == 2 and not has_very) else 1
            rank[sign * lvl] = sign * step
    return {a: 3.0 + rank[lvl] for a, lvl in levels.items()}, 5.0


def _rating_touchpoint(text: str, tp: str | None) -> str:
    """A rating names its touchpoint, or the whole experience, or else it is some other item: 'other' keeps
    unrelated items (experience with a tool, trust, knowledge) out of the overall score."""
    if tp:
        return tp
    return "overall" if _OVERALL.search(text) or _OVERALL.search(normalize_label(text)) else "other"


def infer_question(
    key: str, column: str, text: str, stats: ColumnStats, *, hint: str | None = None, agreement_points: int = 5
) -> QuestionSpec:
    """Default spec for one question from its text and answers. ``hint``: 'text' (the tool says free text),
    'nps_widget' (Qualtrics NPS question type), 'other_specify' (companion text of a choice)."""
    base = QuestionSpec(key=key, column=column, text=text, metric="other")
    blob = f"{key} {text}"
    tp = infer_touchpoint(text)
    if stats.non_empty == 0:
        return replace(base, reason="no answers in this file")
    if hint == "other_specify" or _OTHER_SPECIFY.search(text):
        return replace(base, reason="'other, please specify' text of a choice question")
    if _IDENTITY.search(text) and stats.numeric_share < 1.0:
        return replace(base, reason="looks like an identifier/contact field, never emitted as text")
    # numeric: all answers, or — when the text names a metric — most of them (the rest are refused one by one)
    names_metric = any(p.search(blob) for p in (_RECOMMEND, _SATISFACTION, _EASE, _EFFORT, _RATING))
    if stats.numeric_share >= 0.999 or (names_metric and stats.numeric_share > 0.5):
        lo, hi = stats.num_min or 0.0, stats.num_max or 0.0
        answered_lo = lo if lo >= 0 else (stats.num_min_answer if stats.num_min_answer is not None else 0.0)
        if hi <= 1:
            return replace(base, reason="0/1 answers: a yes/no or checkbox, not a scale")
        if _RECOMMEND.search(blob) and lo >= -9 and hi <= 7 and answered_lo >= 1 and stats.non_empty >= 10:
            small = (1.0, 5.0) if hi <= 5 else (1.0, 7.0)
            return replace(
                base,
                metric="rating",
                scale_min=small[0],
                scale_max=small[1],
                higher_is_better=True,
                touchpoint=tp or "overall",
                reason=f"recommend question on a {small[0]:g}–{small[1]:g} scale: NPS needs 0–10, kept as a rating",
            )
        if _RECOMMEND.search(blob) and lo >= -9 and hi <= 10:
            return replace(
                base,
                metric="nps",
                scale_min=0.0,
                scale_max=10.0,
                higher_is_better=True,
                touchpoint=tp or "overall",
                reason="0–10 likelihood-to-recommend",
            )
        if (
            normalize_label(text) in ("score", "nps score", "nps_score")
            and lo >= 0
            and hi <= 10
            and (lo == 0 or hi > 7)
        ):
            return replace(
                base,
                metric="nps",
                scale_min=0.0,
                scale_max=10.0,
                higher_is_better=True,
                touchpoint=tp or "overall",
                reason="Delighted-style 0–10 'Score' column",
            )
        negative = bool(_NEGATIVE.search(text))
        direction = " (counts something bad: lower is better)" if negative else ""
        if hint == "nps_widget" and hi <= 10:
            return replace(
                base,
                metric="rating",
                scale_min=0.0,
                scale_max=10.0,
                higher_is_better=not negative,
                touchpoint=_rating_touchpoint(text, tp),
                reason=f"0–10 NPS-widget question whose text is not about recommending{direction}",
            )
        fit = _fit_scale(answered_lo, hi, stats.non_empty)
        if fit is None:
            return replace(base, reason=f"numeric answers {lo:g}..{hi:g} fit no standard scale")
        if _SATISFACTION.search(blob):
            return replace(
                base,
                metric="csat",
                scale_min=fit[0],
                scale_max=fit[1],
                higher_is_better=True,
                touchpoint=tp,
                reason=f"satisfaction question, answers {lo:g}..{hi:g}",
            )
        if _EFFORT.search(blob) and not _EASE.search(blob):
            return replace(
                base,
                metric="ces",
                scale_min=fit[0],
                scale_max=fit[1],
                higher_is_better=False,
                touchpoint=tp,
                reason="effort question (legacy: higher = more effort)",
            )
        if _EASE.search(blob):
            fit7 = (1.0, 7.0) if hi <= 7 and answered_lo >= 1 else fit
            return replace(
                base,
                metric="ces",
                scale_min=fit7[0],
                scale_max=fit7[1],
                higher_is_better=True,
                touchpoint=tp,
                reason="ease question (CES 2.0: higher = easier)",
            )
        if _RATING.search(blob) or _QUALITY_ENDS.search(text):
            return replace(
                base,
                metric="rating",
                scale_min=fit[0],
                scale_max=fit[1],
                higher_is_better=not negative,
                touchpoint=_rating_touchpoint(text, tp),
                reason=f"rating question, answers {lo:g}..{hi:g} (scale read from the values){direction}",
            )
        return replace(base, reason=f"numeric {lo:g}..{hi:g} but the text names no CX metric")
    if stats.numeric_share == 0.0 or stats.numeric_share < 0.5:
        family = _label_family(stats.sample) if stats.distinct <= 60 else None
        if family == "agreement5" and agreement_points == 7:
            family = "agreement7"
        if family is None and stats.distinct <= 60 and (levels := _unipolar(stats.sample)) is not None:
            return replace(
                base,
                metric="rating",
                scale_min=1.0,
                scale_max=5.0,
                higher_is_better=True,
                labels=levels,
                touchpoint=_rating_touchpoint(text, tp),
                reason="ordered 'not at all … extremely' labels",
            )
        if family is not None:
            scale = LABEL_SCALES[family]
            smax = float(max(scale.values()))
            labels = dict(scale)
            graded = _graded(family, stats.sample) if family in ("satisfaction", "ease", "agreement5") else None
            if graded is not None:
                labels, smax = {**labels, **graded[0]}, graded[1]
                labels = {k: v for k, v in labels.items() if k in graded[0] or v <= smax}
                if smax == 7.0:
                    labels = graded[0]
            if family in ("quality", "quality_bipolar"):
                return replace(
                    base,
                    metric="rating",
                    scale_min=1.0,
                    scale_max=smax,
                    higher_is_better=True,
                    labels=labels,
                    touchpoint=_rating_touchpoint(text, tp),
                    reason="ordered quality labels (excellent … poor)",
                )
            if family == "satisfaction":
                return replace(
                    base,
                    metric="csat",
                    scale_min=1.0,
                    scale_max=smax,
                    higher_is_better=True,
                    labels=labels,
                    touchpoint=tp,
                    reason="satisfaction labels",
                )
            if family == "ease":
                return replace(
                    base,
                    metric="ces",
                    scale_min=1.0,
                    scale_max=smax,
                    higher_is_better=True,
                    labels=labels,
                    touchpoint=tp,
                    reason="easy/difficult labels" + (" (graded by intensity)" if graded else ""),
                )
            metric = (
                "ces"
                if _EASE.search(blob)
                else "csat"
                if _SATISFACTION.search(blob)
                else "rating"
                if _RATING.search(blob)
                else None
            )
            if metric:
                return replace(
                    base,
                    metric=metric,
                    scale_min=1.0,
                    scale_max=smax,
                    higher_is_better=True,
                    labels=labels,
                    touchpoint=tp,
                    reason=f"{family} labels on a {metric} question",
                )
            return replace(base, reason=f"{family} labels, but the statement names no CX metric")
        if _is_free_text(stats, hint, text):
            return replace(base, metric="comment", touchpoint=tp, reason="free-text answers")
        return replace(base, reason="choice answers without a known scale")
    return replace(base, reason="mixed numeric and text answers")


def _is_free_text(stats: ColumnStats, hint: str | None, text: str) -> bool:
    """Open answers, not choices: the tool says so, or answers are varied multi-word sentences."""
    if stats.numeric_share > 0.2 or hint == "choice":
        return False
    if hint == "text" or (_COMMENT.search(text) and stats.mean_words >= 2.0):
        return True
    if stats.mean_words < 3.0 or normalize_label(text) in stats.sample:
        return False  # short labels, or a checkbox column whose value is its own header
    if stats.distinct >= 20 and stats.multi_select_vocab <= max(12, stats.distinct // 3):
        return False  # checkbox answers joined with ", " from a small set of options
    return stats.distinct >= 2 and stats.distinct / max(stats.non_empty, 1) >= 0.6


def apply_config(spec: QuestionSpec, settings: Mapping[str, Any]) -> QuestionSpec:
    metric = str(settings["metric"])
    if metric == "other":
        return replace(spec, metric="other", origin="config", reason="ignored by config")
    if metric == "weight":
        return replace(spec, metric="weight", scale_min=None, scale_max=None, higher_is_better=None,
                       origin="config", reason="survey weight of the response (config)")
    scale = settings.get("scale")
    smin, smax = (float(scale[0]), float(scale[1])) if scale else (spec.scale_min, spec.scale_max)
    if metric == "nps" and not scale:
        smin, smax = 0.0, 10.0
    if metric in ("csat", "ces", "rating") and smin is None:
        raise ValueError(f"question {spec.key!r}: config maps it to {metric} but gives no scale and none was inferred")
    labels = {normalize_label(str(k)): float(v) for k, v in (settings.get("labels") or {}).items()}
    no_basis = spec.no_basis | {normalize_label(str(v)) for v in settings.get("no_basis") or ()}
    hib = settings.get("higher_is_better")
    return replace(
        spec,
        metric=metric,
        scale_min=smin if metric != "comment" else None,
        scale_max=smax if metric != "comment" else None,
        higher_is_better=(
            bool(hib) if hib is not None else (spec.higher_is_better if spec.higher_is_better is not None else True)
        )
        if metric != "comment"
        else None,
        labels={**spec.labels, **labels} if labels or spec.labels else {},
        no_basis=no_basis,
        touchpoint=settings.get("touchpoint", spec.touchpoint or ("overall" if metric == "nps" else None)),
        origin="config",
        reason="mapped by config",
    )


@dataclass(frozen=True)
class QuestionColumn:
    """A question column as a format found it: data column, unique key, display text, tool hint."""

    column: str
    key: str
    text: str
    hint: str | None = None
    #: the scale the file itself declares (SPSS value labels 1…10): wins over the scale read from the answers
    declared_scale: tuple[float, float] | None = None


def infer_questions(
    data: pl.DataFrame, columns: list[QuestionColumn], config: QuestionConfig | None = None, location: str = "export"
) -> list[QuestionSpec]:
    """Specs for every question column: config first, else inferred defaults."""
    config = config or QuestionConfig()
    budget = CpuBudget(location)
    stats = {}
    for q in columns:
        budget.check()
        stats[q.column] = column_stats(data[q.column])
    uses_somewhat = any(lab in ("somewhat agree", "somewhat disagree") for st in stats.values() for lab in st.sample)
    specs = []
    for q in columns:
        spec = infer_question(
            q.key, q.column, q.text, stats[q.column], hint=q.hint, agreement_points=7 if uses_somewhat else 5
        )
        if q.declared_scale and spec.metric in ("csat", "ces", "rating") and not spec.labels:
            lo, hi = q.declared_scale
            spec = replace(spec, scale_min=lo, scale_max=hi, reason=f"{spec.reason}; scale {lo:g}–{hi:g} from the file")
        settings = config.match(q.key, q.text)
        if settings is not None:
            spec = apply_config(spec, settings)
        specs.append(spec)
    return specs


def mapping_template(specs: list[QuestionSpec]) -> str:
    """YAML an analyst can edit to map the questions inference left unmapped."""
    body = {
        s.key: {"metric": "other", "scale": None, "touchpoint": None, "text": s.text[:120], "why_unmapped": s.reason}
        for s in specs
        if not s.mapped
    }
    return yaml.safe_dump({"questions": body}, allow_unicode=True, sort_keys=False)
