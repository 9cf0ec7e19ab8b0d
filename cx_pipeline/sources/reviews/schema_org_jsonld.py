"""schema.org Reviews and AggregateRatings embedded as JSON-LD (``<script type="application/ld+json">``).

Blocks are sliced out with a regex and ``json.loads``-ed: no HTML parse on the hot path. Reviews are
found at any depth (``@graph`` list or single object, ``Product.review``, ``Recipe.reviews``,
``WebPage.mainEntity.review``, top-level Review nodes with ``itemReviewed``), so site templates
that nest differently need no code. Ids, scales, dates, languages and de-duplication follow the
rules in ``_schema_org_common`` (shared with the microdata format).

Which format takes a page: Trustpilot pages also carry JSON-LD, so ``trustpilot`` sniffs first
(priority 10). This format (40) takes pages whose JSON-LD has a Review, or has an AggregateRating
while the page has no microdata Review; ``microdata`` (45) takes the rest. So reviews come from
JSON-LD whenever JSON-LD has them, else from microdata; aggregates are read from both syntaxes.

``ParseResult.aggregates`` items (one per distinct AggregateRating, both syntaxes)::

    {"kind": "aggregate_rating", "syntax": "jsonld" | "microdata",
     "name": str | None,          # the rated item's name (Recipe/Product/LocalBusiness …)
     "item_type": str | None,     # its schema.org type, e.g. "Recipe"
     "rating_value": float | None, "rating_count": int | None, "review_count": int | None,
     "best_rating": float,        # bestRating, default 5.0
     "worst_rating": float}       # worstRating, default 1.0
"""

from __future__ import annotations

from typing import ClassVar

from cx_pipeline.sources.base import ParseResult, SourceFormat
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

_LD_MARK = b"application/ld+json"


class SchemaOrgJsonLdFormat(SourceFormat):
    name: ClassVar[str] = "jsonld"
    kind: ClassVar[str] = "review"
    version: ClassVar[str] = "1.0"
    sniff_priority: ClassVar[int] = 40

    def sniff(self, data: bytes, filename: str) -> bool:
        if _LD_MARK not in data and _LD_MARK.upper() not in data.upper():
            return False
        if LD_REVIEW_TYPE.search(data):
            return True
        return bool(LD_AGGREGATE_TYPE.search(data)) and not MICRODATA_REVIEW.search(data)

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        col = Collected()
        objs = jsonld_blocks(data, location, col.warnings)
        found = collect_jsonld(objs, location)
        col.reviews, col.aggregates = found.reviews, found.aggregates
        col.warnings.extend(found.warnings)
        md_reviews = len(MICRODATA_REVIEW.findall(data))
        if md_reviews and col.reviews:
            col.warnings.append(f"page also has {md_reviews} microdata Review item(s); ignored (JSON-LD reviews win)")
        if MICRODATA_AGGREGATE.search(data) or (md_reviews and not col.reviews):
            md = collect_microdata(microdata_items(data, location))
            col.aggregates.extend(md.aggregates)
            col.warnings.extend(md.warnings)
        reason = "no schema.org Review or AggregateRating in the page's JSON-LD"
        if not objs:
            reason = "page has no JSON-LD block"
        result = build_result(self.name, self.parser_id, col, meta=page_meta(data), location=location,
                              empty_reason_if_none=reason)
        if md_reviews and not col.reviews:  # say where the reviews are rather than "aggregate only"
            result.empty_reason = (f"no schema.org Review in JSON-LD; the page has {md_reviews} microdata Review "
                                   "item(s): parse it with the 'microdata' format")
        return result
