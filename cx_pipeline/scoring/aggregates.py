"""Metric aggregates per brand × touchpoint × period × source, with rollups, CIs and low-n flags.

Time base: an event belongs to the period of ``occurred_at`` (when the experience happened) and, where the
source does not say, of ``published_at``; events with neither are left out. Periods are cut in
``ScoringConfig.time_zone`` (UTC by default): day, ISO week (Monday start, label ``2026-W47`` with the ISO
year), month, or ``all`` (whole history, ``period_start`` null).

Rollups: ``source="all"`` pools every source of a brand × touchpoint; ``touchpoint="all"`` pools touchpoints
only for ``ScoringConfig.touchpoint_rollup_metrics`` (CSAT/CES/rating — NPS and stars are overall measures, and
a text's sentiment is the ``overall`` row, per touchpoint from its mentions).

Respondents: every row carries ``n`` (answers) and ``n_respondents`` (distinct ``customer_key``, else distinct
response/review). Where some respondent gave several answers in a cell (a pooled touchpoint, or one customer's
several reviews), the SE is cluster-robust — Var = n_c/(n_c − 1) · Σ_c t_c² / n², t_c = Σ_{i∈c}(y_i − ȳ) over the
answers y of respondent c (``answer_value_expr``) — ``design_effect`` = Var_cluster / Var_independent, and the
interval uses the effective n = n / design_effect. With one answer per respondent nothing changes. Intervals are
bounded by the scale: NPS and net sentiment within ±100, stars within the source's scale, percentages within 0–100.
``low_n`` counts respondents. ``unit`` says what one unit of ``value`` is.

One row per (brand, touchpoint, source, grain, period, metric); ``value`` is the metric's headline measure
(named in ``measure``), all headline measures are higher-is-better:

==============  ===================  ==========================================================
metric          measure              value / interval
==============  ===================  ==========================================================
nps             nps                  100·(P−D)/n; plain SE; adjusted-Wald CI (Rocks 2016)
csat            top2_box_pct         % in the two best scale points; Wilson CI; binomial SE
ces             easy_pct             % in the best third of the scale (5–7 on 1–7); Wilson CI
star_rating     mean_stars           mean stars; normal CI mean ± z·s/√n
rating          mean_norm_pct        100·mean score_norm (scales differ); normal CI
sentiment       net_sentiment_pct    % positive − % negative (NPS-style SE and interval);
                                     only when a ``sentiment``/``sentiment_label`` column exists;
                                     per touchpoint from its mentions (``with_mention_sentiment``)
==============  ===================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from cx_pipeline.scoring.metrics import (
    ScoringConfig,
    bayesian_average_expr,
    ces_easy_expr,
    mean_se_expr,
    nps_adjusted_wald_expr,
    nps_class_expr,
    nps_se_expr,
    nps_value_expr,
    sentiment_class_expr,
    share_se_expr,
    top2_box_expr,
    top_box_expr,
    wilson_expr,
)

GRAINS = ("day", "week", "month", "all")
ALL = "all"
SCORED_METRICS = ("nps", "csat", "ces", "star_rating", "rating")
MEASURES = {
    "nps": "nps",
    "csat": "top2_box_pct",
    "ces": "easy_pct",
    "star_rating": "mean_stars",
    "rating": "mean_norm_pct",
    "sentiment": "net_sentiment_pct",
}
UNITS = {
    "nps": "NPS points (−100..100)",
    "csat": "% of answers in the top two boxes",
    "ces": "% of answers in the easy third of the scale",
    "star_rating": "stars (mean, on the source's scale)",
    "rating": "% of the scale (100·mean score_norm)",
    "sentiment": "net % (positive − negative texts)",
}
PERIOD_KEYS = ("brand", "grain", "period")
GROUP_KEYS = ("brand", "touchpoint", "source", "grain", "period", "period_start", "metric")

#: The fixed output schema of :func:`metric_aggregates` (column order included).
AGGREGATE_SCHEMA: dict[str, pl.DataType] = {
    "brand": pl.String(),
    "touchpoint": pl.String(),  # a taxonomy touchpoint or "all"
    "source": pl.String(),  # a source format or "all"
    "grain": pl.String(),  # day | week | month | all
    "period": pl.String(),  # 2026-11-18 | 2026-W47 | 2026-11 | all
    "period_start": pl.Date(),  # first day of the period (Monday for weeks); null for grain "all"
    "metric": pl.String(),  # nps | csat | ces | star_rating | rating | sentiment
    "measure": pl.String(),  # what `value` is, see the module docstring
    "n": pl.Int64(),  # answered events (sentiment: scored texts, one per record and touchpoint)
    "n_respondents": pl.Int64(),  # distinct customers (customer_key, else the response/review) behind the n answers
    "design_effect": pl.Float64(),  # Var(clustered, weighted) / Var(independent answers); 1 for plain answers
    "n_effective": pl.Float64(),  # n / design_effect: the sample size the interval is computed on
    "value": pl.Float64(),  # headline measure, higher is better
    "unit": pl.String(),  # what one unit of `value` is (NPS points, percent, stars, ...)
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "se": pl.Float64(),  # standard error of `value` (used by the period-over-period alerts)
    "mean": pl.Float64(),  # mean answer on its own scale (sentiment: −1..1); null when scales are mixed
    "mean_norm": pl.Float64(),  # mean score_norm 0..1, comparable across metrics
    "bayes_mean": pl.Float64(),  # star_rating only: (C·m + Σr)/(C + n)
    "top_box_share": pl.Float64(),  # share (0..1) at the best scale point
    "top_box_lower": pl.Float64(),  # Wilson lower bound of top_box_share
    "low_n": pl.Boolean(),  # n < ScoringConfig.low_n_threshold
}
AGGREGATE_POLARS_SCHEMA = pl.Schema(AGGREGATE_SCHEMA)


def empty_aggregates() -> pl.DataFrame:
    return pl.DataFrame(schema=AGGREGATE_POLARS_SCHEMA)


# ------------------------------------------------------------------------------------------------ periods


def time_base_expr(columns: Iterable[str]) -> pl.Expr:
    """occurred_at where the source gives it, else published_at (see module docstring)."""
    cols = set(columns)
    parts = [pl.col(c) for c in ("occurred_at", "published_at") if c in cols]
    if not parts:
        raise ValueError("events need occurred_at or published_at to be placed in periods")
    return pl.coalesce(parts) if len(parts) > 1 else parts[0]


def period_columns(ts: pl.Expr, grain: str, time_zone: str = "UTC") -> dict[str, pl.Expr]:
    """grain/period/period_start expressions for a timestamp expression."""
    if grain not in GRAINS:
        raise ValueError(f"unknown period grain {grain!r}; expected one of {GRAINS}")
    if grain == ALL:
        return {"grain": pl.lit(ALL), "period": pl.lit(ALL), "period_start": pl.lit(None, dtype=pl.Date)}
    day = ts.dt.convert_time_zone(time_zone).dt.date()
    if grain == "day":
        start, label = day, day.dt.strftime("%Y-%m-%d")
    elif grain == "week":
        start = day.dt.truncate("1w")
        label = pl.format("{}-W{}", day.dt.iso_year(), day.dt.week().cast(pl.String).str.zfill(2))
    else:
        start = day.dt.truncate("1mo")
        label = day.dt.strftime("%Y-%m")
    return {"grain": pl.lit(grain), "period": label, "period_start": start}


def with_periods(lf: pl.LazyFrame, grains: Sequence[str], ts: str = "_ts", time_zone: str = "UTC",
                 brand_time_zones: Sequence[tuple[str, str]] = ()) -> pl.LazyFrame:
    """One copy of ``lf`` per grain with grain/period/period_start added (rows without a time dropped).

    Periods are cut in ``time_zone``, or for the brands in ``brand_time_zones`` in their own zone.
    """
    lf = lf.filter(pl.col(ts).is_not_null())
    zones: dict[str, list[str]] = {}
    for brand, zone in brand_time_zones:
        zones.setdefault(zone, []).append(brand)
    own = [b for bs in zones.values() for b in bs]
    parts = [(lf.filter(~pl.col("brand").is_in(own)) if own else lf, time_zone)]
    parts += [(lf.filter(pl.col("brand").is_in(bs)), zone) for zone, bs in zones.items()]
    return pl.concat([part.with_columns(**period_columns(pl.col(ts), g, zone))
                      for part, zone in parts for g in grains], how="vertical")


def previous_period_start(grain: pl.Expr, start: pl.Expr) -> pl.Expr:
    """First day of the period before the one starting at ``start``."""
    return (
        pl.when(grain == "day").then(start.dt.offset_by("-1d"))
        .when(grain == "week").then(start.dt.offset_by("-1w"))
        .when(grain == "month").then(start.dt.offset_by("-1mo"))
    )


# ------------------------------------------------------------------------------------------ aggregation


def _prepared(events: pl.LazyFrame | pl.DataFrame, config: ScoringConfig) -> pl.LazyFrame:
    lf = events.lazy()
    cols = lf.collect_schema().names()
    if not config.include_removed and "is_removed" in cols:
        lf = lf.filter(~pl.col("is_removed").fill_null(False))
    return lf.with_columns(_ts=time_base_expr(cols))


def _measure_rows(lf: pl.LazyFrame, config: ScoringConfig) -> pl.LazyFrame:
    """Scored events and (if present) sentiment rows, each with its success/failure indicators."""
    cols = lf.collect_schema().names()
    keep = ["brand", "touchpoint", "source", "record_id", "_ts", "metric", "respondent"]
    # one respondent = one customer where the source links them (keyed hash), else one response or review
    own = pl.concat_str([pl.col("source"), pl.lit(":"), pl.col("record_id")])
    lf = lf.with_columns(respondent=pl.coalesce(pl.col("customer_key"), own) if "customer_key" in cols else own)
    scored = lf.filter(pl.col("metric").is_in(SCORED_METRICS) & pl.col("score_raw").is_not_null())
    nps_cls = nps_class_expr()
    metric = pl.col("metric")
    scored = scored.select(
        *keep,
        x=pl.col("score_raw"),
        x_norm=pl.col("score_norm"),
        w=pl.col("weight").cast(pl.Float64).fill_null(1.0) if "weight" in cols else pl.lit(1.0),
        hit=pl.when(metric == "nps").then(nps_cls == 1)
        .when(metric == "csat").then(top2_box_expr())
        .when(metric == "ces").then(ces_easy_expr(config.ces_easy_norm)),
        miss=pl.when(metric == "nps").then(nps_cls == -1),
        top=top_box_expr(),
        scale_key=pl.format("{}|{}|{}", pl.col("scale_min"), pl.col("scale_max"),
                            pl.col("higher_is_better").fill_null(True)),
        lo=pl.col("scale_min").cast(pl.Float64),
        hi=pl.col("scale_max").cast(pl.Float64),
    )
    sent_cls = sentiment_class_expr(cols, config.sentiment_neutral)
    if sent_cls is None:
        return scored
    sent_value = pl.col("sentiment").cast(pl.Float64) if "sentiment" in cols else pl.lit(None, dtype=pl.Float64)
    order = ["_ts", "_cls", "x"]
    sentiment = (
        lf.with_columns(_cls=sent_cls, x=sent_value)
        .filter(pl.col("_cls").is_not_null())
        # one text per record and touchpoint, however many events of the record repeat it (earliest wins)
        .group_by("brand", "source", "record_id", "touchpoint")
        .agg(pl.col("_ts", "_cls", "x", "respondent").sort_by(order, nulls_last=True).first())
        .select(
            *[c for c in keep if c != "metric"],
            metric=pl.lit("sentiment"),
            x="x",
            x_norm=pl.lit(None, dtype=pl.Float64),
            w=pl.lit(1.0),  # texts count once each: survey weights apply to the scored answers
            hit=pl.col("_cls") == 1,
            miss=pl.col("_cls") == -1,
            top=pl.lit(None, dtype=pl.Boolean),
            scale_key=pl.lit("sentiment"),
            lo=pl.lit(None, dtype=pl.Float64),
            hi=pl.lit(None, dtype=pl.Float64),
        )
    )
    return pl.concat([scored, sentiment.select(scored.collect_schema().names())], how="vertical_relaxed")


def _with_rollups(rows: pl.LazyFrame, config: ScoringConfig) -> pl.LazyFrame:
    by_source = rows.with_columns(source=pl.lit(ALL))
    parts = [rows, by_source]
    pooled = rows.filter(pl.col("metric").is_in(list(config.touchpoint_rollup_metrics)))
    for frame in (pooled, pooled.with_columns(source=pl.lit(ALL))):
        tp_all = frame.with_columns(touchpoint=pl.lit(ALL))
        # a record's text counts once in the pooled sentiment, not once per touchpoint it was filed under
        text = (
            tp_all.filter(pl.col("metric") == "sentiment")
            .group_by("brand", "source", "grain", "period", "record_id")
            .agg(pl.all().sort_by(["_ts", "miss", "hit", "x"], nulls_last=True).first())
            .select(rows.collect_schema().names())
        )
        parts += [tp_all.filter(pl.col("metric") != "sentiment"), text]
    return pl.concat(parts, how="vertical")


def answer_value_expr() -> pl.Expr:
    """One answer's contribution to the headline value: the value is the mean of this over the cell's answers
    (NPS: +100 promoter / 0 / −100 detractor; shares: 100 or 0; stars; 100·score_norm)."""
    metric = pl.col("metric")
    return (
        pl.when(metric.is_in(["nps", "sentiment"]))
        .then(100.0 * (pl.col("hit").cast(pl.Float64) - pl.col("miss").cast(pl.Float64)))
        .when(metric.is_in(["csat", "ces"])).then(100.0 * pl.col("hit").cast(pl.Float64))
        .when(metric == "star_rating").then(pl.col("x"))
        .when(metric == "rating").then(100.0 * pl.col("x_norm"))
    )


def _cluster_se() -> pl.Expr:
    """Cluster-robust (linearized) SE of the weighted mean answer: sqrt(n_c/(n_c − 1) · Σ_c t_c²) / W with
    t_c = s_c − m_c·ȳ, s_c = Σ w·y and m_c = Σ w over respondent c's answers, W = Σ w; expanded as
    Σ t_c² = Σ s_c² − 2ȳ Σ s_c m_c + ȳ² Σ m_c² (one pass over respondents). Without weights W = n and this is
    the plain clustered formula. Null below two respondents."""
    nc = pl.col("n_respondents").cast(pl.Float64)
    ybar = pl.col("ybar")
    sum_t2 = (pl.col("ss") - 2 * ybar * pl.col("sm") + ybar**2 * pl.col("mm")).clip(lower_bound=0.0)
    return pl.when(nc > 1).then((nc / (nc - 1) * sum_t2).sqrt() / pl.col("wsum"))


def _finish(grouped: pl.LazyFrame, config: ScoringConfig) -> pl.LazyFrame:
    z = config.z
    n_answers, metric = pl.col("n"), pl.col("metric")
    three_way = metric.is_in(["nps", "sentiment"])
    share = metric.is_in(["csat", "ces"])
    weighted = pl.col("weighted")
    # weighted shares and means where any answer carries a survey weight; otherwise the plain counts
    hits_w = pl.when(weighted).then(pl.col("p_hit") * n_answers).otherwise(pl.col("hits"))
    miss_w = pl.when(weighted).then(pl.col("p_miss") * n_answers).otherwise(pl.col("misses"))
    star_mean = pl.when(weighted).then(pl.col("ybar")).otherwise(pl.col("mean_all"))
    norm_mean = pl.when(weighted).then(pl.col("ybar") / 100.0).otherwise(pl.col("mean_norm"))
    mean_se = mean_se_expr(pl.col("std"), n_answers)
    norm_se = mean_se_expr(pl.col("std_norm"), n_answers)
    iid_se = (
        pl.when(three_way).then(nps_se_expr(hits_w, miss_w, n_answers))
        .when(share).then(100.0 * share_se_expr(hits_w, n_answers))
        .when(metric == "star_rating").then(mean_se)
        .when(metric == "rating").then(100.0 * norm_se)
    )
    # Where some respondent gave several answers in the cell, or answers carry weights, the SE is the
    # linearized cluster-robust one and the design effect shrinks the n the intervals use (n_eff = n / deff).
    clustered = (pl.col("n_respondents") < n_answers) | weighted
    deff = pl.when(clustered & (iid_se > 0)).then((_cluster_se() / iid_se) ** 2).otherwise(1.0)
    grouped = grouped.with_columns(_deff=deff.clip(lower_bound=1.0))
    n_eff = n_answers.cast(pl.Float64) / pl.col("_deff")
    scaled = n_eff / n_answers.cast(pl.Float64)
    n, hits, miss = n_eff, hits_w * scaled, miss_w * scaled
    w_lo, w_hi = wilson_expr(hits, n, z)
    a_lo, a_hi = nps_adjusted_wald_expr(hits, miss, n, z)
    mean_se = mean_se * pl.col("_deff").sqrt()
    norm_se = norm_se * pl.col("_deff").sqrt()
    tb_lo, _ = wilson_expr(pl.col("tops") * scaled, n, z)
    value = (
        pl.when(three_way).then(nps_value_expr(hits, miss, n))
        .when(share).then(100.0 * hits / n)
        .when(metric == "star_rating").then(star_mean)
        .when(metric == "rating").then(100.0 * norm_mean)
    )
    se = (
        pl.when(three_way).then(nps_se_expr(hits, miss, n))
        .when(share).then(100.0 * share_se_expr(hits, n))
        .when(metric == "star_rating").then(mean_se)
        .when(metric == "rating").then(100.0 * norm_se)
    )
    ci_low = (
        pl.when(three_way).then(a_lo)
        .when(share).then(100.0 * w_lo)
        .when(metric == "star_rating").then(star_mean - z * mean_se)
        .when(metric == "rating").then(100.0 * (norm_mean - z * norm_se))
    )
    ci_high = (
        pl.when(three_way).then(a_hi)
        .when(share).then(100.0 * w_hi)
        .when(metric == "star_rating").then(star_mean + z * mean_se)
        .when(metric == "rating").then(100.0 * (norm_mean + z * norm_se))
    )
    # intervals stay on their scale: NPS and net sentiment within ±100, stars within the scale, % within 0–100
    floor = (pl.when(three_way).then(-100.0).when(metric == "star_rating").then(pl.col("lo"))
             .otherwise(0.0))
    ceiling = (pl.when(three_way | share | (metric == "rating")).then(100.0)
               .when(metric == "star_rating").then(pl.col("hi")))
    has_top = pl.col("tops").is_not_null() & (metric != "sentiment")
    return grouped.select(
        *GROUP_KEYS[:-1],
        metric=metric,
        measure=metric.replace_strict(MEASURES, default=None, return_dtype=pl.String),
        n=n_answers.cast(pl.Int64),
        n_respondents=pl.col("n_respondents"),
        design_effect=pl.col("_deff"),
        n_effective=n_eff,
        value=value,
        unit=metric.replace_strict(UNITS, default=None, return_dtype=pl.String),
        ci_low=pl.max_horizontal(ci_low, floor),
        ci_high=pl.min_horizontal(ci_high, ceiling),
        se=se,
        mean=pl.when((pl.col("n_scales") == 1) | (metric == "sentiment")).then(pl.col("mean_all")),
        mean_norm=pl.col("mean_norm"),
        bayes_mean=pl.when(metric == "star_rating").then(
            bayesian_average_expr(pl.col("total"), n_answers, config.prior_count, config.prior_mean)
        ),
        top_box_share=pl.when(has_top).then(pl.col("tops") / n_answers),
        top_box_lower=pl.when(has_top).then(tb_lo),
        low_n=pl.col("n_respondents") < config.low_n_threshold,
    )


def with_mention_sentiment(events: pl.LazyFrame | pl.DataFrame,
                           mentions: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Events whose text sentiment counts per touchpoint from what the text says about it.

    A survey comment is copied onto every measure of its response, so the event-level sentiment would give
    delivery and customer service the same net sentiment. Here the whole-text sentiment counts only for the
    ``overall`` touchpoint, and every other touchpoint gets its mentions (scored/touchpoint_mentions) as extra
    rows with metric ``mention`` (never a score; they only feed the ``sentiment`` metric). A mention of a removed
    event is removed with it.
    """
    ev = events.lazy()
    cols = ev.collect_schema().names()
    m = mentions.lazy()
    if not {"event_id", "touchpoint", "sentiment", "sentiment_label"} <= set(m.collect_schema().names()):
        return ev
    kept = ev.with_columns(
        [pl.when(pl.col("touchpoint") == "overall").then(pl.col(c)).alias(c)
         for c in ("sentiment", "sentiment_label") if c in cols]
    )
    removed = (ev.select("event_id", "is_removed") if "is_removed" in cols
               else ev.select("event_id", is_removed=pl.lit(False)))
    rows = (
        m.filter(pl.col("touchpoint") != "overall")
        .join(removed, on="event_id", how="left")
        .select(
            event_id=pl.col("event_id") + pl.lit("#") + pl.col("touchpoint"),
            content_hash=pl.col("sentiment").cast(pl.String),
            is_removed=pl.col("is_removed").fill_null(False),
            brand="brand", touchpoint="touchpoint", source="source", record_id="record_id",
            customer_key="customer_key", occurred_at="occurred_at", published_at="published_at",
            metric=pl.lit("mention"), sentiment="sentiment", sentiment_label="sentiment_label",
        )
    )
    return pl.concat([kept, rows], how="diagonal_relaxed")


def metric_aggregates(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    periods: Sequence[str] = ("day", "week", "month"),
    config: ScoringConfig | None = None,
    only_periods: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Aggregates (schema :data:`AGGREGATE_SCHEMA`) of contract events, optionally with ``sentiment`` /
    ``sentiment_label`` columns: day cells (:func:`day_cells`) rolled up to each grain of ``periods``.
    ``only_periods`` (brand, grain, period) keeps only those rows."""
    cfg = config or ScoringConfig()
    out = aggregates_from_cells(day_cells(events, cfg), periods, cfg)
    if only_periods is not None:
        out = out.join(only_periods.select(PERIOD_KEYS).unique(), on=list(PERIOD_KEYS), how="semi")
    return out


#: per-cell sums that add up across days (every grain is their sum over its days)
_ADDITIVE = ("n", "wsum", "wy", "w_hit", "w_miss", "hits", "misses", "tops", "x_sum", "x_sq", "x_cnt", "xn_sum",
             "xn_sq", "xn_cnt", "n_respondents", "ss", "sm", "mm")
CELL_KEYS = ("brand", "touchpoint", "source", "metric", "period_start")


def day_cells(events: pl.LazyFrame | pl.DataFrame, config: ScoringConfig | None = None) -> pl.DataFrame:
    """Sufficient statistics per brand × touchpoint × source × metric × day (the reporting time zone's day):
    counts, weighted sums, sums of squares and the per-respondent sums the clustered SE needs.

    Every row of cx_metrics is computed from these, so a daily run recomputes the cells of the days that
    changed and sums the rest. Clusters are respondent × day: a customer's answers on one day form one
    cluster (one survey response, one review), while answers on different days count as separate respondents
    in weeks, months and all time (``n_respondents`` there counts respondent-days)."""
    cfg = config or ScoringConfig()
    lf = _prepared(events, cfg)
    rows = with_periods(_measure_rows(lf, cfg), ["day"], time_zone=cfg.time_zone,
                        brand_time_zones=cfg.brand_time_zones)
    rolled = _with_rollups(rows, cfg).with_columns(_y=answer_value_expr())
    keys = list(GROUP_KEYS)
    clusters = (
        rolled.group_by([*keys, "respondent"])
        .agg(_s=(pl.col("w") * pl.col("_y")).sum(), _m=pl.col("w").sum())
        .group_by(keys)
        .agg(n_respondents=pl.len().cast(pl.Int64), ss=(pl.col("_s") ** 2).sum(),
             sm=(pl.col("_s") * pl.col("_m")).sum(), mm=(pl.col("_m") ** 2).sum())
    )
    cells = rolled.group_by(keys).agg(
        # bool sums are unsigned in polars: cast before any subtraction (P − D)
        n=pl.len().cast(pl.Int64),
        lo=pl.col("lo").min(),
        hi=pl.col("hi").max(),
        weighted=(pl.col("w") != 1.0).any(),
        scale_keys=pl.col("scale_key").unique().sort(),
        wsum=pl.col("w").sum(),
        wy=(pl.col("w") * pl.col("_y")).sum(),
        w_hit=(pl.col("w") * pl.col("hit").cast(pl.Float64)).sum(),
        w_miss=(pl.col("w") * pl.col("miss").cast(pl.Float64)).sum(),
        hits=pl.col("hit").sum().cast(pl.Int64),
        misses=pl.col("miss").sum().cast(pl.Int64),
        tops=pl.col("top").sum().cast(pl.Int64),
        x_sum=pl.col("x").sum(),
        x_sq=(pl.col("x") ** 2).sum(),
        x_cnt=pl.col("x").count().cast(pl.Int64),
        xn_sum=pl.col("x_norm").sum(),
        xn_sq=(pl.col("x_norm") ** 2).sum(),
        xn_cnt=pl.col("x_norm").count().cast(pl.Int64),
    ).join(clusters, on=keys, how="left", nulls_equal=True)
    return cells.select(*CELL_KEYS, *_ADDITIVE, "lo", "hi", "weighted", "scale_keys").collect().sort(
        list(CELL_KEYS), nulls_last=False)


def _period_of(grain: str) -> dict[str, pl.Expr]:
    day = pl.col("period_start")
    if grain == "day":
        return {"period": day.dt.strftime("%Y-%m-%d"), "period_start": day}
    if grain == "week":
        return {"period": pl.format("{}-W{}", day.dt.iso_year(), day.dt.week().cast(pl.String).str.zfill(2)),
                "period_start": day.dt.truncate("1w")}
    if grain == "month":
        return {"period": day.dt.strftime("%Y-%m"), "period_start": day.dt.truncate("1mo")}
    if grain == ALL:
        return {"period": pl.lit(ALL), "period_start": pl.lit(None, dtype=pl.Date)}
    raise ValueError(f"unknown period grain {grain!r}; expected one of {GRAINS}")


def aggregates_from_cells(cells: pl.DataFrame, periods: Sequence[str] = GRAINS,
                          config: ScoringConfig | None = None) -> pl.DataFrame:
    """cx_metrics rows for each grain of ``periods`` from day cells (:func:`day_cells`)."""
    cfg = config or ScoringConfig()
    if not cells.height:
        return empty_aggregates()
    keys = ["brand", "touchpoint", "source", "metric", "grain", "period", "period_start"]
    x_cnt, xn_cnt = pl.col("x_cnt"), pl.col("xn_cnt")
    parts = [
        cells.lazy().with_columns(grain=pl.lit(g), **_period_of(g))
        .group_by(keys)
        .agg(*[pl.col(c).sum() for c in _ADDITIVE], lo=pl.col("lo").min(), hi=pl.col("hi").max(),
             weighted=pl.col("weighted").any(), n_scales=pl.col("scale_keys").explode().n_unique())
        for g in periods
    ]
    grouped = pl.concat(parts, how="vertical").with_columns(
        ybar=pl.col("wy") / pl.col("wsum"), p_hit=pl.col("w_hit") / pl.col("wsum"),
        p_miss=pl.col("w_miss") / pl.col("wsum"), total=pl.col("x_sum"),
        mean_all=pl.when(x_cnt > 0).then(pl.col("x_sum") / x_cnt),
        std=pl.when(x_cnt > 1).then(((pl.col("x_sq") - pl.col("x_sum") ** 2 / x_cnt) / (x_cnt - 1))
                                    .clip(lower_bound=0.0).sqrt()),
        mean_norm=pl.when(xn_cnt > 0).then(pl.col("xn_sum") / xn_cnt),
        std_norm=pl.when(xn_cnt > 1).then(((pl.col("xn_sq") - pl.col("xn_sum") ** 2 / xn_cnt) / (xn_cnt - 1))
                                          .clip(lower_bound=0.0).sqrt()),
    )
    out = _finish(grouped, cfg).collect()
    return out.select([pl.col(c).cast(t) for c, t in AGGREGATE_SCHEMA.items()]).sort(
        "brand", "grain", "period_start", "period", "touchpoint", "source", "metric", nulls_last=False
    )
