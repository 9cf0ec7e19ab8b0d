"""Parse saved pages and export files offline into touchpoint events: the code path the assets use.

Also the safety net of every parse: whatever a parser or the normalizer raises on one input becomes a
``ParseError`` naming that input (a parser bug is called one), so one bad file or page never costs the rest of
its batch; and the ``events/rejects`` dataset of records refused one by one.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from cx_pipeline.contract import empty_events
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.normalize import NormalizeContext, latest_versions, to_events
from cx_pipeline.normalize.redact import redact_text
from cx_pipeline.sources import (
    REJECT_SCHEMA,
    InputTooLarge,
    ParseError,
    ParseResult,
    Reject,
    SourceFormat,
    detect_format,
    get_format,
)
from cx_pipeline.sources import base as _base
from cx_pipeline.sources.surveys.question_registry import QuestionConfig
from cx_pipeline.storage import ParquetStore, RawArchive


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
    check_size(data, location)
    try:
        fmt = get_format(requested) if requested != "auto" else detect_format(data, location)
    except (KeyError, ParseError):
        raise
    except Exception as exc:  # a sniff that breaks on odd bytes is a bug; the input is still named
        raise ParseError(location, f"format detection failed ({type(exc).__name__}: {str(exc)[:200]}): a bug in a "
                                   "format's sniff; pass --source to force one") from exc
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
    result = parse_safely(fmt, data, location)
    ctx = NormalizeContext(
        brand=brand,
        source_url=location,
        raw_key=raw_key or RawArchive.key_for(RawArchive.digest(data)),
        ingested_at=ingested_at or datetime.now(UTC),
        keyer=keyer,
        default_touchpoint=default_touchpoint,
    )
    events = events_safely(result, ctx, fmt.kind)
    notes = list(result.warnings)
    if result.record_count == 0:
        notes.append(f"no records: {result.empty_reason or 'reason unknown'}")
    return FileOutcome(path=location, format=fmt.name, events=events, result=result, notes=notes)


def check_size(data: bytes, location: str) -> None:
    """The size budget (``LIMITS.max_bytes``), before any format looks at the bytes."""
    limit = _base.LIMITS.max_bytes
    if len(data) > limit:
        raise InputTooLarge(location, f"{len(data)} bytes, more than the size budget of {limit} bytes "
                                      "(LIMITS.max_bytes); refused unread")


def _unexpected(location: str, exc: Exception, who: str) -> ParseError:
    """The one error an unexpected exception of a parser or the normalizer becomes."""
    if isinstance(exc, MemoryError):
        return InputTooLarge(location, f"{who} ran out of memory on this input; refused")
    if isinstance(exc, RecursionError):
        return InputTooLarge(location, f"{who} hit the recursion limit: the input nests too deeply "
                                       f"(LIMITS.max_nesting {_base.LIMITS.max_nesting}); refused")
    return ParseError(location, f"{who} failed with {type(exc).__name__}: {str(exc)[:200]} — a parser bug, not a "
                                "problem you can fix in the file; the file is refused whole and nothing of it "
                                "stored (the rest of the batch is unaffected)")


def parse_safely(fmt: SourceFormat, data: bytes, location: str) -> ParseResult:
    """``fmt.parse`` within the size budget, raising nothing but ``ParseError`` (or ``InputTooLarge``)."""
    check_size(data, location)
    try:
        return fmt.parse(data, location=location)
    except ParseError:
        raise
    except Exception as exc:
        raise _unexpected(location, exc, f"parser {fmt.parser_id}") from exc


def events_safely(result: ParseResult, ctx: NormalizeContext, kind: str) -> pl.DataFrame:
    """The events of a parse result; like ``parse_safely``, only ``ParseError`` escapes."""
    try:
        return _events_in_chunks(result, ctx, kind)
    except ParseError:
        raise
    except Exception as exc:
        raise _unexpected(ctx.source_url, exc, f"normalizing the output of {result.parser}") from exc


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


# ------------------------------------------------------------------------------------------------ rejects

REJECTS_DATASET = "events/rejects"
#: the stored rejects: ``REJECT_SCHEMA`` (what was refused and why) plus where it came from
STORED_REJECT_SCHEMA: dict[str, pl.DataType] = {
    "batch": pl.String(),
    "brand": pl.String(),
    "source_kind": pl.String(),
    "parser": pl.String(),
    "raw_key": pl.String(),
    **REJECT_SCHEMA,
}
FILE_REFUSED = "file refused: "


def review_batch(day: str) -> str:
    """The batch id of a crawl day (the ``review_events`` partition)."""
    return f"reviews-{day}"


def survey_batch(file_key: str) -> str:
    """The batch id of one survey file (the ``survey_events`` partition)."""
    return f"survey-{file_key}"


def batch_rejects(
    batch: str,
    location: str,
    rejects: list[Reject],
    *,
    brand: str | None,
    source_kind: str | None,
    raw_key: str | None,
    parser: str | None = None,
) -> pl.DataFrame:
    """One input's rejects as stored rows; the refused ``value`` has e-mails, phones and IPs masked."""
    rows = []
    for r in rejects:
        row = r.row(location)
        row["value"] = redact_text(row["value"])
        rows.append({"batch": batch, "brand": brand, "source_kind": source_kind, "parser": parser,
                     "raw_key": raw_key, **row})
    return pl.DataFrame(rows, schema=STORED_REJECT_SCHEMA, orient="row")


def file_refused(batch: str, error: ParseError, *, brand: str | None, source_kind: str | None,
                 raw_key: str | None) -> pl.DataFrame:
    """A whole input refused (unreadable, past a budget, a parser bug) as one rejects row, so a page that
    failed in a crawl is as visible beside the events as a refused review."""
    return batch_rejects(batch, error.location, [Reject(None, FILE_REFUSED + error.reason)], brand=brand,
                         source_kind=source_kind, raw_key=raw_key)


def write_batch_rejects(store: ParquetStore, batch: str, rejects: pl.DataFrame) -> str | None:
    """Replace one batch's rejects (a re-run never duplicates; a clean re-run leaves none); returns the URL."""
    from cx_pipeline.pipeline.dataset_catalog import footer_schema  # the catalog imports this module

    if rejects.height == 0:
        store.delete_partition(REJECTS_DATASET, {"batch": batch})
        return None
    frame = rejects.with_columns(batch=pl.lit(batch))
    return store.write_partition(REJECTS_DATASET, frame, {"batch": batch}, schema=footer_schema(REJECTS_DATASET))


def read_batch_rejects(store: ParquetStore) -> pl.DataFrame:
    lf = store.scan(REJECTS_DATASET)
    return pl.DataFrame(schema=STORED_REJECT_SCHEMA) if lf is None else lf.collect()
