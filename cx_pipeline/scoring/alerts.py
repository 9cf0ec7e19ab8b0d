"""Statistically significant period-over-period drops, from the aggregate frame's values and SEs.

For each brand × touchpoint × metric (× source, by default only the ``all`` rollup) and grain, a period is
compared with the immediately preceding calendar period (a gap means no comparison): diff = current −
previous, SE_diff = sqrt(SE_prev² + SE_cur²) (independent periods), z = diff / SE_diff. A drop is flagged
when z ≤ −z_threshold and both periods have at least ``min_n`` answers. All headline values are
higher-is-better (see :mod:`cx_pipeline.scoring.aggregates`), so a drop is always bad news. A drop with
zero SE in both periods (e.g. 100 % → 0 %) gets z = −inf.
"""

from __future__ import annotations

import polars as pl

from cx_pipeline.scoring.aggregates import ALL, previous_period_start
from cx_pipeline.scoring.metrics import Z_95, diff_z_expr

SERIES_KEYS = ("brand", "touchpoint", "source", "metric", "measure", "grain")

ALERT_SCHEMA: dict[str, pl.DataType] = {
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
    "diff": pl.Float64(),  # current − previous
    "se_previous": pl.Float64(),
    "se_current": pl.Float64(),
    "se_diff": pl.Float64(),
    "z": pl.Float64(),
    "z_threshold": pl.Float64(),
    "n_previous": pl.Int64(),
    "n_current": pl.Int64(),
    "message": pl.String(),
}

_UNITS = {"nps": " pts", "top2_box_pct": " pp", "easy_pct": " pp", "mean_stars": "★",
          "mean_norm_pct": " pp", "net_sentiment_pct": " pp"}


def _message_expr() -> pl.Expr:
    unit = pl.col("measure").replace_strict(_UNITS, default="", return_dtype=pl.String)

    def num(c: str) -> pl.Expr:
        return pl.col(c).round(2).cast(pl.String)

    return pl.format(
        "{} {} {} ({}): {} fell from {} in {} to {} in {} ({}{}, z={}, n={}→{})",
        pl.col("brand"), pl.col("touchpoint"), pl.col("metric"),
        pl.when(pl.col("source") == ALL).then(pl.lit("all sources")).otherwise(pl.col("source")),
        pl.col("measure"), num("previous_value"), pl.col("previous_period"), num("current_value"),
        pl.col("period"), num("diff"), unit, num("z"), pl.col("n_previous"), pl.col("n_current"),
    )


def significant_drops(
    aggregates: pl.DataFrame,
    *,
    z: float = Z_95,
    min_n: int = 30,
    source: str | None = ALL,
) -> pl.DataFrame:
    """Alerts (schema :data:`ALERT_SCHEMA`) for every significant drop between consecutive periods.

    ``source=None`` tests each source separately as well as the rollup; grain "all" is never compared.
    """
    missing = {"value", "se", "n", "period_start", *SERIES_KEYS} - set(aggregates.columns)
    if missing:
        raise ValueError(f"aggregates lack {sorted(missing)} (expected the AGGREGATE_SCHEMA frame)")
    frame = aggregates.filter((pl.col("grain") != ALL) & pl.col("value").is_not_null())
    if source is not None:
        frame = frame.filter(pl.col("source") == source)
    keys = list(SERIES_KEYS)
    series = frame.sort([*keys, "period_start"]).with_columns(
        previous_period=pl.col("period").shift(1).over(keys),
        _prev_start=pl.col("period_start").shift(1).over(keys),
        previous_value=pl.col("value").shift(1).over(keys),
        se_previous=pl.col("se").shift(1).over(keys),
        n_previous=pl.col("n").shift(1).over(keys),
    )
    se_diff, zz = diff_z_expr(pl.col("previous_value"), pl.col("value"), pl.col("se_previous"), pl.col("se"))
    alerts = (
        series.filter(pl.col("_prev_start") == previous_period_start(pl.col("grain"), pl.col("period_start")))
        .filter((pl.col("n") >= min_n) & (pl.col("n_previous") >= min_n))
        .filter(pl.col("se").is_not_null() & pl.col("se_previous").is_not_null())
        .with_columns(
            current_value=pl.col("value"),
            se_current=pl.col("se"),
            n_current=pl.col("n"),
            diff=pl.col("value") - pl.col("previous_value"),
            se_diff=se_diff,
            z=zz,
            z_threshold=pl.lit(z),
        )
        .filter(pl.col("z") <= -z)
        .with_columns(message=_message_expr())
    )
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

