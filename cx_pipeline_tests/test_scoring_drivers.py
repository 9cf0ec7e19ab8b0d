"""Key drivers: Shapley regression checked by hand for k=2 and on data with a known ordering; text impact."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from cx_pipeline.scoring.drivers import (
    DRIVER_SCHEMA,
    DriverConfig,
    key_drivers,
    shapley_drivers,
    shapley_regression,
    shapley_values,
    subset_r2,
    text_impact_drivers,
)
from cx_pipeline_tests.test_scoring_aggregates import ev, frame

APPROX = {"abs": 1e-9}
# k=2 hand case. Centered: x1 → (−2,−1,0,1,2), x2 = (1,3,2,5,4) → (−2,0,−1,2,1), y = (2,3,5,4,6) → (−2,−1,1,0,2)
# Sxx1 = Sxx2 = Syy = 10; S12 = 4+0+0+2+2 = 8; S1y = 4+1+0+0+4 = 9; S2y = 4+0−1+0+2 = 5
# r12 = .8, r1y = .9, r2y = .5 → R²(1) = .81, R²(2) = .25,
# R²(1,2) = (r1² + r2² − 2·r1·r2·r12)/(1 − r12²) = (.81 + .25 − .72)/.36 = .34/.36 = .944444
# Shapley: φ1 = ½·R²(1) + ½·(R²(12) − R²(2)) = .405 + ½·.694444 = .752222
#          φ2 = ½·R²(2) + ½·(R²(12) − R²(1)) = .125 + ½·.134444 = .192222   (φ1 + φ2 = R²(12))
X1, X2, Y = [1, 2, 3, 4, 5], [1, 3, 2, 5, 4], [2, 3, 5, 4, 6]


def test_subset_r2_and_shapley_two_predictors_by_hand() -> None:
    x = np.column_stack([X1, X2]).astype(float)
    r2 = subset_r2(x, np.array(Y, dtype=float))
    assert r2[0b00] == 0.0
    assert r2[0b01] == pytest.approx(0.81, **APPROX)
    assert r2[0b10] == pytest.approx(0.25, **APPROX)
    assert r2[0b11] == pytest.approx(0.34 / 0.36, **APPROX)
    phi = shapley_values(r2)
    assert phi[0] == pytest.approx(0.752222222, abs=1e-8)
    assert phi[1] == pytest.approx(0.192222222, abs=1e-8)


def test_shapley_values_sum_to_r2_and_k_is_capped() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4))
    y = x @ np.array([1.0, 0.5, 0.0, -0.2]) + rng.normal(size=60)
    phi, r2 = shapley_regression(x, y)
    assert phi.sum() == pytest.approx(r2, abs=1e-12)
    with pytest.raises(ValueError, match="k ≤ 12"):
        subset_r2(np.zeros((20, 13)), np.zeros(20))


def _survey(outcome: list[float], predictors: dict[str, list[float]]) -> pl.DataFrame:
    """One response per index: a 0–1 'rating' outcome at overall plus one 0–1 rating per touchpoint."""
    rows = []
    for i, y in enumerate(outcome):
        rows.append(ev(f"s{i}", "rating", y, scale=(0.0, 1.0)))
        rows += [ev(f"s{i}", "rating", xs[i], touchpoint=tp, scale=(0.0, 1.0)) for tp, xs in predictors.items()]
    return frame(rows)


def test_shapley_drivers_from_events_matches_hand_case() -> None:
    # scaling by 1/10 leaves every R² unchanged
    events = _survey([v / 10 for v in Y], {"delivery": [v / 10 for v in X1], "website": [v / 10 for v in X2]})
    out = shapley_drivers(events, periods=("all",), config=DriverConfig(min_records=5))
    assert out.schema == pl.Schema(DRIVER_SCHEMA)
    d = out.filter(touchpoint="delivery").row(0, named=True)
    w = out.filter(touchpoint="website").row(0, named=True)
    assert (d["method"], d["outcome"], d["n"], d["rank"]) == ("shapley_regression", "rating", 5, 1)
    assert d["r2"] == pytest.approx(0.944444444, abs=1e-8)
    assert d["importance"] == pytest.approx(0.752222222, abs=1e-8)
    assert w["importance"] == pytest.approx(0.192222222, abs=1e-8)
    # shares: .752222/.944444 = .796471, .192222/.944444 = .203529
    assert d["importance_share"] == pytest.approx(0.752222222 / 0.944444444, abs=1e-8)
    # performance = mean norm: delivery (.1+.2+.3+.4+.5)/5 = .3, website (.1+.3+.2+.5+.4)/5 = .3
    assert d["performance"] == pytest.approx(0.3)
    # equal performance, delivery's share above 1/k → keep_up; website below → maintain
    assert (d["quadrant"], w["quadrant"]) == ("keep_up", "maintain")
    # bootstrap interval around each importance
    assert d["ci_low"] <= d["importance"] <= d["ci_high"] and d["unit"].startswith("share of outcome variance")
    # too few complete cases for the default minimum of 30 → one row that says so, not silence
    [note] = shapley_drivers(events, periods=("all",)).to_dicts()
    assert (note["touchpoint"], note["importance"], note["rank"]) == ("all", None, None)
    assert note["note"] == "no regression: 5 complete cases (records rating every touchpoint that varies) < 30"


def test_shapley_recovers_known_ordering() -> None:
    rng = np.random.default_rng(11)
    n = 300
    x = rng.uniform(0, 1, size=(n, 3))
    y = np.clip(0.6 * x[:, 0] + 0.3 * x[:, 1] + 0.1 * x[:, 2] + rng.normal(0, 0.05, n), 0, 1)
    events = _survey(y.tolist(), {"product": x[:, 0].tolist(), "delivery": x[:, 1].tolist(),
                                  "website": x[:, 2].tolist()})
    out = shapley_drivers(events, periods=("all",))
    assert out.sort("rank")["touchpoint"].to_list() == ["product", "delivery", "website"]
    assert out["importance"].sum() == pytest.approx(out["r2"][0], abs=1e-9)
    assert out["importance_share"].sum() == pytest.approx(1.0)
    assert out["r2"][0] > 0.8


def test_shapley_skips_touchpoints_few_respondents_rated() -> None:
    rng = np.random.default_rng(5)
    n = 40
    x = rng.uniform(0, 1, size=(n, 2))
    events = _survey(x.mean(axis=1).tolist(), {"delivery": x[:, 0].tolist(), "price": x[:, 1].tolist()})
    rare = frame([ev("s0", "rating", 0.5, touchpoint="app", scale=(0.0, 1.0))])
    out = shapley_drivers(pl.concat([events, rare], how="vertical_relaxed"), periods=("all",))
    assert sorted(out["touchpoint"]) == ["delivery", "price"]  # app: 1 of 40 < 50 % coverage


def _text_events() -> pl.DataFrame:
    # outcomes (1–5 stars → norm): r1 .25 mentions delivery; r2 0 delivery+price; r3 1; r4 .5 price; r5 .75
    spec = [("r1", 2, ["delivery"]), ("r2", 1, ["delivery", "price"]), ("r3", 5, None), ("r4", 3, ["price"]),
            ("r5", 4, [])]
    rows = [ev(r, "star_rating", s, source="trustpilot", text="…", text_touchpoints=tps) for r, s, tps in spec]
    return frame(rows).with_columns(pl.col("text_touchpoints").cast(pl.List(pl.String)))


def test_text_impact_by_hand() -> None:
    out = text_impact_drivers(_text_events(), periods=("month",), config=DriverConfig(min_mentions=1))
    assert out.schema == pl.Schema(DRIVER_SCHEMA)
    d = out.filter(touchpoint="delivery").row(0, named=True)
    p = out.filter(touchpoint="price").row(0, named=True)
    # score(all) = 100·(.25 + 0 + 1 + .5 + .75)/5 = 50
    assert d["score_all"] == pytest.approx(50.0)
    # without delivery (r3, r4, r5): 100·(1 + .5 + .75)/3 = 75 → impact = 50 − 75 = −25
    assert (d["n"], d["n_mentions"]) == (5, 2)
    assert d["score_without"] == pytest.approx(75.0)
    assert d["impact"] == pytest.approx(-25.0)
    # without price (r1, r3, r5): 100·(.25 + 1 + .75)/3 = 66.6667 → impact −16.6667
    assert p["impact"] == pytest.approx(-50 / 3)
    # importance = |impact|, shares 25/41.6667 = .6 and .4; performance = mean norm of mentioning records
    assert (d["rank"], p["rank"]) == (1, 2)
    assert d["importance_share"] == pytest.approx(0.6)
    assert d["performance"] == pytest.approx(0.125)
    assert p["performance"] == pytest.approx(0.25)
    assert (d["method"], d["outcome"], d["period"]) == ("text_impact", "mean_norm:star_rating", "2026-11")
    assert d["ci_low"] <= d["impact"] <= d["ci_high"] and d["unit"] == "points of the mean outcome (0..100)"
    # with the default minimum of 10 mentioning records, two mentions are reported but not ranked
    default = text_impact_drivers(_text_events(), periods=("month",)).filter(touchpoint="delivery").row(0, named=True)
    assert (default["rank"], default["note"]) == (None, "not ranked: 2 mentioning records < 10")


def test_text_impact_keeps_outcomes_on_one_scale() -> None:
    """A star review and an NPS response both mention delivery: two rows, never one mean over both scales."""
    events = frame([ev("s1", "star_rating", 2, source="trustpilot", text="…", text_touchpoints=["delivery"]),
                    ev("s2", "star_rating", 5, source="trustpilot", text="…", text_touchpoints=[]),
                    ev("n1", "nps", 3, text="…", text_touchpoints=["delivery"]),
                    ev("n2", "nps", 10, text="…", text_touchpoints=[])]).with_columns(
        pl.col("text_touchpoints").cast(pl.List(pl.String)))
    out = text_impact_drivers(events, periods=("all",))
    assert sorted(out["outcome"]) == ["mean_norm:nps", "mean_norm:star_rating"]
    stars = out.filter(outcome="mean_norm:star_rating").row(0, named=True)
    # stars .25 and 1 → all 62.5, without delivery 100 → impact −37.5
    assert stars["impact"] == pytest.approx(-37.5)


def test_text_impact_uses_named_mentions_when_given() -> None:
    """Mentions replace text_touchpoints: only touchpoints a clause names count, not the own-touchpoint fallback."""
    events = _text_events()
    mentions = pl.DataFrame({
        "brand": ["nordlys"] * 4, "record_id": ["r1", "r2", "r4", "r5"],
        "touchpoint": ["delivery", "delivery", "price", "price"],
        "origin": ["text", "text", "text", "own_touchpoint"],
    })
    out = text_impact_drivers(events, mentions=mentions, periods=("month",))
    d = out.filter(touchpoint="delivery").row(0, named=True)
    p = out.filter(touchpoint="price").row(0, named=True)
    assert d["impact"] == pytest.approx(-25.0)  # same records as before mention delivery
    # price is named by r4 only (r2's price tag is not in the mentions, r5's is a fallback):
    # without r4: 100·(.25 + 0 + 1 + .75)/4 = 50 → impact 0
    assert (p["n_mentions"], p["impact"]) == (1, pytest.approx(0.0))


def test_text_impact_nps_score() -> None:
    spec = [("r1", 10, ["delivery"]), ("r2", 0, ["delivery"]), ("r3", 9, None), ("r4", 7, None)]
    events = frame([ev(r, "nps", s, text="…", text_touchpoints=t) for r, s, t in spec]).with_columns(
        pl.col("text_touchpoints").cast(pl.List(pl.String))
    )
    out = text_impact_drivers(events, periods=("all",), config=DriverConfig(text_score="nps"))
    r = out.row(0, named=True)
    # all: P=2 (10, 9), D=1 (0), n=4 → 25; without delivery (9, 7): P=1, D=0, n=2 → 50; impact −25
    assert (r["score_all"], r["score_without"], r["impact"]) == (25.0, 50.0, -25.0)


def test_key_drivers_combines_methods_and_handles_missing_columns() -> None:
    events = _text_events()
    both = key_drivers(events, periods=("all",))
    assert set(both["method"]) == {"text_impact"}  # no per-touchpoint ratings → no regression
    assert text_impact_drivers(events.drop("text_touchpoints")).height == 0


def test_a_large_period_is_analysed_on_a_stable_uniform_sample() -> None:
    """Above max_records the regression runs on a hash sample: n is the sample, sampled_from the period's records,
    the same records on every run, and the ordering of a clear signal survives."""
    rng = np.random.default_rng(3)
    n = 300
    x = rng.uniform(0, 1, size=(n, 2))
    y = np.clip(0.8 * x[:, 0] + 0.2 * x[:, 1] + rng.normal(0, 0.05, n), 0, 1)
    events = _survey(y.tolist(), {"product": x[:, 0].tolist(), "delivery": x[:, 1].tolist()})
    cfg = DriverConfig(max_records=120)
    out = shapley_drivers(events, periods=("all",), config=cfg)
    assert set(out["n"].to_list()) == {120} and set(out["sampled_from"].to_list()) == {300}
    assert out.sort("rank")["touchpoint"].to_list() == ["product", "delivery"]
    assert out.equals(shapley_drivers(events, periods=("all",), config=cfg))
    full = shapley_drivers(events, periods=("all",))
    assert full["sampled_from"].null_count() == full.height and set(full["n"].to_list()) == {300}
