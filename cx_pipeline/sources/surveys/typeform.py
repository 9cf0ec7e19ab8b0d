"""Typeform response CSV exports: one header row, '#' response token first, HTML in question texts,
'Start Date (UTC)' / 'Submit Date (UTC)' and 'Network ID' (a device fingerprint: never used) last."""

from __future__ import annotations

from cx_pipeline.sources.base import ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.surveys.question_registry import QuestionColumn, QuestionConfig
from cx_pipeline.sources.surveys.responses import SurveyLayout, build_result, header_namespace
from cx_pipeline.sources.surveys.tabular import read_table, strip_html

_META = {
    "#",
    "start date (utc)",
    "submit date (utc)",
    "network id",
    "stage date (utc)",
    "response type",
    "tags",
    "ending",
    "score",
}
_EMAIL = {"email", "e-mail", "email address", "hidden: email", "e-mailadresse", "e-postadresse", "e-postadress"}


class TypeformFormat(SourceFormat):
    name = "typeform"
    kind = "survey"
    version = "1.0"
    sniff_priority = 32

    def __init__(self, questions: QuestionConfig | None = None) -> None:
        self.questions = questions

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:20_000].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf")
        return (head.startswith(b"#,") or head.startswith(b'"#",')) and b"submit date (utc)" in head.lower()

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        table = read_table(data, location, filename=location, final_newline="required")[0]
        header = table.header(0)
        lower = [h.lower() for h in header]
        if not header or header[0] != "#" or "submit date (utc)" not in lower:
            raise ParseError(
                location, "row 1: expected a Typeform header starting with '#' and containing 'Submit Date (UTC)'"
            )

        def col(*names: str) -> str | None:
            for name in names:
                if name in lower:
                    return f"c{lower.index(name)}"
            return None

        questions = []
        n = 0
        for i, h in enumerate(header):
            if h.lower() in _META or h.lower() in _EMAIL:
                continue
            n += 1
            questions.append(QuestionColumn(column=f"c{i}", key=f"Q{n}", text=strip_html(h)))
        layout = SurveyLayout(
            headers=header,
            source=self.name,
            parser=self.parser_id,
            data=table.body(1),
            questions=questions,
            id_column="c0",
            date_column=col("submit date (utc)", "start date (utc)"),
            email_column=col(*_EMAIL),
            namespace=header_namespace(header),
            ids_global=True,
            warnings=list(table.warnings),
            facts={"encoding": table.encoding, "delimiter": table.delimiter},
        )
        return build_result(layout, location=location, config=self.questions)
