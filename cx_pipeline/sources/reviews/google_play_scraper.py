"""Google Play reviews as the common google-play-scraper libraries save them (Node and Python).

Teams without Play Console access collect public reviews with these libraries and drop the JSON
into the inbox. The two libraries name the same fields differently:

=================  ==================  ======================================
meaning            Node ``reviews()``  Python ``reviews()`` / ``reviews_all``
=================  ==================  ======================================
review id          ``id``              ``reviewId``
stars              ``score``           ``score``
text               ``text``            ``content``
time               ``date`` (ISO)      ``at`` (datetime; ``str()`` when dumped)
reply              ``replyText``       ``replyContent``
reply time         ``replyDate``       ``repliedAt``
app version        ``version``         ``appVersion`` / ``reviewCreatedVersion``
helpful votes      ``thumbsUp``        ``thumbsUpCount``
=================  ==================  ======================================

Accepted shapes: a list of reviews, Node's ``{"data": [...], "nextPaginationToken": …}``, Python's
``(reviews, continuation_token)`` dumped as a two-element list, or ``{"reviews": [...]}``.

* The Python library builds ``at`` with ``datetime.fromtimestamp``: the **local time of the machine
  that ran it**, without a zone. Such naive times are read as UTC and the page says so.
* ``userName`` is a display name, not an id: no ``customer_ref``.
* ``criterias`` (Google's per-aspect tags for games) are not ratings of a touchpoint: ignored, counted.
* The app version has no contract column; kept in ``ParseResult.page.business["app_versions"]``.

The source is ``google_play`` (shared with the Publisher API format: both use Google's review ids).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cx_pipeline.sources.base import CpuBudget, PageInfo, ParseError, ParseResult, Reject, SourceFormat, measures_frame
from cx_pipeline.sources.reviews._review_common import (
    app_stars,
    check_not_all_refused,
    clean_own_text,
    clean_reply,
    clean_text,
    load_json,
    refuse,
    stars,
    utc_from_naive_or_iso,
)
from cx_pipeline.sources.reviews.google_play_api import SOURCE

#: (canonical meaning, Node name, Python name(s))
_ID = ("id", "reviewId")
_TEXT = ("text", "content")
_DATE = ("date", "at")
_REPLY = ("replyText", "replyContent")
_REPLY_DATE = ("replyDate", "repliedAt")
_VERSION = ("version", "appVersion", "reviewCreatedVersion")
_MARKERS = (b'"userName"', b'"score"')


def _first(obj: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for n in names:
        if obj.get(n) is not None:
            return n, obj[n]
    return None, None


def _reviews(obj: Any) -> list[Any] | None:
    if isinstance(obj, dict):
        for key in ("data", "reviews", "results"):
            if isinstance(obj.get(key), list):
                return obj[key]
        return None
    if isinstance(obj, list):
        if len(obj) == 2 and isinstance(obj[0], list) and not isinstance(obj[1], list):  # (reviews, token)
            return obj[0]
        return obj
    return None


class GooglePlayScraperFormat(SourceFormat):
    name = "google_play_scraper"
    kind = "review"
    version = "1.0"
    sniff_priority = 16

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:20_000].lstrip(b"\xef\xbb\xbf \t\r\n")
        if head[:1] not in (b"[", b"{") or not all(m in head for m in _MARKERS):
            return False
        node = b'"scoreText"' in head or b'"replyText"' in head or b'"thumbsUp"' in head
        python = b'"reviewId"' in head and (b'"content"' in head or b'"thumbsUpCount"' in head)
        return node or python

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        warnings: list[str] = []
        obj = load_json(data, location, "google-play-scraper reviews", warnings)
        reviews = _reviews(obj)
        if reviews is None:
            raise ParseError(location, "expected a list of google-play-scraper reviews, {\"data\": [...]} (Node) or "
                                       "[reviews, token] (Python)")
        rows: list[dict[str, Any]] = []
        versions: dict[str, str] = {}
        votes: dict[str, int] = {}
        notes: Counter[str] = Counter()
        seen: set[str] = set()
        rejects: list[Reject] = []
        budget = CpuBudget(location)
        for i, review in enumerate(reviews):
            budget.check()
            where = f"reviews[{i}]"
            if not isinstance(review, dict):
                rejects.append(Reject(where, f"{where} is a {type(review).__name__}, expected an object"))
                continue
            try:
                row = self._row(review, where, location, notes)
            except ParseError as exc:  # one bad review is refused; the rest of the file is kept
                refuse(rejects, exc, where, _first(review, _ID)[1])
                continue
            rid = row["native_id"]
            if rid in seen:
                warnings.append(f"{where} repeats review {rid}; kept the first")
                continue
            seen.add(rid)
            _, version = _first(review, _VERSION)
            if clean_text(version):
                versions[rid] = str(version).strip()
            _, thumbs = _first(review, ("thumbsUp", "thumbsUpCount"))
            if isinstance(thumbs, int) and not isinstance(thumbs, bool):
                votes[rid] = thumbs
            rows.append(row)
        check_not_all_refused(location, rejects, len(rows))
        warnings.extend(f"{msg} ({n} review(s))" for msg, n in sorted(notes.items()))
        token = obj.get("nextPaginationToken") if isinstance(obj, dict) else None
        if token:
            warnings.append("the file has a nextPaginationToken: more reviews exist than this file holds")
        page = PageInfo(total_count=len(rows), business={"app_versions": versions, "votes": votes})
        return ParseResult(SOURCE, self.parser_id, measures_frame(rows), len(rows), page=page, warnings=warnings,
                           empty_reason=None if rows else "the file lists no reviews", rejects=rejects)

    def _row(self, review: dict[str, Any], where: str, location: str, notes: Counter[str]) -> dict[str, Any]:
        _, rid = _first(review, _ID)
        if not isinstance(rid, str) or not rid.strip():
            raise ParseError(location, f"{where} has no review id (id / reviewId)", field="id", value=rid)
        rating = stars(review.get("score"), where=f"{where} ({rid})", location=location)
        date_field, date = _first(review, _DATE)
        published = utc_from_naive_or_iso(date, field=f"{where} {date_field}", location=location)
        if isinstance(date, str) and date_field == "at" and not date.rstrip().endswith("Z") and "+" not in date[10:]:
            notes["naive 'at' time read as UTC (the Python scraper writes the local time of the machine "
                  "that ran it)"] += 1
        if published is None:
            notes["no review date: published_at left null"] += 1
        reply_field, reply = _first(review, _REPLY)
        _, reply_date = _first(review, _REPLY_DATE)
        if review.get("criterias"):
            notes["criterias (per-aspect tags) ignored: not touchpoint ratings"] += 1
        _, text = _first(review, _TEXT)
        name = review.get("userName")  # masked in the texts, never stored
        return {
            **app_stars(rid.strip(), where, rating),
            "published_at": published,
            "title": clean_own_text(review.get("title"), name),
            "text": clean_own_text(text, name),
            "reply_text": clean_reply(reply, name),
            "replied_at": utc_from_naive_or_iso(reply_date, field=f"{where} {reply_field or 'reply'} date",
                                                location=location),
        }
