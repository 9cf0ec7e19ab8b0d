"""Plain NPS/CSAT tables (Delighted-style: score, comment, date, id) and any CSV/XLSX via a column mapping.

The generic fallback, so it sniffs last: a single header row with a recognisable score column (nps,
score, rating, csat, …). Id/date/e-mail/comment columns are found by common names in en/da/no/sv;
every other column goes through the question registry. A declarative ``TableMapping`` names the
columns explicitly for exports whose headers say nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cx_pipeline.sources.base import ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.surveys.dates import MONTH_HEADERS, QUARTER_HEADERS, date_candidates
from cx_pipeline.sources.surveys.question_registry import QuestionColumn, QuestionConfig
from cx_pipeline.sources.surveys.responses import SurveyLayout, build_result, header_namespace, unique_keys
from cx_pipeline.sources.surveys.tabular import RawTable, pick_sheet, read_table

ID_NAMES = ("response id", "response_id", "responseid", "respondent id", "respondent_id", "id", "svar id", "svar-id")
CUSTOMER_NAMES = (
    "email",
    "e-mail",
    "person email",
    "customer email",
    "email address",
    "customer_id",
    "customer id",
    "user_id",
    "user id",
    "person id",
    "kunde id",
    "kundenummer",
    "kundnummer",
)
DATE_NAMES = (
    "response_date",
    "response date",
    "date",
    "created",
    "created_at",
    "survey created",
    "submitted_at",
    "submitted",
    "timestamp",
    "responded at",
    "dato",
    "datum",
    "tidspunkt",
    "svarsdatum",
)
COMMENT_NAMES = (
    "comment",
    "comments",
    "feedback",
    "text",
    "kommentar",
    "kommentarer",
    "begrundelse",
    "reason",
    "open-ended response",
    "why",
    "hvorfor",
    "varför",
    "fritekst",
)
SCORE_HINT = re.compile(r"(?:^|[^a-z])(?:nps|score|rating|csat|ces|stars|karakter|betyg|vurdering)(?:[^a-z]|$)", re.I)


@dataclass(frozen=True)
class TableMapping:
    """Explicit column names for a plain table; anything left None is found by common names.

    ``questions`` is a question-registry config (see ``cx_pipeline.sources.surveys.question_registry``), e.g.
    ``{"Score": {"metric": "nps"}}`` for a Delighted export whose score column is just 'Score'.
    """

    id_column: str | None = None
    customer_column: str | None = None
    date_column: str | None = None
    date_timezone: str | None = None
    month_first: bool = False
    comment_columns: tuple[str, ...] = ()
    ignore_columns: tuple[str, ...] = ()
    #: a column of survey weights per response (never a question)
    weight_column: str | None = None
    questions: dict[str, Any] = field(default_factory=dict)
    header_row: int = 1
    #: the workbook sheet to read (name or 1-based number); None = the sheet that looks like responses
    sheet: str | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> TableMapping:
        data = dict(data)
        for key in ("comment_columns", "ignore_columns"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


class PlainTableFormat(SourceFormat):
    name = "csv"
    kind = "survey"
    version = "1.0"
    sniff_priority = 90  # generic: after every vendor format

    def __init__(
        self, mapping: TableMapping | None = None, questions: QuestionConfig | None = None, sheet: str | None = None
    ) -> None:
        self.mapping = mapping or TableMapping()
        self.questions = questions or QuestionConfig.from_mapping(self.mapping.questions)
        self.sheet = sheet or self.mapping.sheet

    def sniff(self, data: bytes, filename: str) -> bool:
        name = filename.lower()
        if data.startswith(b"PK\x03\x04"):
            return name.endswith(".xlsx")
        head = data[:4_000].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf")
        if head.lstrip()[:1] in (b"<", b"{", b"["):
            return False
        first = head.split(b"\n", 1)[0].decode("utf-8", "replace").lower()
        if not any(d in first for d in (",", ";", "\t")):
            return False
        return bool(SCORE_HINT.search(first)) or name.endswith((".csv", ".tsv"))

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        tables = read_table(data, location, filename=location, final_newline="unknown")
        table = pick_sheet(tables, location, sheet=self.sheet)
        layout = self.layout(table, location)
        del tables, table  # build_result releases the cells once it no longer needs them
        return build_result(layout, location=location, config=self.questions)

    @staticmethod
    def _score_columns(header: list[str]) -> list[int]:
        return [i for i, h in enumerate(header) if SCORE_HINT.search(h)]

    def layout(self, table: RawTable, location: str) -> SurveyLayout:
        m = self.mapping
        hrow = m.header_row - 1
        header = table.header(hrow)
        if not any(header):
            raise ParseError(
                location, f"row {m.header_row}: header row is empty; expected column names (score, comment, date, id …)"
            )
        lower = [h.lower() for h in header]
        warnings = list(table.warnings)

        def find(explicit: str | None, names: tuple[str, ...], what: str) -> str | None:
            if explicit:
                if explicit.lower() not in lower:
                    raise ParseError(
                        location,
                        f"row {m.header_row}: mapped {what} column {explicit!r} not found; columns are {header[:30]}",
                    )
                return f"c{lower.index(explicit.lower())}"
            return next((f"c{lower.index(n)}" for n in names if n in lower), None)

        id_col = find(m.id_column, ID_NAMES, "id")
        cust_col = find(m.customer_column, CUSTOMER_NAMES, "customer")
        date_col = find(m.date_column, DATE_NAMES, "date")
        comment_cols = (
            [find(c, (), "comment") for c in m.comment_columns]
            if m.comment_columns
            else [f"c{i}" for i, h in enumerate(lower) if h in COMMENT_NAMES]
        )
        weight_col = find(m.weight_column, (), "weight") if m.weight_column else None
        data = table.body(m.header_row)
        date_reason = None
        if date_col is None:
            named = {f"c{i}": h for i, h in enumerate(header) if h and f"c{i}" not in (id_col, cust_col, weight_col)}
            candidates = date_candidates(data, named)
            if candidates:
                date_col, why = candidates[0]
                others = [header[int(c[1:])] for c, _ in candidates[1:]]
                date_reason = why + (f"; other date-like columns left as they are: {others}" if others else "")
        elif m.date_column is None:
            date_reason = "its header is a common date column name"
        month_col = next((f"c{i}" for i, h in enumerate(lower) if h in MONTH_HEADERS + QUARTER_HEADERS), None)
        skip = {id_col, cust_col, date_col, weight_col, month_col, *(find(c, (), "ignored") for c in m.ignore_columns)}
        q_idx = [i for i, h in enumerate(header) if h and f"c{i}" not in skip]
        keys, key_warn = unique_keys([header[i] for i in q_idx])
        warnings.extend(key_warn)
        questions = [
            QuestionColumn(column=f"c{i}", key=k, text=header[i], hint="text" if f"c{i}" in comment_cols else None)
            for i, k in zip(q_idx, keys, strict=True)
        ]
        email_col = cust_col if cust_col and "mail" in lower[int(cust_col[1:])] else None
        ext_col = cust_col if cust_col and email_col is None else None
        if id_col is None and cust_col is not None and date_col is not None:
            # no response id: customer + date identifies a response (stable across re-exports)
            data = data.with_columns(pl.format("{}@{}", pl.col(cust_col), pl.col(date_col)).alias("__rid"))
            id_col = "__rid"
        return SurveyLayout(
            headers=header,
            source=self.name,
            parser=self.parser_id,
            data=data,
            questions=questions,
            id_column=id_col,
            date_column=date_col,
            date_reason=date_reason,
            date_timezone=m.date_timezone,
            prefer_month_first=m.month_first,
            date_order_reason="(set month_first in the table mapping if that is wrong)",
            month_column=month_col if date_col else None,
            month_is_quarter=bool(month_col) and lower[int(str(month_col)[1:])] in QUARTER_HEADERS,
            date_tz_note=None if m.date_timezone or date_col is None else "dates carry no time zone: assumed UTC",
            email_column=email_col,
            external_ref_column=ext_col,
            weight_column=weight_col,
            namespace=header_namespace(header),
            ids_global=False,
            warnings=warnings,
            rejects=list(table.rejects),
            facts={"encoding": table.encoding, "delimiter": table.delimiter, "sheet": table.sheet},
        )
