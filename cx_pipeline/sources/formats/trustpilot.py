"""Trustpilot company review pages, read from the page's embedded ``__NEXT_DATA__`` JSON.

The embedded JSON is what the site renders from, so it survives CSS/layout changes that break
selector scrapers, keeps newlines in review text (JSON-LD drops them) and carries machine
timestamps instead of localized "2 days ago". Accepts the full HTML page, the ``__NEXT_DATA__``
object, or a dumped ``props.pageProps.reviews`` list.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from cx_pipeline.sources.base import PageInfo, ParseError, ParseResult, SourceFormat, measures_frame

_NEXT_DATA = re.compile(
    rb"<script\b[^>]*\bid\s*=\s*[\"']__NEXT_DATA__[\"'][^>]*>(.*?)</script\s*>", re.S | re.I
)
_LINK_NEXT = re.compile(rb"<link\b[^>]*\brel\s*=\s*[\"']next[\"'][^>]*>", re.I)
_A_NEXT = re.compile(rb"<a\b[^>]*\bname\s*=\s*[\"']pagination-button-next[\"'][^>]*>", re.I)
_HREF = re.compile(rb"\bhref\s*=\s*[\"']([^\"']+)[\"']", re.I)


def parse_datetime(value: Any, *, field: str, location: str) -> datetime | None:
    """ISO-8601 → tz-aware UTC; naive timestamps from Trustpilot are UTC by construction."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ParseError(location, f"{field}: expected an ISO date string, got {type(value).__name__}")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ParseError(location, f"{field}: not an ISO date: {value!r}") from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def extract_next_data(data: bytes, location: str) -> dict[str, Any]:
    """The ``__NEXT_DATA__`` object of a page (a regex slice: no full HTML parse on the hot path)."""
    m = _NEXT_DATA.search(data)
    if not m:
        raise ParseError(location, "no <script id=\"__NEXT_DATA__\"> block: not a Trustpilot review page, or its layout changed")
    try:
        obj = json.loads(m.group(1))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParseError(location, f"__NEXT_DATA__ is not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise ParseError(location, "__NEXT_DATA__ is not a JSON object")
    return obj


def _find_next_href(data: bytes, location: str) -> str | None:
    for pattern in (_LINK_NEXT, _A_NEXT):
        tag = pattern.search(data)
        if tag:
            href = _HREF.search(tag.group(0))
            if href:
                return urljoin(location, href.group(1).decode("utf-8", "replace").replace("&amp;", "&"))
    return None


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _first(obj: dict[str, Any], *names: str) -> Any:
    """Schema drift: the first of several spellings of one field (e.g. pending / isPending)."""
    for n in names:
        if n in obj:
            return obj[n]
    return None


class TrustpilotFormat(SourceFormat):
    name = "trustpilot"
    kind = "review"
    version = "1.0"
    sniff_priority = 10

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:400_000]
        if b"__NEXT_DATA__" in head and b"trustpilot" in head.lower():
            return True
        stripped = data.lstrip()[:50_000]
        return stripped[:1] in (b"[", b"{") and (b"\"consumer\"" in stripped or b"\"trustScore\"" in stripped)

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        stripped = data.lstrip()
        if stripped[:1] in (b"[", b"{"):
            try:
                obj: Any = json.loads(stripped)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ParseError(location, f"not valid JSON ({exc})") from exc
            next_href = None
        else:
            obj = extract_next_data(data, location)
            next_href = _find_next_href(data, location)
        return self._parse_obj(obj, location=location, next_href=next_href)

    def _parse_obj(self, obj: Any, *, location: str, next_href: str | None) -> ParseResult:
        warnings: list[str] = []
        page = PageInfo(next_url=next_href)
        if isinstance(obj, list):
            reviews = obj
        elif isinstance(obj, dict) and "props" in obj:
            pp = _get(obj, "props", "pageProps")
            if not isinstance(pp, dict) or "reviews" not in pp:
                raise ParseError(location, "__NEXT_DATA__ has no props.pageProps.reviews: the page layout changed or this is not a company review page")
            reviews = pp["reviews"]
            pagination = _get(pp, "filters", "pagination") or {}
            page.current_page = pagination.get("currentPage")
            page.total_pages = pagination.get("totalPages")
            page.total_count = pagination.get("totalCount")
            page.language_filter = _get(pp, "filters", "selected", "languages")
            bu = pp.get("businessUnit") or {}
            page.business = {k: bu.get(k) for k in ("id", "displayName", "identifyingName", "numberOfReviews", "trustScore", "stars")}
        elif isinstance(obj, dict) and "reviews" in obj:
            reviews = obj["reviews"]
        elif isinstance(obj, dict) and "trustScore" in obj and "numberOfReviews" in obj:
            page.business = {k: obj.get(k) for k in ("id", "displayName", "identifyingName", "numberOfReviews", "trustScore", "stars")}
            return ParseResult(self.name, self.parser_id, measures_frame([]), 0, page=page,
                               aggregates=[{"kind": "business_unit", **page.business}],
                               empty_reason="business-unit summary only, no reviews in this file")
        else:
            raise ParseError(location, "JSON is neither a __NEXT_DATA__ object nor a list of Trustpilot reviews")
        if not isinstance(reviews, list):
            raise ParseError(location, f"reviews is a {type(reviews).__name__}, expected a list")

        rows = []
        seen: set[str] = set()
        for i, review in enumerate(reviews):
            if not isinstance(review, dict):
                raise ParseError(location, f"reviews[{i}] is not an object")
            row = self._review_row(review, i, location)
            if row["native_id"] in seen:
                warnings.append(f"reviews[{i}] repeats review {row['native_id']} on the same page; kept the first")
                continue
            seen.add(row["native_id"])
            rows.append(row)
        aggregates = [{"kind": "business_unit", **page.business}] if page.business else []
        empty_reason = None
        if not rows:
            empty_reason = f"page lists no reviews (pagination totalCount={page.total_count})"
        return ParseResult(self.name, self.parser_id, measures_frame(rows), len(rows), page=page,
                           aggregates=aggregates, warnings=warnings, empty_reason=empty_reason)

    def _review_row(self, review: dict[str, Any], i: int, location: str) -> dict[str, Any]:
        where = f"{location} reviews[{i}]"
        rid = review.get("id")
        if not isinstance(rid, str) or not rid:
            raise ParseError(location, f"reviews[{i}] has no review id")
        rating = review.get("rating")
        if not isinstance(rating, int | float) or not 1 <= rating <= 5:
            raise ParseError(location, f"reviews[{i}] ({rid}) has rating {rating!r}, expected 1..5")
        dates = review.get("dates") or {}
        reply = review.get("reply") or {}
        consumer = review.get("consumer") or {}
        verification = _get(review, "labels", "verification") or {}
        is_verified = verification.get("isVerified")
        if is_verified is None:
            is_verified = consumer.get("isVerified")
        consumer_id = consumer.get("id")
        return {
            "native_id": rid,
            "position": f"reviews[{i}]",
            "measure_key": "stars",
            "metric": "star_rating",
            "touchpoint": None,
            "score_raw": float(rating),
            "scale_min": 1.0,
            "scale_max": 5.0,
            "higher_is_better": True,
            "occurred_at": parse_datetime(_first(dates, "experiencedDate", "experienceDate"), field=f"{where} experiencedDate", location=location),
            "published_at": parse_datetime(_first(dates, "publishedDate", "createdAt"), field=f"{where} publishedDate", location=location),
            "updated_at": parse_datetime(dates.get("updatedDate"), field=f"{where} updatedDate", location=location),
            "language": review.get("language") or None,
            "title": review.get("title") or None,
            "text": review.get("text") or None,
            "reply_text": reply.get("message") or None,
            "replied_at": parse_datetime(reply.get("publishedDate"), field=f"{where} reply.publishedDate", location=location),
            "is_verified": bool(is_verified) if is_verified is not None else None,
            "country": (consumer.get("countryCode") or None),
            "customer_ref": f"trustpilot-consumer:{consumer_id}" if consumer_id else None,
        }
