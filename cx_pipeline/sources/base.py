"""The one small interface every source format implements.

A format turns the bytes of one raw page or file into a long frame of *measures* (one row per
measurement, ``MEASURE_SCHEMA``) plus page-level facts. It never sees brands, secrets or storage:
``cx_pipeline.normalize`` turns measures into contract events. Adding a source is adding one module
under ``cx_pipeline/sources/reviews/`` or ``cx_pipeline/sources/surveys/`` that defines a ``SourceFormat`` subclass.
"""

from __future__ import annotations

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
    """Input the parser cannot read. The message names the file/URL and what was expected."""

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        self.reason = message
        super().__init__(f"{location}: {message}")


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
