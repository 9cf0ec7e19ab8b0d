"""Period-over-period drop tests: every series tested or logged as skipped, with multiple-comparison control.

Why a test log and not only alerts: an analyst must see what was *not* tested. A drop that was never tested
(too few answers, no previous period) used to vanish silently, and the absence of an alert read as "no drop".

Series: one per brand × touchpoint × metric (× source; by default only the ``all`` rollup) × grain. A period is
compared with the immediately preceding calendar period. ``touchpoint="all"`` is left out where it repeats the
series of a single touchpoint exactly (same n and value every period): testing it twice counts one drop twice.

For each series × period the log says ``tested`` or ``skipped`` with the reason:
- first period of the series / previous calendar period has no data (a gap is not compared across);
- fewer than ``min_n`` respondents in either period (``AlertConfig.min_n``, default 20; answers when the
  aggregates carry no respondent counts);
- no standard error (all answers identical in both periods and no change).

Tested: diff = current − previous, SE_diff = sqrt(SE_prev² + SE_cur²) (independent periods), z = diff / SE_diff,
one-sided p = Φ(z) (a drop; every headline value is higher-is-better). Benjamini–Hochberg across all of the
run's tests controls the false-discovery rate at ``q`` (default 0.05): sort p ascending, adjusted p_(k) =
min over j ≥ k of m·p_(j)/j. A drop is an alert when its adjusted p ≤ q. A drop with zero SE in both periods
(e.g. 100 % → 0 %) gets z = −inf, p = 0.

The SEs come from the aggregates: cluster-robust where one respondent gave several answers in a cell (see
:mod:`cx_pipeline.scoring.aggregates`), so a pooled cell's many answers from few people do not pass as many
independent ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from cx_pipeline.scoring.aggregates import ALL, previous_period_start
from cx_pipeline.scoring.metrics import diff_z_expr

SERIES_KEYS = ("brand", "touchpoint", "source", "metric", "measure", "grain")


@dataclass(frozen=True)
class AlertConfig:
    #: false-discovery rate across one run's tests (Benjamini–Hochberg)
    q: float = 0.05
    #: minimum respondents (distinct customers, else responses) in both periods for a test
    min_n: int = 20
    #: test only the all-sources rollup ("all"), or every source too (None)
    source: str | None = ALL


ALERT_TEST_SCHEMA: dict[str, pl.DataType] = {
    "brand": pl.String(),
    "touchpoint": pl.String(),
    "source": pl.String(),
    "metric": pl.String(),
    "measure": pl.String(),
    "grain": pl.String(),
    "period": pl.String(),
    "period_start": pl.Date(),
    "previous_period": pl.String(),
    "previous_value": pl.Float64(),
    "current_value": pl.Float64(),
    "diff": pl.Float64(),
    "se_previous": pl.Float64(),
    "se_current": pl.Float64(),
    "se_diff": pl.Float64(),
    "z": pl.Float64(),
    "p_value": pl.Float64(),
    "p_adjusted": pl.Float64(),
    "n_previous": pl.Int64(),
    "n_current": pl.Int64(),
    "respondents_previous": pl.Int64(),
    "respondents_current": pl.Int64(),
    "status": pl.String(),
    "reason": pl.String(),
    "flagged": pl.Boolean(),
}
ALERT_TEST_COLUMNS: dict[str, str] = {
    "brand": "Brand.",
    "touchpoint": "Touchpoint of the series, or all (pooled touchpoints; left out where it repeats overall).",
    "source": "Source of the series, or all (the rollup).",
    "metric": "nps, csat, ces, star_rating, rating or sentiment.",
    "measure": "What the values are (nps points, top2_box_pct, easy_pct, mean_stars, mean_norm_pct, "
    "net_sentiment_pct).",
    "grain": "day, week or month.",
    "period": "The period tested.",
    "period_start": "First day of the period.",
    "previous_period": "The calendar period before it, when it has data.",
    "previous_value": "Headline value of the previous period (unit: measure).",
    "current_value": "Headline value of this period (unit: measure).",
    "diff": "current − previous (unit: measure).",
    "se_previous": "Standard error of the previous value.",
    "se_current": "Standard error of the current value.",
    "se_diff": "sqrt(se_previous² + se_current²).",
    "z": "diff / se_diff.",
    "p_value": "One-sided p of a drop, Φ(z); null when skipped.",
    "p_adjusted": "Benjamini–Hochberg adjusted p across all tests of the run; null when skipped.",
    "n_previous": "Answers in the previous period.",
    "n_current": "Answers in this period.",
    "respondents_previous": "Distinct respondents/customers behind the previous period's answers.",
    "respondents_current": "Distinct respondents/customers behind this period's answers.",
    "status": "tested or skipped.",
    "reason": "Why a test was skipped, or the decision of a tested one.",
    "flagged": "An alert: p_adjusted ≤ q.",
}

ALERT_SCHEMA: dict[str, pl.DataType] = {
    name: ALERT_TEST_SCHEMA[name] for name in (
        "brand", "touchpoint", "source", "metric", "measure", "grain", "period", "period_start", "previous_period",
        "previous_value", "current_value", "diff", "se_previous", "se_current", "se_diff", "z", "p_value",
        "p_adjusted", "n_previous", "n_current")
} | {"message": pl.String()}

_UNITS = {"nps": " pts", "top2_box_pct": " pp", "easy_pct": " pp", "mean_stars": "★",
          "mean_norm_pct": " pp", "net_sentiment_pct": " pp"}


def _message_expr() -> pl.Expr:
    unit = pl.col("measure").replace_strict(_UNITS, default="", return_dtype=pl.String)

    def num(c: str, digits: int = 2) -> pl.Expr:
        return pl.col(c).round(digits).cast(pl.String)

    return pl.format(
        "{} {} {} ({}): {} fell from {} in {} to {} in {} ({}{}, z={}, p={}, BH-adjusted p={}, n={}→{})",
        pl.col("brand"), pl.col("touchpoint"), pl.col("metric"),
        pl.when(pl.col("source") == ALL).then(pl.lit("all sources")).otherwise(pl.col("source")),
        pl.col("measure"), num("previous_value"), pl.col("previous_period"), num("current_value"),
        pl.col("period"), num("diff"), unit, num("z"), num("p_value", 4), num("p_adjusted", 4),
        pl.col("n_previous"), pl.col("n_current"),
    )


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (same order as ``p``): min over j ≥ k of m·p_(j)/j, capped at 1."""
    m = len(p)
    if m == 0:
        return p.astype(np.float64)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return np.array([0.5 * math.erfc(-float(x) / math.sqrt(2.0)) for x in z], dtype=np.float64)


def _without_repeated_all(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop touchpoint "all" series that repeat one touchpoint's series in every period (same n and value): with
    one touchpoint behind the pool, testing both would count one drop twice."""
    keys = ["brand", "source", "metric", "measure", "grain"]
    pooled = frame.filter(pl.col("touchpoint") == ALL)
    single = frame.filter(pl.col("touchpoint") != ALL)
    if pooled.height == 0 or single.height == 0:
        return frame
    periods = pooled.group_by(keys).agg(_periods=pl.len())
    cmp = (
        pooled.join(single, on=[*keys, "period", "n", "value"], how="inner", suffix="_t")
        .group_by([*keys, "touchpoint_t"]).agg(_same=pl.len())
        .join(periods, on=keys)
        .filter(pl.col("_same") == pl.col("_periods"))
        .select(keys).unique()
        .with_columns(touchpoint=pl.lit(ALL))
    )
    return frame.join(cmp, on=[*keys, "touchpoint"], how="anti")


def alert_tests(aggregates: pl.DataFrame, *, config: AlertConfig | None = None) -> pl.DataFrame:
    """The test log (schema :data:`ALERT_TEST_SCHEMA`): every series × period, tested or skipped with the reason."""
    cfg = config or AlertConfig()
    missing = {"value", "se", "n", "period_start", *SERIES_KEYS} - set(aggregates.columns)
    if missing:
        raise ValueError(f"aggregates lack {sorted(missing)} (expected the AGGREGATE_SCHEMA frame)")
    frame = aggregates.filter((pl.col("grain") != ALL) & pl.col("value").is_not_null())
    if cfg.source is not None:
        frame = frame.filter(pl.col("source") == cfg.source)
    frame = _without_repeated_all(frame)
    keys = list(SERIES_KEYS)
    if "n_respondents" not in frame.columns:
        frame = frame.with_columns(n_respondents=pl.col("n"))
    series = frame.sort([*keys, "period_start"]).with_columns(
        previous_period=pl.col("period").shift(1).over(keys),
        respondents_previous=pl.col("n_respondents").shift(1).over(keys),
        _prev_start=pl.col("period_start").shift(1).over(keys),
        previous_value=pl.col("value").shift(1).over(keys),
        se_previous=pl.col("se").shift(1).over(keys),
        n_previous=pl.col("n").shift(1).over(keys),
    )
    consecutive = pl.col("_prev_start") == previous_period_start(pl.col("grain"), pl.col("period_start"))
    se_diff, zz = diff_z_expr(pl.col("previous_value"), pl.col("value"), pl.col("se_previous"), pl.col("se"))
    reason = (
        pl.when(pl.col("_prev_start").is_null()).then(pl.lit("first period of the series"))
        .when(~consecutive).then(pl.lit("no data in the previous period"))
        .when((pl.col("n_respondents") < cfg.min_n) | (pl.col("respondents_previous") < cfg.min_n))
        .then(pl.format("fewer than {} respondents ({}→{})", pl.lit(cfg.min_n), pl.col("respondents_previous"),
                        pl.col("n_respondents")))
        .when(pl.col("se").is_null() | pl.col("se_previous").is_null()).then(pl.lit("no standard error"))
    )
    log = series.with_columns(
        previous_period=pl.when(consecutive).then(pl.col("previous_period")),
        previous_value=pl.when(consecutive).then(pl.col("previous_value")),
        se_previous=pl.when(consecutive).then(pl.col("se_previous")),
        n_previous=pl.when(consecutive).then(pl.col("n_previous")),
        respondents_previous=pl.when(consecutive).then(pl.col("respondents_previous")),
        reason=reason,
    ).with_columns(
        status=pl.when(pl.col("reason").is_null()).then(pl.lit("tested")).otherwise(pl.lit("skipped")),
        current_value=pl.col("value"),
        se_current=pl.col("se"),
        n_current=pl.col("n"),
        respondents_current=pl.col("n_respondents"),
        diff=pl.col("value") - pl.col("previous_value"),
        se_diff=se_diff,
        z=zz,
    ).with_columns(
        [pl.when(pl.col("status") == "tested").then(pl.col(c)).alias(c) for c in ("se_diff", "z")]
    )
    tested = (log["status"] == "tested").to_numpy()
    z = log["z"].fill_null(0.0).to_numpy()
    p = np.full(log.height, np.nan)
    p[tested] = _normal_cdf(z[tested])
    p_adj = np.full(log.height, np.nan)
    p_adj[tested] = benjamini_hochberg(p[tested])
    log = log.with_columns(
        p_value=pl.Series(p).fill_nan(None),
        p_adjusted=pl.Series(p_adj).fill_nan(None),
    ).with_columns(
        flagged=(pl.col("p_adjusted") <= cfg.q).fill_null(False) & (pl.col("diff") < 0).fill_null(False),
    ).with_columns(
        reason=pl.when(pl.col("status") == "skipped").then(pl.col("reason"))
        .when(pl.col("flagged")).then(pl.format("drop: BH-adjusted p ≤ {}", pl.lit(cfg.q)))
        .when(pl.col("diff") < 0).then(pl.format("drop not significant at FDR {}", pl.lit(cfg.q)))
        .otherwise(pl.lit("no drop")),
    )
    return log.select([pl.col(c).cast(t) for c, t in ALERT_TEST_SCHEMA.items()]).sort(
        "brand", "grain", "touchpoint", "metric", "source", "period_start"
    )


def significant_drops(aggregates: pl.DataFrame, *, config: AlertConfig | None = None,
                      tests: pl.DataFrame | None = None) -> pl.DataFrame:
    """The flagged drops of :func:`alert_tests` with a readable message (schema :data:`ALERT_SCHEMA`)."""
    log = tests if tests is not None else alert_tests(aggregates, config=config)
    alerts = log.filter(pl.col("flagged")).with_columns(message=_message_expr())
    return alerts.select([pl.col(c).cast(t) for c, t in ALERT_SCHEMA.items()]).sort(
        "brand", "grain", "period_start", "touchpoint", "metric", "source"
    )


def alert_messages(alerts: pl.DataFrame) -> list[str]:
    """One short human-readable line per alert, e.g. for Dagster asset-check metadata."""
    if alerts.height == 0:
        return []
    if "message" in alerts.columns:
        return alerts["message"].to_list()
    return alerts.select(_message_expr()).to_series().to_list()
