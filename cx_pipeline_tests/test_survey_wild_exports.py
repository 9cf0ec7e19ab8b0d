"""Issue 12's failure classes, each reproduced on an export written here (never a copy of a shared file).

Wrong sheet, header rows counted as responses, an obvious date column ignored, obvious CX columns not
mapped, and the smaller ones (a question map for `parse`, per-file inbox mappings, graded label scales,
unrelated 0–10 items pooled, duplicate events across overlapping inputs), plus SPSS .sav (issue 14 item 4).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cx_pipeline.pipeline.parse_files import parse_bytes
from cx_pipeline.sources.base import ParseError
from cx_pipeline.sources.registry import detect_format
from cx_pipeline.sources.surveys.plain_table import PlainTableFormat
from cx_pipeline.sources.surveys.question_registry import QuestionConfig

QUESTIONS = [
    "How likely are you to recommend Nordlys Shop to a friend?",
    "How satisfied are you with the delivery?",
    "Anything else you want to tell us?",
]
COMMENTS = ["Fast delivery, thanks", "The parcel came late", "", "Friendly support on the phone", ""]


def _parse(data: bytes, name: str, **kwargs):
    fmt = detect_format(data, name)
    assert fmt is not None, name
    if kwargs:
        fmt = type(fmt)(**kwargs)
    return fmt, fmt.parse(data, location=name)


# ------------------------------------------------------------------ wrong sheet


def _raw_data_workbook(path: Path, responses: int) -> None:
    """A SurveyMonkey 'analyze' workbook: a question list first, then Raw_Data with two header rows."""
    xlsxwriter = pytest.importorskip("xlsxwriter")
    wb = xlsxwriter.Workbook(str(path))
    listing = wb.add_worksheet("Question_List")
    listing.write_row(0, 0, ["Number", "Question"])
    for i in range(100):  # a long list that a first-sheet reader takes for 100 responses
        listing.write_row(i + 1, 0, [f"Q{i + 1}", QUESTIONS[i % 3]])
    raw = wb.add_worksheet("Raw_Data")
    raw.write_row(0, 0, ["Respondent ID", "Start Date", "End Date", *QUESTIONS])
    raw.write_row(1, 0, ["", "", "", "Response", "Response", "Open-Ended Response"])
    rnd = random.Random(12)
    for i in range(responses):
        raw.write_number(i + 2, 0, 11462816000 + i)
        raw.write_string(i + 2, 1, f"2025-03-{1 + i % 28:02d} 10:00:00")
        raw.write_string(i + 2, 2, f"2025-03-{1 + i % 28:02d} 10:05:00")
        raw.write_number(i + 2, 3, rnd.randint(0, 10))
        raw.write_string(i + 2, 4, rnd.choice(["Very satisfied", "Satisfied", "Dissatisfied", "Very dissatisfied"]))
        raw.write_string(i + 2, 5, COMMENTS[i % len(COMMENTS)])
    wb.close()


def test_wrong_sheet_the_response_sheet_is_chosen_by_content(tmp_path: Path) -> None:
    book = tmp_path / "cx_survey.xlsx"
    _raw_data_workbook(book, 198)
    fmt, r = _parse(book.read_bytes(), book.name)
    assert fmt.name == "surveymonkey"
    assert r.record_count == 198
    assert r.measures.filter(pl.col("metric") == "nps").height == 198
    assert r.measures.filter(pl.col("metric") == "csat")["touchpoint"].unique().to_list() == ["delivery"]
    note = next(w for w in r.warnings if w.startswith("read sheet"))
    assert "'Raw_Data' of 2" in note and "Respondent ID" in note and "'Question_List'" in note


def test_a_forced_sheet_wins_and_a_missing_one_is_named(tmp_path: Path) -> None:
    book = tmp_path / "cx_survey.xlsx"
    _raw_data_workbook(book, 5)
    plain = PlainTableFormat(sheet="Question_List")
    r = plain.parse(book.read_bytes(), location=str(book))
    assert any("chosen by --sheet" in w for w in r.warnings)
    with pytest.raises(ParseError, match=r"sheet 'Answers' not found: .*'Question_List', 'Raw_Data'") as err:
        PlainTableFormat(sheet="Answers").parse(book.read_bytes(), location=str(book))
    assert str(book) in str(err.value)


def test_plain_workbook_with_a_summary_sheet_first(tmp_path: Path) -> None:
    xlsxwriter = pytest.importorskip("xlsxwriter")
    book = tmp_path / "nps_export.xlsx"
    wb = xlsxwriter.Workbook(str(book))
    summary = wb.add_worksheet("Summary")
    summary.write_row(0, 0, ["Metric", "Value"])
    summary.write_row(1, 0, ["NPS", 12])
    summary.write_row(2, 0, ["Responses", 30])
    data = wb.add_worksheet("Responses")
    data.write_row(0, 0, ["response_id", "submitted", "nps", "comment"])
    for i in range(30):
        data.write_row(i + 1, 0, [f"r{i}", f"2025-02-{1 + i % 28:02d}", i % 11, "ok" if i % 2 else ""])
    wb.close()
    r = PlainTableFormat().parse(book.read_bytes(), location=book.name)
    assert r.record_count == 30 and r.measures.filter(pl.col("metric") == "nps").height == 30
    assert any("read sheet 'Responses' of 2" in w for w in r.warnings)


# ------------------------------------------------------------------ header rows counted as responses


def _pandas_resaved_surveymonkey(responses: int) -> str:
    """A SurveyMonkey CSV after pandas read_csv(header=0) + to_csv(): index column, 'Unnamed: N' continuation
    headers, the 'Response'/option sub-label row as the first data row, and trailing empty columns."""
    header = ["", "Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address", "Email Address",
              "First Name", "Last Name", "Custom Data 1", QUESTIONS[0],
              "How satisfied are you with each of the following?", "Unnamed: 12", QUESTIONS[2], "Unnamed: 14"]
    sub = ["0", "", "", "", "", "", "", "", "", "", "Response", "Delivery", "Customer service",
           "Open-Ended Response", ""]
    lines = [",".join(f'"{h}"' if "," in h or "?" in h else h for h in header), ",".join(sub)]
    for i in range(responses):
        lines.append(",".join([
            str(i + 1), str(11462816000 + i), "431821559", f"3/{1 + i % 28}/2025 10:00", f"3/{1 + i % 28}/2025 10:05",
            "", "", "", "", "", str(i % 11), ["Very satisfied", "Satisfied", "Dissatisfied"][i % 3],
            ["Satisfied", "Very dissatisfied"][i % 2], COMMENTS[i % len(COMMENTS)], "",
        ]))
    return "\n".join(lines) + "\n"


def test_pandas_resaved_surveymonkey_counts_only_responses() -> None:
    text = _pandas_resaved_surveymonkey(311)
    fmt, r = _parse(text.encode(), "sm_resaved.csv")
    assert fmt.name == "surveymonkey"
    assert r.record_count == 311
    keys = set(r.measures["measure_key"])
    assert {"Q1", "Q2_1", "Q2_2"} <= keys  # 'Unnamed: 12' continues the matrix question, not a question of its own
    tps = dict(r.measures.filter(pl.col("metric") == "csat").select("measure_key", "touchpoint").unique().iter_rows())
    assert tps == {"Q2_1": "delivery", "Q2_2": "customer_service"}
    assert any("leading index column" in w for w in r.warnings)
    assert any("'Unnamed: N'" in w for w in r.warnings)
    assert r.measures["native_id"].n_unique() == 311


def test_sub_label_row_inside_the_data_and_repeated_headers_are_dropped() -> None:
    """One header row kept by the re-save (no sub-label row under it) but the sub-labels moved into the data,
    and a second export appended below the first with its header repeated."""
    header = "Respondent ID,Collector ID,Start Date,End Date,How likely are you to recommend us?,Comments"
    rows = [header, ",,,,Response,Open-Ended Response"]
    rows += [f"{100 + i},7,2025-01-0{1 + i} 10:00,2025-01-0{1 + i} 10:01,{i + 5},fine" for i in range(4)]
    second = [f"{200 + i},7,2025-01-0{1 + i} 11:00,2025-01-0{1 + i} 11:01,{i + 3},meh" for i in range(3)]
    _, r = _parse("\n".join([*rows, header, ",,,,Response,Open-Ended Response", *second]).encode(), "two.csv")
    assert r.record_count == 7
    assert any("dropped 2 repeated header row(s)" in w for w in r.warnings)
    _, r = _parse("\n".join([*rows, ",,,,Response,Open-Ended Response", *second]).encode(), "two.csv")
    assert r.record_count == 7
    assert any("dropped 1 sub-label row(s)" in w for w in r.warnings)


# ------------------------------------------------------------------ an obvious date column ignored


def test_survey_date_day_first_with_a_month_column() -> None:
    rows = ["respondent,survey_date,month,nps,comment"]
    dates = ["1/9/21", "25/12/2021", "3/10/21", "14/2/2022", "28/2/22"]
    months = ["9", "12", "10", "2", "2"]
    rows += [f"u{i},{d},{m},{i + 5},ok" for i, (d, m) in enumerate(zip(dates, months, strict=True))]
    r = PlainTableFormat().parse("\n".join(rows).encode(), location="plain_nps.csv")
    dated = r.measures.filter(pl.col("metric") == "nps")["published_at"].to_list()
    assert dated == [
        datetime(2021, 9, 1, tzinfo=UTC),
        datetime(2021, 12, 25, tzinfo=UTC),
        datetime(2021, 10, 3, tzinfo=UTC),
        datetime(2022, 2, 14, tzinfo=UTC),
        datetime(2022, 2, 28, tzinfo=UTC),
    ]
    assert any("response date from column 'survey_date'" in w for w in r.warnings)
    assert any("day-first" in w and "column 'month' agrees on 5 of 5" in w for w in r.warnings)
    assert "month" not in set(r.measures["measure_key"])


def test_ambiguous_dates_are_decided_by_the_month_column() -> None:
    visits = [("1/9/21", 9, 8), ("3/10/21", 10, 9), ("5/11/21", 11, 3)]
    rows = ["id,visit date,month,score"] + [f"{i},{d},{m},{s}" for i, (d, m, s) in enumerate(visits)]
    # ends with a line break: without one, a plain table's numeric last value may be cut and its record is rejected
    r = PlainTableFormat().parse(("\n".join(rows) + "\n").encode(), location="visits.csv")
    assert r.measures["published_at"].to_list() == [
        datetime(2021, 9, 1, tzinfo=UTC),
        datetime(2021, 10, 3, tzinfo=UTC),
        datetime(2021, 11, 5, tzinfo=UTC),
    ]
    assert any("column 'month' agrees with day-first on 3 of 3 rows" in w for w in r.warnings)


def test_a_date_column_found_by_its_values() -> None:
    rows = ["id,when answered (local),rating"] + [f"{i},2025-0{i + 1}-1{i} 09:30,{i + 2}" for i in range(4)]
    rows[0] = "id,besvarelse,rating"
    r = PlainTableFormat().parse("\n".join(rows).encode(), location="answers.csv")
    assert r.measures["published_at"].null_count() == 0
    assert any("response date from column 'besvarelse': values are dates" in w for w in r.warnings)


def test_no_date_column_is_said() -> None:
    r = PlainTableFormat().parse(b"id,nps\n1,9\n2,3\n", location="undated.csv")
    assert any("no date column found" in w for w in r.warnings)


def test_dotted_times_and_swedish_timestamp_header() -> None:
    text = "Tidstämpel,Hur nöjd är du med leveransen?\n2024-05-03 14.54.27,4\n2024-05-03 15.05.54,5\n"
    fmt, r = _parse(text.encode(), "svar.csv")
    assert fmt.name == "google_forms"
    assert r.measures["published_at"].to_list() == [
        datetime(2024, 5, 3, 14, 54, 27, tzinfo=UTC),
        datetime(2024, 5, 3, 15, 5, 54, tzinfo=UTC),
    ]
    assert r.measures["touchpoint"].to_list() == ["delivery", "delivery"]


def test_french_google_forms_reads_day_first() -> None:
    text = "Horodateur,Recommanderiez-vous notre magasin ?\n08/11/2021 17:05:47,9\n09/11/2021 10:00:00,4\n"
    _, r = _parse(text.encode(), "reponses.csv")
    assert r.measures["published_at"][0] == datetime(2021, 11, 8, 17, 5, 47, tzinfo=UTC)
    assert r.measures["metric"].to_list() == ["nps", "nps"]


# ------------------------------------------------------------------ obvious CX columns not mapped


def test_french_retail_export_maps_nps_satisfaction_and_explication() -> None:
    rnd = random.Random(3)
    rows = ["id_client;date_reponse;magasin;nps;satisfaction;explication"]
    for i in range(60):
        nps = "NA" if i % 17 == 0 else f"{rnd.randint(0, 10)}.0"  # pandas floats, NA for no answer
        rows.append(f"{1000 + i};2024-0{1 + i % 9}-15;Lyon;{nps};{rnd.randint(1, 10)};"
                    + ("Personnel très aimable et rapide" if i % 3 else "Trop d'attente en caisse"))
    r = PlainTableFormat().parse("\n".join(rows).encode("utf-8"), location="fr_retail.csv")
    metrics = dict(r.measures.select("measure_key", "metric").unique().iter_rows())
    assert metrics["nps"] == "nps" and metrics["satisfaction"] == "csat"
    csat = r.measures.filter(pl.col("metric") == "csat").row(0, named=True)
    assert (csat["scale_min"], csat["scale_max"]) == (1.0, 10.0)  # read from the values
    assert r.measures.filter(pl.col("metric") == "nps")["score_raw"].null_count() == 4  # 'NA' = no score
    assert r.measures["text"].drop_nulls().str.contains("aimable|attente").all()
    assert r.measures["published_at"].null_count() == 0


@pytest.mark.parametrize(
    ("header", "values", "metric", "scale"),
    [
        ("Wie zufrieden sind Sie mit unserem Service?", "12345", "csat", (1.0, 5.0)),
        ("Hvor nem var det at handle hos os?", "1234567", "ces", (1.0, 7.0)),
        ("Hur troligt är det att du skulle rekommendera oss?", "0123456789", "nps", (0.0, 10.0)),
        ("Würden Sie uns weiterempfehlen?", "12345", "rating", (1.0, 5.0)),
        ("Dans l'ensemble, êtes-vous satisfait ?", "123456789", "csat", (1.0, 10.0)),
    ],
)
def test_obvious_headers_in_many_languages(header: str, values: str, metric: str, scale: tuple[float, float]) -> None:
    rows = [f'id,"{header}"'] + [f"{i},{v}" for i, v in enumerate(values * 3)]
    r = PlainTableFormat().parse("\n".join(rows).encode(), location="x.csv")
    row = r.measures.row(0, named=True)
    assert (row["metric"], row["scale_min"], row["scale_max"]) == (metric, *scale)


# ------------------------------------------------------------------ label scales and unrelated items


def test_difficult_and_somewhat_difficult_get_different_codes() -> None:
    answers = ["Difficult", "Somewhat difficult", "Neither easy nor difficult", "Somewhat easy", "Very easy"]
    text = "#,How easy was it to return your order?,Submit Date (UTC)\n" + "".join(
        f"t{i},{a},2025-01-02 10:00:0{i % 10}\n" for i, a in enumerate(answers * 2)
    )
    _, r = _parse(text.encode(), "typeform.csv")
    scores = dict(zip(answers, r.measures["score_raw"].head(5).to_list(), strict=True))
    assert scores == {"Difficult": 1.0, "Somewhat difficult": 2.0, "Neither easy nor difficult": 3.0,
                      "Somewhat easy": 4.0, "Very easy": 5.0}
    assert r.measures["touchpoint"][0] == "returns"


def test_quality_labels_become_a_rating_on_the_touchpoint_they_name() -> None:
    rows = ["id,How would you rate our customer service?,How was the product?"]
    labels = ["Excellent", "Very good", "Good", "Fair", "Poor"]
    rows += [f"{i},{labels[i % 5]},{labels[(i + 2) % 5]}" for i in range(10)]
    r = PlainTableFormat().parse("\n".join(rows).encode(), location="q.csv")
    got = r.measures.select("measure_key", "metric", "touchpoint", "scale_max").unique().sort("measure_key").rows()
    assert got == [("How was the product?", "rating", "product", 5.0),
                   ("How would you rate our customer service?", "rating", "customer_service", 5.0)]
    assert r.measures["score_raw"].head(2).to_list() == [3.0, 5.0]  # product 'Good', service 'Excellent'


def test_unrelated_0_10_items_stay_apart_with_their_own_direction() -> None:
    tags = "StartDate,EndDate,ResponseId,Q1_NPS_GROUP,Q1,Q2_NPS_GROUP,Q2,Q3_NPS_GROUP,Q3"
    texts = ("Start,End,Response ID,How experienced are you? - Group,How experienced are you?,"
             "How often did the app show an error? - Group,How often did the app show an error?,"
             "How likely are you to recommend the app? - Group,How likely are you to recommend the app?")
    imps = ",".join(f'"{{""ImportId"":""{i}""}}"' for i in
                    ["startDate", "endDate", "_recordId", "QID1_NPS_GROUP", "QID1", "QID2_NPS_GROUP", "QID2",
                     "QID3_NPS_GROUP", "QID3"])
    body = "\n".join(
        f"2025-01-0{i + 1} 10:00:00,2025-01-0{i + 1} 10:05:00,R_{i},,{i + 3},,{i},,{9 - i}" for i in range(5)
    )
    _, r = _parse(f"{tags}\n{texts}\n{imps}\n{body}\n".encode(), "q.csv")
    got = {k: (m, tp, hib) for k, m, tp, hib in
           r.measures.select("measure_key", "metric", "touchpoint", "higher_is_better").unique().iter_rows()}
    assert got == {"Q1": ("rating", "other", True), "Q2": ("rating", "app", False), "Q3": ("nps", "app", True)}


# ------------------------------------------------------------------ question maps: CLI and inbox rule


def test_cli_parse_takes_a_question_map_and_collapses_duplicates(tmp_path: Path, capsys) -> None:
    from cx_pipeline.cli import main

    export = tmp_path / "export.csv"
    export.write_text("id,date,Q7,Q8\n1,2025-01-02,4,ja\n2,2025-01-03,2,nei\n", encoding="utf-8")
    copy = tmp_path / "export_again.csv"
    copy.write_bytes(export.read_bytes())
    qmap = tmp_path / "map.yaml"
    qmap.write_text("questions:\n  Q7: {metric: csat, scale: [1, 5], touchpoint: delivery}\n", encoding="utf-8")
    out = tmp_path / "events.parquet"
    assert main(["parse", str(export), str(copy), "--question-map", str(qmap), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "2 duplicate event(s) across overlapping inputs collapsed" in err
    events = pl.read_parquet(out)
    assert events.height == 2 and set(events["touchpoint"]) == {"delivery"}
    assert main(["parse", str(export)]) == 0  # without the map: Q7 says nothing, so nothing is mapped
    assert "not mapped to a CX metric" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("questions:\n  Q7: {metric: happiness}\n", encoding="utf-8")
    assert main(["parse", str(export), "--question-map", str(bad)]) == 1
    assert f"error: {bad}: question config 'Q7': metric must be one of" in capsys.readouterr().err


def test_inbox_rule_question_map_and_sheet(tmp_path: Path, keyer) -> None:
    from cx_pipeline.config.sources_config import ConfigError, parse_sources
    from cx_pipeline.pipeline.surveys import rule_for, survey_events_from_file
    from cx_pipeline.storage import ParquetStore, RawArchive

    book = tmp_path / "cx_survey.xlsx"
    _raw_data_workbook(book, 6)
    cfg = parse_sources(
        {
            "survey_inbox": {
                "path": str(tmp_path / "inbox"),
                "default_brand": "Nordlys Shop",
                "question_map": {"Q2": {"metric": "other"}},
                "rules": [{"match": "cx_*.xlsx", "sheet": "Raw_Data",
                           "question_map": {"Q2": {"metric": "csat", "touchpoint": "customer_service"}}}],
            }
        },
        path="sources.yaml",
    )
    rule = rule_for(cfg.survey_inbox, book.name)
    assert rule.sheet == "Raw_Data" and rule.question_map
    archive = RawArchive(ParquetStore(str(tmp_path / "data")))
    raw_key = archive.put(book.read_bytes())
    row = {"raw_key": raw_key, "inbox_path": str(book), "file_name": book.name, "brand": "Nordlys Shop",
           "format": "auto", "default_touchpoint": "overall", "archived_at": datetime(2025, 3, 1, tzinfo=UTC)}
    outcome = survey_events_from_file(row, archive, keyer, cfg)
    csat = outcome.events.filter(pl.col("metric") == "csat")
    assert csat.height == 6 and set(csat["touchpoint"]) == {"customer_service"}  # the file's map wins
    assert any("chosen by --sheet / the mapping" in n for n in outcome.notes)
    with pytest.raises(ConfigError, match=r"rules\[0\]\.question_map"):
        parse_sources({"survey_inbox": {"path": "x", "default_brand": "B",
                                        "rules": [{"match": "*", "question_map": {"Q": {"metric": "nope"}}}]}},
                      path="sources.yaml")


# ------------------------------------------------------------------ SPSS .sav (issue 14, item 4)


def _sav(path: Path) -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    df = pl.DataFrame({
        "respid": [101.0, 102.0, 103.0, 104.0, 105.0],
        "dato": ["03.02.2025", "04.02.2025", "13.02.2025", "14.02.2025", "15.02.2025"],
        "anbef": [10.0, 7.0, 98.0, 3.0, 9.0],
        "tilf_lev": [5.0, 6.0, 4.0, 1.0, 99.0],
        "kanal": [1.0, 2.0, 1.0, 2.0, 1.0],
        "kommentar": ["Hurtig levering", "", "Pakken kom for sent", "", "Fin service"],
        "vekt": [1.2, 0.8, 1.0, 1.5, 0.5],
    })
    pyreadstat.write_sav(
        df,
        str(path),
        column_labels={"anbef": "Hvor sandsynligt er det, at du vil anbefale os til en ven?",
                       "tilf_lev": "Hvor tilfreds er du med leveringen?", "kanal": "Købt via",
                       "kommentar": "Kommentar", "vekt": "Vægt"},
        variable_value_labels={
            "anbef": {0: "0 Slet ikke sandsynligt", 10: "10 Meget sandsynligt", 98: "Vet ikke"},
            "tilf_lev": {1: "Meget utilfreds", 2: "Utilfreds", 3: "Hverken eller", 4: "Tilfreds", 5: "Meget tilfreds",
                         6: "Ved ikke"},
            "kanal": {1: "Webshop", 2: "Butik"},
        },
        missing_ranges={"anbef": [98]},
    )


def test_spss_sav_value_labels_missing_codes_and_weights(tmp_path: Path, keyer) -> None:
    sav = tmp_path / "epsi_2025.sav"
    _sav(sav)
    out = parse_bytes(sav.read_bytes(), location=str(sav), keyer=keyer, brand="Nordlys Shop")
    assert out.format == "spss" and out.result is not None and out.result.record_count == 5
    ev = out.events
    nps = ev.filter(pl.col("metric") == "nps").sort("record_id")
    assert nps["score_raw"].to_list() == [10.0, 7.0, None, 3.0, 9.0]  # 98 declared missing → no score
    csat = ev.filter(pl.col("metric") == "csat").sort("record_id")
    assert csat["touchpoint"].unique().to_list() == ["delivery"]
    # 6 'Ved ikke' and 99 (an undeclared code outside the labelled 1–6) → no score; labels give the 1–5 scale
    assert csat["score_raw"].to_list() == [5.0, None, 4.0, 1.0, None]
    assert (csat["scale_min"][0], csat["scale_max"][0]) == (1.0, 5.0)
    assert sorted(set(ev["weight"].to_list())) == [0.5, 0.8, 1.0, 1.2, 1.5]
    assert "Pakken kom for sent" in ev["text"].drop_nulls().to_list()
    assert ev["published_at"].min() == datetime(2025, 2, 3, tzinfo=UTC)  # '13.02.2025' proves day-first
    assert any("survey weights from variable 'vekt'" in n for n in out.notes)
    assert any("declared missing code" in n for n in out.notes)
    assert "kanal" not in set(ev["measure_key"]) and "vekt" not in set(ev["measure_key"])


def test_spss_weight_can_be_mapped_and_a_broken_file_is_named(tmp_path: Path) -> None:
    from cx_pipeline.sources.surveys.spss import SpssFormat

    pyreadstat = pytest.importorskip("pyreadstat")
    sav = tmp_path / "s.sav"
    df = pl.DataFrame({"q1": [3.0, 5.0, 4.0], "faktor": [2.0, 1.0, 0.5]})
    pyreadstat.write_sav(df, str(sav), column_labels={"q1": "How satisfied are you with the delivery?"},
                         variable_value_labels={"q1": {1: "Very dissatisfied", 5: "Very satisfied"}})
    assert SpssFormat().parse(sav.read_bytes(), location="s.sav").measures["weight"].null_count() == 3
    r = SpssFormat(QuestionConfig.from_mapping({"faktor": "weight"})).parse(sav.read_bytes(), location="s.sav")
    assert r.measures["weight"].to_list() == [2.0, 1.0, 0.5]
    assert r.measures["metric"].to_list() == ["csat"] * 3
    broken = sav.read_bytes()[:300]
    with pytest.raises(ParseError, match=r"^broken\.sav: not a readable SPSS \.sav file"):
        SpssFormat().parse(broken, location="broken.sav")
    assert detect_format(sav.read_bytes(), "s.sav").name == "spss"


def test_a_crash_of_the_spss_reader_is_a_parse_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ReadStat can segfault on a damaged .sav (seen on mutated files): the read runs in a child process, and a
    child killed by a signal is reported as a ParseError naming the file, never a dead worker."""
    import subprocess

    from cx_pipeline.sources.surveys import spss

    sav = tmp_path / "s.sav"
    _sav(sav)

    def killed(*args, **kwargs):
        return subprocess.CompletedProcess(args, -11, b"", b"")

    monkeypatch.setattr(spss.subprocess, "run", killed)
    with pytest.raises(ParseError, match=r"^inbox/damaged\.sav: .*crashed on it \(signal 11\)"):
        spss.SpssFormat().parse(sav.read_bytes(), location="inbox/damaged.sav")
