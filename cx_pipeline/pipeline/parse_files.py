"""Parse saved pages and export files offline into touchpoint events: the code path the assets use."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from cx_pipeline.contract import empty_events
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.sources import ParseError, ParseResult, SourceFormat, detect_format, get_format
from cx_pipeline.sources.surveys.question_registry import QuestionConfig
from cx_pipeline.storage import RawArchive


@dataclass
class FileOutcome:
    path: str
    format: str | None
    events: pl.DataFrame
    result: ParseResult | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def choose_format(
    data: bytes, location: str, requested: str = "auto", questions: QuestionConfig | None = None
) -> SourceFormat:
    """The named format, or the detected one; ParseError naming the file when nothing fits.

    Survey formats take the analyst's question mapping (``questions``); review formats ignore it.
    """
    fmt = get_format(requested) if requested != "auto" else detect_format(data, location)
    if fmt is not None and questions is not None and "questions" in inspect.signature(type(fmt)).parameters:
        fmt = type(fmt)(questions=questions)  # type: ignore[call-arg]
    if fmt is not None:
        return fmt
    if fmt is None:
        from cx_pipeline.sources import all_formats

        raise ParseError(
            location,
            "format not recognised: expected a Trustpilot page/__NEXT_DATA__ JSON, a schema.org review page "
            f"or a survey export ({', '.join(all_formats())}); pass --source to force one",
        )
    return fmt


def parse_bytes(
    data: bytes,
    *,
    location: str,
    keyer: CustomerKeyer,
    brand: str,
    source: str = "auto",
    raw_key: str | None = None,
    ingested_at: datetime | None = None,
    default_touchpoint: str = "overall",
    questions: QuestionConfig | None = None,
    fmt: SourceFormat | None = None,
) -> FileOutcome:
    """``fmt`` is a configured format instance (e.g. a plain table with its column mapping) that wins
    over ``source``."""
    fmt = fmt or choose_format(data, location, source, questions)
    result = fmt.parse(data, location=location)
    ctx = NormalizeContext(
        brand=brand,
        source_url=location,
        raw_key=raw_key or RawArchive.key_for(RawArchive.digest(data)),
        ingested_at=ingested_at or datetime.now(UTC),
        keyer=keyer,
        default_touchpoint=default_touchpoint,
    )
    events = to_events(result, ctx, source_kind=fmt.kind)
    notes = list(result.warnings)
    if result.record_count == 0:
        notes.append(f"no records: {result.empty_reason or 'reason unknown'}")
    return FileOutcome(path=location, format=fmt.name, events=events, result=result, notes=notes)


def parse_paths(paths: list[str], *, keyer: CustomerKeyer, brand: str, source: str = "auto") -> list[FileOutcome]:
    """Every file parsed independently: one bad file is reported and the rest still processed."""
    outcomes = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as exc:
            outcomes.append(FileOutcome(p, None, empty_events(), error=f"{p}: cannot read ({exc.strerror})"))
            continue
        try:
            outcomes.append(parse_bytes(data, location=p, keyer=keyer, brand=brand, source=source))
        except ParseError as exc:
            outcomes.append(FileOutcome(p, source if source != "auto" else None, empty_events(), error=str(exc)))
    return outcomes
