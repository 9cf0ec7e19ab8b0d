"""No e-mail, IP address or respondent name from a survey export may reach the stored events."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.sources.registry import detect_format
from cx_pipeline.sources.surveys.tabular import read_table

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "cx_pipeline" / "sample_data" / "surveys"
SURVEYS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "survey_exports"
SHARED_WITH_PII = [
    "qualtrics_qualtRics_sample_3-header-rows_de-labels.csv",
    "qualtrics_qualtRics_sample_legacy_2-header-rows_bom.csv",
    "surveymonkey_csv_excel-resaved_sci-notation-ids.csv",
    "surveymonkey_xlsx_post.xlsx",
]  # qualtrics_2016_*: the identity columns are empty in every row, so there is nothing to look for
PII_HEADERS = re.compile(r"ip ?address|e-?mail|first ?name|last ?name|recipient(first|last)name|^name$", re.I)


def _files() -> list[Path]:
    files = sorted(SAMPLES.glob("*.csv"))
    if SURVEYS.is_dir():
        files += [SURVEYS / n for n in SHARED_WITH_PII]
    return files


def _pii_values(path: Path) -> set[str]:
    """Every non-empty cell under an IP / e-mail / name header, plus e-mail-shaped strings anywhere."""
    if path.suffix == ".sav":  # SPSS: the variables themselves, as pyreadstat reads them
        import io

        import pyreadstat

        frame, meta = pyreadstat.read_sav(io.BytesIO(path.read_bytes()), output_format="polars")
        found: set[str] = set()
        for name in frame.columns:
            if frame.schema[name] != pl.String:
                continue
            cells = {v.strip() for v in frame[name].drop_nulls().to_list() if v and v.strip()}
            label = meta.column_names_to_labels.get(name) or ""
            if PII_HEADERS.search(name) or PII_HEADERS.search(label):
                found |= cells
            found |= {m for v in cells for m in re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", v)}
        return {v for v in found if len(v) > 3}
    table = read_table(path.read_bytes(), str(path), filename=path.name)[0]
    headers = [table.header(0), table.header(1)]
    values: set[str] = set()
    for header in headers:
        for i, h in enumerate(header):
            if PII_HEADERS.search(h):
                values |= {v.strip() for v in table.rows[f"c{i}"].drop_nulls().to_list()[2:] if v and v.strip()}
    text = path.read_bytes().decode("utf-8", "ignore")
    values |= set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text))
    # Qualtrics' third header row ({'ImportId': 'ipAddress'}) names a column, it is not a respondent's value
    return {v for v in values if len(v) > 3 and v.lower() not in ("anonym", "name") and "ImportId" not in v}


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_no_identity_in_events(path: Path, keyer) -> None:
    data = path.read_bytes()
    fmt = detect_format(data, path.name)
    assert fmt is not None
    result = fmt.parse(data, location=path.name)
    ctx = NormalizeContext(
        brand="Nordlys Shop",
        source_url=f"inbox/{path.name}",
        raw_key="raw/x",
        ingested_at=datetime(2026, 1, 1, tzinfo=UTC),
        keyer=keyer,
    )
    events = to_events(result, ctx, source_kind="survey")
    pii = _pii_values(path)
    assert pii, "test needs identity values to look for"
    dump = "\n".join(
        str(v) for col in events.columns if events.schema[col] == pl.String for v in events[col].drop_nulls().to_list()
    )
    leaked = sorted(v for v in pii if v in dump)
    assert leaked == []
    assert not re.search(r"\b(?:\d{1,3}\.){3}\d{1,3}\b", dump)
    if result.measures["customer_ref"].drop_nulls().len():
        assert events["customer_key"].drop_nulls().str.len_chars().unique().to_list() == [32]


@pytest.mark.conformance
def test_every_shared_export_with_identity_values_is_listed() -> None:
    """A new shared export that carries e-mails, IPs or names must join SHARED_WITH_PII, so the test above sees it."""
    from .test_survey_conformance import GAPS

    if not SURVEYS.is_dir():
        pytest.skip(f"shared fixtures not available: {SURVEYS} is absent (conformance tests need ../shared/fixtures)")
    others = [p for p in sorted(SURVEYS.iterdir()) if p.name not in SHARED_WITH_PII and p.name not in GAPS]
    assert len(others) >= 8
    assert {p.name: _pii_values(p) for p in others if _pii_values(p)} == {}
