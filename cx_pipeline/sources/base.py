"""The one small interface every source format implements.

A format turns the bytes of one raw page or file into a long frame of *measures* (one row per
measurement, ``MEASURE_SCHEMA``) plus page-level facts. It never sees brands, secrets or storage:
``cx_pipeline.normalize`` turns measures into contract events. Adding a source is adding one module
under ``cx_pipeline/sources/reviews/`` or ``cx_pipeline/sources/surveys/`` that defines a ``SourceFormat`` subclass.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

UTC_DT = pl.Datetime("us", "UTC")

#: The intermediate every parser emits. ``customer_ref`` is a clear identifier (consumer id, e-mail,
#: respondent id) that normalize hashes with the secret and drops; it never reaches storage.
MEASURE_SCHEMA: dict[str, pl.DataType] = {
    "native_id": pl.String(),
    "position": pl.String(),
    "measure_key": pl.String(),
    "metric": pl.String(),
    "touchpoint": pl.String(),
    "score_raw": pl.Float64(),
    "scale_min": pl.Float64(),
    "scale_max": pl.Float64(),
    "higher_is_better": pl.Boolean(),
    "occurred_at": UTC_DT,
    "published_at": UTC_DT,
    "updated_at": UTC_DT,
    "language": pl.String(),
    "title": pl.String(),
    "text": pl.String(),
    "reply_text": pl.String(),
    "replied_at": UTC_DT,
    "is_verified": pl.Boolean(),
    "country": pl.String(),
    "location": pl.String(),
    "customer_ref": pl.String(),
    "weight": pl.Float64(),  # survey weight of the response (a mapped weight column); null = 1
}


class ParseError(ValueError):
    """Input the parser cannot read. The message names the file/URL and what was expected.

    ``field`` / ``value`` name the bad value when one value is the cause, so a parser that refuses one record
    (a ``Reject``) instead of the whole file can say which.
    """

    def __init__(self, location: str, message: str, *, field: str | None = None, value: object = None) -> None:
        self.location = location
        self.reason = message
        self.field = field
        self.value = value
        super().__init__(f"{location}: {message}")


class InputTooLarge(ParseError):
    """An input past one of the budgets in ``LIMITS``: refused whole, with the budget named, never half-read."""


@dataclass(frozen=True)
class InputLimits:
    """Budgets every parser enforces, so a hostile or broken input fails with a reason instead of
    running for minutes or exhausting memory. Generous for real exports (the largest real fixture is far
    below each), small enough that the worst case stays bounded on a 2-core machine."""

    max_bytes: int = 512 * 1024 * 1024  # one file or page
    max_nesting: int = 400  # HTML element / JSON container depth
    max_columns: int = 5_000  # survey export columns
    max_rows: int = 10_000_000  # survey export rows (responses)
    max_cpu_seconds: float = 300.0  # CPU time spent parsing one file


LIMITS = InputLimits()


class CpuBudget:
    """A cooperative CPU-time budget: loops call ``check()`` and the parse stops with ``InputTooLarge``.

    Cooperative (not a signal) because parsers run inside Dagster steps and threads where an alarm
    cannot be delivered safely; every loop over rows, elements or pages calls it.
    """

    def __init__(self, location: str, seconds: float | None = None) -> None:
        self.location = location
        self.seconds = LIMITS.max_cpu_seconds if seconds is None else seconds
        self._start = time.process_time()

    def check(self) -> None:
        if time.process_time() - self._start > self.seconds:
            raise InputTooLarge(self.location, f"parsing took more than {self.seconds:g} CPU-seconds; refused")


#: A record (or a value in it) that a parser or normalizer refused, with why. Rejects are stored beside
#: the events (``events/rejects``) and printed by the CLI, so a bad value is never dropped silently and
#: one bad record never costs the rest of its file.
REJECT_SCHEMA: dict[str, pl.DataType] = {
    "location": pl.String(),  # file path or URL of the input
    "position": pl.String(),  # where in it: "row 17", "review 3", a JSON pointer
    "native_id": pl.String(),  # the record's own id where it has one
    "field": pl.String(),  # the column/field holding the bad value
    "value": pl.String(),  # the bad value, shortened (at most 80 characters)
    "reason": pl.String(),  # what was wrong, in words an analyst can act on
}


@dataclass(frozen=True)
class Reject:
    position: str | None
    reason: str
    field: str | None = None
    value: object = None
    native_id: str | None = None

    def row(self, location: str) -> dict[str, str | None]:
        value = None if self.value is None else str(self.value)
        if value is not None and len(value) > 80:
            value = value[:77] + "..."
        return {
            "location": location,
            "position": self.position,
            "native_id": self.native_id,
            "field": self.field,
            "value": value,
            "reason": self.reason,
        }


def rejects_frame(location: str, rejects: list[Reject]) -> pl.DataFrame:
    return pl.DataFrame([r.row(location) for r in rejects], schema=REJECT_SCHEMA, orient="row")


@dataclass
class PageInfo:
    """What a review page says about itself: paging, applied filters, the business it is about."""

    current_page: int | None = None
    total_pages: int | None = None
    total_count: int | None = None
    next_url: str | None = None
    language_filter: str | None = None
    business: dict[str, Any] = field(default_factory=dict)
    #: the order the page says it applied ("recency", "relevance", "mostRecent"), as the site names it
    sort: str | None = None
    #: True when the reviews are listed newest first (an incremental crawl may stop at the first known
    #: review), False when the page is in another order (it may not), None when the page does not say
    newest_first: bool | None = None


@dataclass
class ParseResult:
    source: str
    parser: str
    measures: pl.DataFrame
    record_count: int
    page: PageInfo | None = None
    aggregates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    empty_reason: str | None = None
    #: records or values refused one by one (out-of-range date, answer outside the scale, bad Unicode)
    rejects: list[Reject] = field(default_factory=list)


def measures_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Build a MEASURE_SCHEMA frame from row dicts (missing keys become null)."""
    if not rows:
        return pl.DataFrame(schema=MEASURE_SCHEMA)
    return pl.DataFrame(
        [{k: r.get(k) for k in MEASURE_SCHEMA} for r in rows], schema=MEASURE_SCHEMA, orient="row"
    )


class SourceFormat(ABC):
    name: ClassVar[str]
    kind: ClassVar[str]  # "review" | "survey"
    version: ClassVar[str]
    #: lower sniffs first; specific formats (trustpilot) before generic ones (jsonld, csv)
    sniff_priority: ClassVar[int] = 50

    @property
    def parser_id(self) -> str:
        return f"{self.name}@{self.version}"

    @abstractmethod
    def sniff(self, data: bytes, filename: str) -> bool:
        """Cheap content check: does this look like our format?"""

    @abstractmethod
    def parse(self, data: bytes, *, location: str) -> ParseResult:
        """Parse one raw page/file; raise ParseError naming ``location`` on unreadable input."""
