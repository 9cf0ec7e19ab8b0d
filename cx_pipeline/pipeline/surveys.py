"""Survey files: from an inbox file to archived raw bytes to touchpoint events."""

from __future__ import annotations

import fnmatch
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import fsspec
import polars as pl

from cx_pipeline.config import SourcesConfig, SurveyInbox
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.fetch import inbox_local as drop_folder
from cx_pipeline.fetch import inbox_remote as remote_inbox
from cx_pipeline.fetch.inbox_local import display_name
from cx_pipeline.pipeline.parse_files import FileOutcome, parse_bytes
from cx_pipeline.sources.surveys.plain_table import PlainTableFormat, TableMapping
from cx_pipeline.sources.surveys.question_registry import QuestionConfig
from cx_pipeline.storage import RawArchive, StoreError

PROCESSED_DIR = "processed"
QUARANTINE_DIR = "quarantine"

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
    table_mapping: dict[str, object] | None = None
    question_map: dict[str, object] | None = None
    sheet: str | None = None


def rule_for(inbox: SurveyInbox, file_name: str) -> SurveyFileRule:
    """Brand/format/touchpoint for a file: the first matching rule wins, else the inbox defaults."""
    for rule in inbox.rules:
        if fnmatch.fnmatch(file_name, rule.match):
            return SurveyFileRule(
                brand=rule.brand or inbox.default_brand,
                format=rule.format or "auto",
                default_touchpoint=rule.default_touchpoint or "overall",
                table_mapping=rule.table_mapping or None,
                question_map=rule.question_map or None,
                sheet=rule.sheet,
            )
    return SurveyFileRule(brand=inbox.default_brand, format="auto", default_touchpoint="overall")


def survey_file_row(
    *, data: bytes, file_name: str, inbox_path: str, raw_key: str, rule: SurveyFileRule, archived_at: datetime
) -> pl.DataFrame:
    sha = RawArchive.digest(data)
    return pl.DataFrame(
        [
            {
                "file_key": survey_file_key(sha),
                "file_name": file_name,
                "inbox_path": inbox_path,
                "sha256": sha,
                "raw_key": raw_key,
                "bytes": len(data),
                "brand": rule.brand,
                "format": rule.format,
                "default_touchpoint": rule.default_touchpoint,
                "archived_at": archived_at,
            }
        ],
        schema=SURVEY_FILES_SCHEMA,
    )


@dataclass(frozen=True)
class InboxEntry:
    file_key: str
    file_name: str  # as text (``display_name``): what data, metadata and logs show
    location: str  # local path or URL, exactly as the OS gives it (for file operations only)
    sha256: str
    arrived_at: datetime | None = None  # when the file was dropped (a re-drop is newer than the last attempt)


def list_inbox(inbox: SurveyInbox) -> list[InboxEntry]:
    """Files waiting in the inbox folder or fsspec URL (not its processed/ or quarantine/ subfolders)."""
    if remote_inbox.is_remote(inbox.path):
        return [
            InboxEntry(survey_file_key(f.sha256), display_name(f.name), f.url, f.sha256, f.modified_at)
            for f in remote_inbox.list_remote(inbox.path)
        ]
    folder = Path(inbox.path)
    return [
        InboxEntry(survey_file_key(f.sha256), display_name(f.name), str(f.path), f.sha256, f.modified_at)
        for f in drop_folder.list_inbox(folder)
    ]


@dataclass(frozen=True)
class FoundFile:
    data: bytes
    file_name: str  # as text (``display_name``)
    location: str  # where the file is now, as text (``display_name``)
    raw_key: str


def _find_in(folder: Path, key: str) -> drop_folder.InboxFile | None:
    if not folder.is_dir():
        return None
    for sub in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        for f in drop_folder.list_inbox(sub):
            if survey_file_key(f.sha256) == key:
                return f
    return None


def find_survey_file(inbox: SurveyInbox, archive: RawArchive, key: str) -> FoundFile:
    """The file behind a survey_file partition: archive it and move it to processed/ (copy, verify, remove).

    A re-run finds the file in processed/ (or only in the raw archive) and gets the same bytes.
    """
    if remote_inbox.is_remote(inbox.path):
        return _find_remote(inbox.path, archive, key)
    folder = Path(inbox.path)
    waiting = next((f for f in drop_folder.list_inbox(folder) if survey_file_key(f.sha256) == key), None)
    if waiting is not None:
        data = waiting.path.read_bytes()
        raw_key = archive.put(data)
        archive.get(raw_key)  # verify the archived copy before the inbox file is moved
        moved = drop_folder.archive_file(waiting.path, folder / PROCESSED_DIR)
        return FoundFile(data, display_name(waiting.name), display_name(str(moved)), raw_key)
    done = _find_in(folder / PROCESSED_DIR, key)
    if done is not None:
        data = done.path.read_bytes()
        name = done.name.split("_", 1)[1] if "_" in done.name else done.name
        return FoundFile(data, display_name(name), display_name(str(done.path)), archive.put(data))
    return _from_archive(archive, key, str(folder))


def _from_archive(archive: RawArchive, key: str, where: str) -> FoundFile:
    blobs = archive.store.fs.glob(archive.store.path(f"{RawArchive.PREFIX}/{key[:2]}/{key}*.gz"))
    if blobs:
        raw_key = f"{RawArchive.PREFIX}/{key[:2]}/{blobs[0].rsplit('/', 1)[-1]}"
        return FoundFile(archive.get(raw_key), key, raw_key, raw_key)
    raise StoreError(
        f"survey file {key}: no file with that content hash in {where}, its {PROCESSED_DIR}/ folder or the raw archive"
    )


def _find_remote(inbox_url: str, archive: RawArchive, key: str) -> FoundFile:
    base = inbox_url.rstrip("/")
    waiting = next((f for f in remote_inbox.list_remote(base) if survey_file_key(f.sha256) == key), None)
    if waiting is not None:
        data = remote_inbox.read(waiting.url)
        raw_key = archive.put(data)
        archive.get(raw_key)  # verify the archived copy before the inbox file is moved
        moved = remote_inbox.archive_remote(waiting.url, f"{base}/{PROCESSED_DIR}", data=data)
        return FoundFile(data, display_name(waiting.name), moved, raw_key)
    return _from_archive(archive, key, base)


def quarantine_survey_file(config: SourcesConfig, archive: RawArchive, row: dict[str, object], reason: object) -> str:
    """Put an unreadable file in <inbox>/quarantine/ with a reason file; the raw archive keeps its copy."""
    if config.survey_inbox is None:
        return str(row["raw_key"])
    if remote_inbox.is_remote(config.survey_inbox.path):
        data = archive.get(str(row["raw_key"]))
        where = remote_inbox.quarantine_remote(
            data,
            str(row["file_name"]),
            f"{config.survey_inbox.path.rstrip('/')}/{QUARANTINE_DIR}",
            reason=reason,  # type: ignore[arg-type]
        )
        processed = str(row["inbox_path"])
        if f"/{PROCESSED_DIR}/" in processed:
            fs, path = fsspec.core.url_to_fs(processed)
            if fs.exists(path):
                fs.rm_file(path)
        return where
    target = Path(config.survey_inbox.path) / QUARANTINE_DIR
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "file"  # from the verified raw archive; its name may not fit a path here
        copy.write_bytes(archive.get(str(row["raw_key"])))
        where = drop_folder.quarantine_file(copy, target, reason=reason,  # type: ignore[arg-type]
                                            name=str(row["file_name"]))
    processed = Path(str(row["inbox_path"]))
    if processed.is_file() and PROCESSED_DIR in processed.parts:
        processed.unlink()  # the quarantined copy replaces it: a bad file is not "processed"
    return display_name(str(where))


def survey_events_from_file(
    row: dict[str, object], archive: RawArchive, keyer: CustomerKeyer, config: SourcesConfig | None = None
) -> FileOutcome:
    """Parse one archived survey file (a row of survey_files) into events; raises ParseError if unreadable."""
    data = archive.get(str(row["raw_key"]))
    questions = config.survey_inbox.questions() if config and config.survey_inbox else None
    fmt = None
    sheet = None
    if config and config.survey_inbox:
        rule = rule_for(config.survey_inbox, str(row["file_name"]))
        sheet = rule.sheet
        if rule.question_map:  # the file's own mapping first: QuestionConfig takes the first matching rule
            own = QuestionConfig.from_mapping(dict(rule.question_map))
            questions = QuestionConfig(own.rules + (questions.rules if questions else ()))
        if rule.table_mapping:
            fmt = PlainTableFormat(mapping=TableMapping.from_mapping(dict(rule.table_mapping)), sheet=sheet)
    return parse_bytes(
        data,
        location=str(row["inbox_path"]),
        keyer=keyer,
        brand=str(row["brand"]),
        source=str(row["format"] or "auto"),
        raw_key=str(row["raw_key"]),
        ingested_at=row["archived_at"],  # type: ignore[arg-type]
        default_touchpoint=str(row["default_touchpoint"] or "overall"),
        questions=questions,
        fmt=fmt,
        sheet=sheet,
    )
