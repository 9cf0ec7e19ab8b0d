"""Aggregates per brand × touchpoint × period × source: hand-computed values, rollups, periods, incremental."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from cx_pipeline.scoring.aggregates import (
    AGGREGATE_SCHEMA,
    aggregates_from_cells,
    day_cells,
    metric_aggregates,
)
from cx_pipeline.scoring.metrics import ScoringConfig

APPROX = {"abs": 1e-6}
SCALES = {"nps": (0.0, 10.0), "csat": (1.0, 5.0), "ces": (1.0, 7.0), "star_rating": (1.0, 5.0), "rating": (1.0, 5.0)}
WED_W47 = datetime(2026, 11, 18, 12, tzinfo=UTC)


def ev(record_id: str, metric: str, score: float | None, *, touchpoint: str = "overall", source: str = "qualtrics",
       brand: str = "nordlys", scale: tuple[float, float] | None = None, higher_is_better: bool = True,
       occurred_at: datetime | None = None, published_at: datetime | None = WED_W47, **extra: Any) -> dict[str, Any]:
    """One event row with just the columns scoring reads (score_norm computed as the contract defines it)."""
    lo, hi = scale or SCALES.get(metric, (None, None))
    norm = None
    if score is not None and lo is not None:
        norm = (score - lo) / (hi - lo) if higher_is_better else (hi - score) / (hi - lo)
    return {
        "event_id": f"{record_id}/{metric}/{touchpoint}", "content_hash": f"h{score}", "brand": brand,
        "source": source, "record_id": record_id, "touchpoint": touchpoint, "metric": metric,
        "score_raw": None if score is None else float(score), "scale_min": lo, "scale_max": hi,
        "higher_is_better": higher_is_better, "score_norm": norm, "occurred_at": occurred_at,
        "published_at": published_at, "customer_key": extra.pop("customer_key", None),
        "is_removed": extra.pop("is_removed", False), "text": extra.pop("text", None), **extra,
    }


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("occurred_at", "published_at").cast(pl.Datetime("us", "UTC")),
        pl.col("scale_min", "scale_max", "score_raw", "score_norm").cast(pl.Float64),
        pl.col("customer_key", "text").cast(pl.String),
    )


def row(agg: pl.DataFrame, **where: Any) -> dict[str, Any]:
    hit = agg.filter(**where)
    assert hit.height == 1, f"{where}: {hit.height} rows"
    return hit.row(0, named=True)


@pytest.fixture
def survey_events() -> pl.DataFrame:
    rows = [ev(f"q{i}", "nps", s) for i, s in enumerate([10, 10, 9, 9, 9, 8, 7, 8, 6, 0])]
    rows += [ev("q10", "nps", None)]  # blank answer: not counted
    rows += [ev("t0", "nps", 10, source="typeform"), ev("t1", "nps", 3, source="typeform")]
    rows += [ev(f"q{i}", "csat", s, touchpoint="delivery") for i, s in enumerate([5, 4, 4, 3, 2, 5, 1, 4])]
    rows += [ev(f"q{i}", "csat", s, touchpoint="website") for i, s in enumerate([5, 1])]
    return frame(rows)


def test_output_has_the_fixed_schema(survey_events: pl.DataFrame) -> None:
    agg = metric_aggregates(survey_events)
    assert agg.schema == pl.Schema(AGGREGATE_SCHEMA)
    empty = metric_aggregates(survey_events.clear())
    assert empty.height == 0
    assert empty.schema == pl.Schema(AGGREGATE_SCHEMA)


def test_nps_per_source_and_rollup(survey_events: pl.DataFrame) -> None:
    agg = metric_aggregates(survey_events, periods=("week",))
    r = row(agg, touchpoint="overall", source="qualtrics", metric="nps")
    # P=5, D=2, n=10 → 30, SE 24.698178, adjusted Wald (−19.051389, 65.205236) (see test_scoring_metrics)
    assert (r["period"], r["period_start"], r["measure"], r["n"]) == ("2026-W47", date(2026, 11, 16), "nps", 10)
    assert r["value"] == pytest.approx(30.0)
    assert r["se"] == pytest.approx(24.698178, **APPROX)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(-19.051389, **APPROX), pytest.approx(65.205236, **APPROX))
    # mean of 10,10,9,9,9,8,7,8,6,0 = 76/10
    assert r["mean"] == pytest.approx(7.6)
    assert r["low_n"] is True
    # all sources: P = 5+1 = 6, D = 2+1 = 3, n = 12 → 100·3/12 = 25
    r_all = row(agg, touchpoint="overall", source="all", metric="nps")
    assert (r_all["n"], r_all["value"]) == (12, pytest.approx(25.0))


def test_negative_nps() -> None:
    events = frame([ev(f"r{i}", "nps", s) for i, s in enumerate([10, 8, 2, 5])])
    r = row(metric_aggregates(events, periods=("month",)), source="all", metric="nps")
    # P=1, D=2, n=4 → 100·(1−2)/4 = −25; p=.25, d=.5: Var = .75 − .0625 = .6875 → SE = 100·sqrt(.6875/4) = 41.457809
    assert r["value"] == pytest.approx(-25.0)
    assert r["se"] == pytest.approx(41.457809, **APPROX)
    # n'=7, p'=1.75/7=.25, d'=2.75/7=.392857, NPS'=−.142857; Var' = .642857 − .020408 = .622449
    # half = 1.96·sqrt(.622449/7) = 1.96·.298197 = .584466 → CI = 100·(−.727323, .441608)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(-72.7323, abs=1e-4), pytest.approx(44.1608, abs=1e-4))


def test_csat_rows_and_touchpoint_rollup_only_where_meaningful(survey_events: pl.DataFrame) -> None:
    agg = metric_aggregates(survey_events, periods=("week",))
    r = row(agg, touchpoint="delivery", source="qualtrics", metric="csat")
    # 5 of 8 in the top 2 → 62.5 %, Wilson (30.5738 %, 86.3158 %), mean 3.5
    assert r["measure"] == "top2_box_pct"
    assert r["value"] == pytest.approx(62.5)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(30.573785, **APPROX), pytest.approx(86.315824, **APPROX))
    assert r["mean"] == pytest.approx(3.5)
    # top box (5 only): 2 of 8 = .25
    assert r["top_box_share"] == pytest.approx(0.25)
    # pooled across touchpoints: delivery 5/8 + website 1/2 → 6/10 = 60 %; NPS is never pooled over touchpoints
    pooled = row(agg, touchpoint="all", source="all", metric="csat")
    assert (pooled["n"], pooled["value"]) == (10, pytest.approx(60.0))
    assert set(agg.filter(pl.col("touchpoint") == "all")["metric"]) == {"csat"}
    # each grain × touchpoint × source × metric once
    assert agg.select("touchpoint", "source", "metric", "period").is_unique().all()


def test_low_n_threshold_is_configurable(survey_events: pl.DataFrame) -> None:
    agg = metric_aggregates(survey_events, periods=("week",), config=ScoringConfig(low_n_threshold=10))
    assert row(agg, touchpoint="overall", source="qualtrics", metric="nps")["low_n"] is False  # n=10
    assert row(agg, touchpoint="delivery", source="qualtrics", metric="csat")["low_n"] is True  # n=8


def test_time_base_periods_and_iso_week_labels() -> None:
    events = frame([
        # occurred_at wins over published_at: Fri 2027-01-01 is in ISO week 2026-W53 (starts Mon 2026-12-28)
        ev("a", "csat", 5, occurred_at=datetime(2027, 1, 1, 9, tzinfo=UTC)),
        ev("b", "csat", 1, occurred_at=None, published_at=datetime(2026, 12, 28, 0, tzinfo=UTC)),
        ev("c", "csat", 1, occurred_at=None, published_at=None),  # no time: left out
    ])
    agg = metric_aggregates(events, periods=("day", "week", "month", "all")).filter(
        source="qualtrics", touchpoint="overall"
    )
    week = row(agg, grain="week")
    assert (week["period"], week["period_start"], week["n"]) == ("2026-W53", date(2026, 12, 28), 2)
    assert sorted(agg.filter(grain="day")["period"]) == ["2026-12-28", "2027-01-01"]
    assert sorted(agg.filter(grain="month")["period"]) == ["2026-12", "2027-01"]
    everything = row(agg, grain="all")
    assert (everything["period"], everything["period_start"], everything["n"]) == ("all", None, 2)


def test_time_zone_moves_day_and_month() -> None:
    events = frame([ev("a", "csat", 5, published_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC))])
    utc = metric_aggregates(events, periods=("month",))
    cph = metric_aggregates(events, periods=("month",), config=ScoringConfig(time_zone="Europe/Copenhagen"))
    assert set(utc["period"]) == {"2026-11"}
    assert set(cph["period"]) == {"2026-12"}  # 00:30 on 1 December in Copenhagen


def test_stars_bayesian_and_top_box_lower_bound() -> None:
    events = frame([ev(f"r{i}", "star_rating", s, source="trustpilot") for i, s in enumerate([5, 5, 4, 3, 1])])
    r = row(metric_aggregates(events, periods=("week",)), source="trustpilot", metric="star_rating")
    # mean 3.6, SE .748331, Bayesian (7·3.5+18)/12 = 3.541667, Wilson lower of 2/5 = .117618
    assert r["measure"] == "mean_stars"
    assert r["value"] == pytest.approx(3.6)
    assert r["se"] == pytest.approx(0.748331, **APPROX)
    assert r["ci_low"] == pytest.approx(2.133270, **APPROX)
    assert r["bayes_mean"] == pytest.approx(3.541667, **APPROX)
    assert r["top_box_lower"] == pytest.approx(0.117618, **APPROX)
    # norm: (4+4+3+2+0)/4/5 = 13/20 = .65
    assert r["mean_norm"] == pytest.approx(0.65)
    bigger_prior = ScoringConfig(prior_count=10, prior_mean=4.0)
    r2 = row(metric_aggregates(events, periods=("week",), config=bigger_prior), source="all", metric="star_rating")
    assert r2["bayes_mean"] == pytest.approx(58 / 15)


def test_ces_direction_aware_and_mixed_scales_have_no_raw_mean() -> None:
    events = frame([
        ev("a", "ces", 7), ev("b", "ces", 5), ev("c", "ces", 3),  # 1–7, easy: 7, 5
        ev("d", "ces", 1, scale=(1.0, 5.0), higher_is_better=False),  # legacy: 1 = very easy
        ev("e", "ces", 4, scale=(1.0, 5.0), higher_is_better=False),  # legacy: 4 = hard
    ])
    r = row(metric_aggregates(events, periods=("week",)), source="qualtrics", touchpoint="overall", metric="ces")
    # easy = 7, 5, 1(legacy) → 3 of 5 = 60 %
    assert (r["measure"], r["n"], r["value"]) == ("easy_pct", 5, pytest.approx(60.0))
    assert r["mean"] is None  # 1–7 and reversed 1–5 answers cannot be averaged raw
    # norms 1, 4/6, 2/6, 1, 1/4 → mean = (1 + .666667 + .333333 + 1 + .25)/5 = .65
    assert r["mean_norm"] == pytest.approx(0.65)


def test_rating_uses_normalized_mean_with_ci() -> None:
    events = frame([ev("a", "rating", 10, scale=(0.0, 10.0)), ev("b", "rating", 2, scale=(1.0, 5.0))])
    r = row(metric_aggregates(events, periods=("week",)), source="all", touchpoint="overall", metric="rating")
    # norms 1 and .25 → 100·.625 = 62.5; sd = .530330 → SE = 100·.530330/√2 = 37.5
    assert r["value"] == pytest.approx(62.5)
    assert r["se"] == pytest.approx(37.5)
    assert r["ci_low"] == 0.0  # 62.5 − 1.96·37.5 = −11 leaves the 0–100 scale: bounded at 0


def test_removed_events_are_left_out_unless_asked() -> None:
    events = frame([ev("a", "csat", 5), ev("b", "csat", 1, is_removed=True)])
    where = {"source": "all", "touchpoint": "overall", "metric": "csat"}
    assert row(metric_aggregates(events, periods=("week",)), **where)["n"] == 1
    keep = ScoringConfig(include_removed=True)
    assert row(metric_aggregates(events, periods=("week",), config=keep), **where)["n"] == 2


def test_sentiment_counts_each_text_once() -> None:
    events = frame([
        # record r1: its text sentiment repeated on two events of the same touchpoint → counted once
        ev("r1", "star_rating", 5, sentiment=0.8, sentiment_label=None),
        ev("r1", "comment", None, sentiment=0.8, sentiment_label=None),
        ev("r2", "star_rating", 1, sentiment=-0.6, sentiment_label=None),
        ev("r3", "star_rating", 3, sentiment=0.9, sentiment_label="neutral"),  # the label wins
        ev("r4", "star_rating", 4, sentiment=None, sentiment_label=None),  # no text
    ])
    r = row(metric_aggregates(events, periods=("week",)), source="all", touchpoint="overall", metric="sentiment")
    # r1 +, r2 −, r3 neutral → n=3, net = 100·(1−1)/3 = 0; mean sentiment (.8 − .6 + .9)/3 = .366667
    assert (r["measure"], r["n"]) == ("net_sentiment_pct", 3)
    assert r["value"] == pytest.approx(0.0)
    assert r["mean"] == pytest.approx(1.1 / 3)
    # SE = 100·sqrt((1/3 + 1/3 − 0)/3) = 100·sqrt(2/9) = 47.140452
    assert r["se"] == pytest.approx(47.140452, **APPROX)
    assert r["top_box_share"] is None


def test_weeks_and_months_are_rolled_up_from_day_cells() -> None:
    """Every grain is a sum of day cells: a week equals a direct computation over its answers, and a customer who
    answers on two days of the week is two respondent-days there (one cluster per respondent and day)."""
    mon, wed = datetime(2026, 11, 16, 9, tzinfo=UTC), datetime(2026, 11, 18, 9, tzinfo=UTC)
    events = frame([
        ev("a", "csat", 5, published_at=mon, customer_key="k1"), ev("b", "csat", 1, published_at=wed,
                                                                    customer_key="k1"),
        ev("c", "csat", 4, published_at=wed), ev("d", "csat", 2, published_at=wed),
    ])
    cells = day_cells(events)
    assert sorted(cells["period_start"].unique().to_list()) == [mon.date(), wed.date()]
    week = row(aggregates_from_cells(cells, ("week",)), touchpoint="overall", source="qualtrics", metric="csat")
    assert (week["period"], week["n"], week["n_respondents"]) == ("2026-W47", 4, 4)
    assert week["value"] == pytest.approx(50.0)  # 5 and 4 are top-two-box of four answers
    direct = row(metric_aggregates(events, periods=("week",)), touchpoint="overall", source="qualtrics",
                 metric="csat")
    assert direct == week


def test_pooled_cells_count_respondents_and_use_cluster_robust_intervals() -> None:
    """Four respondents each rate delivery and customer service (CSAT 1–5): the pooled "all" cell has 8 answers
    from 4 people, so its interval must be wider than 8 independent answers would give."""
    answers = {"A": (5, 5), "B": (5, 1), "C": (1, 1), "D": (2, 1)}
    rows = [ev(r, "csat", s, touchpoint=tp) for r, pair in answers.items()
            for tp, s in zip(("delivery", "customer_service"), pair, strict=True)]
    out = metric_aggregates(frame(rows), periods=("all",))
    pooled = out.filter((pl.col("touchpoint") == "all") & (pl.col("source") == "all")).row(0, named=True)
    # 3 top-2 answers of 8 → 37.5 %; iid SE = 100·sqrt(.375·.625/8) = 17.116329
    # respondent sums s = 200, 100, 0, 0 (m = 2 each); t = s − 2·37.5 = 125, 25, −75, −75; Σt² = 27,500
    # V = 4/3 · 27,500 / 8² = 572.916667 → SE 23.935678; design effect 572.916667 / 292.96875 = 1.955556
    assert (pooled["n"], pooled["n_respondents"], pooled["value"]) == (8, 4, pytest.approx(37.5))
    assert pooled["se"] == pytest.approx(23.935678, abs=1e-5)
    assert pooled["design_effect"] == pytest.approx(1.955556, abs=1e-5)
    # Wilson on the effective n = 8 / 1.955556 = 4.090909 (hits 1.534091): centre .375 + 1.96²/(2·4.090909),
    # half 1.96·sqrt(.375·.625/4.090909 + 1.96²/(4·4.090909²)), both / (1 + 1.96²/4.090909)
    n_eff = 8 / (572.916667 / 292.96875)
    centre = 0.375 + 1.96**2 / (2 * n_eff)
    half = 1.96 * math.sqrt(0.375 * 0.625 / n_eff + 1.96**2 / (4 * n_eff**2))
    denom = 1 + 1.96**2 / n_eff
    assert pooled["ci_low"] == pytest.approx(100 * (centre - half) / denom, abs=1e-3)
    assert pooled["ci_high"] == pytest.approx(100 * (centre + half) / denom, abs=1e-3)
    assert (round(pooled["ci_low"], 2), round(pooled["ci_high"], 2)) == (9.32, 77.78)
    # one answer per respondent: no clustering, the independent formulas as before
    delivery = out.filter((pl.col("touchpoint") == "delivery") & (pl.col("source") == "all")).row(0, named=True)
    assert (delivery["n"], delivery["n_respondents"], delivery["design_effect"]) == (4, 4, 1.0)
    assert delivery["se"] == pytest.approx(100 * math.sqrt(0.5 * 0.5 / 4))
    assert pooled["unit"] == "% of answers in the top two boxes"


def test_intervals_stay_on_their_scale() -> None:
    # two stars answers 1 and 4 on 1–5: mean 2.5, sd 2.12132 → ±1.96·1.5 = ±2.94 would leave 1–5
    stars = metric_aggregates(frame([ev("s1", "star_rating", 1, source="trustpilot"),
                                     ev("s2", "star_rating", 4, source="trustpilot")]), periods=("all",))
    r = stars.filter(pl.col("source") == "all").row(0, named=True)
    assert (r["value"], r["ci_low"], r["ci_high"]) == (2.5, 1.0, 5.0)
    # NPS of three detractors: adjusted Wald gives a lower bound below −100
    nps = metric_aggregates(frame([ev(f"n{i}", "nps", 0) for i in range(3)]), periods=("all",))
    r = nps.filter(pl.col("source") == "all").row(0, named=True)
    assert r["value"] == -100.0 and r["ci_low"] == -100.0 and r["ci_high"] <= 100.0


def test_periods_are_cut_in_each_brands_reporting_time_zone() -> None:
    """23:30 UTC on 31 October is already November in Copenhagen, still October in UTC."""
    from cx_pipeline.scoring.metrics import ScoringConfig

    late = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    events = frame([ev("a", "csat", 5, brand="dk", published_at=late),
                    ev("b", "csat", 5, brand="uk", published_at=late)])
    cfg = ScoringConfig(time_zone="UTC", brand_time_zones=(("dk", "Europe/Copenhagen"),))
    out = metric_aggregates(events, periods=("month", "day"), config=cfg)
    got = set(out.filter(pl.col("source") == "all").select("brand", "grain", "period").iter_rows())
    assert got == {("dk", "month", "2026-11"), ("dk", "day", "2026-11-01"),
                   ("uk", "month", "2026-10"), ("uk", "day", "2026-10-31")}
