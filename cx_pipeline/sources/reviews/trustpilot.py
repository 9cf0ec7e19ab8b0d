"""Trustpilot company review pages, read from the page's embedded ``__NEXT_DATA__`` JSON.

The embedded JSON is what the site renders from, so it survives CSS/layout changes that break
selector scrapers, keeps newlines in review text (JSON-LD drops them) and carries machine
timestamps instead of localized "2 days ago". Accepts the full HTML page, the ``__NEXT_DATA__``
object (or its ``props`` / ``pageProps``), a dumped ``props.pageProps.reviews`` list, or a dumped
business-unit summary. The block is sliced out with a regex: no HTML parse on the hot path.

Schema drift policy: where the meaning is clear a renamed field is read under its other spelling
(``isPending`` for ``pending``, ``createdAt`` for ``publishedDate``, a string ``"5"`` rating, …) and
the substitution is REPORTED in ``ParseResult.warnings``; fields we do not know are listed there too
("unknown review fields: …"). A structure we cannot interpret (no review list, a review without id
or with a rating outside 1..5, an unreadable date) raises ``ParseError`` naming the location.

Decisions:

* **Pending reviews are left out** (and counted in a warning). They await moderation, are not
  shown as final on the page and may vanish; once published they come back on a later fetch under
  the same review id, so nothing is lost.
* **Location** (``review.location.name`` on multi-location businesses) → the ``location`` column
  (contract 1.1); also per review in ``ParseResult.page.business["review_locations"]``.
* **Company reply** → ``reply_text`` / ``replied_at`` of the review's star event.
* **Order**: ``filters.selected.sort`` goes to ``PageInfo.sort``; ``newest_first`` is True only for
  ``recency`` (the crawler asks for it on incremental crawls and falls back to a full crawl otherwise).

``ParseResult.aggregates`` holds at most one ``business_unit`` dict::

    {"kind": "business_unit",
     "id", "displayName", "identifyingName", "numberOfReviews", "trustScore", "stars", "websiteUrl",
                                  # as Trustpilot names them (None when absent)
     "name": str | None,          # = displayName
     "rating_value": float | None,  # = trustScore (0..5)
     "rating_count": int | None,    # = numberOfReviews
     "best_rating": 5.0, "worst_rating": 1.0,
     "total_number_of_reviews": int | None,  # filters.totalNumberOfReviews (before page filters)
     "histogram": {"1": int, …, "5": int} | None,   # star histogram
     "histogram_total": int | None,
     "histogram_source": "reviewStatistics" | "jsonld_dataset" | None}

The histogram comes from ``filters.reviewStatistics.ratings`` or, when absent, from the page's
JSON-LD ``Dataset`` block (csvw star table).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from cx_pipeline.normalize.redact import redact_name
from cx_pipeline.sources.base import CpuBudget, PageInfo, ParseError, ParseResult, Reject, SourceFormat, measures_frame
from cx_pipeline.sources.reviews._review_common import (
    check_not_all_refused,
    decode_json,
    refuse,
    utc_from_iso,
)

_NEXT_DATA_TAG = re.compile(rb"<script\b[^>]*\bid\s*=\s*[\"']__NEXT_DATA__[\"'][^>]*>", re.I)
_SCRIPT_END = re.compile(rb"</script\s*>", re.I)
_LINK_NEXT = re.compile(rb"<link\b[^>]*\brel\s*=\s*[\"']next[\"'][^>]*>", re.I)
_A_NEXT = re.compile(rb"<a\b[^>]*\bname\s*=\s*[\"']pagination-button-next[\"'][^>]*>", re.I)
_HREF = re.compile(rb"\bhref\s*=\s*[\"']([^\"']+)[\"']", re.I)
_LD_TAG = re.compile(rb"<script\b[^>]*\btype\s*=\s*[\"']application/ld\+json[\"'][^>]*>", re.I)
#: what only Trustpilot's own pages carry (not a shop page with a Trustpilot widget): the Next.js app's build
#: id and the Open Graph site name. Searched in the whole page with bytes.find (memchr speed), so a page padded
#: with megabytes before them is still recognised.
SIGNATURES = (b"businessunitprofile-consumersite", b'og:site_name" content="Trustpilot"',
              b"og:site_name' content='Trustpilot'")

#: review fields seen in 2023–2025 pages; anything else is reported as drift
KNOWN_REVIEW_FIELDS = frozenset({
    "id", "filtered", "pending", "text", "rating", "labels", "title", "likes", "source", "dates", "report",
    "hasUnhandledReports", "consumer", "reply", "consumersReviewCountOnSameDomain",
    "consumersReviewCountOnSameLocation", "productReviews", "language", "location",
})
_BU_KEYS = ("id", "displayName", "identifyingName", "numberOfReviews", "trustScore", "stars", "websiteUrl")
_STAR_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}

# (canonical, alternative spellings) — read in order, a hit on an alternative is reported
_ID = ("id", "reviewId")
_RATING = ("rating", "stars", "starRating")
_PENDING = ("pending", "isPending")
_PUBLISHED = ("publishedDate", "createdAt", "datePublished", "publishedAt", "createdDate")
_EXPERIENCED = ("experiencedDate", "experienceDate", "dateOfExperience", "experiencedAt")
_UPDATED = ("updatedDate", "updatedAt", "dateModified", "lastUpdatedDate")
_REPLY = ("reply", "companyReply", "businessReply")
_REPLY_MESSAGE = ("message", "text")
_REPLY_DATE = ("publishedDate", "createdAt", "datePublished", "publishedAt")


def parse_datetime(value: Any, *, field: str, location: str) -> datetime | None:
    """ISO-8601 → tz-aware UTC; naive timestamps from Trustpilot are UTC by construction."""
    return utc_from_iso(value, field=field, location=location)


def has_signature(data: bytes) -> bool:
    """Is this one of Trustpilot's own pages (whatever state its ``__NEXT_DATA__`` is in)?"""
    return any(sig in data for sig in SIGNATURES)


def extract_next_data(data: bytes, location: str, warnings: list[str] | None = None) -> dict[str, Any]:
    """The ``__NEXT_DATA__`` object of a page (a regex slice: no full HTML parse on the hot path).

    A Trustpilot page without a readable block is refused as a whole ("changed or truncated"): its JSON-LD
    holds the same reviews under other ids and without newlines, so reading it instead would silently change
    every event id.
    """
    body = _next_data_slice(data)
    if body is None:
        raise ParseError(location, "changed or truncated Trustpilot page: no <script id=\"__NEXT_DATA__\"> block, or "
                                   "one cut off before its end (a new layout or a partial download); not re-read as "
                                   "another format")
    try:
        obj = _loads(body, location, "__NEXT_DATA__", warnings)
    except ParseError as exc:
        if exc.__class__ is not ParseError:  # a budget (InputTooLarge) is reported as such
            raise
        raise ParseError(location, f"changed or truncated Trustpilot page: {exc.reason}") from exc
    if not isinstance(obj, dict):
        raise ParseError(location, "changed or truncated Trustpilot page: __NEXT_DATA__ is not a JSON object")
    return obj


def script_body(data: bytes, open_end: int) -> bytes | None:
    """Bytes between an opening <script> tag ending at ``open_end`` and its </script>.

    ``bytes.find`` instead of a lazy ``(.*?)</script>`` regex: on a 300 kB JSON block the regex
    costs ~3 ms per page, find ~30 µs (this is most of the re-parse time otherwise).
    """
    end = data.find(b"</script", open_end)
    if end < 0:
        m = _SCRIPT_END.search(data, open_end)  # upper-case </SCRIPT>
        if not m:
            return None  # cut off before its end: never a partial body
        end = m.start()
    return data[open_end:end]


def _next_data_slice(data: bytes) -> bytes | None:
    """The __NEXT_DATA__ script body: locate the id with find, confirm the enclosing tag by regex."""
    at = data.find(b"__NEXT_DATA__")
    while at >= 0:
        start = data.rfind(b"<script", 0, at)
        if start >= 0:
            m = _NEXT_DATA_TAG.match(data, start)
            if m and m.end() > at:
                return script_body(data, m.end())
        at = data.find(b"__NEXT_DATA__", at + 1)
    m = _NEXT_DATA_TAG.search(data)  # e.g. <SCRIPT …> spelled in upper case
    return script_body(data, m.end()) if m else None


def _loads(raw: bytes, location: str, what: str, warnings: list[str] | None = None) -> Any:
    return decode_json(raw, location, what, warnings)


def _find_next_href(data: bytes, location: str) -> str | None:
    for pattern in (_LINK_NEXT, _A_NEXT):
        tag = pattern.search(data)
        if tag:
            href = _HREF.search(tag.group(0))
            if href:
                try:
                    return urljoin(location, href.group(1).decode("utf-8", "replace").replace("&amp;", "&"))
                except ValueError:  # a malformed href (e.g. bad IPv6 host) is no next page
                    return None
    return None


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


class _Drift:
    """Collects 'read X under another name' notes once per page, with counts."""

    def __init__(self) -> None:
        self.used: Counter[str] = Counter()

    def first(self, obj: dict[str, Any], names: tuple[str, ...], what: str) -> Any:
        for i, n in enumerate(names):
            if n in obj:
                if i:
                    self.used[f"used {n} for {what}"] += 1
                return obj[n]
        return None

    def notes(self) -> list[str]:
        return [f"{msg} ({n} review(s))" for msg, n in sorted(self.used.items())]


def _int_or_none(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v == int(v):
        return int(v)
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return None


def _float_or_none(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _histogram_from_stats(ratings: Any) -> tuple[dict[str, int] | None, int | None]:
    if not isinstance(ratings, dict):
        return None, None
    hist = {digit: _int_or_none(ratings.get(word)) for word, digit in _STAR_WORDS.items()}
    if any(v is None for v in hist.values()):
        return None, None
    return {k: v for k, v in hist.items() if v is not None}, _int_or_none(ratings.get("total"))


def _histogram_from_jsonld(data: bytes) -> tuple[dict[str, int] | None, int | None]:
    """The star histogram of the JSON-LD Dataset block (csvw table: '1 star' … '5 stars', 'Total')."""
    for m in _LD_TAG.finditer(data):
        block = script_body(data, m.end())
        if block is None or b"csvw" not in block:
            continue
        try:
            obj = json.loads(block)
        except (ValueError, RecursionError):
            continue
        graph = obj.get("@graph", obj) if isinstance(obj, dict) else obj
        for node in graph if isinstance(graph, list) else [graph]:
            cols = _get(node, "mainEntity", "csvw:tableSchema", "csvw:columns")
            if not isinstance(cols, list):
                continue
            hist: dict[str, int] = {}
            total = None
            for col in cols:
                if not isinstance(col, dict):
                    continue
                name = str(col.get("csvw:name") or "")
                cells = col.get("csvw:cells")
                value = _int_or_none(cells[0].get("csvw:value")) if isinstance(cells, list) and cells and \
                    isinstance(cells[0], dict) else None
                digit = re.match(r"\s*([1-5])\b", name)
                if digit and value is not None:
                    hist[digit.group(1)] = value
                elif value is not None:
                    total = value
            if len(hist) == 5:
                return hist, total
    return None, None


class TrustpilotFormat(SourceFormat):
    name = "trustpilot"
    kind = "review"
    version = "1.1"
    sniff_priority = 10

    def sniff(self, data: bytes, filename: str) -> bool:
        if has_signature(data):  # also a truncated page, or one with megabytes before its <head> content
            return True
        head = data[:400_000]
        if b"__NEXT_DATA__" in head and b"trustpilot" in head.lower():
            return True
        stripped = data.lstrip()[:50_000]
        return stripped[:1] in (b"[", b"{") and (b"\"consumer\"" in stripped or b"\"trustScore\"" in stripped)

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        warnings: list[str] = []
        stripped = data.lstrip()
        if stripped[:1] in (b"[", b"{"):
            obj: Any = _loads(stripped, location, "file", warnings)
            return self._parse_obj(obj, location=location, next_href=None, data=None, warnings=warnings)
        obj = extract_next_data(data, location, warnings)
        return self._parse_obj(obj, location=location, next_href=_find_next_href(data, location), data=data,
                               warnings=warnings)

    def _parse_obj(self, obj: Any, *, location: str, next_href: str | None, data: bytes | None,
                   warnings: list[str]) -> ParseResult:
        page = PageInfo(next_url=next_href)
        pp: dict[str, Any] | None = None
        if isinstance(obj, list):
            reviews: Any = obj
        elif isinstance(obj, dict) and ("props" in obj or "pageProps" in obj):
            pp = _get(obj, "props", "pageProps") if "props" in obj else obj.get("pageProps")
            if not isinstance(pp, dict) or "reviews" not in pp:
                raise ParseError(location, "__NEXT_DATA__ has no props.pageProps.reviews: the page layout changed "
                                           "or this is not a company review page")
            reviews = pp["reviews"]
        elif isinstance(obj, dict) and "reviews" in obj:
            pp = obj
            reviews = obj["reviews"]
        elif isinstance(obj, dict) and "trustScore" in obj and "numberOfReviews" in obj:
            agg = self._business_aggregate(obj, None, data)
            page.business = {k: obj.get(k) for k in _BU_KEYS}
            return ParseResult(self.name, self.parser_id, measures_frame([]), 0, page=page, aggregates=[agg],
                               empty_reason="business-unit summary only, no reviews in this file")
        else:
            raise ParseError(location, "JSON is neither a __NEXT_DATA__ object nor a list of Trustpilot reviews")
        if not isinstance(reviews, list):
            raise ParseError(location, f"reviews is a {type(reviews).__name__}, expected a list")

        aggregates: list[dict[str, Any]] = []
        if pp is not None:
            pagination = _get(pp, "filters", "pagination")
            pagination = pagination if isinstance(pagination, dict) else {}
            page.current_page = _int_or_none(pagination.get("currentPage"))
            page.total_pages = _int_or_none(pagination.get("totalPages"))
            page.total_count = _int_or_none(pagination.get("totalCount"))
            lang = _get(pp, "filters", "selected", "languages")
            page.language_filter = lang if isinstance(lang, str) else None
            # the applied order, read back: only "recency" lets an incremental crawl stop at known reviews
            sort = _get(pp, "filters", "selected", "sort")
            page.sort = sort if isinstance(sort, str) else None
            page.newest_first = (sort == "recency") if isinstance(sort, str) else None
            bu = pp.get("businessUnit")
            if isinstance(bu, dict):
                page.business = {k: bu.get(k) for k in _BU_KEYS}
                aggregates.append(self._business_aggregate(bu, pp, data))

        drift = _Drift()
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        unknown: set[str] = set()
        pending: list[str] = []
        no_pending_flag = 0
        locations: dict[str, dict[str, Any]] = {}
        rejects: list[Reject] = []
        budget = CpuBudget(location)
        for i, review in enumerate(reviews):
            budget.check()
            if not isinstance(review, dict):
                rejects.append(Reject(f"reviews[{i}]", f"reviews[{i}] is not an object ({type(review).__name__})"))
                continue
            unknown.update(k for k in review if k not in KNOWN_REVIEW_FIELDS)
            try:
                row = self._review_row(review, i, location, drift)
            except ParseError as exc:  # one bad review is refused; the rest of the page is kept
                refuse(rejects, exc, f"reviews[{i}]", drift.first(review, _ID, "id"))
                continue
            flag = drift.first(review, _PENDING, "pending")
            if flag is None:
                no_pending_flag += 1
            elif flag is True or (isinstance(flag, str) and flag.lower() == "true"):
                pending.append(row["native_id"])
                continue
            if row["native_id"] in seen:
                warnings.append(f"reviews[{i}] repeats review {row['native_id']} on the same page; kept the first")
                continue
            seen.add(row["native_id"])
            loc = review.get("location")
            if isinstance(loc, dict) and loc.get("name"):
                locations[row["native_id"]] = {"id": loc.get("id"), "name": loc.get("name")}
                row["location"] = str(loc["name"])
            rows.append(row)
        if locations:
            page.business["review_locations"] = locations
        warnings.extend(drift.notes())
        unknown -= set(_ID + _RATING + _PENDING + _REPLY)
        if unknown:
            warnings.append(f"unknown review fields (ignored): {', '.join(sorted(unknown)[:20])}")
        if no_pending_flag:
            warnings.append(f"{no_pending_flag} review(s) carry no pending/isPending flag; taken as published")
        if pending:
            warnings.append(f"left out {len(pending)} pending review(s) awaiting moderation: {pending[:5]}")
        check_not_all_refused(location, rejects, len(rows) + len(pending))
        empty_reason = None
        if not rows:
            empty_reason = (f"page lists no published reviews (pagination totalCount={page.total_count}"
                            f"{f', {len(pending)} pending left out' if pending else ''})")
        return ParseResult(self.name, self.parser_id, measures_frame(rows), len(rows), page=page,
                           aggregates=aggregates, warnings=warnings, empty_reason=empty_reason, rejects=rejects)

    def _business_aggregate(self, bu: dict[str, Any], pp: dict[str, Any] | None, data: bytes | None) -> dict[str, Any]:
        """The documented ``business_unit`` aggregate (TrustScore, counts, star histogram)."""
        hist, total = _histogram_from_stats(_get(pp, "filters", "reviewStatistics", "ratings"))
        source = "reviewStatistics" if hist else None
        if hist is None and data is not None:
            hist, total = _histogram_from_jsonld(data)
            source = "jsonld_dataset" if hist else None
        display = bu.get("displayName")
        return {
            "kind": "business_unit",
            **{k: bu.get(k) for k in _BU_KEYS},
            "name": display if isinstance(display, str) else None,
            "rating_value": _float_or_none(bu.get("trustScore")),
            "rating_count": _int_or_none(bu.get("numberOfReviews")),
            "best_rating": 5.0,
            "worst_rating": 1.0,
            "total_number_of_reviews": _int_or_none(_get(pp, "filters", "totalNumberOfReviews")),
            "histogram": hist,
            "histogram_total": total,
            "histogram_source": source,
        }

    def _review_row(self, review: dict[str, Any], i: int, location: str, drift: _Drift) -> dict[str, Any]:
        where = f"reviews[{i}]"
        rid = drift.first(review, _ID, "id")
        if not isinstance(rid, str) or not rid.strip():
            raise ParseError(location, f"{where} has no review id", field="id", value=rid)
        rating = drift.first(review, _RATING, "rating")
        if isinstance(rating, str) and rating.strip().isdigit():
            drift.used["read a string rating as a number"] += 1
            rating = int(rating.strip())
        if isinstance(rating, bool) or not isinstance(rating, int | float) or not 1 <= rating <= 5:
            raise ParseError(location, f"{where} ({rid}) has rating {rating!r}, expected 1..5", field="rating",
                             value=rating)
        dates = review.get("dates")
        if not isinstance(dates, dict):
            if dates is not None:
                raise ParseError(location, f"{where} ({rid}) dates is a {type(dates).__name__}, expected an object",
                                 field="dates", value=dates)
            dates = review  # older/flattened shape: the date fields sit on the review itself
        reply = drift.first(review, _REPLY, "reply")
        if reply is not None and not isinstance(reply, dict):
            raise ParseError(location, f"{where} ({rid}) reply is a {type(reply).__name__}, expected an object",
                             field="reply", value=reply)
        reply = reply or {}
        consumer = review.get("consumer")
        consumer = consumer if isinstance(consumer, dict) else {}
        name = consumer.get("displayName")  # masked in the texts below, never stored
        verification = _get(review, "labels", "verification")
        verification = verification if isinstance(verification, dict) else {}
        is_verified = verification.get("isVerified")
        if is_verified is None:
            is_verified = consumer.get("isVerified")
        consumer_id = consumer.get("id")
        country = consumer.get("countryCode")
        country = country.upper() if isinstance(country, str) and len(country) == 2 and country.isalpha() else None
        language = review.get("language")
        language = language.split("-")[0].lower() if isinstance(language, str) and language else None
        reply_text = drift.first(reply, _REPLY_MESSAGE, "reply message")
        published = parse_datetime(drift.first(dates, _PUBLISHED, "publishedDate"),
                                   field=f"{where} publishedDate", location=location)
        if published is None:
            drift.used["no publishedDate: published_at left null"] += 1
        return {
            "native_id": rid,
            "position": where,
            "measure_key": "stars",
            "metric": "star_rating",
            "touchpoint": None,
            "score_raw": float(rating),
            "scale_min": 1.0,
            "scale_max": 5.0,
            "higher_is_better": True,
            "occurred_at": parse_datetime(drift.first(dates, _EXPERIENCED, "experiencedDate"),
                                          field=f"{where} experiencedDate", location=location),
            "published_at": published,
            "updated_at": parse_datetime(drift.first(dates, _UPDATED, "updatedDate"),
                                         field=f"{where} updatedDate", location=location),
            "language": language,
            "title": _own_text(review.get("title"), name),
            "text": _own_text(review.get("text"), name),
            "reply_text": redact_name(_text(reply_text), name if isinstance(name, str) else None),
            "replied_at": parse_datetime(drift.first(reply, _REPLY_DATE, "reply publishedDate"),
                                         field=f"{where} reply.publishedDate", location=location),
            "is_verified": bool(is_verified) if is_verified is not None else None,
            "country": country,
            "customer_ref": f"trustpilot-consumer:{consumer_id}" if isinstance(consumer_id, str | int) and
            str(consumer_id) else None,
        }


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v.strip() else None


def _own_text(v: Any, name: Any) -> str | None:
    """The review's own title/text with the reviewer's full name masked (parts of it are too often words)."""
    return redact_name(_text(v), name if isinstance(name, str) else None, parts=False)
