"""Key drivers: which touchpoints move the overall outcome (not all touchpoints matter equally).

Two methods, one output table (:data:`DRIVER_SCHEMA`, ``method`` column):

* ``shapley_regression`` — where one response rates several touchpoints and gives an overall outcome
  (events sharing ``record_id``): the outcome is regressed (OLS with intercept) on the touchpoint scores for
  every subset of touchpoints (2^k fits, k ≤ 12), and each touchpoint's Shapley value is its average marginal
  R² gain over all orderings. The values add up to the full model's R²; ``importance_share`` rescales them
  to shares. ``performance`` is the mean score_norm of the touchpoint in the same sample, so importance ×
  performance can be plotted as a priority quadrant.
* ``text_impact`` — with text only: impact = score(all records) − score(all records except those whose text
  mentions the touchpoint), mentions from ``scored/touchpoint_mentions`` (or the ``text_touchpoints`` column).
  Negative impact means the touchpoint drags the score down. One outcome metric per row (NPS, stars, CSAT are
  never averaged together).

Uncertainty: ``ci_low``/``ci_high`` are bootstrap percentile 95% intervals (records resampled with replacement)
of the Shapley importance or of the impact; ``unit`` says what they are measured in. A text-impact touchpoint
with fewer than ``min_mentions`` mentioning records is reported with its interval but not ranked, and a period
without enough complete cases for the regression gets one row (touchpoint ``all``) whose ``note`` says why.

Outcome per record: the score_norm of the first of ``outcome_metrics`` found at ``outcome_touchpoint``.
Predictors per record × touchpoint: mean score_norm of ``predictor_metrics`` events at any other touchpoint.
Records are placed in periods by their earliest event (see :mod:`cx_pipeline.scoring.aggregates`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import polars_hash as plh

from cx_pipeline.scoring.aggregates import time_base_expr, with_periods
from cx_pipeline.scoring.metrics import DETRACTOR_MAX, PROMOTER_MIN, sentiment_class_expr

MAX_DRIVERS = 12
SHAPLEY = "shapley_regression"
TEXT_IMPACT = "text_impact"

DRIVER_SCHEMA: dict[str, pl.DataType] = {
    "brand": pl.String(),
    "grain": pl.String(),
    "period": pl.String(),
    "period_start": pl.Date(),
    "method": pl.String(),  # shapley_regression | text_impact
    "outcome": pl.String(),  # outcome metric(s), e.g. "nps"; text_impact: "<score>:<metrics>"
    "touchpoint": pl.String(),
    "n": pl.Int64(),  # records used (shapley: complete cases; text: all records with an outcome)
    "sampled_from": pl.Int64(),  # records in the period when n comes from a uniform sample of them; else null
    "n_mentions": pl.Int64(),  # text_impact: records mentioning the touchpoint
    "r2": pl.Float64(),  # shapley: R² of the full model
    "importance": pl.Float64(),  # shapley: R² contribution; text: |impact|
    "importance_share": pl.Float64(),  # importance / Σ importance in the brand × period × method
    "performance": pl.Float64(),  # mean score_norm 0..1 of the touchpoint (text: outcome of mentioning records)
    "score_all": pl.Float64(),  # text_impact: score of all records
    "score_without": pl.Float64(),  # text_impact: score without the mentioning records
    "impact": pl.Float64(),  # text_impact: score_all − score_without (points)
    "ci_low": pl.Float64(),  # bootstrap 95% interval of importance (shapley) or impact (text_impact)
    "ci_high": pl.Float64(),
    "unit": pl.String(),  # what importance / impact are measured in
    "rank": pl.Int64(),  # 1 = most important within brand × period × method × outcome; null when not ranked
    "quadrant": pl.String(),  # fix_first | keep_up | monitor | maintain (importance vs performance)
    "note": pl.String(),  # why a row is not ranked, or why a period has no regression
}
SHAPLEY_UNIT = "share of outcome variance (R² contribution, 0..1)"
TEXT_UNITS = {"mean_norm": "points of the mean outcome (0..100)", "nps": "NPS points",
              "net_sentiment": "net sentiment points (% positive − % negative)"}


@dataclass(frozen=True)
class DriverConfig:
    outcome_touchpoint: str = "overall"
    outcome_metrics: tuple[str, ...] = ("nps", "star_rating", "csat", "rating", "ces")
    predictor_metrics: tuple[str, ...] = ("csat", "ces", "rating", "star_rating", "nps")
    #: a touchpoint enters the regression when this share of outcome records rated it
    min_coverage: float = 0.5
    #: fewer complete cases than this → no regression for the brand × period
    min_records: int = 30
    #: text_impact score: mean outcome score_norm ×100, NPS of NPS outcomes, or net sentiment of the texts
    text_score: Literal["mean_norm", "nps", "net_sentiment"] = "mean_norm"
    time_zone: str = "UTC"
    brand_time_zones: tuple[tuple[str, str], ...] = ()
    include_removed: bool = False
    #: bootstrap resamples for the intervals (Shapley: fewer when 2^k fits per resample get expensive)
    bootstrap: int = 200
    seed: int = 7
    #: text impact of a touchpoint mentioned by fewer records is reported with its interval, not ranked
    min_mentions: int = 10
    #: a brand × period with more records is analysed on a uniform sample of this many (the records with the
    #: smallest xxhash64 of record_id: the same records every run), which bounds a run's time and memory;
    #: intervals are then those of the sample — wider than the whole period would give, never narrower
    max_records: int = 20_000


# -------------------------------------------------------------------------------------------- Shapley


def subset_r2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R² of OLS (with intercept) of y on every subset of x's columns, indexed by bitmask (bit j = column j).

    Works from the covariance matrix, so each of the 2^k fits costs O(k³) whatever the sample size;
    pseudo-inverses keep collinear subsets finite.
    """
    k = x.shape[1]
    if k > MAX_DRIVERS:
        raise ValueError(f"Shapley regression over {k} predictors needs 2^{k} fits; keep k ≤ {MAX_DRIVERS}")
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    sxx = xc.T @ xc
    sxy = xc.T @ yc
    syy = float(yc @ yc)
    r2 = np.zeros(1 << k)
    if syy <= 0:
        return r2
    for mask in range(1, 1 << k):
        cols = [j for j in range(k) if mask >> j & 1]
        c = sxy[cols]
        explained = float(c @ np.linalg.pinv(sxx[np.ix_(cols, cols)]) @ c)
        r2[mask] = min(max(explained / syy, 0.0), 1.0)
    return r2


def shapley_values(r2: np.ndarray) -> np.ndarray:
    """Shapley decomposition of the full-model R² from the R² of all subsets (``subset_r2``).

    φ_j = Σ_{S ∌ j} |S|!(k−|S|−1)!/k! · (R²(S ∪ j) − R²(S)); the φ_j sum to R²(all).
    """
    size = r2.shape[0]
    k = size.bit_length() - 1
    masks = np.arange(size)
    popcount = np.array([bin(m).count("1") for m in range(size)])
    weights = np.array([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) if s < k else 0.0
                        for s in range(k + 1)])
    phi = np.zeros(k)
    for j in range(k):
        without = masks[(masks >> j & 1) == 0]
        phi[j] = float(np.sum(weights[popcount[without]] * (r2[without | (1 << j)] - r2[without])))
    return phi


def shapley_regression(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """(Shapley R² contributions per column, full-model R²)."""
    r2 = subset_r2(x, y)
    return shapley_values(r2), float(r2[-1])


# ------------------------------------------------------------------------------------------ record frames


def _base(events: pl.LazyFrame | pl.DataFrame, cfg: DriverConfig) -> pl.LazyFrame:
    lf = events.lazy()
    cols = lf.collect_schema().names()
    if not cfg.include_removed and "is_removed" in cols:
        lf = lf.filter(~pl.col("is_removed").fill_null(False))
    return lf.with_columns(_ts=time_base_expr(cols).min().over("brand", "record_id"))


def _outcomes(base: pl.LazyFrame, cfg: DriverConfig) -> pl.LazyFrame:
    """One outcome per (brand, record): score_norm of the highest-priority outcome metric present."""
    priority = {m: i for i, m in enumerate(cfg.outcome_metrics)}
    return (
        base.filter(
            (pl.col("touchpoint") == cfg.outcome_touchpoint)
            & pl.col("metric").is_in(list(cfg.outcome_metrics))
            & pl.col("score_norm").is_not_null()
        )
        .with_columns(_prio=pl.col("metric").replace_strict(priority, return_dtype=pl.Int32))
        .filter(pl.col("_prio") == pl.col("_prio").min().over("brand", "record_id"))
        .group_by("brand", "record_id")
        .agg(
            _ts=pl.col("_ts").first(),
            outcome_metric=pl.col("metric").first(),
            y=pl.col("score_norm").mean(),
            promoter=(pl.col("score_raw") >= PROMOTER_MIN).any(),
            detractor=(pl.col("score_raw") <= DETRACTOR_MAX).all(),
        )
    )


def sample_records(records: pl.LazyFrame, group: list[str], cfg: DriverConfig) -> pl.LazyFrame:
    """At most ``cfg.max_records`` records per group, chosen by a stable hash of record_id; adds
    ``sampled_from`` (the group's record count when sampled, else null)."""
    ranked = records.with_columns(_h=plh.col("record_id").nchash.xxhash64()).with_columns(
        _rank=pl.col("_h").rank("ordinal").over(group), _size=pl.len().over(group))
    return ranked.filter(pl.col("_rank") <= cfg.max_records).with_columns(
        sampled_from=pl.when(pl.col("_size") > cfg.max_records).then(pl.col("_size").cast(pl.Int64))
    ).drop("_h", "_rank", "_size")


def _quadrant(share: pl.Expr, perf: pl.Expr, group: list[str]) -> pl.Expr:
    hi_imp = share >= 1.0 / pl.len().over(group)
    hi_perf = perf >= perf.mean().over(group) - 1e-9
    return (
        pl.when(share.is_null() | perf.is_null()).then(None)
        .when(hi_imp & ~hi_perf).then(pl.lit("fix_first"))
        .when(hi_imp & hi_perf).then(pl.lit("keep_up"))
        .when(~hi_imp & ~hi_perf).then(pl.lit("monitor"))
        .otherwise(pl.lit("maintain"))
    )


def _finish(frame: pl.DataFrame) -> pl.DataFrame:
    for name, dtype in DRIVER_SCHEMA.items():
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    group = ["brand", "grain", "period", "method", "outcome"]
    ranked = pl.col("note").is_null() & pl.col("importance").is_not_null()
    # ties in importance go to the touchpoint name, so a rank never depends on row order
    frame = frame.sort([*group, "importance", "touchpoint"], descending=[False] * len(group) + [True, False],
                       nulls_last=True)
    out = frame.with_columns(
        importance_share=pl.when(pl.col("importance").sum().over(group) > 0)
        .then(pl.col("importance") / pl.col("importance").sum().over(group)),
    ).with_columns(
        rank=pl.when(ranked).then(
            pl.when(ranked).then(pl.col("importance")).rank("ordinal", descending=True).over(group)
        ).cast(pl.Int64),
        quadrant=pl.when(ranked).then(_quadrant(pl.col("importance_share"), pl.col("performance"), group)),
    )
    return out.select([pl.col(c).cast(t) for c, t in DRIVER_SCHEMA.items()]).sort(
        "brand", "grain", "period_start", "period", "method", "rank", nulls_last=False
    )


def empty_drivers() -> pl.DataFrame:
    return pl.DataFrame(schema=pl.Schema(DRIVER_SCHEMA))


def shapley_drivers(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    periods: Sequence[str] = ("month", "all"),
    config: DriverConfig | None = None,
) -> pl.DataFrame:
    """Shapley-regression importance and performance per brand × period (schema :data:`DRIVER_SCHEMA`)."""
    cfg = config or DriverConfig()
    base = _base(events, cfg)
    outcomes = _outcomes(base, cfg)
    ratings = (
        base.filter(
            (pl.col("touchpoint") != cfg.outcome_touchpoint)
            & pl.col("metric").is_in(list(cfg.predictor_metrics))
            & pl.col("score_norm").is_not_null()
        )
        .group_by("brand", "record_id", "touchpoint")
        .agg(x=pl.col("score_norm").mean())
    )
    long = (
        sample_records(with_periods(outcomes, periods, time_zone=cfg.time_zone,
                                    brand_time_zones=cfg.brand_time_zones), ["brand", "grain", "period"], cfg)
        .join(ratings, on=["brand", "record_id"], how="inner")
        .collect()
    )
    rows: list[dict[str, object]] = []
    for key, grp in long.group_by("brand", "grain", "period", maintain_order=True):
        rows.extend(_shapley_group(key, grp, cfg))
    if not rows:
        return empty_drivers()
    return _finish(pl.DataFrame(rows, infer_schema_length=None))


def _shapley_group(key: tuple[object, ...], grp: pl.DataFrame, cfg: DriverConfig) -> list[dict[str, object]]:
    brand, grain, period = key
    n_outcome = grp["record_id"].n_unique()
    coverage = (
        grp.group_by("touchpoint").agg(c=pl.col("record_id").n_unique())
        .filter(pl.col("c") >= cfg.min_coverage * n_outcome)
        .sort(["c", "touchpoint"], descending=[True, False])
        .head(MAX_DRIVERS)
    )
    tps = coverage["touchpoint"].to_list()
    start = grp["period_start"][0]
    note_row = {"brand": brand, "grain": grain, "period": period, "period_start": start, "method": SHAPLEY,
                "outcome": "+".join(sorted(grp["outcome_metric"].unique().to_list())), "touchpoint": "all",
                "n": n_outcome, "unit": SHAPLEY_UNIT, "sampled_from": grp["sampled_from"][0]}
    if not tps:
        return [{**note_row, "note": f"no regression: no touchpoint rated in ≥ {cfg.min_coverage:.0%} of the "
                 f"{n_outcome} records with an outcome"}]
    wide = (
        grp.filter(pl.col("touchpoint").is_in(tps))
        .pivot(on="touchpoint", index=["record_id", "y", "outcome_metric", "period_start"], values="x")
        .drop_nulls(subset=tps)
        .sort("record_id")  # a fixed order: the seeded bootstrap then draws the same resamples every run
    )
    # constant predictors carry no information and make the design singular
    tps = [t for t in tps if wide[t].n_unique() > 1]
    needed = max(cfg.min_records, len(tps) + 2)
    if not tps or wide.height < needed:
        return [{**note_row, "n": wide.height, "note": f"no regression: {wide.height} complete cases (records "
                 f"rating every touchpoint that varies) < {needed}"}]
    if wide["y"].n_unique() < 2:
        return [{**note_row, "n": wide.height, "note": "no regression: the outcome does not vary"}]
    outcomes = sorted(wide["outcome_metric"].unique().to_list())
    if len(outcomes) > 1:  # mixed scales in one outcome would be meaningless: keep the most common one
        keep = wide["outcome_metric"].value_counts(sort=True)["outcome_metric"][0]
        wide = wide.filter(pl.col("outcome_metric") == keep)
        if wide.height < max(cfg.min_records, len(tps) + 2):
            return [{**note_row, "n": wide.height, "note": f"no regression: {wide.height} complete cases with "
                     f"the {keep} outcome (outcomes are not mixed across scales)"}]
    x = wide.select(tps).to_numpy().astype(float)
    y = wide["y"].to_numpy().astype(float)
    phi, r2 = shapley_regression(x, y)
    lo, hi = _bootstrap_shapley(x, y, cfg)
    perf = x.mean(axis=0)
    return [
        {"brand": brand, "grain": grain, "period": period, "period_start": start,
         "method": SHAPLEY, "outcome": wide["outcome_metric"][0], "touchpoint": tp, "n": wide.height, "r2": r2,
         "sampled_from": note_row["sampled_from"],
         "importance": float(phi[j]), "performance": float(perf[j]), "ci_low": float(lo[j]),
         "ci_high": float(hi[j]), "unit": SHAPLEY_UNIT}
        for j, tp in enumerate(tps)
    ]


def _bootstrap_shapley(x: np.ndarray, y: np.ndarray, cfg: DriverConfig) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95% interval of each Shapley value over records resampled with replacement. Each resample
    costs 2^k fits, so the number of resamples shrinks for many touchpoints (at least 50)."""
    n, k = x.shape
    b = max(50, min(cfg.bootstrap, 40_000 // (1 << k)))
    rng = np.random.default_rng(cfg.seed)
    draws = np.empty((b, k))
    for i in range(b):
        idx = rng.integers(0, n, n)
        draws[i] = shapley_values(subset_r2(x[idx], y[idx]))
    return np.percentile(draws, 2.5, axis=0), np.percentile(draws, 97.5, axis=0)


# ------------------------------------------------------------------------------------------ text impact


def text_impact_drivers(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    mentions: pl.LazyFrame | pl.DataFrame | None = None,
    periods: Sequence[str] = ("month", "all"),
    config: DriverConfig | None = None,
) -> pl.DataFrame:
    """Text-only impact per brand × period × mentioned touchpoint (schema :data:`DRIVER_SCHEMA`).

    Needs the ``text_touchpoints`` (list[str]) column; returns an empty frame without it. Score per record:
    ``mean_norm`` → 100·outcome score_norm (mean = average), ``nps`` → +100/0/−100 for promoter/passive/
    detractor (mean = NPS, NPS outcomes only), ``net_sentiment`` → +100/0/−100 by the record's text sentiment.
    """
    cfg = config or DriverConfig()
    base = _base(events, cfg)
    cols = base.collect_schema().names()
    mention_cols = mentions.lazy().collect_schema().names() if mentions is not None else []
    if {"brand", "record_id", "touchpoint", "origin"} <= set(mention_cols):
        # mentions named in the text (not the own-touchpoint fallback): the touchpoints a record talks about
        assert mentions is not None
        mentioned = (mentions.lazy().filter(pl.col("origin") == "text")
                     .select("brand", "record_id", tp=pl.col("touchpoint")).unique())
    elif "text_touchpoints" in cols:
        mentioned = (
            base.select("brand", "record_id", tp=pl.col("text_touchpoints"))
            .explode("tp")
            .drop_nulls("tp")
            .unique()
        )
    else:
        return empty_drivers()
    if cfg.text_score == "net_sentiment":
        cls = sentiment_class_expr(cols)
        if cls is None:
            return empty_drivers()
        records = (
            base.with_columns(_cls=cls.cast(pl.Float64))
            .filter(pl.col("_cls").is_not_null())
            .group_by("brand", "record_id")
            .agg(_ts=pl.col("_ts").first(), a=100.0 * pl.col("_cls").mean().sign(), y=pl.lit(None, pl.Float64),
                 outcome_metric=pl.lit("sentiment"))
        )
    else:
        records = _outcomes(base, cfg)
        if cfg.text_score == "nps":
            records = records.filter(pl.col("outcome_metric") == "nps").with_columns(
                a=pl.when(pl.col("promoter")).then(100.0).when(pl.col("detractor")).then(-100.0).otherwise(0.0)
            )
        else:
            records = records.with_columns(a=100.0 * pl.col("y"))
    records = with_periods(records.select("brand", "record_id", "_ts", "a", "y", "outcome_metric"), periods,
                           time_zone=cfg.time_zone, brand_time_zones=cfg.brand_time_zones)
    # one outcome metric per row: mean outcomes of NPS, stars and CSAT are not averaged together
    group = ["brand", "grain", "period", "outcome_metric"]
    records = sample_records(records, group, cfg)
    totals = records.group_by(group).agg(
        period_start=pl.col("period_start").first(),
        sampled_from=pl.col("sampled_from").first(),
        n=pl.len().cast(pl.Int64),
        s=pl.col("a").sum(),
    )
    by_tp = (
        records.join(mentioned, on=["brand", "record_id"], how="inner")
        .group_by([*group, "tp"])
        .agg(n_mentions=pl.len().cast(pl.Int64), s_t=pl.col("a").sum(), performance=pl.col("y").mean())
    )
    out = (
        by_tp.join(totals, on=group, how="inner")
        .with_columns(
            score_all=pl.col("s") / pl.col("n"),
            score_without=pl.when(pl.col("n") > pl.col("n_mentions"))
            .then((pl.col("s") - pl.col("s_t")) / (pl.col("n") - pl.col("n_mentions"))),
        )
        .with_columns(impact=pl.col("score_all") - pl.col("score_without"))
        .select(
            *group, "period_start", "n", "sampled_from", "n_mentions", "score_all", "score_without", "impact",
            "performance",
            method=pl.lit(TEXT_IMPACT),
            outcome=pl.format("{}:{}", pl.lit(cfg.text_score), pl.col("outcome_metric")),
            touchpoint=pl.col("tp"),
            importance=pl.col("impact").abs(),
            unit=pl.lit(TEXT_UNITS[cfg.text_score]),
            note=pl.when(pl.col("n_mentions") < cfg.min_mentions)
            .then(pl.format("not ranked: {} mentioning records < {}", pl.col("n_mentions"), cfg.min_mentions)),
        )
        .collect()
    )
    if out.height == 0:
        return empty_drivers()
    out = _with_impact_intervals(out, records.collect(), mentioned.collect(), cfg)
    return _finish(out.drop("outcome_metric"))


def _with_impact_intervals(out: pl.DataFrame, records: pl.DataFrame, mentioned: pl.DataFrame,
                           cfg: DriverConfig) -> pl.DataFrame:
    """Percentile 95% bootstrap intervals of each impact: records resampled with replacement (multinomial
    counts), score(all) and score(without the touchpoint's records) recomputed per resample."""
    keys = ["brand", "grain", "period", "outcome_metric"]
    intervals: list[dict[str, object]] = []
    for key, grp in records.sort([*keys, "record_id"], nulls_last=True).group_by(keys, maintain_order=True):
        # one seed per group: a period's interval does not depend on which other periods this run computes
        rng = np.random.default_rng([cfg.seed, zlib.crc32("|".join(map(str, key)).encode())])
        a = grp["a"].to_numpy().astype(float)
        n = len(a)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=cfg.bootstrap).astype(np.float64)  # B × n
        total = counts @ a / n
        wanted = out.join(pl.DataFrame([key], schema=keys, orient="row"), on=keys, how="semi")["touchpoint"]
        # one 0/1 column per wanted touchpoint: does the record mention it
        flags = (grp.select("brand", "record_id")
                 .join(mentioned.filter(pl.col("tp").is_in(wanted.implode())).with_columns(_m=pl.lit(1.0))
                       .pivot(on="tp", index=["brand", "record_id"], values="_m"),
                       on=["brand", "record_id"], how="left"))
        for tp in wanted.to_list():
            m = flags[tp].fill_null(0.0).to_numpy() if tp in flags.columns else np.zeros(n)
            with np.errstate(invalid="ignore", divide="ignore"):
                impact = total - (counts @ (a * (1.0 - m))) / (counts @ (1.0 - m))
            impact = impact[np.isfinite(impact)]
            if impact.size:
                intervals.append({**dict(zip(keys, key, strict=True)), "touchpoint": tp,
                                  "ci_low": float(np.percentile(impact, 2.5)),
                                  "ci_high": float(np.percentile(impact, 97.5))})
    schema = {**{k: out.schema[k] for k in keys}, "touchpoint": pl.String, "ci_low": pl.Float64,
              "ci_high": pl.Float64}
    found = pl.DataFrame(intervals, schema=schema)
    return out.drop("ci_low", "ci_high", strict=False).join(found, on=[*keys, "touchpoint"], how="left",
                                                            nulls_equal=True)


def key_drivers(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    mentions: pl.LazyFrame | pl.DataFrame | None = None,
    periods: Sequence[str] = ("month", "all"),
    config: DriverConfig | None = None,
) -> pl.DataFrame:
    """Both methods in one table (schema :data:`DRIVER_SCHEMA`). With ``mentions`` (scored/touchpoint_mentions),
    text impact uses the touchpoints the clauses name, the same set the mention dataset reports."""
    return pl.concat([
        shapley_drivers(events, periods=periods, config=config),
        text_impact_drivers(events, mentions=mentions, periods=periods, config=config),
    ], how="vertical")
