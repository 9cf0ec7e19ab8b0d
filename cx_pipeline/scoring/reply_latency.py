"""Company replies to public reviews as a customer-service touchpoint: reply rate and reply latency.

How fast (and whether) a company answers a public review is customer service the whole market can see.
Per brand × source × period: the share of reviews with a reply (Wilson CI), and the median / 90th-percentile /
mean hours from publication to reply, each with its n. Periods use the same time base as every scored dataset
(the experience date where the source gives it, else the publication date; ``aggregates.time_base_expr``), so a
review sits in the same month here as in cx_metrics. Reviews removed
from their source are left out; a reply dated before its review (clock skew on the site) counts as 0 hours.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from cx_pipeline.scoring.aggregates import time_base_expr, with_periods
from cx_pipeline.scoring.metrics import Z_95, wilson_expr

REPLY_SCHEMA: dict[str, pl.DataType] = {
    "brand": pl.String(),
    "source": pl.String(),
    "grain": pl.String(),
    "period": pl.String(),
    "period_start": pl.Date(),
    "touchpoint": pl.String(),
    "reviews": pl.Int64(),
    "replied": pl.Int64(),
    "reply_rate": pl.Float64(),
    "reply_rate_ci_low": pl.Float64(),
    "reply_rate_ci_high": pl.Float64(),
    "median_hours": pl.Float64(),
    "p90_hours": pl.Float64(),
    "mean_hours": pl.Float64(),
    "low_n": pl.Boolean(),
}


def reply_latency(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    periods: Sequence[str] = ("month", "all"),
    z: float = Z_95,
    low_n_threshold: int = 30,
    time_zone: str = "UTC",
    brand_time_zones: tuple[tuple[str, str], ...] = (),
) -> pl.DataFrame:
    """Reply rate and latency per brand × source × period, one review counted once (by record_id). All-time rows
    come from the month rows and the replied reviews (:func:`reply_latency_from_months`), as a daily run builds
    them."""
    dated = [g for g in periods if g != "all"]
    kw = {"z": z, "low_n_threshold": low_n_threshold, "time_zone": time_zone, "brand_time_zones": brand_time_zones}
    rows = _period_rows(events, sorted({*dated, "month"}) if "all" in periods else dated, **kw)
    parts = [rows.filter(pl.col("grain").is_in(dated))]
    if "all" in periods:
        parts.append(reply_latency_from_months(rows.filter(grain="month"), events, **kw))
    return pl.concat(parts).sort("brand", "source", "grain", "period_start", "period", nulls_last=False)


def replied_only(events: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """The events of replied reviews: all the all-time hours need (a small share of the history's columns)."""
    return events.lazy().filter(pl.col("replied_at").is_not_null())


def reply_latency_from_months(
    months: pl.DataFrame,
    events: pl.LazyFrame | pl.DataFrame,
    *,
    z: float = Z_95,
    low_n_threshold: int = 30,
    time_zone: str = "UTC",
    brand_time_zones: tuple[tuple[str, str], ...] = (),
) -> pl.DataFrame:
    """All-time rows: review and reply counts summed from the month rows; hours (median, p90, mean) over every
    replied review of ``events`` (only replied reviews are read)."""
    if not months.height:
        return pl.DataFrame(schema=pl.Schema(REPLY_SCHEMA))
    counts = months.group_by("brand", "source").agg(pl.col("reviews").sum(), pl.col("replied").sum())
    hours = _period_rows(replied_only(events), ["all"], z=z, low_n_threshold=low_n_threshold,
                         time_zone=time_zone, brand_time_zones=brand_time_zones)
    low, high = wilson_expr(pl.col("replied").cast(pl.Float64), pl.col("reviews").cast(pl.Float64), z)
    out = (counts.join(hours.select("brand", "source", "median_hours", "p90_hours", "mean_hours"),
                       on=["brand", "source"], how="left")
           .with_columns(grain=pl.lit("all"), period=pl.lit("all"), period_start=pl.lit(None, dtype=pl.Date),
                         touchpoint=pl.lit("customer_service"), reply_rate=pl.col("replied") / pl.col("reviews"),
                         reply_rate_ci_low=low, reply_rate_ci_high=high,
                         low_n=pl.col("reviews") < low_n_threshold))
    return out.select([pl.col(c).cast(t) for c, t in REPLY_SCHEMA.items()])


def _period_rows(
    events: pl.LazyFrame | pl.DataFrame,
    periods: Sequence[str],
    *,
    z: float,
    low_n_threshold: int,
    time_zone: str,
    brand_time_zones: tuple[tuple[str, str], ...],
) -> pl.DataFrame:
    lf = events.lazy()
    lf = lf.with_columns(_base=time_base_expr(lf.collect_schema().names()))
    reviews = (
        lf.filter((pl.col("source_kind") == "review") & ~pl.col("is_removed") & pl.col("published_at").is_not_null())
        .group_by("brand", "source", "record_id")
        .agg(pl.col("published_at").first(), pl.col("_base").first(), pl.col("replied_at").drop_nulls().first())
        .with_columns(
            _ts=pl.col("_base"),
            hours=pl.when(pl.col("replied_at").is_not_null()).then(
                ((pl.col("replied_at") - pl.col("published_at")).dt.total_seconds() / 3600.0).clip(lower_bound=0.0)
            ),
        )
    )
    grouped = (
        with_periods(reviews, periods, time_zone=time_zone, brand_time_zones=brand_time_zones)
        .group_by("brand", "source", "grain", "period", "period_start")
        .agg(
            reviews=pl.len(),
            replied=pl.col("hours").is_not_null().sum().cast(pl.Int64),
            median_hours=pl.col("hours").median(),
            p90_hours=pl.col("hours").quantile(0.9, interpolation="linear"),
            mean_hours=pl.col("hours").mean(),
        )
    )
    low, high = wilson_expr(pl.col("replied").cast(pl.Float64), pl.col("reviews").cast(pl.Float64), z)
    out = grouped.with_columns(
        touchpoint=pl.lit("customer_service"),
        reply_rate=pl.col("replied") / pl.col("reviews"),
        reply_rate_ci_low=low,
        reply_rate_ci_high=high,
        low_n=pl.col("reviews") < low_n_threshold,
    ).collect()
    return out.select([pl.col(c).cast(t) for c, t in REPLY_SCHEMA.items()])
