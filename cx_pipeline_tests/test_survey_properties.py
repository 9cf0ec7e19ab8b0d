"""Arbitrary or mutated bytes never make a survey reader raise anything but ParseError."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_pipeline.sources.base import ParseError
from cx_pipeline.sources.surveys.google_forms import GoogleFormsFormat
from cx_pipeline.sources.surveys.plain_table import PlainTableFormat
from cx_pipeline.sources.surveys.qualtrics import QualtricsFormat
from cx_pipeline.sources.surveys.surveymonkey import SurveyMonkeyFormat
from cx_pipeline.sources.surveys.typeform import TypeformFormat

SAMPLES = Path(__file__).resolve().parents[1] / "cx_pipeline" / "sample_data" / "surveys"
FORMATS = [QualtricsFormat(), SurveyMonkeyFormat(), TypeformFormat(), GoogleFormsFormat(), PlainTableFormat()]
SEEDS = [p.read_bytes() for p in sorted(SAMPLES.glob("*.csv"))] + [
    b"#,How likely to recommend?,Submit Date (UTC)\nabc,9,2025-01-01 10:00:00\n",
    b"Timestamp,How satisfied?\n1/2/2025 10:00:00,Very satisfied\n",
    b"id;score;comment\n1;9;fin\n",
]


def _check(data: bytes) -> None:
    for fmt in FORMATS:
        try:
            fmt.sniff(data, "x.csv")
            fmt.parse(data, location="x.csv")
        except ParseError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_mutated_exports(seed: bytes, data: st.DataObject) -> None:
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[pos] = data.draw(st.sampled_from(list(b"\",;\t\n\r\x00-/:=9aZ\xff\xc3{}'")))
        elif op == "insert":
            buf[pos:pos] = data.draw(st.sampled_from([b'"', b",", b"\n", b"\x00", b"-1", b"13/13/2025", b"\xc3\xa6"]))
        elif op == "delete" and buf:
            del buf[pos]
        elif op == "truncate":
            del buf[pos:]
    _check(bytes(buf))


@pytest.mark.parametrize(
    "text", ["", "\n", '"', 'a,b\n"', "StartDate,EndDate,ResponseId\n", "Respondent ID,Collector ID\n"]
)
def test_degenerate_inputs(text: str) -> None:
    _check(text.encode())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), min_size=1, max_size=30),
       st.booleans())
def test_slash_dates_with_a_month_column_read_right(days: list[date], day_first: bool) -> None:
    """Day-first or month-first, with or without proof in the values: a month column of the same rows never lets
    a date be read in the wrong order (when day == month for every row both orders are the same date)."""
    import polars as pl

    from cx_pipeline.sources.surveys.dates import month_numbers, parse_dates

    text = [f"{d.day}/{d.month}/{d.year}" if day_first else f"{d.month}/{d.day}/{d.year}" for d in days]
    hint = month_numbers(pl.Series("m", [str(d.month) for d in days])).alias("__month")
    res = parse_dates(pl.Series("d", text), column="d", location="x.csv", prefer_month_first=not day_first,
                      month_hint=hint)
    assert res.values.dt.date().to_list() == days
    res = parse_dates(pl.Series("d", text), column="d", location="x.csv", prefer_month_first=day_first,
                      month_hint=hint)
    assert res.values.dt.date().to_list() == days
