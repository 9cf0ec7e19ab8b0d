"""Survey readers on synthetic edge cases written here, and on the project's own sample exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cx_pipeline.contract import contract_violations
from cx_pipeline.fetch.inbox_local import archive_file, list_inbox, quarantine_file
from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.sources.base import MEASURE_SCHEMA, ParseError
from cx_pipeline.sources.registry import detect_format
from cx_pipeline.sources.surveys.dates import parse_dates
from cx_pipeline.sources.surveys.google_forms import GoogleFormsFormat
from cx_pipeline.sources.surveys.plain_table import PlainTableFormat, TableMapping
from cx_pipeline.sources.surveys.qualtrics import QualtricsFormat
from cx_pipeline.sources.surveys.question_registry import (
    QuestionConfig,
    QuestionSpec,
    infer_touchpoint,
    mapping_template,
)
from cx_pipeline.sources.surveys.surveymonkey import SurveyMonkeyFormat
from cx_pipeline.sources.surveys.tabular import decode_bytes, read_table, sniff_delimiter
from cx_pipeline.sources.surveys.typeform import TypeformFormat

SAMPLES = Path(__file__).resolve().parents[1] / "cx_pipeline" / "sample_data" / "surveys"
T0 = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def _events(result, keyer):
    ctx = NormalizeContext(
        brand="Nordlys Shop", source_url="file:///inbox/x.csv", raw_key="raw/x", ingested_at=T0, keyer=keyer
    )
    return to_events(result, ctx, source_kind="survey")


def _plain(text: str | bytes, **mapping) -> PlainTableFormat:
    return PlainTableFormat(TableMapping(**mapping)) if mapping else PlainTableFormat()


# ---------------------------------------------------------------- tabular reading


def test_empty_file_is_a_parse_error() -> None:
    for data in (b"", b"\xef\xbb\xbf", b"\r\n\r\n"):
        with pytest.raises(ParseError, match="empty"):
            PlainTableFormat().parse(data, location="inbox/empty.csv")


def test_header_only_gives_no_measures_and_a_reason() -> None:
    r = PlainTableFormat().parse(b"response_id,score,comment,date\r\n", location="h.csv")
    assert r.record_count == 0 and r.measures.height == 0
    assert r.empty_reason == "header only: the export has no responses"
    assert dict(r.measures.schema) == MEASURE_SCHEMA


def test_semicolons_cp1252_and_crlf() -> None:
    text = (
        "id;score;kommentar;dato\r\n1;9;Rigtig god service, tak æøå;24.12.2024\r\n"
        "2;3;For dårlig – pakken kom for sent;01.02.2025\r\n"
    )
    r = PlainTableFormat().parse(text.encode("cp1252"), location="x.csv")
    assert r.measures["measure_key"].to_list() == ["score", "score"]
    assert r.measures["metric"].to_list() == ["nps", "nps"]
    assert r.measures["text"].to_list() == ["Rigtig god service, tak æøå", "For dårlig – pakken kom for sent"]
    assert r.measures["published_at"].to_list() == [
        datetime(2024, 12, 24, tzinfo=UTC),
        datetime(2025, 2, 1, tzinfo=UTC),
    ]
    assert any("cp1252" in w for w in r.warnings)
    assert any("semicolon" in w for w in r.warnings)
    assert any("day-first" in w for w in r.warnings)


def test_bom_and_mojibake_repair() -> None:
    text, enc, warnings = decode_bytes("\ufeffid,comment\n1,BlÃ¥ bÃ¦r og Ã¸l\n".encode(), "x")
    assert enc == "utf-8-sig"
    assert "Blå bær og øl" in text and not text.startswith("\ufeff")
    assert any("mojibake" in w for w in warnings)


def test_nul_bytes_are_removed_with_a_warning() -> None:
    data = b"id,score,comment\n1,10,Super\x00 fint\n"
    r = PlainTableFormat().parse(data, location="nul.csv")
    assert r.measures["text"].to_list() == ["Super fint"]
    assert any("NUL" in w for w in r.warnings)


def test_wrong_delimiter_is_sniffed() -> None:
    assert sniff_delimiter("a\tb\tc\n1\t2\t3\n") == "\t"
    assert sniff_delimiter("a;b;c\n1;2,5;3\n4;5;6\n") == ";"
    table = read_table(b"id\tscore\n1\t7\n", "t.tsv")[0]
    assert table.header(0) == ["id", "score"]


def test_truncated_row_names_the_line() -> None:
    data = b'id,score,comment\n1,9,"fine"\n2,8,"cut off in the midd'
    with pytest.raises(ParseError, match=r"line \d+.*unterminated"):
        PlainTableFormat().parse(data, location="trunc.csv")


def test_misaligned_row_is_a_parse_error_naming_the_record() -> None:
    data = b"id,score\n1,9\n2,8,surplus\n"
    with pytest.raises(ParseError, match="record 3 has 3 fields"):
        PlainTableFormat().parse(data, location="ragged.csv")


def test_formula_cells_stay_inert_text(keyer) -> None:
    data = b'id,score,comment\n1,10,"=HYPERLINK(""http://evil.example"",""click"")"\n2,9,"+cmd|\' /C calc\'!A0"\n'
    r = PlainTableFormat().parse(data, location="f.csv")
    assert r.measures["text"].to_list() == ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0"]
    assert contract_violations(_events(r, keyer)) == []


def test_utf16_with_bom() -> None:
    data = "id,score\n1,8\n".encode("utf-16")
    assert PlainTableFormat().parse(data, location="u16.csv").measures["score_raw"].to_list() == [8.0]


def test_legacy_xls_and_junk_are_parse_errors() -> None:
    with pytest.raises(ParseError, match="xls"):
        read_table(b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "old.xls")
    with pytest.raises(ParseError, match="xlsx"):
        read_table(b"PK\x03\x04garbage", "broken.xlsx")


# ---------------------------------------------------------------- dates


def test_month_first_is_decided_per_file_and_reported() -> None:
    res = parse_dates(pl.Series(["6/20/24 13:28", "6/2/24 1:05 PM"]), column="d", location="x")
    assert res.order == "month_first"
    assert res.values.to_list() == [datetime(2024, 6, 20, 13, 28, tzinfo=UTC), datetime(2024, 6, 2, 13, 5, tzinfo=UTC)]


def test_ambiguous_dates_follow_the_export_default() -> None:
    s = pl.Series(["03/04/2025"])
    assert parse_dates(s, column="d", location="x").values[0] == datetime(2025, 4, 3, tzinfo=UTC)
    us = parse_dates(s, column="d", location="x", prefer_month_first=True)
    assert us.values[0] == datetime(2025, 3, 4, tzinfo=UTC) and "ambiguous" in (us.note or "")


def test_mixed_orders_raise_with_row_and_a_bad_date_is_rejected_alone() -> None:
    with pytest.raises(ParseError, match="data row 2"):
        parse_dates(pl.Series(["13/01/2025", "01/13/2025"]), column="d", location="x")
    res = parse_dates(pl.Series(["2024-02-30", "2024-02-28"]), column="d", location="x")
    assert res.rejected == ((0, "2024-02-30", "'2024-02-30' is not a valid date/time"),)
    assert res.values.to_list() == [None, datetime(2024, 2, 28, tzinfo=UTC)]
    with pytest.raises(ParseError, match=r"data row 1.*1 of 1 values"):  # a column of non-dates is no date column
        parse_dates(pl.Series(["soon"]), column="d", location="x")


def test_timezone_conversion_handles_dst() -> None:
    res = parse_dates(
        pl.Series(["2025-01-15 12:00:00", "2025-07-15 12:00:00"]), column="d", location="x", tz="Europe/Copenhagen"
    )
    assert [v.hour for v in res.values.to_list()] == [11, 10]


# ---------------------------------------------------------------- question registry


@pytest.mark.parametrize(
    ("text", "touchpoint"),
    [
        ("Hvor tilfreds er du med leveringen?", "delivery"),
        ("Hur nöjd är du med vår kundservice?", "customer_service"),
        ("Hvordan var nettbutikken?", "website"),
        ("How easy was it to return your item?", "returns"),
        ("Hvad synes du om prisen?", "price"),
        ("Var personalet i butikken hjelpsomt?", "store"),
        ("How would you rate the app?", "app"),
        ("Kvaliteten på produktet", "product"),
        ("How likely are you to recommend us?", None),
    ],
)
def test_touchpoints_from_question_text(text: str, touchpoint: str | None) -> None:
    assert infer_touchpoint(text) == touchpoint


def test_default_metrics_and_unmapped_listing() -> None:
    data = (
        b"id,How likely are you to recommend us?,How satisfied are you with delivery?,"
        b"The shop made it easy to find what I needed,What is your age?,Any other comments?\n"
        b"1,10,5,7,34,Really quick and friendly service\n2,0,1,2,51,Slow delivery and nobody answered the phone\n"
        b"3,8,3,4,29,The website kept logging me out during checkout\n"
    )
    r = PlainTableFormat().parse(data, location="q.csv")
    facts = r.aggregates[0]
    got = {q["key"][:12]: (q["metric"], q["scale"], q["touchpoint"]) for q in facts["mapped_questions"]}
    assert got == {
        "How likely a": ("nps", [0.0, 10.0], "overall"),
        "How satisfie": ("csat", [1.0, 5.0], "delivery"),
        "The shop mad": ("ces", [1.0, 7.0], None),
        "Any other co": ("comment", None, None),
    }
    assert [q["key"] for q in facts["unmapped_questions"]] == ["What is your age?"]
    assert "What is your age?" in mapping_template(
        [QuestionSpec(key="What is your age?", column="c4", text="What is your age?", metric="other")]
    )
    assert r.measures.height == 9
    assert r.measures.filter(pl.col("native_id").str.ends_with(":1"))["text"].unique().to_list() == [
        "Really quick and friendly service"
    ]


def test_config_overrides_from_yaml_and_negative_codes_are_null() -> None:
    cfg = QuestionConfig.from_yaml(
        "questions:\n  q_*:\n    metric: rating\n    scale: [1, 3]\n    touchpoint: product\n  'text:*skip*': other\n"
    )
    data = b"id,q_a,q_b,please skip me\n1,3,-1,4\n2,Don't know,2,5\n3,9,1,1\n"
    r = PlainTableFormat(questions=cfg).parse(data, location="c.csv")
    m = r.measures.sort("native_id", "measure_key")
    assert m["measure_key"].to_list() == ["q_a", "q_b", "q_a", "q_b", "q_b"]
    assert m["score_raw"].to_list() == [3.0, None, None, 2.0, 1.0]  # -1 and "Don't know" → null; 9 skipped
    assert set(m["touchpoint"].to_list()) == {"product"}
    assert any("outside the question's scale" in w and "data row 3" in w for w in r.warnings)
    assert any("no basis" in w for w in r.warnings)


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="metric must be one of"):
        QuestionConfig.from_mapping({"questions": {"Q1": {"metric": "happiness"}}})
    with pytest.raises(ValueError, match="unknown touchpoint"):
        QuestionConfig.from_mapping({"Q1": {"metric": "nps", "touchpoint": "spaceship"}})


def test_satisfaction_labels_in_nordic_languages() -> None:
    data = "id,Hvor fornøyd er du?,dato\n1,Svært fornøyd,2025-01-01\n2,Misfornøyd,2025-01-02\n".encode()
    r = PlainTableFormat().parse(data, location="no.csv")
    assert r.measures["score_raw"].to_list() == [5.0, 2.0]
    assert r.measures["metric"].unique().to_list() == ["csat"]


def test_excel_scientific_ids_are_never_merged(keyer) -> None:
    data = (
        b"Respondent ID,Collector ID,Start Date,End Date,IP Address,Email Address,First Name,Last Name,Custom Data 1,"
        b"How satisfied are you with the delivery?\r\n,,,,,,,,,Response\r\n"
        b"1.14628E+11,4318,6/20/24 13:28,6/20/24 13:29,192.0.2.1,,,,,Very satisfied\r\n"
        b"1.14628E+11,4318,6/20/24 13:30,6/20/24 13:31,192.0.2.2,,,,,Dissatisfied\r\n"
    )
    r = SurveyMonkeyFormat().parse(data, location="sm.csv")
    assert r.measures["native_id"].n_unique() == 2
    assert r.measures["customer_ref"].to_list() == [None, None]
    assert any("scientific notation" in w for w in r.warnings)
    assert _events(r, keyer)["record_id"].n_unique() == 2


# ---------------------------------------------------------------- vendor formats (synthetic)


def _qualtrics(rows: list[list[str]], tz: str = "Europe/Oslo") -> bytes:
    tags = ["StartDate", "EndDate", "RecordedDate", "ResponseId", "RecipientEmail", "Q1_NPS_GROUP", "Q1", "Q2"]
    texts = [
        "Start Date",
        "End Date",
        "Recorded Date",
        "Response ID",
        "Recipient Email",
        "Anbefale? - Group",
        "Hvor sannsynlig er det at du vil anbefale oss?",
        "Kommentar",
    ]
    imps = [
        {"ImportId": "startDate", "timeZone": tz},
        {"ImportId": "endDate", "timeZone": tz},
        {"ImportId": "recordedDate", "timeZone": tz},
        {"ImportId": "_recordId"},
        {"ImportId": "recipientEmail"},
        {"ImportId": "QID1_NPS_GROUP"},
        {"ImportId": "QID1"},
        {"ImportId": "QID2_TEXT"},
    ]
    lines = [",".join(tags), ",".join(texts), ",".join('"' + json.dumps(i).replace('"', '""') + '"' for i in imps)]
    lines += [",".join(r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def test_qualtrics_nps_pair_group_validated_and_tz_converted() -> None:
    data = _qualtrics(
        [
            [
                "2025-06-01 10:00:00",
                "2025-06-01 10:05:00",
                "2025-06-01 10:05:00",
                "R_a",
                "a@example.com",
                "Promoter",
                "9",
                "Bra",
            ],
            ["2025-06-01 11:00:00", "2025-06-01 11:05:00", "2025-06-01 11:05:00", "R_b", "", "Promoter", "3", ""],
            [
                "2025-06-01 12:00:00",
                "2025-06-01 12:05:00",
                "2025-06-01 12:05:00",
                "R_c",
                "",
                "",
                "",
                "Bare en kommentar",
            ],
        ]
    )
    fmt = detect_format(data, "export.csv")
    assert isinstance(fmt, QualtricsFormat)
    r = fmt.parse(data, location="export.csv")
    m = r.measures
    assert m["measure_key"].to_list() == ["Q1", "Q1", "comment"]
    assert m["metric"].to_list() == ["nps", "nps", "comment"]
    assert m["published_at"][0] == datetime(2025, 6, 1, 8, 5, tzinfo=UTC)
    assert m["customer_ref"].to_list() == ["a@example.com", "qualtrics:R_b", "qualtrics:R_c"]
    assert any("disagree" in w and "data row 2" in w for w in r.warnings)


def test_qualtrics_insights_single_quoted_importids() -> None:
    data = (
        b"ResponseID,StartDate,EndDate,Q1\nResponseID,StartDate,EndDate,How satisfied are you overall?\n"
        b"{'ImportId': 'responseId'},{'ImportId': 'startDate'},{'ImportId': 'endDate'},{'ImportId': 'QID1'}\n"
        b"R_1,2016-06-24 14:27:08,2016-06-24 14:27:08,4\nR_2,2016-06-24 14:28:08,2016-06-24 14:28:08,-1\n"
    )
    r = QualtricsFormat().parse(data, location="ins.csv")
    assert r.aggregates[0]["layout"] == "insights-2016"
    assert r.measures["score_raw"].to_list() == [4.0, None]


def test_typeform_and_google_forms_synthetic() -> None:
    tf = (
        b"#,<strong>How likely are you to recommend Nordlys?</strong>,Anything else?,Start Date (UTC),"
        b"Submit Date (UTC),Network ID\nabc123,10,Great shop and fast delivery,2025-01-01 10:00:00,"
        b"2025-01-01 10:02:00,ffee\n"
    )
    assert isinstance(detect_format(tf, "tf.csv"), TypeformFormat)
    r = TypeformFormat().parse(tf, location="tf.csv")
    assert r.measures.row(0, named=True)["native_id"] == "abc123"
    assert r.measures["text"].to_list() == ["Great shop and fast delivery"]
    gf = (
        b"Tidsstempel,Hvor tilfreds er du med leveringen?,E-mailadresse\n"
        b"24.03.2025 14:05:01,4,kunde@example.com\n24.03.2025 14:05:01,2,anden@example.com\n"
    )
    assert isinstance(detect_format(gf, "gf.csv"), GoogleFormsFormat)
    r = GoogleFormsFormat().parse(gf, location="gf.csv")
    assert r.measures["native_id"].n_unique() == 2  # equal timestamps stay distinct
    assert r.measures["touchpoint"].to_list() == ["delivery", "delivery"]
    assert r.measures["customer_ref"].to_list() == ["kunde@example.com", "anden@example.com"]


# ---------------------------------------------------------------- sample exports (demo inputs)


def test_sample_qualtrics_export(keyer) -> None:
    data = (SAMPLES / "nordlys_shop_qualtrics_2025-03.csv").read_bytes()
    fmt = detect_format(data, "nordlys_shop_qualtrics_2025-03.csv")
    assert isinstance(fmt, QualtricsFormat)
    r = fmt.parse(data, location="q.csv")
    assert r.record_count == 30
    counts = dict(r.measures.group_by("measure_key").len().iter_rows())
    assert counts == {"Q1": 29, "Q2": 29, "Q3": 29, "Q4": 25, "Q5": 29, "comment": 1}
    tps = dict(r.measures.select("measure_key", "touchpoint").unique().iter_rows())
    assert tps == {
        "Q1": "overall",
        "Q2": "delivery",
        "Q3": "customer_service",
        "Q4": "delivery",
        "Q5": "customer_service",
        "comment": None,
    }
    assert set(r.measures["language"].unique().to_list()) == {"da", "no", "sv", "en"}
    events = _events(r, keyer)
    assert contract_violations(events) == []
    assert events["event_id"].n_unique() == events.height


def test_sample_surveymonkey_export(keyer) -> None:
    data = (SAMPLES / "nordlys_shop_surveymonkey_2025-04.csv").read_bytes()
    r = SurveyMonkeyFormat().parse(data, location="sm.csv")
    assert r.record_count == 20
    metrics = dict(r.measures.select("measure_key", "metric").unique().iter_rows())
    assert metrics == {"Q1": "csat", "Q2": "ces"}
    assert r.measures.filter(pl.col("metric") == "ces")["scale_max"].unique().to_list() == [7.0]
    assert contract_violations(_events(r, keyer)) == []


def test_surveymonkey_workbook_with_several_sheets(keyer, tmp_path: Path) -> None:
    """A re-saved workbook with a summary sheet first: the response sheet is found, typed cells are rendered
    as an export would, and the result equals the CSV export of the same answers."""
    xlsxwriter = pytest.importorskip("xlsxwriter")
    import csv
    import io

    csv_bytes = (SAMPLES / "nordlys_shop_surveymonkey_2025-04.csv").read_bytes()
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"))))
    book = tmp_path / "sm.xlsx"
    wb = xlsxwriter.Workbook(str(book))
    summary = wb.add_worksheet("Summary")
    summary.write_row(0, 0, ["Survey", "Nordlys Shop CSAT"])
    summary.write_row(1, 0, ["Responses", len(rows) - 2])
    sheet = wb.add_worksheet("Responses")
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if i >= 2 and j == 0:
                sheet.write_number(i, j, int(cell))  # typed respondent id, as Excel keeps it
            elif i >= 2 and cell.isdigit() and j > 8:
                sheet.write_number(i, j, int(cell))
            else:
                sheet.write_string(i, j, cell)
    wb.close()
    from_xlsx = SurveyMonkeyFormat().parse(book.read_bytes(), location=str(book))
    from_csv = SurveyMonkeyFormat().parse(csv_bytes, location="sm.csv")
    assert any("read sheet 'Responses'" in w for w in from_xlsx.warnings)
    assert from_xlsx.record_count == from_csv.record_count == 20
    cols = ["native_id", "measure_key", "metric", "score_raw", "text"]
    assert from_xlsx.measures.select(cols).sort(cols).equals(from_csv.measures.select(cols).sort(cols))


# ---------------------------------------------------------------- inbox helpers


def test_inbox_archive_and_quarantine(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_bytes(b"id,score\n1,9\n")
    (inbox / "bad.csv").write_bytes(b'id,score\n1,"9\n')
    (inbox / "~$good.xlsx").write_bytes(b"lock")
    (inbox / "upload.csv.part").write_bytes(b"partial")
    files = list_inbox(inbox)
    assert [f.name for f in files] == ["bad.csv", "good.csv"]
    good = next(f for f in files if f.name == "good.csv")
    dest = archive_file(good.path, tmp_path / "archive", now=T0)
    assert dest.read_bytes() == b"id,score\n1,9\n" and not good.path.exists()
    assert dest.name.startswith(good.sha256[:12])
    bad = inbox / "bad.csv"
    with pytest.raises(ParseError) as err:
        PlainTableFormat().parse(bad.read_bytes(), location=str(bad))
    q = quarantine_file(bad, tmp_path / "quarantine", reason=err.value, now=T0)
    assert q.exists() and not bad.exists()
    info = json.loads(q.with_name(q.name + ".reason.json").read_text())
    assert "line" in info["problem"] and info["location"] == str(bad)
    assert "What and where" in q.with_name(q.name + ".reason.txt").read_text()


def test_a_mapped_weight_column_travels_to_the_events_and_weights_the_metrics(keyer) -> None:
    from cx_pipeline.scoring.aggregates import metric_aggregates

    data = ("id,date,satisfaction,vekt\n"
            "1,2025-03-01,5,1\n2,2025-03-02,1,1\n3,2025-03-03,4,\"2,0\"\n4,2025-03-04,2,4\n5,2025-03-05,5,-1\n")
    fmt = _plain(data, id_column="id", date_column="date", weight_column="vekt",
                 questions={"satisfaction": {"metric": "csat", "scale": [1, 5]}})
    r = fmt.parse(data.encode(), location="inbox/weighted.csv")
    assert r.measures["weight"].to_list() == [1.0, 1.0, 2.0, 4.0, None]  # decimal comma read; −1 is no weight
    assert any("not a positive number (e.g. '-1')" in w for w in r.warnings)
    assert "vekt" not in r.measures["measure_key"].to_list()  # the weight is never a question
    events = _events(r, keyer).filter(pl.col("weight").is_not_null())  # leave out response 5 (no weight)
    assert events["weight"].to_list() == [1.0, 1.0, 2.0, 4.0]
    row = metric_aggregates(events, periods=("all",)).filter(
        (pl.col("metric") == "csat") & (pl.col("source") == "all")).row(0, named=True)
    # top-2 answers carry weights 1 and 2 of 8 → 37.5 % (unweighted 50 %)
    # linearized SE: t = w(y − 37.5) = 62.5, −37.5, 125, −150 → Σt² = 43,437.5; V = 4/3 · 43,437.5 / 8² = 904.947917
    # SE 30.082352; independent SE at 37.5 % and n 4 = 24.206146 → design effect 1.544444, n_eff 2.589928
    assert row["value"] == pytest.approx(37.5)
    assert row["se"] == pytest.approx(30.082352, abs=1e-5)
    assert row["design_effect"] == pytest.approx(1.544444, abs=1e-5)
    assert row["n_effective"] == pytest.approx(2.589928, abs=1e-5)
    assert (row["n"], row["n_respondents"]) == (4, 4)


def test_any_vendor_format_takes_a_weight_column_from_the_question_config() -> None:
    """metric: weight in the question map (the inbox's question_map) works for Qualtrics and every survey format."""
    from cx_pipeline.sources.surveys.qualtrics import QualtricsFormat
    from cx_pipeline.sources.surveys.question_registry import QuestionConfig

    data = (b'StartDate,EndDate,ResponseId,Q1,W\n'
            b'Start Date,End Date,Response ID,How likely are you to recommend us to a friend?,Weight\n'
            b'"{""ImportId"":""startDate""}","{""ImportId"":""endDate""}","{""ImportId"":""_recordId""}",'
            b'"{""ImportId"":""QID1""}","{""ImportId"":""QID2""}"\n'
            b'2025-03-01 10:00:00,2025-03-01 10:05:00,R_a1,10,1.5\n'
            b'2025-03-02 10:00:00,2025-03-02 10:05:00,R_a2,3,0.5\n'
            b'2025-03-03 10:00:00,2025-03-03 10:05:00,R_a3,9,2\n')
    weighted = QualtricsFormat(QuestionConfig.from_mapping({"W": "weight"})).parse(data, location="q.csv")
    assert weighted.measures["measure_key"].to_list() == ["Q1"] * 3  # the weight is not a question
    assert weighted.measures["weight"].to_list() == [1.5, 0.5, 2.0]
    plain = QualtricsFormat().parse(data, location="q.csv")
    assert plain.measures["weight"].null_count() == 3
