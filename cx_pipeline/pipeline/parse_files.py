"""Parse saved pages and export files offline into touchpoint events: the code path the assets use."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from cx_pipeline.contract import empty_events
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.normalize import NormalizeContext, latest_versions, to_events
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


#: measures normalized per slice: to_events' temporaries stay bounded on a million-response export
EVENT_CHUNK_ROWS = 100_000


def choose_format(
    data: bytes,
    location: str,
    requested: str = "auto",
    questions: QuestionConfig | None = None,
    sheet: str | None = None,
) -> SourceFormat:
    """The named format, or the detected one; ParseError naming the file when nothing fits.

    Survey formats take the analyst's question mapping (``questions``) and a forced workbook ``sheet``;
    review formats ignore both.
    """
    fmt = get_format(requested) if requested != "auto" else detect_format(data, location)
    if fmt is not None and (questions is not None or sheet is not None):
        accepted = inspect.signature(type(fmt)).parameters
        kwargs: dict[str, object] = {}
        if questions is not None and "questions" in accepted:
            kwargs["questions"] = questions
        if sheet is not None and "sheet" in accepted:
            kwargs["sheet"] = sheet
        if kwargs:
            fmt = type(fmt)(**kwargs)  # type: ignore[arg-type]
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
    sheet: str | None = None,
) -> FileOutcome:
    """``fmt`` is a configured format instance (e.g. a plain table with its column mapping) that wins
    over ``source``."""
    fmt = fmt or choose_format(data, location, source, questions, sheet)
    result = fmt.parse(data, location=location)
    ctx = NormalizeContext(
        brand=brand,
        source_url=location,
        raw_key=raw_key or RawArchive.key_for(RawArchive.digest(data)),
        ingested_at=ingested_at or datetime.now(UTC),
        keyer=keyer,
        default_touchpoint=default_touchpoint,
    )
    events = _events_in_chunks(result, ctx, fmt.kind)
    notes = list(result.warnings)
    if result.record_count == 0:
        notes.append(f"no records: {result.empty_reason or 'reason unknown'}")
    return FileOutcome(path=location, format=fmt.name, events=events, result=result, notes=notes)


def _events_in_chunks(result: ParseResult, ctx: NormalizeContext, kind: str) -> pl.DataFrame:
    """``to_events`` over slices of the measures, whose memory is released slice by slice.

    Responses never straddle slices in a way that matters: every event depends on its own measure row only.
    """
    measures = result.measures
    if measures.height <= EVENT_CHUNK_ROWS:
        return to_events(result, ctx, source_kind=kind)
    # slice along the frame's own chunks where it has them (survey readers assemble measures slice by slice):
    # a slice then owns its buffers, and dropping it after its events are made frees them
    lengths = measures.get_column(measures.columns[0]).chunk_lengths()
    if len(lengths) < 2 or max(lengths) > 2 * EVENT_CHUNK_ROWS:
        lengths = [min(EVENT_CHUNK_ROWS, measures.height - s) for s in range(0, measures.height, EVENT_CHUNK_ROWS)]
    slices: list[pl.DataFrame | None] = []
    offset = 0
    for length in lengths:
        slices.append(measures.slice(offset, length))
        offset += length
    # the measures are what the events were made of; keep their schema but not their memory
    result.measures = measures.clear()
    del measures
    parts = []
    for i, part in enumerate(slices):
        assert part is not None
        parts.append(_compact(to_events(replace(result, measures=part), ctx, source_kind=kind)))
        slices[i] = None
        del part
    return pl.concat(parts, rechunk=False)


def _compact(events: pl.DataFrame) -> pl.DataFrame:
    """The events with their text columns re-laid into buffers of their own.

    A derived string (an id cut from a 64-hex hash, a redacted text) can be a view into a larger buffer that
    stays alive with it; over millions of events that doubles the frame. Rewriting the columns costs one
    pass and lets the larger buffers, and the measures they came from, go.
    """
    strings = [c for c, t in events.schema.items() if t == pl.String]
    return events.with_columns(pl.concat_str([pl.col(c), pl.lit("")]).alias(c) for c in strings)


def dedupe_events(frames: list[pl.DataFrame]) -> tuple[pl.DataFrame | None, int]:
    """Overlapping inputs (the same page saved twice, two exports sharing responses) give each event once,
    its latest version, as ``touchpoint_events`` does; returns the events and how many duplicates collapsed."""
    frames = [f for f in frames if f.height]
    if not frames:
        return None, 0
    events = pl.concat(frames, how="vertical")
    if events["event_id"].n_unique() == events.height:
        return events, 0
    latest = latest_versions(events).collect()
    return latest, events.height - latest.height


def parse_paths(
    paths: list[str],
    *,
    keyer: CustomerKeyer,
    brand: str,
    source: str = "auto",
    questions: QuestionConfig | None = None,
    sheet: str | None = None,
) -> list[FileOutcome]:
    """Every file parsed independently: one bad file is reported and the rest still processed."""
    outcomes = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as exc:
            outcomes.append(FileOutcome(p, None, empty_events(), error=f"{p}: cannot read ({exc.strerror})"))
            continue
        try:
            outcomes.append(
                parse_bytes(data, location=p, keyer=keyer, brand=brand, source=source, questions=questions, sheet=sheet)
            )
        except ParseError as exc:
            outcomes.append(FileOutcome(p, source if source != "auto" else None, empty_events(), error=str(exc)))
    return outcomes
