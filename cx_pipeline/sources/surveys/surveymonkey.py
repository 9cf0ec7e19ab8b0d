"""SurveyMonkey response exports (CSV/XLSX, "expanded" layout with 2 header rows).

Row 1 holds question texts (blank for the continuation columns of matrix/multi-choice questions), row
2 the sub-labels ('Response', 'Open-Ended Response', 'Other (please specify)', matrix rows). The nine
metadata columns carry an IP, an e-mail and names: only the e-mail is used, as the customer reference
that normalize hashes. Excel re-saves turn respondent ids into '1.14628E+11' (warned, never merged).
"""

from __future__ import annotations

import polars as pl

from cx_pipeline.sources.base import InputTooLarge, ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.surveys.question_registry import QuestionColumn, QuestionConfig
from cx_pipeline.sources.surveys.responses import SurveyLayout, build_result, header_namespace
from cx_pipeline.sources.surveys.tabular import RawTable, pick_sheet, read_table

_META = {
    "respondent id",
    "collector id",
    "start date",
    "end date",
    "ip address",
    "email address",
    "first name",
    "last name",
    "custom data 1",
    "custom data",
    "email",
    "e-mail",
}


#: SurveyMonkey's sub-labels in row 2 (lower-cased): a row made of them is a header row, never a response
_SUBLABELS = {"response", "open-ended response", "other (please specify)"}


def _drop_sublabel_rows(data: pl.DataFrame, id_col: str | None, warnings: list[str]) -> pl.DataFrame:
    """Rows without a respondent id that repeat the sub-labels (a pandas round trip moves row 2 into the data)."""
    if id_col is None or data.height == 0:
        return data
    cols = [c for c in data.columns if c.startswith("c")]
    blank_id = data[id_col].is_null() | (data[id_col].str.strip_chars() == "")
    if not blank_id.any():
        return data
    sub = pl.any_horizontal([pl.col(c).str.strip_chars().str.to_lowercase().is_in(list(_SUBLABELS)) for c in cols])
    mask = data.select(sub.fill_null(False)).to_series() & blank_id
    if mask.any():
        warnings.append(f"dropped {int(mask.sum())} sub-label row(s) ('Response', 'Open-Ended Response' …) "
                        "found among the responses: header rows, not responses")
        data = data.filter(~mask)
    return data


class SurveyMonkeyFormat(SourceFormat):
    name = "surveymonkey"
    kind = "survey"
    version = "1.0"
    sniff_priority = 31

    def __init__(self, questions: QuestionConfig | None = None, sheet: str | None = None) -> None:
        self.questions = questions
        self.sheet = sheet

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:20_000].replace(b"\x00", b"").lower()
        if data.startswith(b"PK\x03\x04"):
            return filename.lower().endswith(".xlsx") and self._xlsx_sniff(data, filename)
        return b"respondent id" in head and (
            b"collector id" in head or b"open-ended response" in head or b",response," in head
        )

    def _xlsx_sniff(self, data: bytes, filename: str) -> bool:
        try:
            tables = read_table(data, filename, sniffing=True)
        except InputTooLarge:
            raise  # too large for every format: say so, not "not recognised"
        except ParseError:
            return False
        return any(self._looks_like(t) for t in tables)

    @staticmethod
    def _looks_like(table: RawTable) -> bool:
        h0 = [h.lower() for h in table.header(0)]
        h1 = {h.lower() for h in table.header(1)}
        return "respondent id" in h0 and ("collector id" in h0 or bool(h1 & _SUBLABELS))

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        tables = read_table(data, location, filename=location)
        table = pick_sheet(tables, location, sheet=self.sheet, fits=[self._looks_like(t) for t in tables])
        if not self._looks_like(table):
            raise ParseError(
                location,
                "row 1: expected SurveyMonkey metadata columns 'Respondent ID', 'Collector ID' in the header row",
            )
        layout = self.layout(table)
        del tables, table  # build_result releases the cells once it no longer needs them
        return build_result(layout, location=location, config=self.questions)

    def layout(self, table: RawTable) -> SurveyLayout:
        texts = table.header(0)
        lower = [t.lower() for t in texts]
        warnings = list(table.warnings)
        id_idx = lower.index("respondent id") if "respondent id" in lower else None
        second = table.header(1)
        # row 2 is the sub-label row when it has no respondent id (a re-save may have dropped it: then 1 header row)
        has_subs = id_idx is not None and (not second[id_idx] or bool({h.lower() for h in second} & _SUBLABELS))
        subs = second if has_subs else [""] * len(texts)
        header_rows = 2 if has_subs else 1
        if has_subs:
            warnings.append("2 header rows skipped: question texts, sub-labels ('Response', matrix rows …)")
        else:
            warnings.append("no sub-label row under the question row: 1 header row (the export was re-saved)")

        def col(*names: str) -> str | None:
            for name in names:
                if name in lower:
                    return f"c{lower.index(name)}"
            return None

        questions: list[QuestionColumn] = []
        qn = 0
        sub_n = 0
        current = ""
        for i, text in enumerate(texts):
            if text.lower() in _META:
                current = ""
                continue
            if text:
                qn += 1
                sub_n = 0
                current = text
            elif not current:
                continue
            sub_n += 1
            sub = subs[i] if i < len(subs) else ""
            multi = (i + 1 < len(texts) and not texts[i + 1] and texts[i + 1].lower() not in _META) or sub_n > 1
            key = f"Q{qn}_{sub_n}" if multi else f"Q{qn}"
            hint = "choice"  # SurveyMonkey labels open answers explicitly; everything else is a choice
            sub_l = sub.lower()
            if "other (please specify)" in sub_l:
                hint = "other_specify"
            elif "open-ended" in sub_l:
                hint = "text"
            label = current if sub_l in ("", "response", "open-ended response") else f"{current} - {sub}"
            questions.append(QuestionColumn(column=f"c{i}", key=key, text=label, hint=hint))
        return SurveyLayout(
            headers=texts,
            source=self.name,
            parser=self.parser_id,
            data=_drop_sublabel_rows(table.body(header_rows), f"c{id_idx}" if id_idx is not None else None, warnings),
            questions=questions,
            id_column=col("respondent id"),
            date_column=col("end date", "start date"),
            date_tz_note="SurveyMonkey dates carry no time zone: assumed UTC",
            prefer_month_first=True,
            email_column=col("email address", "email", "e-mail"),
            external_ref_column=col("custom data 1", "custom data"),
            namespace=header_namespace(texts, subs),
            ids_global=True,
            warnings=warnings,
            facts={"encoding": table.encoding, "delimiter": table.delimiter, "sheet": table.sheet},
        )
