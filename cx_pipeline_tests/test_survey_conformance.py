"""Every real export under ../shared/fixtures/survey_exports: exact responses, measures, metrics, scales, values.

Expected numbers were checked by hand against the files (e.g. the first response's answers). The files
are read in place and never copied into the repo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cx_pipeline.sources.registry import detect_format
from cx_pipeline.sources.surveys.plain_table import PlainTableFormat
from cx_pipeline.sources.surveys.qualtrics import QualtricsFormat
from cx_pipeline.sources.surveys.question_registry import QuestionConfig
from cx_pipeline.sources.surveys.surveymonkey import SurveyMonkeyFormat

pytestmark = pytest.mark.conformance
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SURVEYS = FIXTURES / "survey_exports"

C = ("comment", None, None)


@dataclass(frozen=True)
class Pin:
    """What the current code reads from a file: format, responses, measures, and each measure's metric and scale.

    ``gaps`` names what it still gets wrong and the issue that closes it, so a reader sees the debt next to the pin.
    """

    format: str
    responses: int
    measures: int
    metrics: dict[str, tuple[str, float | None, float | None]] = field(default_factory=dict)
    gaps: str = ""


@dataclass(frozen=True)
class Gap:
    """A file the current code cannot read at all: the error it gives today and the issue that closes the gap."""

    error: str
    closed_by: str


# One line per file in ../shared/fixtures/survey_exports; test_every_fixture_is_covered fails until a new file has one.
# To pin a new file, run `.venv/bin/cx-pipeline parse ../shared/fixtures/survey_exports/NEW -o /tmp/new.parquet`,
# check the counts against the file by hand, and add `"NEW": Pin(format, responses, measures, {key prefix: (metric,
# scale_min, scale_max)}, gaps="what is still wrong (issue N)")`, or `Gap("error text", "issue N")` when it fails.
EXPECTED: dict[str, Pin | Gap] = {
    "qualtrics_qualtRics_sample_3-header-rows_de-labels.csv": Pin("qualtrics", 1, 1, {"comment": C}),
    "qualtrics_qualtRics_sample_legacy_2-header-rows_bom.csv": Pin("qualtrics", 1, 0, gaps="one response: Q2's single text answer is not provably free text (map it)"),
    "qualtrics_2025_nps-widget_NPS_GROUP_labels.csv": Pin("qualtrics", 47, 282, {
        "Q54": ("rating", 0.0, 10.0), "Q56": ("rating", 0.0, 10.0), "Q57": ("rating", 0.0, 10.0),
        "Q23_1": ("csat", 1.0, 7.0), "Q62_1": ("csat", 1.0, 7.0), "Q65_1": ("csat", 1.0, 7.0)}),
    "qualtrics_2016_insights_py-dict-importid_no-basis.csv": Pin("qualtrics", 15, 135, {"Q": ("rating", 1.0, 3.0)}),
    "qualtrics_2016_free-text-comments.csv": Pin("qualtrics", 10, 10, {"comment": C}),
    "surveymonkey_csv_excel-resaved_sci-notation-ids.csv": Pin("surveymonkey", 4, 36, {"Q": ("rating", 1.0, 5.0)}, gaps="Q3 'Minimal … Extensive' is no known scale (map it)"),
    "surveymonkey_xlsx_post.xlsx": Pin("surveymonkey", 4, 35, {"Q": ("rating", 1.0, 5.0)}, gaps="Q3 'Minimal … Extensive' is no known scale (map it)"),
    "typeform_osmi-2018_csv_html-in-headers.csv": Pin("typeform", 417, 403, {"Q10": ("ces", 1.0, 5.0), "comment": C}),
    "googleforms_nus-bus-satisfaction_duplicate-headers.csv": Pin("google_forms", 77, 924,
                                                                  {"Choose the column": ("csat", 1.0, 5.0)}),
    "nps_simple_response-date_user_rating.csv": Pin("csv", 1952, 1952, {"nps_rating": ("nps", 0.0, 10.0)}),
    "googleforms_fr_horodateur_recommander_0-10.csv": Pin("google_forms", 93, 93, {"Dans quelle mesure": ("nps", 0.0, 10.0)}, gaps="'description' (one sentence per brand) is not read as a comment"),
    "googleforms_de_zeitstempel_dup-headers_weiterempfehlen_1-5.csv": Pin("google_forms", 51, 49, {
        "Wie zufrieden": ("csat", 1.0, 5.0), "Wie wahrscheinlich": ("rating", 1.0, 5.0), "Wie würdest": ("rating", 1.0, 5.0), "comment": C}),
    "googleforms_sv_tidstampel_dotted-time_likert.csv": Pin("google_forms", 21, 0, gaps="a weekly pulse of agreement statements: none names a CX metric"),
    "spss_epsi_no_value-labels_weights.sav": Pin("spss", 20, 280, {
        "q3": ("csat", 1.0, 10.0), "q8a": ("csat", 1.0, 10.0), "q18": ("ces", 1.0, 10.0), "q4": ("rating", 1.0, 10.0),
        "q6": ("rating", 1.0, 10.0), "q8": ("rating", 1.0, 10.0), "serv": ("rating", 1.0, 10.0)},
        gaps="q10/q15b 1-10 likelihood items say not what is likely (no variable labels): map them"),
}
PINS = {name: pin for name, pin in EXPECTED.items() if isinstance(pin, Pin)}
GAPS = {name: gap for name, gap in EXPECTED.items() if isinstance(gap, Gap)}


def _dir() -> Path:
    if not SURVEYS.is_dir():
        pytest.skip(f"shared fixtures not available: {SURVEYS} is absent (conformance tests need ../shared/fixtures)")
    return SURVEYS


def _parse(name: str, fmt=None):
    data = (_dir() / name).read_bytes()
    fmt = fmt or detect_format(data, name)
    return fmt, fmt.parse(data, location=name)


def test_every_fixture_is_covered() -> None:
    assert sorted(p.name for p in _dir().iterdir()) == sorted(EXPECTED), "pin the new file: see EXPECTED"


@pytest.mark.parametrize("name", sorted(PINS))
def test_counts_metrics_and_scales(name: str) -> None:
    pin = PINS[name]
    fmt, r = _parse(name)
    assert fmt.name == pin.format
    assert r.record_count == pin.responses
    assert r.measures.height == pin.measures
    seen = r.measures.select("measure_key", "metric", "scale_min", "scale_max").unique()
    for row in seen.iter_rows(named=True):
        match = [v for k, v in pin.metrics.items() if row["measure_key"].startswith(k)]
        assert match, f"unexpected measure {row['measure_key']}"
        assert (row["metric"], row["scale_min"], row["scale_max"]) == match[0]
    assert r.measures.select("native_id", "measure_key").is_duplicated().sum() == 0
    if pin.measures == 0:
        assert r.empty_reason


@pytest.mark.parametrize("name", sorted(GAPS))
def test_known_gap_fails_clearly_by_name(name: str) -> None:
    """An expected gap, not a skip: today the file is refused with an error naming it (and the pin says who fixes it).

    When the gap closes this test fails: replace the Gap line with a Pin of what the file now yields.
    """
    from cx_pipeline.contract.identity import CustomerKeyer
    from cx_pipeline.pipeline.parse_files import parse_bytes
    from cx_pipeline.sources.base import ParseError

    path = _dir() / name
    assert detect_format(path.read_bytes(), name) is None, f"{name} is readable now: pin it ({GAPS[name].closed_by})"
    with pytest.raises(ParseError) as err:
        parse_bytes(path.read_bytes(), location=str(path), keyer=CustomerKeyer("t"), brand="B")
    assert str(path) in str(err.value) and GAPS[name].error in str(err.value)


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
        r.measures.filter((pl.col("native_id") == "R_ebopwASnJ6p0KSp") & pl.col("measure_key").str.contains("^Q[34]_"))
        .select("measure_key", "score_raw")
        .iter_rows()
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
    q1 = r.measures.filter(pl.col("measure_key") == "Q1")
    assert r.measures["native_id"].n_unique() == 4  # 4 identical '1.14628E+11' never merged
    assert q1["score_raw"].to_list() == [1.0, 2.0, 3.0, 3.0]
    assert q1["published_at"][0] == datetime(2024, 6, 20, 13, 29, tzinfo=UTC)
    assert q1["customer_ref"].to_list() == ["ext:42462904", "ext:42462903", "ext:42462902", "ext:42462901"]
    _, x = _parse("surveymonkey_xlsx_post.xlsx", SurveyMonkeyFormat(cfg))
    q1 = x.measures.filter(pl.col("measure_key") == "Q1")
    assert q1["native_id"].to_list() == ["114628165985", "114628165745", "114628165460", "114628164027"]
    assert q1["published_at"][0] == datetime(2024, 6, 20, 14, 45, 29, tzinfo=UTC)


def test_surveymonkey_ordered_labels_without_a_map() -> None:
    """'Not at all … Extremely knowledgable/confident' is an ordered scale: rating 1–5 on 'other', no map needed."""
    _, r = _parse("surveymonkey_csv_excel-resaved_sci-notation-ids.csv")
    q1 = r.measures.filter(pl.col("measure_key") == "Q1")
    # file, Q1 per response: Not at all / A little / Somewhat / Somewhat knowledgable
    assert q1["score_raw"].to_list() == [1.0, 2.0, 3.0, 3.0]
    assert set(r.measures["touchpoint"]) == {"other"}
    assert any("Q3_1" in w and "not mapped" in w for w in r.warnings)


def test_qualtrics_2025_items_stay_apart_with_their_direction() -> None:
    """Three unrelated 0–10 widget items: each its own measure on 'other', Q56 (wrong answers seen) lower-is-better."""
    _, r = _parse("qualtrics_2025_nps-widget_NPS_GROUP_labels.csv")
    items = r.measures.filter(pl.col("measure_key").is_in(["Q54", "Q56", "Q57"]))
    per = {k: (tp, hib) for k, tp, hib in items.select("measure_key", "touchpoint", "higher_is_better").unique().iter_rows()}
    assert per == {"Q54": ("other", True), "Q56": ("other", False), "Q57": ("other", True)}


def test_typeform_difficult_is_not_somewhat_difficult() -> None:
    _, r = _parse("typeform_osmi-2018_csv_html-in-headers.csv")
    counts = dict(r.measures.filter(pl.col("measure_key") == "Q10").group_by("score_raw").len().iter_rows())
    # file: Difficult 36, Somewhat difficult 39, Neither 33, Somewhat easy 109, Very easy 72, I don't know 72
    assert counts == {1.0: 36, 2.0: 39, 3.0: 33, 4.0: 109, 5.0: 72, None: 72}


def test_spss_value_labels_missing_codes_and_weights() -> None:
    """EPSI .sav: numbers on labelled 1–10 scales, 98 (declared or not) and 'Vet ikke' → no score, weight w."""
    fmt, r = _parse("spss_epsi_no_value-labels_weights.sav")
    assert fmt.name == "spss"
    m = r.measures
    assert m["weight"].to_list() == [1.0] * m.height  # variable w
    assert m["published_at"].min() == datetime(2015, 6, 18, 12, 29, 42, tzinfo=UTC)  # StartDate '06/18/2015 12:29:42'
    assert m["published_at"].null_count() == 0
    # q4a: one declared-missing 98 → a measure without a score; q4d: two undeclared 98s → the same
    nulls = dict(m.group_by("measure_key").agg(pl.col("score_raw").null_count()).iter_rows())
    assert nulls["q4a"] == 1 and nulls["q4d"] == 2 and nulls["q3"] == 0
    assert m["score_raw"].drop_nulls().is_between(1, 10).all()
    assert any("declared missing code" in w for w in r.warnings)
    assert any("survey weights from variable 'w'" in w for w in r.warnings)
    assert any("read as month-first" in w for w in r.warnings)  # StartDate '06/24/2015 …'
    q8b = m.filter(pl.col("measure_key") == "q8b").row(0, named=True)
    assert (q8b["metric"], q8b["touchpoint"], q8b["scale_max"]) == ("rating", "price", 10.0)


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


def test_google_forms_de_and_fr_values() -> None:
    _, de = _parse("googleforms_de_zeitstempel_dup-headers_weiterempfehlen_1-5.csv")
    csat = de.measures.filter(pl.col("metric") == "csat")
    assert (csat.height, csat["score_raw"].mean()) == (15, 3.4)
    assert de.measures["published_at"].min() == datetime(2023, 3, 10, 12, 28, 23, tzinfo=UTC)  # "10.03.2023": day-first
    assert any("day-first" in w for w in de.warnings) and any("duplicate column code" in w for w in de.warnings)
    assert de.measures.filter(pl.col("measure_key").str.starts_with("Wie wahrscheinlich"))["touchpoint"].unique().to_list() == ["overall"]
    _, fr = _parse("googleforms_fr_horodateur_recommander_0-10.csv")
    # "08/11/2021 17:05:47" is 8 November in a French export: the French 'Horodateur' header says day-first
    assert fr.measures["published_at"].min() == datetime(2021, 11, 8, 17, 5, 47, tzinfo=UTC)
    assert any("assumed day-first from the French header 'Horodateur'" in w for w in fr.warnings)
    assert fr.measures["metric"].unique().to_list() == ["nps"] and fr.measures["score_raw"].null_count() == 0
