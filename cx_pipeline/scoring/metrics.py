"""CX metric formulas, as plain-Python scalars and as polars expressions over counts.

Every formula follows ``shared/notes/cx-metrics.md`` exactly; the scalar functions are the reference the
tests check against hand-computed values, and the expression builders are what the aggregates use, so both
must stay the same arithmetic. Shares are fractions (0..1) here; the aggregates report them in percent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

Z_95 = 1.96

#: NPS classes on the 0–10 likelihood-to-recommend scale
PROMOTER_MIN = 9.0
DETRACTOR_MAX = 6.0
#: CES 2.0: 5–7 on the 1–7 agreement scale is "easy", i.e. the upper third of any scale, direction-aware
CES_EASY_NORM = 2.0 / 3.0
#: Trustpilot's documented Bayesian prior: 7 reviews of 3.5 stars
PRIOR_COUNT = 7.0
PRIOR_MEAN = 3.5
#: |sentiment| below this is neutral when only a numeric sentiment (−1..1) exists
SENTIMENT_NEUTRAL = 0.05
_EPS = 1e-9


@dataclass(frozen=True)
class ScoringConfig:
    """Knobs shared by the aggregates, drivers and alerts (one object so Dagster config maps onto it)."""

    z: float = Z_95
    low_n_threshold: int = 30
    prior_count: float = PRIOR_COUNT
    prior_mean: float = PRIOR_MEAN
    sentiment_neutral: float = SENTIMENT_NEUTRAL
    ces_easy_norm: float = CES_EASY_NORM
    #: metrics pooled across touchpoints into touchpoint="all"; NPS and star ratings are overall measures
    #: already, so pooling them would count one respondent several times for no new information
    #: metrics pooled into touchpoint "all". Not sentiment: one text per record is already the ``overall`` row
    #: (whole text) and per touchpoint comes from mentions, so a pool would only repeat ``overall``.
    touchpoint_rollup_metrics: tuple[str, ...] = ("csat", "ces", "rating")
    #: calendar used to cut days/weeks/months, and per-brand exceptions (brand, zone)
    time_zone: str = "UTC"
    brand_time_zones: tuple[tuple[str, str], ...] = ()
    #: soft-deleted reviews (gone from their source) are left out unless this is set
    include_removed: bool = False


# ---------------------------------------------------------------------------------------------- scalars


@dataclass(frozen=True)
class NpsResult:
    n: int
    promoters: int
    detractors: int
    nps: float | None  # −100..100
    se: float | None  # plain SE, in NPS points
    ci_low: float | None  # adjusted Wald (Rocks 2016)
    ci_high: float | None


@dataclass(frozen=True)
class ShareResult:
    """A top-box style share with its Wilson interval, plus the mean on the answer scale."""

    n: int
    hits: int
    share: float | None  # 0..1
    se: float | None
    ci_low: float | None
    ci_high: float | None
    mean: float | None


@dataclass(frozen=True)
class StarResult:
    n: int
    mean: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    bayesian_mean: float
    top_box_share: float | None
    top_box_lower: float | None  # Wilson lower bound (Evan Miller)


@dataclass(frozen=True)
class SentimentResult:
    n: int
    positive: int
    negative: int
    net: float | None  # % positive − % negative, −100..100
    se: float | None
    ci_low: float | None
    ci_high: float | None
    mean: float | None  # mean sentiment −1..1


def _answered(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def nps_se(promoters: int, detractors: int, n: int) -> float | None:
    """Plain SE of NPS in points: per response x ∈ {+1,0,−1}, Var = p + d − (p − d)²."""
    if n <= 0:
        return None
    p, d = promoters / n, detractors / n
    return 100.0 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)


def nps_adjusted_wald(promoters: int, detractors: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Adjusted-Wald NPS interval (Rocks 2016): add 3/4 promoter, 3/4 detractor, 3 responses."""
    if n <= 0:
        return None
    n_adj = n + 3
    p_adj = (promoters + 0.75) / n_adj
    d_adj = (detractors + 0.75) / n_adj
    nps_adj = p_adj - d_adj
    half = z * math.sqrt(max(p_adj + d_adj - nps_adj**2, 0.0) / n_adj)
    return 100.0 * (nps_adj - half), 100.0 * (nps_adj + half)


def nps_from_counts(promoters: int, detractors: int, n: int, z: float = Z_95) -> NpsResult:
    if n <= 0:
        return NpsResult(0, promoters, detractors, None, None, None, None)
    ci = nps_adjusted_wald(promoters, detractors, n, z)
    assert ci is not None
    return NpsResult(n, promoters, detractors, 100.0 * (promoters - detractors) / n, nps_se(promoters, detractors, n),
                     ci[0], ci[1])


def nps(scores: Iterable[float | None], z: float = Z_95) -> NpsResult:
    """NPS of 0–10 answers; blanks are excluded from n."""
    xs = _answered(scores)
    promoters = sum(1 for x in xs if x >= PROMOTER_MIN)
    detractors = sum(1 for x in xs if x <= DETRACTOR_MAX)
    return nps_from_counts(promoters, detractors, len(xs), z)


def nps_diff_se(se_a: float, se_b: float) -> float:
    """SE of the difference of two independent NPS values: sqrt(SE1² + SE2²)."""
    return math.sqrt(se_a**2 + se_b**2)


def wilson_interval(successes: float, n: float, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval of a share; the lower end is Evan Miller's ranking bound."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1.0 + z**2 / n
    centre = p + z**2 / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return (centre - half) / denom, (centre + half) / denom


def wilson_lower_bound(successes: float, n: float, z: float = Z_95) -> float | None:
    ci = wilson_interval(successes, n, z)
    return None if ci is None else ci[0]


def _distance_from_best(x: float, scale_min: float, scale_max: float, higher_is_better: bool) -> float:
    return (scale_max - x) if higher_is_better else (x - scale_min)


def _share_result(hits: int, xs: Sequence[float], z: float) -> ShareResult:
    n = len(xs)
    if n == 0:
        return ShareResult(0, 0, None, None, None, None, None)
    share = hits / n
    ci = wilson_interval(hits, n, z)
    assert ci is not None
    return ShareResult(n, hits, share, math.sqrt(share * (1 - share) / n), ci[0], ci[1], sum(xs) / n)


def csat(scores: Iterable[float | None], scale_min: float = 1, scale_max: float = 5, higher_is_better: bool = True,
         z: float = Z_95) -> ShareResult:
    """CSAT top-2-box share (4 and 5 on 1–5; the two best points of any integer scale) and the mean."""
    xs = _answered(scores)
    hits = sum(1 for x in xs if _distance_from_best(x, scale_min, scale_max, higher_is_better) <= 1 + _EPS)
    return _share_result(hits, xs, z)


def ces(scores: Iterable[float | None], scale_min: float = 1, scale_max: float = 7, higher_is_better: bool = True,
        z: float = Z_95, easy_norm: float = CES_EASY_NORM) -> ShareResult:
    """CES mean and % easy: 5–7 on the 1–7 agreement scale, i.e. the best third of a scale, direction-aware."""
    xs = _answered(scores)
    span = scale_max - scale_min
    hits = sum(1 for x in xs if 1 - _distance_from_best(x, scale_min, scale_max, higher_is_better) / span
               >= easy_norm - _EPS)
    return _share_result(hits, xs, z)


def bayesian_average(ratings: Iterable[float | None], prior_count: float = PRIOR_COUNT,
                     prior_mean: float = PRIOR_MEAN) -> float:
    """(C·m + Σr)/(C + n): shrinks small samples toward the prior (Trustpilot: 7 reviews of 3.5)."""
    rs = _answered(ratings)
    return (prior_count * prior_mean + sum(rs)) / (prior_count + len(rs))


def stars(ratings: Iterable[float | None], scale_max: float = 5, z: float = Z_95,
          prior_count: float = PRIOR_COUNT, prior_mean: float = PRIOR_MEAN) -> StarResult:
    """Star mean with a normal CI (sample SD), Bayesian average and Wilson lower bound of the top-box share."""
    rs = _answered(ratings)
    n = len(rs)
    bayes = bayesian_average(rs, prior_count, prior_mean)
    if n == 0:
        return StarResult(0, None, None, None, None, bayes, None, None)
    mean = sum(rs) / n
    se = math.sqrt(sum((r - mean) ** 2 for r in rs) / (n - 1) / n) if n > 1 else None
    top = sum(1 for r in rs if r >= scale_max - _EPS)
    return StarResult(n, mean, se, None if se is None else mean - z * se, None if se is None else mean + z * se,
                      bayes, top / n, wilson_lower_bound(top, n, z))


def _sentiment_class(score: float | None, label: str | None, neutral: float) -> int | None:
    if label is not None:
        return {"positive": 1, "negative": -1}.get(label.lower(), 0)
    if score is None:
        return None
    return 1 if score >= neutral else (-1 if score <= -neutral else 0)


def sentiment(scores: Sequence[float | None] | None = None, labels: Sequence[str | None] | None = None,
              z: float = Z_95, neutral: float = SENTIMENT_NEUTRAL) -> SentimentResult:
    """Net sentiment (% positive − % negative) with the NPS-style SE/interval, and mean sentiment.

    A label (positive/negative/neutral) wins over the numeric score; without a label the score is positive at
    ≥ ``neutral`` and negative at ≤ −``neutral``. Net sentiment has the same {+1,0,−1} structure as NPS.
    """
    size = len(scores) if scores is not None else len(labels or [])
    ss = list(scores) if scores is not None else [None] * size
    ls = list(labels) if labels is not None else [None] * size
    classes = [_sentiment_class(s, lab, neutral) for s, lab in zip(ss, ls, strict=True)]
    classes = [c for c in classes if c is not None]
    nums = _answered(ss)
    pos, neg = classes.count(1), classes.count(-1)
    r = nps_from_counts(pos, neg, len(classes), z)
    return SentimentResult(len(classes), pos, neg, r.nps, r.se, r.ci_low, r.ci_high,
                           sum(nums) / len(nums) if nums else None)


# ------------------------------------------------------------------------------------------ expressions
# Row-level classifiers take the event columns; aggregate builders take count/mean expressions so they work
# after any group_by.


def nps_class_expr(score: pl.Expr | None = None) -> pl.Expr:
    """+1 promoter (9–10), 0 passive, −1 detractor (0–6); null when unanswered."""
    x = pl.col("score_raw") if score is None else score
    return (
        pl.when(x.is_null()).then(None)
        .when(x >= PROMOTER_MIN).then(1)
        .when(x <= DETRACTOR_MAX).then(-1)
        .otherwise(0)
        .cast(pl.Int8)
    )


def _distance_from_best_expr() -> pl.Expr:
    return (
        pl.when(pl.col("higher_is_better").fill_null(True))
        .then(pl.col("scale_max") - pl.col("score_raw"))
        .otherwise(pl.col("score_raw") - pl.col("scale_min"))
    )


def top2_box_expr() -> pl.Expr:
    """True for the two best points of the answer's scale (4–5 on 1–5), direction-aware."""
    return _distance_from_best_expr() <= 1 + _EPS


def ces_easy_expr(easy_norm: float = CES_EASY_NORM) -> pl.Expr:
    """True for the best third of the scale by score_norm (5–7 on 1–7; 1–2 on a lower-is-better 1–5)."""
    return pl.col("score_norm") >= easy_norm - _EPS


def top_box_expr() -> pl.Expr:
    """True for the best point of the scale (score_norm = 1)."""
    return pl.col("score_norm") >= 1 - _EPS


def sentiment_class_expr(columns: Iterable[str], neutral: float = SENTIMENT_NEUTRAL) -> pl.Expr | None:
    """+1/0/−1 from ``sentiment_label`` (preferred) or ``sentiment``; None when neither column exists."""
    cols = set(columns)
    from_score = None
    if "sentiment" in cols:
        s = pl.col("sentiment")
        from_score = pl.when(s >= neutral).then(1).when(s <= -neutral).then(-1).when(s.is_not_null()).then(0)
    if "sentiment_label" in cols:
        lab = pl.col("sentiment_label").str.to_lowercase()
        from_label = pl.when(lab == "positive").then(1).when(lab == "negative").then(-1).when(lab.is_not_null()).then(0)
        expr = from_label if from_score is None else pl.coalesce(from_label, from_score)
    elif from_score is not None:
        expr = from_score
    else:
        return None
    return expr.cast(pl.Int8)


def nps_value_expr(pos: pl.Expr, neg: pl.Expr, n: pl.Expr) -> pl.Expr:
    return pl.when(n > 0).then(100.0 * (pos - neg) / n)


def nps_se_expr(pos: pl.Expr, neg: pl.Expr, n: pl.Expr) -> pl.Expr:
    p, d = pos / n, neg / n
    return pl.when(n > 0).then(100.0 * ((p + d - (p - d) ** 2).clip(lower_bound=0.0) / n).sqrt())


def nps_adjusted_wald_expr(pos: pl.Expr, neg: pl.Expr, n: pl.Expr, z: float = Z_95) -> tuple[pl.Expr, pl.Expr]:
    n_adj = n + 3
    p_adj = (pos + 0.75) / n_adj
    d_adj = (neg + 0.75) / n_adj
    nps_adj = p_adj - d_adj
    half = z * ((p_adj + d_adj - nps_adj**2).clip(lower_bound=0.0) / n_adj).sqrt()
    return pl.when(n > 0).then(100.0 * (nps_adj - half)), pl.when(n > 0).then(100.0 * (nps_adj + half))


def wilson_expr(hits: pl.Expr, n: pl.Expr, z: float = Z_95) -> tuple[pl.Expr, pl.Expr]:
    """Wilson interval bounds (fractions) of hits/n; null when n = 0."""
    p = hits / n
    denom = 1.0 + z**2 / n
    centre = p + z**2 / (2 * n)
    half = z * (p * (1 - p) / n + z**2 / (4 * n**2)).sqrt()
    return pl.when(n > 0).then((centre - half) / denom), pl.when(n > 0).then((centre + half) / denom)


def share_se_expr(hits: pl.Expr, n: pl.Expr) -> pl.Expr:
    p = hits / n
    return pl.when(n > 0).then((p * (1 - p) / n).sqrt())


def mean_se_expr(std: pl.Expr, n: pl.Expr) -> pl.Expr:
    """SE of a mean from the sample SD; null for n < 2."""
    return pl.when(n > 1).then(std / n.sqrt())


def bayesian_average_expr(total: pl.Expr, n: pl.Expr, prior_count: float = PRIOR_COUNT,
                          prior_mean: float = PRIOR_MEAN) -> pl.Expr:
    return (prior_count * prior_mean + total.fill_null(0.0)) / (prior_count + n)


def diff_z_expr(prev_value: pl.Expr, value: pl.Expr, prev_se: pl.Expr, se: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(SE_diff, z) of value − prev_value for two independent periods; z = −inf for a drop with zero SE."""
    se_diff = (prev_se**2 + se**2).sqrt()
    diff = value - prev_value
    z = (
        pl.when(se_diff > 0).then(diff / se_diff)
        .when(diff < 0).then(float("-inf"))
        .when(diff > 0).then(float("inf"))
        .otherwise(0.0)
    )
    return se_diff, z
