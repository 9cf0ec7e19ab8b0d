"""Peaks/potholes, peak-end journeys and significant-drop alerts against hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from cx_pipeline.scoring.aggregates import metric_aggregates
from cx_pipeline.scoring.alerts import (
    ALERT_SCHEMA,
    ALERT_TEST_SCHEMA,
    AlertConfig,
    alert_messages,
    alert_tests,
    benjamini_hochberg,
    significant_drops,
)
from cx_pipeline.scoring.peaks_potholes import (
    JOURNEY_SCHEMA,
    PEAK_SCHEMA,
    PeakConfig,
    peak_end_journeys,
    peak_end_summary,
    peaks_potholes,
)
from cx_pipeline_tests.test_scoring_aggregates import ev, frame

APPROX = {"abs": 1e-6}
EARLY = "Arrived a day early, what a wonderful surprise!"
LOST = "Never arrived, still waiting for my parcel."
GONE = "The parcel vanished and nobody answers the phone."


def _peak_events() -> pl.DataFrame:
    rows = [
        ev("d1", "csat", 5, touchpoint="delivery", sentiment=0.9, text=EARLY),  # top box + strong → peak
        ev("d2", "csat", 5, touchpoint="delivery", sentiment=0.2, text="Fine, thanks for the quick one."),
        ev("d3", "csat", 1, touchpoint="delivery", sentiment=-0.7, text=LOST),  # norm 0 → pothole
        ev("d4", "csat", 3, touchpoint="delivery", sentiment=None),  # neither
        # a review at overall whose text is about delivery: pothole for overall and (by mention) for delivery
        ev("d5", "comment", None, sentiment=-0.8, text=GONE, text_touchpoints=["delivery"]),
        ev("d6", "star_rating", 5, source="trustpilot", sentiment=0.95, text="Superb!! Best shop ever, really."),
    ]
    return frame(rows).with_columns(pl.col("text_touchpoints").cast(pl.List(pl.String)))


def test_peak_and_pothole_rates_by_hand() -> None:
    out = peaks_potholes(_peak_events(), periods=("all",))
    assert out.schema == pl.Schema(PEAK_SCHEMA)
    d = out.filter(touchpoint="delivery").row(0, named=True)
    # delivery units d1..d5: peaks {d1}, potholes {d3 (norm 0), d5 (mention, sentiment −.8)} → 1/5, 2/5
    assert (d["n"], d["peaks"], d["potholes"]) == (5, 1, 2)
    assert (d["peak_rate"], d["pothole_rate"], d["net"]) == (pytest.approx(0.2), pytest.approx(0.4),
                                                             pytest.approx(-0.2))
    # Wilson 1/5: centre .2+.38416 = .58416, half 1.96·sqrt(.032+.038416) = .520105, /1.76832 → (.036223, .624472)
    assert (d["peak_ci_low"], d["peak_ci_high"]) == (pytest.approx(0.036223, **APPROX),
                                                     pytest.approx(0.624472, **APPROX))
    # Wilson 2/5 = (.117618, .769280)
    assert (d["pothole_ci_low"], d["pothole_ci_high"]) == (pytest.approx(0.117618, **APPROX),
                                                           pytest.approx(0.769280, **APPROX))
    # strongest sentiment first: GONE (−.8) before LOST (−.7)
    assert d["pothole_examples"] == [GONE, LOST]
    assert d["peak_examples"] == [EARLY]
    o = out.filter(touchpoint="overall").row(0, named=True)
    # overall: d5 (pothole by language) and d6 (5★ + .95 → peak) → net 1/2 − 1/2 = 0, ranked above delivery
    assert (o["n"], o["peaks"], o["potholes"], o["net"]) == (2, 1, 1, 0.0)
    assert (o["rank"], d["rank"]) == (None, None)  # fewer than min_rank_n = 10 units: reported, not ranked
    # ranked by the supported net: Wilson lower of the peak rate − Wilson upper of the pothole rate
    # overall 1/2 and 1/2: .094529 − .905471 = −.810942; delivery .036223 − .769280 = −.733057 → delivery first
    assert o["net_lower"] == pytest.approx(-0.810942, **APPROX)
    assert d["net_lower"] == pytest.approx(-0.733057, **APPROX)
    ranked = peaks_potholes(_peak_events(), periods=("all",), config=PeakConfig(min_rank_n=1))
    assert dict(zip(ranked["touchpoint"], ranked["rank"], strict=True)) == {"delivery": 1, "overall": 2}
    assert o["uses_sentiment"] is True


def test_peak_units_count_respondents_once() -> None:
    """One customer's three delivery answers are three units but one respondent: n says answers, n_respondents
    says people, so nobody reads three complaints from one person as three customers."""
    rows = [ev(r, "csat", 1, touchpoint="delivery", customer_key="cust-1", sentiment=-0.8, text=LOST)
            for r in ("r1", "r2", "r3")]
    rows += [ev("r4", "csat", 5, touchpoint="delivery", sentiment=0.9, text=EARLY)]  # no key: its own respondent
    d = peaks_potholes(frame(rows), periods=("all",)).filter(touchpoint="delivery").row(0, named=True)
    assert (d["n"], d["n_respondents"], d["potholes"], d["peaks"]) == (4, 2, 3, 1)


def test_peaks_without_sentiment_fall_back_to_top_box() -> None:
    events = frame([ev("a", "csat", 5, touchpoint="delivery"), ev("b", "csat", 2, touchpoint="delivery"),
                    ev("c", "csat", 3, touchpoint="delivery")])
    d = peaks_potholes(events, periods=("month",)).row(0, named=True)
    # 5 is top box; 2 on 1–5 → norm .25 ≤ .25 → pothole
    assert (d["period"], d["peaks"], d["potholes"], d["uses_sentiment"]) == ("2026-11", 1, 1, False)


def _journey_events() -> pl.DataFrame:
    def t(day: int) -> datetime:
        return datetime(2026, 11, day, 12, tzinfo=UTC)

    rows = [
        ev("c1a", "csat", 4, touchpoint="delivery", occurred_at=t(1), customer_key="c1"),  # norm .75
        ev("c1b", "csat", 1, touchpoint="customer_service", occurred_at=t(3), customer_key="c1"),  # 0
        ev("c1c", "nps", 8, occurred_at=t(10), customer_key="c1"),  # .8
        ev("c2a", "star_rating", 3, occurred_at=t(2), customer_key="c2"),  # .5
        ev("c2b", "star_rating", 5, occurred_at=t(9), customer_key="c2"),  # 1   same response, same time
        ev("c2b", "csat", 4, touchpoint="delivery", occurred_at=t(9), customer_key="c2"),  # .75
        ev("c3a", "csat", 5, occurred_at=t(4), customer_key="c3"),  # one moment only: no journey
        ev("x", "csat", 5, occurred_at=t(4)),  # no customer key
    ]
    return frame(rows)


def test_peak_end_per_journey_by_hand() -> None:
    j = peak_end_journeys(_journey_events())
    assert j.schema == pl.Schema(JOURNEY_SCHEMA)
    assert j["customer_key"].to_list() == ["c1", "c2"]
    c1 = j.row(0, named=True)
    # c1: mean (.75 + 0 + .8)/3 = .516667; intensities |x−.5| = .25, .5, .3 → peak 0 (customer_service);
    # end = .8 → peak-end (0 + .8)/2 = .4; gap .4 − .516667 = −.116667
    assert c1["mean_score"] == pytest.approx(1.55 / 3)
    assert (c1["peak_score"], c1["peak_touchpoint"], c1["end_score"]) == (0.0, "customer_service", 0.8)
    assert c1["peak_end_score"] == pytest.approx(0.4)
    assert c1["peak_end_gap"] == pytest.approx(0.4 - 1.55 / 3)
    c2 = j.row(1, named=True)
    # c2: mean (.5 + 1 + .75)/3 = .75; peak 1 (overall); end = mean(1, .75) = .875; peak-end .9375; gap .1875
    assert (c2["n_moments"], c2["n_records"]) == (3, 2)
    assert (c2["peak_score"], c2["end_score"], c2["peak_end_score"]) == (1.0, 0.875, 0.9375)
    assert c2["peak_end_gap"] == pytest.approx(0.1875)
    s = peak_end_summary(j).row(0, named=True)
    # mean of means (.516667 + .75)/2 = .633333; of peak-end (.4 + .9375)/2 = .66875
    assert s["journeys"] == 2
    assert s["mean_score"] == pytest.approx((1.55 / 3 + 0.75) / 2)
    assert s["mean_peak_end_score"] == pytest.approx(0.66875)
    assert (s["share_remembered_worse"], s["share_remembered_better"]) == (0.5, 0.5)
    assert s["most_common_negative_peak"] == "customer_service"


def _nps_months() -> pl.DataFrame:
    def answers(prefix: str, when: datetime, counts: dict[int, int]) -> list[dict[str, object]]:
        scores = [s for s, k in counts.items() for _ in range(k)]
        return [ev(f"{prefix}{i}", "nps", s, published_at=when) for i, s in enumerate(scores)]

    rows = answers("o", datetime(2026, 10, 15, tzinfo=UTC), {10: 30, 8: 10, 3: 10})  # P=30, D=10, n=50
    rows += answers("n", datetime(2026, 11, 15, tzinfo=UTC), {9: 15, 7: 15, 0: 20})  # P=15, D=20, n=50
    rows += answers("j", datetime(2027, 1, 15, tzinfo=UTC), {0: 50})  # after a gap: never compared with Nov
    # CSAT barely moves: 40/50 → 38/50 top-2
    rows += [ev(f"co{i}", "csat", 5 if i < 40 else 2, touchpoint="delivery",
                published_at=datetime(2026, 10, 3, tzinfo=UTC)) for i in range(50)]
    rows += [ev(f"cn{i}", "csat", 5 if i < 38 else 2, touchpoint="delivery",
                published_at=datetime(2026, 11, 3, tzinfo=UTC)) for i in range(50)]
    return frame(rows)


def test_significant_nps_drop_by_hand() -> None:
    agg = metric_aggregates(_nps_months(), periods=("month",))
    alerts = significant_drops(agg)
    assert alerts.schema == pl.Schema(ALERT_SCHEMA)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert (a["touchpoint"], a["metric"], a["source"], a["previous_period"], a["period"]) == (
        "overall", "nps", "all", "2026-10", "2026-11")
    # Oct: 100·(30−10)/50 = 40; p=.6, d=.2 → Var = .8 − .16 = .64 → SE = 100·sqrt(.64/50) = 11.313708
    # Nov: 100·(15−20)/50 = −10; p=.3, d=.4 → Var = .7 − .01 = .69 → SE = 100·sqrt(.69/50) = 11.747340
    # diff = −50; SE_diff = sqrt(128 + 138) = sqrt(266) = 16.309506; z = −50/16.309506 = −3.065697
    assert (a["previous_value"], a["current_value"], a["diff"]) == (pytest.approx(40.0), pytest.approx(-10.0),
                                                                     pytest.approx(-50.0))
    assert a["se_previous"] == pytest.approx(11.313708, **APPROX)
    assert a["se_current"] == pytest.approx(11.747340, **APPROX)
    assert a["se_diff"] == pytest.approx(16.309506, **APPROX)
    assert a["z"] == pytest.approx(-3.065697, **APPROX)
    assert (a["n_previous"], a["n_current"]) == (50, 50)
    # one-sided p = Φ(−3.065697) = .0010858; the run has 2 tests (NPS and CSAT delivery Oct → Nov; Jan follows a
    # gap; the CSAT "all" pool repeats delivery and is left out). CSAT 80 % → 76 %: SE 5.65685 and 6.03987 pp →
    # z = −4/sqrt(32 + 36.48) = −.483368, p = .314417.
    # BH, m = 2: sorted p .0010858, .314417 → adjusted min(2·.0010858/1, .314417) = .0021716 and .314417
    assert a["p_value"] == pytest.approx(0.0010858, abs=1e-6)
    assert a["p_adjusted"] == pytest.approx(0.0021716, abs=1e-6)
    msgs = alert_messages(alerts)
    assert msgs == ["nordlys overall nps (all sources): nps fell from 40.0 in 2026-10 to -10.0 in 2026-11 "
                    "(-50.0 pts, z=-3.07, p=0.0011, BH-adjusted p=0.0022, n=50→50)"]


def test_alert_log_tests_or_skips_every_series_with_the_reason() -> None:
    agg = metric_aggregates(_nps_months(), periods=("month",))
    log = alert_tests(agg)
    assert log.schema == pl.Schema(ALERT_TEST_SCHEMA)
    got = {(r["touchpoint"], r["metric"], r["period"]): (r["status"], r["reason"]) for r in log.to_dicts()}
    assert got[("overall", "nps", "2026-10")] == ("skipped", "first period of the series")
    assert got[("overall", "nps", "2026-11")] == ("tested", "drop: BH-adjusted p ≤ 0.05")
    assert got[("overall", "nps", "2027-01")] == ("skipped", "no data in the previous period")
    assert got[("delivery", "csat", "2026-11")] == ("tested", "drop not significant at FDR 0.05")
    csat = log.filter((pl.col("metric") == "csat") & (pl.col("period") == "2026-11") & (pl.col("touchpoint") ==
                                                                                        "delivery")).row(0, named=True)
    assert csat["z"] == pytest.approx(-0.483368, abs=1e-6)
    assert csat["p_value"] == pytest.approx(0.314417, abs=1e-6)
    assert csat["p_adjusted"] == pytest.approx(0.314417, abs=1e-6)
    # the CSAT "all" pool holds delivery only: it repeats that series and is not tested twice
    assert not log.filter(pl.col("touchpoint") == "all").height
    assert log.select("brand", "touchpoint", "source", "metric", "grain", "period").is_duplicated().sum() == 0
    small = alert_tests(agg, config=AlertConfig(min_n=51))
    row = small.filter((pl.col("metric") == "nps") & (pl.col("period") == "2026-11")).row(0, named=True)
    assert (row["status"], row["reason"], row["p_value"]) == ("skipped", "fewer than 51 respondents (50→50)", None)
    assert row["diff"] == pytest.approx(-50.0)  # the numbers stay visible on a skipped row


def test_alert_options_per_source_min_n_and_q() -> None:
    agg = metric_aggregates(_nps_months(), periods=("month",))
    per_source = significant_drops(agg, config=AlertConfig(source=None))
    assert sorted(per_source["source"]) == ["all", "qualtrics"]
    assert significant_drops(agg, config=AlertConfig(min_n=51)).height == 0
    assert significant_drops(agg, config=AlertConfig(q=0.002)).height == 0  # adjusted p .0022 > .002
    assert alert_messages(significant_drops(agg, config=AlertConfig(q=0.002))) == []


def test_benjamini_hochberg_by_hand() -> None:
    # m = 5, p = .01 .04 .03 .20 .005 → sorted .005 .01 .03 .04 .20 → m·p/k = .025 .025 .05 .05 .20
    # running minimum from the top keeps them; back in input order:
    got = benjamini_hochberg(__import__("numpy").array([0.01, 0.04, 0.03, 0.20, 0.005]))
    assert got.tolist() == pytest.approx([0.025, 0.05, 0.05, 0.20, 0.025])
    # a larger p earlier in rank order never gets a larger adjustment than a later one: .02 .021 with m = 2
    assert benjamini_hochberg(__import__("numpy").array([0.021, 0.02])).tolist() == pytest.approx([0.021, 0.021])


def test_touchpoint_all_is_left_out_where_it_repeats_overall() -> None:
    rows = []
    for month, (k, n) in {10: (40, 50), 11: (30, 50)}.items():
        rows += [ev(f"s{month}-{i}", "csat", 5 if i < k else 1, published_at=datetime(2026, month, 5, tzinfo=UTC))
                 for i in range(n)]
    agg = metric_aggregates(frame(rows), periods=("month",))
    assert set(agg["touchpoint"]) == {"overall", "all"}  # CSAT pools touchpoints: "all" equals "overall" here
    log = alert_tests(agg)
    assert set(log["touchpoint"]) == {"overall"}
    assert significant_drops(agg).height == 1  # 80 % → 60 % flagged once, not twice


def test_with_mentions_each_touchpoint_gets_the_sentiment_of_its_own_clauses() -> None:
    """A 5★ review "fast delivery, rude staff": delivery peaks candidate and a customer-service pothole; without
    mentions the one review sentiment was copied to both."""
    events = frame([ev("r1", "star_rating", 5, source="trustpilot", sentiment=0.1,
                       text="Lightning fast delivery, but the staff on the phone were rude.",
                       text_touchpoints=["delivery", "customer_service"])]).with_columns(
        pl.col("text_touchpoints").cast(pl.List(pl.String)))
    mentions = pl.DataFrame({
        "event_id": ["r1/star_rating/overall"] * 2, "brand": ["nordlys"] * 2, "record_id": ["r1"] * 2,
        "touchpoint": ["delivery", "customer_service"], "sentiment": [0.9, -0.8],
        "clause": ["Lightning fast delivery", "but the staff on the phone were rude."],
        "published_at": [datetime(2026, 11, 18, tzinfo=UTC)] * 2, "occurred_at": [None, None],
    }, schema_overrides={"occurred_at": pl.Datetime("us", "UTC"), "published_at": pl.Datetime("us", "UTC")})
    with_m = {r["touchpoint"]: r for r in peaks_potholes(events, mentions=mentions, periods=("all",)).to_dicts()}
    copied = {r["touchpoint"]: r for r in peaks_potholes(events, periods=("all",)).to_dicts()}
    assert (with_m["customer_service"]["potholes"], with_m["delivery"]["potholes"]) == (1, 0)
    assert with_m["customer_service"]["pothole_examples"] == ["but the staff on the phone were rude."]
    assert (copied["customer_service"]["potholes"], copied["delivery"]["potholes"]) == (0, 0)  # 0.1 everywhere
    # the overall unit keeps the review's own stars and whole-text sentiment: 5★ but 0.1 is no peak
    assert (with_m["overall"]["n"], with_m["overall"]["peaks"]) == (1, 0)


def test_a_touchpoint_only_the_text_names_can_peak() -> None:
    events = frame([ev("r1", "star_rating", 4, source="trustpilot", sentiment=0.9, text="…",
                       text_touchpoints=["delivery"])]).with_columns(pl.col("text_touchpoints").cast(
                           pl.List(pl.String)))
    out = {r["touchpoint"]: r for r in peaks_potholes(events, periods=("all",)).to_dicts()}
    # delivery has no score of its own: strongly positive language makes it a peak; overall (4★, not top box) not
    assert (out["delivery"]["peaks"], out["overall"]["peaks"]) == (1, 0)


def test_journeys_need_two_different_moments() -> None:
    t = datetime(2026, 11, 3, tzinfo=UTC)
    one_response = frame([ev("r1", "csat", 5, touchpoint="delivery", occurred_at=t, customer_key="k1"),
                          ev("r1", "csat", 1, touchpoint="price", occurred_at=t, customer_key="k1")])
    assert peak_end_journeys(one_response).height == 0  # two answers, one moment: no journey, no gap of zero
