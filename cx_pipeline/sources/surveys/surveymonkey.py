"""SurveyMonkey response exports (CSV/XLSX, "expanded" layout with 2 header rows).

Row 1 holds question texts (blank for the continuation columns of matrix/multi-choice questions), row
2 the sub-labels ('Response', 'Open-Ended Response', 'Other (please specify)', matrix rows). The nine
metadata columns carry an IP, an e-mail and names: only the e-mail is used, as the customer reference
that normalize hashes. Excel re-saves turn respondent ids into '1.14628E+11' (warned, never merged).
"""

from __future__ import annotations

from cx_pipeline.sources.base import ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.surveys.question_registry import QuestionColumn, QuestionConfig
from cx_pipeline.sources.surveys.responses import SurveyLayout, build_result, header_namespace
from cx_pipeline.sources.surveys.tabular import RawTable, read_table

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


class SurveyMonkeyFormat(SourceFormat):
    name = "surveymonkey"
    kind = "survey"
    version = "1.0"
    sniff_priority = 31

    def __init__(self, questions: QuestionConfig | None = None) -> None:
        self.questions = questions

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:20_000].replace(b"\x00", b"").lower()
        if data.startswith(b"PK\x03\x04"):
            return filename.lower().endswith(".xlsx") and self._xlsx_sniff(data)
        return b"respondent id" in head and b"collector id" in head

    def _xlsx_sniff(self, data: bytes) -> bool:
        try:
            tables = read_table(data, "sniff")
        except ParseError:
            return False
        return any(self._looks_like(t) for t in tables)

    @staticmethod
    def _looks_like(table: RawTable) -> bool:
        h0 = [h.lower() for h in table.header(0)]
        return "respondent id" in h0 and "collector id" in h0

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        tables = read_table(data, location, filename=location)
        table = next((t for t in tables if self._looks_like(t)), None)
        if table is None:
            raise ParseError(
                location,
                "row 1: expected SurveyMonkey metadata columns 'Respondent ID', 'Collector ID' in the header row",
            )
        return build_result(self.layout(table), location=location, config=self.questions)

    def layout(self, table: RawTable) -> SurveyLayout:
        texts = table.header(0)
        subs = table.header(1)
        lower = [t.lower() for t in texts]
        warnings = list(table.warnings)
        if table.sheet:
            warnings.append(f"read sheet {table.sheet!r}")

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
            data=table.body(2),
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
