"""Qualtrics response exports (CSV/XLSX): current (3 header rows with ImportId JSON), 2016 "Insights"
(ImportId row as a Python dict), and legacy (V1..V10 codes, 2 header rows, BOM, trailing commas).

The ImportId row is the only machine-readable description of a column (question id, time zone of the
date columns), so it drives which columns are questions and how dates become UTC. Choice-text
("labels") and numeric-value exports are both read; NPS questions come as ``Qn`` + ``Qn_NPS_GROUP``
pairs, where the number is scored and the group only checked.
"""

from __future__ import annotations

import ast
import json
import re
from typing import ClassVar

from cx_pipeline.sources.base import ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.surveys.question_registry import QuestionColumn, QuestionConfig
from cx_pipeline.sources.surveys.responses import SurveyLayout, build_result, header_namespace, unique_keys
from cx_pipeline.sources.surveys.tabular import RawTable, pick_sheet, read_table

_META = {
    "startdate",
    "enddate",
    "status",
    "ipaddress",
    "progress",
    "duration (in seconds)",
    "finished",
    "recordeddate",
    "responseid",
    "recipientlastname",
    "recipientfirstname",
    "recipientemail",
    "externalreference",
    "externaldatareference",
    "locationlatitude",
    "locationlongitude",
    "locationaccuracy",
    "distributionchannel",
    "userlanguage",
    "responseset",
    "name",
    "emailaddress",
    "q_language",
    "q_recaptchascore",
    "q_relevantidduplicate",
}
_QTAG = re.compile(r"^(?:Q|QID)\d", re.I)
_DROP_STATUS = {"survey preview", "spam", "survey test preview"}


def _import_ids(row: list[str]) -> list[dict[str, str]] | None:
    """The ImportId header row parsed (JSON, or the 2016 single-quoted dict), or None if it is not one."""
    if not row or not row[0].lstrip().startswith("{"):
        return None
    out: list[dict[str, str]] = []
    for cell in row:
        cell = cell.strip()
        if not cell:
            out.append({})
            continue
        try:
            obj = json.loads(cell)
        except json.JSONDecodeError:
            try:
                obj = ast.literal_eval(cell)
            except (ValueError, SyntaxError):
                return None
        out.append({str(k): str(v) for k, v in obj.items()} if isinstance(obj, dict) else {})
    return out


class QualtricsFormat(SourceFormat):
    name = "qualtrics"
    kind = "survey"
    version = "1.0"
    sniff_priority = 30
    header_markers: ClassVar[tuple[str, ...]] = ("responseid", "_recordid")

    def __init__(self, questions: QuestionConfig | None = None, sheet: str | None = None) -> None:
        self.questions = questions
        self.sheet = sheet

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:20_000].replace(b"\x00", b"").lower()
        if b"startdate" in head and b"enddate" in head and (b"responseid" in head or b"importid" in head):
            return True
        return head.lstrip(b"\xef\xbb\xbf").startswith(b"v1,v2,v3") and b"responseid" in head

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        tables = read_table(data, location, final_newline="required")
        table = pick_sheet(tables, location, sheet=self.sheet, fits=[self._looks_like(t) for t in tables])
        if not self._looks_like(table):
            raise ParseError(
                location,
                "row 1: expected Qualtrics export tags (StartDate, EndDate, ResponseId … or V1..V10) in the header row",
            )
        layout = self.layout(table, location)
        del tables, table  # build_result releases the cells once it no longer needs them
        return build_result(layout, location=location, config=self.questions)

    def _looks_like(self, table: RawTable) -> bool:
        h0 = [h.lower() for h in table.header(0)]
        h1 = [h.lower() for h in table.header(1)]
        return ("startdate" in h0 and ("responseid" in h0 or "responseid" in h1)) or (
            h0[:3] == ["v1", "v2", "v3"] and "responseid" in h1
        )

    def layout(self, table: RawTable, location: str) -> SurveyLayout:
        tags = table.header(0)
        texts = table.header(1)
        legacy = [t.lower() for t in tags[:3]] == ["v1", "v2", "v3"]
        import_ids = _import_ids(table.header(2))
        header_rows = 3 if import_ids is not None else 2
        warnings = list(table.warnings)
        if legacy:
            # legacy: row 2 names the metadata columns the V-codes stand for
            tags = [texts[i] if re.fullmatch(r"V\d+", t) else t for i, t in enumerate(tags)]
            warnings.append("legacy Qualtrics export (V1..V10 columns, 2 header rows)")
        elif import_ids is None:
            warnings.append("no ImportId header row: assuming 2 header rows (export tags, question text)")
        else:
            warnings.append("3 header rows skipped: export tags, question texts, ImportIds")
        data = table.body(header_rows)
        ids = import_ids or [{} for _ in tags]
        lower = [t.lower() for t in tags]

        def col(*names: str) -> str | None:
            for name in names:
                if name in lower:
                    return f"c{lower.index(name)}"
            return None

        status = col("status")
        if status:
            dropped = data.filter(data[status].str.strip_chars().str.to_lowercase().is_in(list(_DROP_STATUS)))
            if dropped.height:
                warnings.append(f"dropped {dropped.height} survey-preview/spam response(s) (Status column)")
                data = data.filter(
                    ~data[status].str.strip_chars().str.to_lowercase().is_in(list(_DROP_STATUS))
                    | data[status].is_null()
                )
        date_col = col("recordeddate", "enddate", "startdate")
        tz = None
        tz_note = None
        if date_col is not None:
            tz = ids[int(date_col[1:])].get("timeZone") if int(date_col[1:]) < len(ids) else None
            if tz is None:
                tz_note = (
                    f"no timeZone in the ImportId of {tags[int(date_col[1:])]!r}: dates assumed UTC (Qualtrics "
                    "uses the account's time zone; set it when exporting)"
                )
        questions: list[QuestionColumn] = []
        nps_pairs: dict[str, str] = {}
        group_cols = {t[: -len("_NPS_GROUP")]: f"c{i}" for i, t in enumerate(tags) if t.upper().endswith("_NPS_GROUP")}
        q_idx: list[int] = []
        for i, tag in enumerate(tags):
            imp = ids[i].get("ImportId", "") if i < len(ids) else ""
            is_question = imp.upper().startswith("QID") if import_ids is not None else bool(_QTAG.match(tag))
            if not tag or tag.lower() in _META or tag.upper().endswith("_NPS_GROUP") or not is_question:
                continue
            q_idx.append(i)
        keys, key_warn = unique_keys(
            [tags[i] for i in q_idx], [ids[i].get("ImportId") if i < len(ids) else None for i in q_idx]
        )
        warnings.extend(key_warn)
        for key, i in zip(keys, q_idx, strict=True):
            imp = ids[i].get("ImportId", "") if i < len(ids) else ""
            # with ImportIds, text entry is marked *_TEXT; anything else is a choice/matrix/slider
            hint = "choice" if import_ids is not None else None
            if re.search(r"[_-]TEXT$", imp, re.I) or re.search(r"_TEXT$", tags[i], re.I):
                base = re.sub(r"[_-]TEXT$", "", tags[i], flags=re.I)
                hint = "other_specify" if base != tags[i] and base in tags else "text"
            if tags[i] in group_cols:
                hint = "nps_widget"
                nps_pairs[f"c{i}"] = group_cols[tags[i]]
            questions.append(
                QuestionColumn(column=f"c{i}", key=key, text=texts[i] if i < len(texts) else "", hint=hint)
            )
        return SurveyLayout(
            headers=tags,
            source=self.name,
            parser=self.parser_id,
            data=data,
            questions=questions,
            id_column=col("responseid", "_recordid"),
            date_column=date_col,
            date_timezone=tz,
            date_tz_note=tz_note,
            email_column=col("recipientemail", "emailaddress"),
            external_ref_column=col("externalreference", "externaldatareference"),
            language_column=col("userlanguage", "q_language"),
            namespace=header_namespace(tags),
            ids_global=True,
            nps_groups=nps_pairs,
            warnings=warnings,
            facts={
                "layout": "legacy"
                if legacy
                else ("insights-2016" if import_ids and table.header(2)[0].startswith("{'") else "current")
                if import_ids
                else "2-header-rows",
                "encoding": table.encoding,
                "delimiter": table.delimiter,
                "timezone": tz,
            },
        )
