"""Google Forms response sheets exported as CSV/XLSX: one header row starting with 'Timestamp'
(localized), grid questions as 'Question [Row]', duplicate header names from repeated sections.

Forms have no response id, so ids are the form's header hash + the timestamp (stable across
re-exports of a growing sheet), with the row position added only where timestamps collide.
"""

from __future__ import annotations

import re

import polars as pl

from cx_pipeline.sources.base import InputTooLarge, ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.surveys.question_registry import QuestionColumn, QuestionConfig
from cx_pipeline.sources.surveys.responses import SurveyLayout, build_result, header_namespace, unique_keys
from cx_pipeline.sources.surveys.tabular import RawTable, pick_sheet, read_table

TIMESTAMP_HEADERS = (
    "timestamp",
    "tidsstempel",
    "tidsstämpel",
    "tidstämpel",
    "zeitstempel",
    "marca temporal",
    "horodateur",
    "informazioni cronologiche",
    "tijdstempel",
    "aikaleima",
)
#: the language of the 'Timestamp' header says the sheet's locale, and so its date order when values leave it open
_MONTH_FIRST_HEADERS = {"timestamp": "English"}
_DAY_FIRST_LANGUAGE = {
    "tidsstempel": "Danish/Norwegian",
    "tidsstämpel": "Swedish",
    "tidstämpel": "Swedish",
    "zeitstempel": "German",
    "marca temporal": "Spanish",
    "horodateur": "French",
    "informazioni cronologiche": "Italian",
    "tijdstempel": "Dutch",
    "aikaleima": "Finnish",
}
_EMAIL = ("email address", "e-mailadresse", "e-postadresse", "e-postadress", "e-mail-adresse", "email")
_GRID = re.compile(r"^(.*?)\s*\[(.+)\]\s*$")


class GoogleFormsFormat(SourceFormat):
    name = "google_forms"
    kind = "survey"
    version = "1.0"
    sniff_priority = 33

    def __init__(self, questions: QuestionConfig | None = None, sheet: str | None = None) -> None:
        self.questions = questions
        self.sheet = sheet

    def sniff(self, data: bytes, filename: str) -> bool:
        if data.startswith(b"PK\x03\x04"):
            try:
                return any(self._looks_like(t) for t in read_table(data, filename, sniffing=True))
            except InputTooLarge:
                raise  # too large for every format: say so, not "not recognised"
            except ParseError:
                return False
        head = data[:2_000].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf").lstrip(b'"').lower()
        return any(head.startswith(h.encode()) for h in TIMESTAMP_HEADERS)

    @staticmethod
    def _looks_like(table: RawTable) -> bool:
        return bool(table.header(0)) and table.header(0)[0].lower() in TIMESTAMP_HEADERS

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        tables = read_table(data, location, filename=location)
        table = pick_sheet(tables, location, sheet=self.sheet, fits=[self._looks_like(t) for t in tables])
        if not self._looks_like(table):
            raise ParseError(location, "row 1, column 1: expected 'Timestamp' (Google Forms response sheet)")
        header = table.header(0)
        lower = [h.lower() for h in header]
        email = next((f"c{lower.index(e)}" for e in _EMAIL if e in lower), None)
        q_idx = [i for i in range(1, len(header)) if header[i] and f"c{i}" != email and lower[i] != "score"]
        raw_keys = []
        for i in q_idx:
            m = _GRID.match(header[i])
            raw_keys.append(f"{m.group(1)[:40]} [{m.group(2)}]" if m else header[i][:60])
        keys, key_warn = unique_keys(raw_keys)
        questions = [QuestionColumn(column=f"c{i}", key=k, text=header[i]) for i, k in zip(q_idx, keys, strict=True)]
        data_rows = table.body(1)
        ns = header_namespace(header)
        # Forms have no response id: the submit timestamp is one within a form
        ts = data_rows["c0"].str.strip_chars()
        data_rows = data_rows.with_columns(pl.Series("__rid", ts))
        warnings = list(table.warnings) + key_warn
        stamp = lower[0]
        month_first = stamp not in _DAY_FIRST_LANGUAGE
        language = _DAY_FIRST_LANGUAGE.get(stamp) or _MONTH_FIRST_HEADERS.get(stamp, "its header")
        order_reason = f"from the {language} header {header[0]!r}" + (" (Google's US default)" if month_first else "")
        layout = SurveyLayout(
            headers=header,
            source=self.name,
            parser=self.parser_id,
            data=data_rows,
            questions=questions,
            id_column="__rid",
            ids_global=False,
            namespace=ns,
            date_column="c0",
            date_tz_note="Google Forms timestamps are in the sheet's time zone, which the export omits: assumed UTC",
            prefer_month_first=month_first,
            date_order_reason=order_reason,
            email_column=email,
            warnings=warnings,
            facts={"encoding": table.encoding, "delimiter": table.delimiter, "sheet": table.sheet},
        )
        del tables, table, data_rows  # build_result releases the cells once it no longer needs them
        return build_result(layout, location=location, config=self.questions)
