"""Survey files: from an inbox file to archived raw bytes to touchpoint events."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from cx_pipeline.config import SurveyInbox
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.pipeline.parse_files import FileOutcome, parse_bytes
from cx_pipeline.storage import RawArchive

SURVEY_FILE_KEY_LENGTH = 16

#: one row per survey file taken from the inbox (the raw survey_files dataset)
SURVEY_FILES_SCHEMA: dict[str, pl.DataType] = {
    "file_key": pl.String(),
    "file_name": pl.String(),
    "inbox_path": pl.String(),
    "sha256": pl.String(),
    "raw_key": pl.String(),
    "bytes": pl.Int64(),
    "brand": pl.String(),
    "format": pl.String(),
    "default_touchpoint": pl.String(),
    "archived_at": pl.Datetime("us", "UTC"),
}


def survey_file_key(sha256: str) -> str:
    return sha256[:SURVEY_FILE_KEY_LENGTH]


@dataclass(frozen=True)
class SurveyFileRule:
    brand: str
    format: str
    default_touchpoint: str


def rule_for(inbox: SurveyInbox, file_name: str) -> SurveyFileRule:
    """Brand/format/touchpoint for a file: the first matching rule wins, else the inbox defaults."""
    for rule in inbox.rules:
        if fnmatch.fnmatch(file_name, rule.match):
            return SurveyFileRule(
                brand=rule.brand or inbox.default_brand,
                format=rule.format or "auto",
                default_touchpoint=rule.default_touchpoint or "overall",
            )
    return SurveyFileRule(brand=inbox.default_brand, format="auto", default_touchpoint="overall")


def survey_file_row(
    *, data: bytes, file_name: str, inbox_path: str, raw_key: str, rule: SurveyFileRule, archived_at: datetime
) -> pl.DataFrame:
    sha = RawArchive.digest(data)
    return pl.DataFrame(
        [{
            "file_key": survey_file_key(sha), "file_name": file_name, "inbox_path": inbox_path, "sha256": sha,
            "raw_key": raw_key, "bytes": len(data), "brand": rule.brand, "format": rule.format,
            "default_touchpoint": rule.default_touchpoint, "archived_at": archived_at,
        }],
        schema=SURVEY_FILES_SCHEMA,
    )


def survey_events_from_file(
    row: dict[str, object], archive: RawArchive, keyer: CustomerKeyer
) -> FileOutcome:
    """Parse one archived survey file (a row of survey_files) into events; raises ParseError if unreadable."""
    data = archive.get(str(row["raw_key"]))
    return parse_bytes(
        data,
        location=str(row["inbox_path"]),
        keyer=keyer,
        brand=str(row["brand"]),
        source=str(row["format"] or "auto"),
        raw_key=str(row["raw_key"]),
        ingested_at=row["archived_at"],  # type: ignore[arg-type]
        default_touchpoint=str(row["default_touchpoint"] or "overall"),
    )
