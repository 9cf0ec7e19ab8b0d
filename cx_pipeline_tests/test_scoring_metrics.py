"""CX metric formulas against hand-computed values (arithmetic in the comments), scalar and expression forms."""

from __future__ import annotations

import math

import polars as pl
import pytest

from cx_pipeline.scoring import metrics as m

APPROX = {"abs": 1e-6}


def test_nps_counts_se_and_adjusted_wald() -> None:
    # 10,10,9,9,9 → P=5; 8,7,8 passives; 6,0 → D=2; blank excluded → n=10
    r = m.nps([10, 10, 9, 9, 9, 8, 7, 8, 6, 0, None])
    assert (r.n, r.promoters, r.detractors) == (10, 5, 2)
    # NPS = 100·(5−2)/10 = 30
    assert r.nps == pytest.approx(30.0)
    # p=.5, d=.2: Var = .5+.2−(.3)² = .61; SE = 100·sqrt(.61/10) = 100·sqrt(.061) = 24.698178
    assert r.se == pytest.approx(24.698178, **APPROX)
    # n'=13, p'=5.75/13=.442308, d'=2.75/13=.211538, NPS'=3/13=.230769
    # Var' = .653846 − .053254 = .600592; /13 = .046199; sqrt = .214940; ·1.96 = .421283
    # CI = 100·(.230769 ∓ .421283) = (−19.051389, 65.205236)
    assert r.ci_low == pytest.approx(-19.051389, **APPROX)
    assert r.ci_high == pytest.approx(65.205236, **APPROX)


def test_nps_empty_and_configurable_z() -> None:
    assert m.nps([None, None]).nps is None
    # z=1: half = sqrt(.600592/13) = .2149404 → CI = 100·(.2307692 ∓ .2149404) = (1.582886, 44.570960)
    lo, hi = m.nps_adjusted_wald(5, 2, 10, z=1.0)
    assert lo == pytest.approx(100 * (3 / 13 - math.sqrt(0.6005917159763314 / 13)), **APPROX)
    assert lo == pytest.approx(1.582886, abs=1e-5)
    assert hi == pytest.approx(44.570960, abs=1e-5)


def test_nps_difference_se() -> None:
    # period A: P=5,D=2,n=10 → SE 24.698178; period B: P=2,D=5,n=10 → Var = .7 − .09 = .61 → same SE
    se_b = m.nps_se(2, 5, 10)
    assert se_b == pytest.approx(24.698178, **APPROX)
    # SE_diff = sqrt(2·24.698178²) = 24.698178·√2 = 34.928498
    assert m.nps_diff_se(24.69817807045694, se_b) == pytest.approx(34.928498, **APPROX)


def test_wilson_interval_and_lower_bound() -> None:
    # 8/10: p=.8, z²=3.8416, denom = 1 + .38416 = 1.38416, centre = .8 + .19208 = .99208
    # half = 1.96·sqrt(.016 + .009604) = 1.96·.160012 = .313624 → (.490157, .943319)
    lo, hi = m.wilson_interval(8, 10)
    assert lo == pytest.approx(0.490157, **APPROX)
    assert hi == pytest.approx(0.943319, **APPROX)
    assert m.wilson_lower_bound(8, 10) == pytest.approx(0.490157, **APPROX)
    assert m.wilson_interval(0, 0) is None


def test_csat_top2_box_share_and_mean() -> None:
    # 5,4,4,3,2,5,1,4: top-2 (4 or 5) = 5,4,4,5,4 → 5 of 8 = .625; mean = 28/8 = 3.5
    r = m.csat([5, 4, 4, 3, 2, 5, 1, 4, None])
    assert (r.n, r.hits) == (8, 5)
    assert r.share == pytest.approx(0.625)
    assert r.mean == pytest.approx(3.5)
    # SE = sqrt(.625·.375/8) = .171163; Wilson 5/8 = (.305738, .863158)
    assert r.se == pytest.approx(math.sqrt(0.625 * 0.375 / 8))
    assert (r.ci_low, r.ci_high) == (pytest.approx(0.305738, **APPROX), pytest.approx(0.863158, **APPROX))


def test_csat_generalizes_to_scale_and_direction() -> None:
    # 1–7 scale: top-2 = 6,7 → [7,6,5] → 2 of 3
    assert m.csat([7, 6, 5], scale_min=1, scale_max=7).hits == 2
    # lower-is-better 1–5: best two points are 1 and 2 → [1,2,3] → 2 of 3
    assert m.csat([1, 2, 3], higher_is_better=False).hits == 2


def test_ces_mean_and_pct_easy_direction_aware() -> None:
    # 1–7 agreement: easy = 5..7 → 7,6,5,7,5 = 5 of 8; mean = 39/8 = 4.875
    r = m.ces([7, 6, 5, 4, 3, 7, 2, 5])
    assert (r.n, r.hits) == (8, 5)
    assert r.mean == pytest.approx(4.875)
    # legacy 1–5 lower-is-better: norm = (5−x)/4 → 1, .75, .5, .25, 0; easy (≥ 2/3) = x ∈ {1, 2} → 2 of 5
    legacy = m.ces([1, 2, 3, 4, 5], scale_min=1, scale_max=5, higher_is_better=False)
    assert legacy.hits == 2
    assert legacy.share == pytest.approx(0.4)


def test_star_mean_bayesian_and_top_box_lower_bound() -> None:
    r = m.stars([5, 5, 4, 3, 1])
    # mean = 18/5 = 3.6; deviations 1.4,1.4,.4,−.6,−2.6 → Σ² = 11.2, s² = 2.8, SE = sqrt(2.8/5) = .748331
    assert r.mean == pytest.approx(3.6)
    assert r.se == pytest.approx(0.748331, **APPROX)
    # CI = 3.6 ∓ 1.96·.748331 = (2.133270, 5.066730)
    assert r.ci_low == pytest.approx(2.133270, **APPROX)
    assert r.ci_high == pytest.approx(5.066730, **APPROX)
    # Bayesian: (7·3.5 + 18)/(7 + 5) = 42.5/12 = 3.541667
    assert r.bayesian_mean == pytest.approx(3.541667, **APPROX)
    # top box 2/5; Wilson lower: centre .4+.38416 = .78416, half = 1.96·sqrt(.048+.038416) = .576173,
    # denom 1.76832 → (.78416 − .576173)/1.76832 = .117618
    assert r.top_box_share == pytest.approx(0.4)
    assert r.top_box_lower == pytest.approx(0.117618, **APPROX)
    # a different prior: (10·4 + 18)/15 = 3.866667
    assert m.bayesian_average([5, 5, 4, 3, 1], prior_count=10, prior_mean=4) == pytest.approx(58 / 15)


def test_sentiment_net_and_mean() -> None:
    # neutral band ±.05: .8, .3 positive; 0, .02 neutral; −.5 negative → P=2, N=1, n=5
    r = m.sentiment([0.8, 0.3, 0.0, -0.5, 0.02, None])
    assert (r.n, r.positive, r.negative) == (5, 2, 1)
    # net = 100·(2−1)/5 = 20; mean = (.8+.3+0−.5+.02)/5 = .124
    assert r.net == pytest.approx(20.0)
    assert r.mean == pytest.approx(0.124)
    # SE = 100·sqrt((.4+.2−.04)/5) = 100·sqrt(.112) = 33.466401
    assert r.se == pytest.approx(33.466401, **APPROX)
    # labels win over the score
    r2 = m.sentiment([0.8, -0.9], ["negative", None])
    assert (r2.positive, r2.negative) == (0, 2)


def _eval(frame: pl.DataFrame, **exprs: pl.Expr) -> dict[str, float]:
    return frame.select(**exprs).row(0, named=True)


def test_expressions_match_scalars() -> None:
    counts = pl.DataFrame({"p": [5], "d": [2], "n": [10]})
    p, d, n = pl.col("p"), pl.col("d"), pl.col("n")
    lo, hi = m.nps_adjusted_wald_expr(p, d, n)
    w_lo, w_hi = m.wilson_expr(pl.lit(8), n)
    got = _eval(counts, v=m.nps_value_expr(p, d, n), se=m.nps_se_expr(p, d, n), lo=lo, hi=hi, wlo=w_lo, whi=w_hi)
    assert got["v"] == pytest.approx(30.0)
    assert got["se"] == pytest.approx(24.698178, **APPROX)
    assert (got["lo"], got["hi"]) == (pytest.approx(-19.051389, **APPROX), pytest.approx(65.205236, **APPROX))
    assert (got["wlo"], got["whi"]) == (pytest.approx(0.490157, **APPROX), pytest.approx(0.943319, **APPROX))


def test_row_classifiers() -> None:
    df = pl.DataFrame({
        "score_raw": [10.0, 7.0, 6.0, None, 2.0],
        "scale_min": [0.0, 1.0, 1.0, 1.0, 1.0],
        "scale_max": [10.0, 7.0, 5.0, 5.0, 5.0],
        "higher_is_better": [True, True, True, True, False],
        # direction-aware norm: (x−min)/(max−min), or (max−x)/(max−min) when lower is better
        "score_norm": [1.0, 1.0, 1.25, None, 0.75],
    }).with_columns(pl.col("score_norm").clip(0, 1))
    out = df.select(nps=m.nps_class_expr(), top2=m.top2_box_expr(), easy=m.ces_easy_expr(), top=m.top_box_expr())
    # NPS classes read as 0–10 answers: 10 promoter, 7 passive, 6 and 2 detractors
    assert out["nps"].to_list() == [1, 0, -1, None, -1]
    # top-2: 10 of 0–10 yes; 7 of 1–7 yes; 6 "of 1–5" is beyond max → distance −1 → yes; 2 on lower-better 1–5 yes
    assert out["top2"].to_list() == [True, True, True, None, True]
    assert out["easy"].to_list() == [True, True, True, None, True]
    assert out["top"].to_list() == [True, True, True, None, False]


def test_sentiment_class_expr_prefers_label() -> None:
    df = pl.DataFrame({"sentiment": [0.9, 0.01, -0.2, None], "sentiment_label": ["negative", None, None, "Positive"]})
    cls = m.sentiment_class_expr(df.columns)
    assert cls is not None
    assert df.select(cls).to_series().to_list() == [-1, 0, -1, 1]
    assert m.sentiment_class_expr(["score_raw"]) is None
