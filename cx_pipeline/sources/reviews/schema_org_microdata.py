"""schema.org Reviews and AggregateRatings marked up as HTML microdata (itemscope/itemprop).

Parsed with selectolax (lexbor) and only the elements carrying itemscope/itemprop are visited, so
layout noise (Vue ``<!--[-->`` comment nodes, wrappers, duplicated mobile/desktop author blocks) does
not matter. Values in ``<meta content>``, ``<time datetime>``, ``<link href>`` are read as the spec
says. Rules for ids, scales, dates, languages and duplicates are shared with the JSON-LD format
(``_schema_org_common``); so is the ``aggregates`` dict shape (documented in ``schema_org_jsonld``).

Sniffs after ``jsonld`` (45 vs 40): a page whose JSON-LD has Reviews is a JSON-LD page. When this
format parses a page, reviews come from microdata only; AggregateRatings from microdata and JSON-LD.
"""

from __future__ import annotations

from typing import ClassVar

from cx_pipeline.sources.base import InputTooLarge, ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.reviews._schema_org_common import (
    LD_AGGREGATE_TYPE,
    LD_REVIEW_TYPE,
    MICRODATA_AGGREGATE,
    MICRODATA_REVIEW,
    Collected,
    build_result,
    collect_jsonld,
    collect_microdata,
    jsonld_blocks,
    microdata_items,
    page_meta,
)


class SchemaOrgMicrodataFormat(SourceFormat):
    name: ClassVar[str] = "microdata"
    kind: ClassVar[str] = "review"
    version: ClassVar[str] = "1.0"
    sniff_priority: ClassVar[int] = 45

    def sniff(self, data: bytes, filename: str) -> bool:
        return b"itemscope" in data and bool(MICRODATA_REVIEW.search(data) or MICRODATA_AGGREGATE.search(data))

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        col = Collected()
        md = collect_microdata(microdata_items(data, location)) if b"itemscope" in data.lower() else Collected()
        col.reviews, col.aggregates = md.reviews, md.aggregates
        col.warnings.extend(md.warnings)
        if LD_AGGREGATE_TYPE.search(data) or LD_REVIEW_TYPE.search(data):
            try:
                ld = collect_jsonld(jsonld_blocks(data, location, col.warnings), location)
            except InputTooLarge:
                raise
            except ParseError as exc:  # the JSON-LD is only a bonus here; the microdata is what we read
                col.warnings.append(f"JSON-LD ignored: {exc.reason}")
                ld = Collected()
            col.aggregates.extend(ld.aggregates)
            col.warnings.extend(ld.warnings)
            if ld.reviews:
                col.warnings.append(f"page also has {len(ld.reviews)} JSON-LD Review(s); not read by the microdata "
                                    "format (the 'jsonld' format takes pages with JSON-LD reviews)")
        reason = "no schema.org Review or AggregateRating microdata on the page"
        return build_result(self.name, self.parser_id, col, meta=page_meta(data), location=location,
                            empty_reason_if_none=reason)
