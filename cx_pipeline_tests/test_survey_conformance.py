"""Every real export under ../shared/fixtures/survey_exports: exact responses, measures, metrics, scales, values.

Expected numbers were checked by hand against the files (e.g. the first response's answers). The files
are read in place and never copied into the repo.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cx_pipeline.sources.formats.plain_table import PlainTableFormat
from cx_pipeline.sources.formats.qualtrics import QualtricsFormat
from cx_pipeline.sources.formats.surveymonkey import SurveyMonkeyFormat
from cx_pipeline.sources.registry import detect_format
from cx_pipeline.surveys.question_registry import QuestionConfig

pytestmark = pytest.mark.conformance
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SURVEYS = FIXTURES / "survey_exports"

# file → (format, responses, measures, {measure_key prefix: (metric, scale_min, scale_max)})
EXPECTED: dict[str, tuple[str, int, int, dict[str, tuple[str, float | None, float | None]]]] = {
    "qualtrics_qualtRics_sample_3-header-rows_de-labels.csv": ("qualtrics", 1, 1, {"comment": ("comment", None, None)}),
    "qualtrics_qualtRics_sample_legacy_2-header-rows_bom.csv": ("qualtrics", 1, 0, {}),
    "qualtrics_2025_nps-widget_NPS_GROUP_labels.csv": (
        "qualtrics",
        47,
        282,
        {
            "Q54": ("rating", 0.0, 10.0),
            "Q56": ("rating", 0.0, 10.0),
            "Q57": ("rating", 0.0, 10.0),
            "Q23_1": ("csat", 1.0, 7.0),
            "Q62_1": ("csat", 1.0, 7.0),
            "Q65_1": ("csat", 1.0, 7.0),
        },
    ),
    "qualtrics_2016_insights_py-dict-importid_no-basis.csv": ("qualtrics", 15, 0, {}),
    "qualtrics_2016_free-text-comments.csv": ("qualtrics", 10, 10, {"comment": ("comment", None, None)}),
    "surveymonkey_csv_excel-resaved_sci-notation-ids.csv": ("surveymonkey", 4, 0, {}),
    "surveymonkey_xlsx_post.xlsx": ("surveymonkey", 4, 0, {}),
    "typeform_osmi-2018_csv_html-in-headers.csv": (
        "typeform",
        417,
        403,
        {"Q10": ("ces", 1.0, 5.0), "comment": ("comment", None, None)},
    ),
    "googleforms_nus-bus-satisfaction_duplicate-headers.csv": (
        "google_forms",
        77,
        924,
        {"Choose the column": ("csat", 1.0, 5.0)},
    ),
    "nps_simple_response-date_user_rating.csv": ("csv", 1952, 1952, {"nps_rating": ("nps", 0.0, 10.0)}),
}


def _dir() -> Path:
    if not SURVEYS.is_dir():
        pytest.skip(f"shared fixtures not available: {SURVEYS} is absent (conformance tests need ../shared/fixtures)")
    return SURVEYS


def _parse(name: str, fmt=None):
    data = (_dir() / name).read_bytes()
    fmt = fmt or detect_format(data, name)
    return fmt, fmt.parse(data, location=name)


def test_every_fixture_is_covered() -> None:
    assert sorted(p.name for p in _dir().iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_metrics_and_scales(name: str) -> None:
    fmt_name, responses, measures, metrics = EXPECTED[name]
    fmt, r = _parse(name)
    assert fmt.name == fmt_name
    assert r.record_count == responses
    assert r.measures.height == measures
    seen = r.measures.select("measure_key", "metric", "scale_min", "scale_max").unique()
    for row in seen.iter_rows(named=True):
        match = [v for k, v in metrics.items() if row["measure_key"].startswith(k)]
        assert match, f"unexpected measure {row['measure_key']}"
        assert (row["metric"], row["scale_min"], row["scale_max"]) == match[0]
    assert r.measures.select("native_id", "measure_key").is_duplicated().sum() == 0
    if measures == 0:
        assert r.empty_reason


def test_qualtrics_2025_exact_values() -> None:
    _, r = _parse("qualtrics_2025_nps-widget_NPS_GROUP_labels.csv")
    first = r.measures.filter(pl.col("native_id") == "R_8rNxhnmcwViUEp7")
    vals = dict(first.select("measure_key", "score_raw").iter_rows())
    assert vals["Q54"] == 9.0 and vals["Q56"] == 7.0
    assert first["published_at"][0] == datetime(2025, 12, 25, 21, 15, 36, tzinfo=UTC)  # Europe/Berlin → UTC
    assert first["language"][0] == "de"
    assert any("duplicate column code" in w and "Q51_1" in w for w in r.warnings)
    unmapped = [q["key"] for q in r.aggregates[0]["unmapped_questions"]]
    assert "QID99" in unmapped  # Prolific ids are never comments
    assert not r.measures["text"].drop_nulls().str.contains(r"^[0-9a-f]{24}$").any()


def test_qualtrics_samples_dates_and_ids() -> None:
    _, r = _parse("qualtrics_qualtRics_sample_3-header-rows_de-labels.csv")
    row = r.measures.row(0, named=True)
    assert (row["native_id"], row["text"], row["customer_ref"]) == (
        "R_2YPOQ602ER1jkf1",
        "Hello World!",
        "qualtrics:R_2YPOQ602ER1jkf1",
    )
    assert row["published_at"] == datetime(2017, 7, 18, 8, 28, 48, tzinfo=UTC)
    cfg = QuestionConfig.from_mapping({"Q2": "comment"})
    _, legacy = _parse("qualtrics_qualtRics_sample_legacy_2-header-rows_bom.csv", QualtricsFormat(cfg))
    assert legacy.measures["text"].to_list() == ["Hello World!"]
    assert legacy.measures["native_id"].to_list() == ["R_2YPOQ602ER1jkf1"]


def test_qualtrics_no_basis_codes_become_null_with_config() -> None:
    cfg = QuestionConfig.from_mapping(
        {"questions": {"Q3_*": {"metric": "rating", "scale": [1, 3]}, "Q4_*": {"metric": "rating", "scale": [1, 3]}}}
    )
    _, r = _parse("qualtrics_2016_insights_py-dict-importid_no-basis.csv", QualtricsFormat(cfg))
    first = dict(
        r.measures.filter(pl.col("native_id") == "R_ebopwASnJ6p0KSp").select("measure_key", "score_raw").iter_rows()
    )
    # file: Q3_1..Q3_4 = -1,3,3,1 ; Q4_1..Q4_4 = 3,-2,-1,-2
    assert first == {
        "Q3_1": None,
        "Q3_2": 3.0,
        "Q3_3": 3.0,
        "Q3_4": 1.0,
        "Q4_1": 3.0,
        "Q4_2": None,
        "Q4_3": None,
        "Q4_4": None,
    }
    assert r.measures["score_raw"].drop_nulls().min() >= 1
    assert any("no basis" in w for w in r.warnings)


def test_surveymonkey_sci_ids_and_xlsx_ids() -> None:
    _, csv_r = _parse("surveymonkey_csv_excel-resaved_sci-notation-ids.csv")
    assert any("scientific notation" in w for w in csv_r.warnings)
    assert any("month-first" in w for w in csv_r.warnings)
    cfg = QuestionConfig.from_mapping(
        {
            "Q1": {
                "metric": "rating",
                "scale": [1, 4],
                "labels": {
                    "Not at all knowledgable": 1,
                    "A little knowledgable": 2,
                    "Somewhat knowledgable": 3,
                    "Very knowledgable": 4,
                    "Extremely knowledgable": 4,
                },
            }
        }
    )
    _, r = _parse("surveymonkey_csv_excel-resaved_sci-notation-ids.csv", SurveyMonkeyFormat(cfg))
    assert r.measures["native_id"].n_unique() == 4  # 4 identical '1.14628E+11' never merged
    assert r.measures["score_raw"].to_list() == [1.0, 2.0, 3.0, 3.0]
    assert r.measures["published_at"][0] == datetime(2024, 6, 20, 13, 29, tzinfo=UTC)
    assert r.measures["customer_ref"].to_list() == ["ext:42462904", "ext:42462903", "ext:42462902", "ext:42462901"]
    _, x = _parse("surveymonkey_xlsx_post.xlsx", SurveyMonkeyFormat(cfg))
    assert x.measures["native_id"].to_list() == ["114628165985", "114628165745", "114628165460", "114628164027"]
    assert x.measures["published_at"][0] == datetime(2024, 6, 20, 14, 45, 29, tzinfo=UTC)


def test_typeform_values() -> None:
    _, r = _parse("typeform_osmi-2018_csv_html-in-headers.csv")
    facts = r.aggregates[0]
    assert all("<strong>" not in q["text"] for q in facts["mapped_questions"] + facts["unmapped_questions"])
    assert r.measures.filter(pl.col("measure_key") == "Q10")["score_raw"].null_count() == 72  # "I don't know"
    assert r.measures["published_at"].min() == datetime(2018, 5, 24, 17, 23, 59, tzinfo=UTC)


def test_google_forms_values() -> None:
    _, r = _parse("googleforms_nus-bus-satisfaction_duplicate-headers.csv")
    assert any("month-first" in w for w in r.warnings)
    assert r.measures["published_at"].min().tzinfo is not None
    keys = r.measures["measure_key"].unique().to_list()
    assert len(keys) == 15 and all("#" in k for k in keys)  # 5 grid rows × 3 repeated sections
    assert r.measures["score_raw"].is_between(1, 5).all()


def test_plain_nps_values() -> None:
    fmt, r = _parse("nps_simple_response-date_user_rating.csv")
    assert isinstance(fmt, PlainTableFormat)
    first = r.measures.row(0, named=True)
    assert (first["score_raw"], first["published_at"], first["customer_ref"]) == (
        7.0,
        datetime(2020, 11, 6, tzinfo=UTC),
        "ext:11037",
    )
    assert r.measures["native_id"].n_unique() == 1952
