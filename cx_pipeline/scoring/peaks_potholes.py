"""Peaks and potholes per touchpoint, and peak-end scores per customer journey.

Remembered experience is dominated by the most intense moment and the ending (peak-end rule, Kahneman et
al. 1993; Heath & Heath, *The Power of Moments*). Our operationalization (thresholds in :class:`PeakConfig`):

* unit = one record × touchpoint: the record's scored events at that touchpoint (mean score_norm) and the
  sentiment of what the text says about that touchpoint. With ``mentions`` (scored/touchpoint_mentions) that is
  the sentiment of the clauses about it, so "fast delivery, rude staff" is a delivery peak candidate and a
  customer-service pothole; the whole-text sentiment counts only for the overall unit. Without mentions
  (older callers) the whole-text sentiment is copied to every touchpoint in ``text_touchpoints``;
* peak    = top box (score_norm = 1) AND strongly positive language (sentiment ≥ ``strong_sentiment``); a
  unit with language but no score (a touchpoint only the text names) is a peak on strongly positive language
  alone, so text-only touchpoints can peak at all;
* pothole = score_norm ≤ ``pothole_norm`` OR strongly negative language (sentiment ≤ −``strong_sentiment``).

Without a ``sentiment`` column, peaks cannot be told from plain top boxes: ``uses_sentiment`` is false and
peak = top box. Ranking: by ``net_lower`` = peak Wilson lower bound − pothole Wilson upper bound (a net rate the
data supports, not one unit's luck), only for touchpoints with at least ``min_rank_n`` units; the rest get no rank.
All-time rows are sums of the month rows (units, peaks, potholes; ``n_respondents`` there counts respondent-months)
with the examples of the most recent months, so a daily run recomputes the months it touched and adds them up.
Journeys: a customer needs moments at ``min_moments`` different times (one survey response is one moment,
however many touchpoints it rates). Example comments are chosen by strongest sentiment, preferring texts of a
readable length.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cx_pipeline.scoring.aggregates import time_base_expr, with_periods
from cx_pipeline.scoring.metrics import top_box_expr, wilson_expr

_TOL = 1e-9

PEAK_SCHEMA: dict[str, pl.DataType] = {
    "brand": pl.String(),
    "grain": pl.String(),
    "period": pl.String(),
    "period_start": pl.Date(),
    "touchpoint": pl.String(),
    "n": pl.Int64(),  # record × touchpoint units
    "n_respondents": pl.Int64(),  # distinct customers (customer_key, else the review/response) behind the units
    "peaks": pl.Int64(),
    "potholes": pl.Int64(),
    "peak_rate": pl.Float64(),  # 0..1
    "peak_ci_low": pl.Float64(),  # Wilson
    "peak_ci_high": pl.Float64(),
    "pothole_rate": pl.Float64(),
    "pothole_ci_low": pl.Float64(),
    "pothole_ci_high": pl.Float64(),
    "net": pl.Float64(),  # peak_rate − pothole_rate
    "net_lower": pl.Float64(),  # peak_ci_low − pothole_ci_high: the net the data supports at 95 %
    "rank": pl.Int64(),  # 1 = best net_lower within brand × period; null below min_rank_n units
    "uses_sentiment": pl.Boolean(),
    "peak_examples": pl.List(pl.String()),
    "pothole_examples": pl.List(pl.String()),
}

JOURNEY_SCHEMA: dict[str, pl.DataType] = {
    "brand": pl.String(),
    "customer_key": pl.String(),
    "n_moments": pl.Int64(),  # scored events
    "n_records": pl.Int64(),
    "first_at": pl.Datetime("us", "UTC"),
    "last_at": pl.Datetime("us", "UTC"),
    "mean_score": pl.Float64(),  # plain mean score_norm of all moments
    "peak_score": pl.Float64(),  # score_norm of the most intense moment (farthest from 0.5)
    "peak_touchpoint": pl.String(),
    "end_score": pl.Float64(),  # mean score_norm of the moments at the last time
    "end_touchpoint": pl.String(),
    "peak_end_score": pl.Float64(),  # (peak + end) / 2
    "peak_end_gap": pl.Float64(),  # peak_end_score − mean_score: < 0 remembered worse than the average
}

JOURNEY_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "brand": pl.String(),
    "journeys": pl.Int64(),
    "mean_score": pl.Float64(),
    "mean_peak_end_score": pl.Float64(),
    "mean_peak_end_gap": pl.Float64(),
    "share_remembered_worse": pl.Float64(),  # journeys with peak_end_gap < 0
    "share_remembered_better": pl.Float64(),
    "most_common_negative_peak": pl.String(),  # touchpoint most often the peak of journeys with peak_score < 0.5
}


@dataclass(frozen=True)
class PeakConfig:
    strong_sentiment: float = 0.5
    pothole_norm: float = 0.25
    z: float = 1.96
    n_examples: int = 3
    example_min_chars: int = 20
    example_max_chars: int = 280
    #: a journey needs scored events at at least this many different times
    min_moments: int = 2
    #: touchpoints with fewer units are reported but not ranked
    min_rank_n: int = 10
    time_zone: str = "UTC"
    brand_time_zones: tuple[tuple[str, str], ...] = ()
    include_removed: bool = False


def _events(events: pl.LazyFrame | pl.DataFrame, cfg: PeakConfig) -> pl.LazyFrame:
    lf = events.lazy()
    cols = lf.collect_schema().names()
    if not cfg.include_removed and "is_removed" in cols:
        lf = lf.filter(~pl.col("is_removed").fill_null(False))
    extra = {}
    if "sentiment" not in cols:
        extra["sentiment"] = pl.lit(None, dtype=pl.Float64)
    if "text" not in cols:
        extra["text"] = pl.lit(None, dtype=pl.String)
    if "customer_key" not in cols:
        extra["customer_key"] = pl.lit(None, dtype=pl.String)
    return lf.with_columns(_ts=time_base_expr(cols), **extra)


def _mention_units(mentions: pl.LazyFrame | pl.DataFrame, own_schema: pl.Schema) -> pl.LazyFrame:
    """Mentions as units: no score, the sentiment of the clauses about the touchpoint, the clause as example."""
    m = mentions.lazy()
    names = m.collect_schema().names()
    if not {"record_id", "touchpoint", "sentiment", "clause"} <= set(names):  # nothing stored yet
        return pl.LazyFrame(schema=own_schema)
    respondent = pl.coalesce(pl.col("customer_key"), pl.col("record_id")) if "customer_key" in names \
        else pl.col("record_id")
    return m.select("brand", "record_id", "touchpoint", _ts=time_base_expr(m.collect_schema().names()),
                    score_norm=pl.lit(None, dtype=pl.Float64), sentiment=pl.col("sentiment").cast(pl.Float64),
                    text=pl.col("clause"), respondent=respondent,
                    ).select([pl.col(c).cast(t) for c, t in own_schema.items()])


def _units(lf: pl.LazyFrame, mentions: pl.LazyFrame | pl.DataFrame | None = None) -> pl.LazyFrame:
    """record × touchpoint units with mean score_norm, mean sentiment about it, and the text."""
    whole_text = pl.col("sentiment").cast(pl.Float64)
    if mentions is not None:  # the whole text speaks for the overall unit only; touchpoints get their clauses
        whole_text = pl.when(pl.col("touchpoint") == "overall").then(whole_text)
    # one respondent = one customer where the source links them (keyed hash), else one review or response
    respondent = pl.coalesce(pl.col("customer_key"), pl.col("record_id"))
    own = lf.select("brand", "record_id", "touchpoint", "_ts", "score_norm", sentiment=whole_text, text="text",
                    respondent=respondent)
    parts = [own]
    if mentions is not None:
        parts.append(_mention_units(mentions, own.collect_schema()))
    elif "text_touchpoints" in lf.collect_schema().names():
        parts.append(
            lf.filter(pl.col("text").is_not_null() | pl.col("sentiment").is_not_null())
            .select("brand", "record_id", "_ts", "text_touchpoints",
                    score_norm=pl.lit(None, dtype=pl.Float64), sentiment=pl.col("sentiment").cast(pl.Float64),
                    text="text", respondent=respondent)
            .explode("text_touchpoints")
            .drop_nulls("text_touchpoints")
            .rename({"text_touchpoints": "touchpoint"})
            .select(own.collect_schema().names())
        )
    return (
        pl.concat(parts, how="vertical")
        .group_by("brand", "record_id", "touchpoint")
        .agg(
            _ts=pl.col("_ts").min(),
            respondent=pl.col("respondent").drop_nulls().first(),
            score_norm=pl.col("score_norm").mean(),
            sentiment=pl.col("sentiment").mean(),
            text=pl.col("text").drop_nulls().first(),
        )
        .filter(pl.col("score_norm").is_not_null() | pl.col("sentiment").is_not_null())
    )


def _examples(flag: str, cfg: PeakConfig) -> pl.Expr:
    length = pl.col("text").str.len_chars()
    readable = (length >= cfg.example_min_chars) & (length <= cfg.example_max_chars)
    texts = pl.col("text").filter(pl.col(flag) & pl.col("text").is_not_null())
    keys = [
        readable.filter(pl.col(flag) & pl.col("text").is_not_null()),
        pl.col("sentiment").abs().fill_null(0.0).filter(pl.col(flag) & pl.col("text").is_not_null()),
        length.filter(pl.col(flag) & pl.col("text").is_not_null()),
    ]
    return texts.sort_by(keys, descending=[True, True, False]).unique(maintain_order=True).head(cfg.n_examples)


def peaks_potholes(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    mentions: pl.LazyFrame | pl.DataFrame | None = None,
    periods: tuple[str, ...] = ("month", "all"),
    config: PeakConfig | None = None,
) -> pl.DataFrame:
    """Peak and pothole rates per brand × period × touchpoint, ranked by net (schema :data:`PEAK_SCHEMA`).

    ``mentions``: the touchpoint mentions of the same events; when given, each touchpoint's sentiment is that of
    the clauses about it (see the module docstring).
    """
    cfg = config or PeakConfig()
    dated = [g for g in periods if g != "all"]
    months = _period_rows(events, mentions, sorted({*dated, "month"} if "all" in periods else set(dated)), cfg)
    parts = [months.filter(pl.col("grain").is_in(dated))]
    if "all" in periods:
        parts.append(peaks_from_months(months.filter(grain="month"), cfg))
    return pl.concat(parts, how="vertical").sort("brand", "grain", "period_start", "period", "rank",
                                                   nulls_last=False)


def _rates(frame: pl.LazyFrame, cfg: PeakConfig, uses_sentiment: pl.Expr) -> pl.DataFrame:
    """Rates, Wilson intervals, net and rank from unit counts (one row per brand × period × touchpoint)."""
    group = ["brand", "grain", "period"]
    n, peaks, potholes = pl.col("n"), pl.col("peaks"), pl.col("potholes")
    pk_lo, pk_hi = wilson_expr(peaks, n, cfg.z)
    ph_lo, ph_hi = wilson_expr(potholes, n, cfg.z)
    out = (
        frame.with_columns(
            peak_rate=peaks / n, peak_ci_low=pk_lo, peak_ci_high=pk_hi,
            pothole_rate=potholes / n, pothole_ci_low=ph_lo, pothole_ci_high=ph_hi,
            net=(peaks - potholes) / n,
            net_lower=pk_lo - ph_hi,
            uses_sentiment=uses_sentiment,
        )
        # rank only eligible touchpoints among themselves (null net_lower for the rest ranks nothing); ties go to
        # the touchpoint name, so a rank never depends on row order
        .sort([*group, "net_lower", "touchpoint"], descending=[False, False, False, True, False], nulls_last=True)
        .with_columns(_eligible=pl.col("n") >= cfg.min_rank_n)
        .with_columns(rank=pl.when(pl.col("_eligible")).then(
            pl.when(pl.col("_eligible")).then(pl.col("net_lower")).rank("ordinal", descending=True).over(group)))
        .collect()
    )
    return out.select([pl.col(c).cast(t) for c, t in PEAK_SCHEMA.items()])


def peaks_from_months(months: pl.DataFrame, config: PeakConfig | None = None) -> pl.DataFrame:
    """All-time rows from month rows: counts summed, examples from the most recent months first."""
    cfg = config or PeakConfig()
    if not months.height:
        return pl.DataFrame(schema=pl.Schema(PEAK_SCHEMA))
    recent = months.sort("period_start", descending=True, nulls_last=True)
    grouped = recent.lazy().group_by("brand", "touchpoint").agg(
        grain=pl.lit("all"), period=pl.lit("all"), period_start=pl.lit(None, dtype=pl.Date),
        n=pl.col("n").sum(), n_respondents=pl.col("n_respondents").sum(), peaks=pl.col("peaks").sum(),
        potholes=pl.col("potholes").sum(),
        peak_examples=pl.col("peak_examples").explode().drop_nulls().unique(maintain_order=True)
        .head(cfg.n_examples),
        pothole_examples=pl.col("pothole_examples").explode().drop_nulls().unique(maintain_order=True)
        .head(cfg.n_examples),
        _uses=pl.col("uses_sentiment").any(),
    )
    return _rates(grouped, cfg, pl.col("_uses"))


def _period_rows(events: pl.LazyFrame | pl.DataFrame, mentions: pl.LazyFrame | pl.DataFrame | None,
                 periods: list[str], cfg: PeakConfig) -> pl.DataFrame:
    lf = _events(events, cfg)
    if (mentions is not None and not cfg.include_removed and "event_id" in mentions.lazy().collect_schema().names()
            and "is_removed" in events.lazy().collect_schema().names()):
        kept = lf.select("event_id").unique()
        mentions = mentions.lazy().join(kept, on="event_id", how="semi")
    uses_sentiment = lf.select(pl.col("sentiment").is_not_null().any()).collect().item()
    s = pl.col("sentiment")
    strong_pos = (s >= cfg.strong_sentiment).fill_null(False) if uses_sentiment else pl.lit(True)
    text_only = pl.col("score_norm").is_null()
    units = _units(lf, mentions).with_columns(
        peak=((top_box_expr().fill_null(False) | text_only) & strong_pos) if uses_sentiment
        else top_box_expr().fill_null(False),
        pothole=((pl.col("score_norm") <= cfg.pothole_norm).fill_null(False)
                 | (s <= -cfg.strong_sentiment).fill_null(False)),
    )
    units = with_periods(units, periods, time_zone=cfg.time_zone, brand_time_zones=cfg.brand_time_zones)
    group = ["brand", "grain", "period"]
    counts = (
        units.group_by([*group, "touchpoint"])
        .agg(
            period_start=pl.col("period_start").first(),
            n=pl.len().cast(pl.Int64),
            n_respondents=pl.col("respondent").n_unique().cast(pl.Int64),
            peaks=pl.col("peak").sum().cast(pl.Int64),  # unsigned bool sums would wrap in peaks − potholes
            potholes=pl.col("pothole").sum().cast(pl.Int64),
            peak_examples=_examples("peak", cfg),
            pothole_examples=_examples("pothole", cfg),
        )
    )
    return _rates(counts, cfg, pl.lit(bool(uses_sentiment)))


def peak_end_journeys(events: pl.LazyFrame | pl.DataFrame, *, config: PeakConfig | None = None) -> pl.DataFrame:
    """Peak-end score per journey (all scored events of one customer_key within a brand), against its mean.

    Most intense moment = farthest score_norm from the neutral 0.5 (ties: the later, then the worse one); the
    end = mean of the moments at the journey's last time (one response's events share a time).
    """
    cfg = config or PeakConfig()
    lf = _events(events, cfg)
    if "customer_key" not in lf.collect_schema().names():
        return pl.DataFrame(schema=pl.Schema(JOURNEY_SCHEMA))
    moments = lf.filter(
        pl.col("customer_key").is_not_null() & pl.col("score_norm").is_not_null() & pl.col("_ts").is_not_null()
    ).with_columns(_intensity=(pl.col("score_norm") - 0.5).abs())
    by = [pl.col("_intensity"), pl.col("_ts"), -pl.col("score_norm")]
    at_end = pl.col("_ts") == pl.col("_ts").max()
    out = (
        moments.group_by("brand", "customer_key")
        .agg(
            n_moments=pl.len(),
            n_times=pl.col("_ts").n_unique(),
            n_records=pl.col("record_id").n_unique(),
            first_at=pl.col("_ts").min(),
            last_at=pl.col("_ts").max(),
            mean_score=pl.col("score_norm").mean(),
            peak_score=pl.col("score_norm").sort_by(by).last(),
            peak_touchpoint=pl.col("touchpoint").sort_by(by).last(),
            end_score=pl.col("score_norm").filter(at_end).mean(),
            # the end moment with the lowest score: sort by time, then best-first, take the last
            end_touchpoint=pl.col("touchpoint").sort_by([pl.col("_ts"), -pl.col("score_norm")]).last(),
        )
        .filter(pl.col("n_times") >= cfg.min_moments)
        .with_columns(peak_end_score=(pl.col("peak_score") + pl.col("end_score")) / 2)
        .with_columns(peak_end_gap=pl.col("peak_end_score") - pl.col("mean_score"))
        .collect()
    )
    return out.select([pl.col(c).cast(t) for c, t in JOURNEY_SCHEMA.items()]).sort("brand", "customer_key")


def peak_end_summary(journeys: pl.DataFrame) -> pl.DataFrame:
    """Per brand: how the remembered (peak-end) score compares with the plain mean of journeys."""
    negative_peaks = (
        journeys.filter(pl.col("peak_score") < 0.5)
        .group_by("brand", "peak_touchpoint").len()
        .sort(["brand", "len", "peak_touchpoint"], descending=[False, True, False])
        .group_by("brand", maintain_order=True).first()
        .select("brand", most_common_negative_peak="peak_touchpoint")
    )
    out = (
        journeys.group_by("brand")
        .agg(
            journeys=pl.len(),
            mean_score=pl.col("mean_score").mean(),
            mean_peak_end_score=pl.col("peak_end_score").mean(),
            mean_peak_end_gap=pl.col("peak_end_gap").mean(),
            share_remembered_worse=(pl.col("peak_end_gap") < -_TOL).mean(),
            share_remembered_better=(pl.col("peak_end_gap") > _TOL).mean(),
        )
        .join(negative_peaks, on="brand", how="left")
    )
    return out.select([pl.col(c).cast(t) for c, t in JOURNEY_SUMMARY_SCHEMA.items()]).sort("brand")
