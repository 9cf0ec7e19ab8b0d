"""Google Play reviews as the Android Publisher API returns them (``reviews.list`` / ``reviews.get``).

Accepted shapes: the API response ``{"reviews": [...], "tokenPagination": ...}``, a bare list of
review objects (what scripts that page through the API usually save), or one review object.

* ``comments`` holds one ``userComment`` (the review) and, when the developer answered, one
  ``developerComment`` (the reply, with its own ``lastModified``).
* ``userComment.text`` is ``title + TAB + text``; a review without a title starts with the TAB. The
  part before the TAB becomes the title, so texts never start with a stray tab.
* Only ``lastModified`` exists (``{seconds, nanos}``): it is the publication time of the current
  version of the review; an edit is a new version of the same event.
* ``authorName`` is a display name, not an id: no ``customer_ref``.
* ``appVersionName``/``appVersionCode`` have no contract column; kept per review in
  ``ParseResult.page.business["app_versions"]`` and in the archived file.

The source is ``google_play`` (shared with the scraper format: both use Google's review ids).
"""

from __future__ import annotations

from typing import Any

from cx_pipeline.sources.base import CpuBudget, PageInfo, ParseError, ParseResult, Reject, SourceFormat, measures_frame
from cx_pipeline.sources.reviews._review_common import (
    app_stars,
    check_not_all_refused,
    clean_own_text,
    clean_reply,
    clean_text,
    get,
    language_code,
    load_json,
    refuse,
    stars,
    utc_from_seconds_nanos,
)

SOURCE = "google_play"


def split_title(text: str | None) -> tuple[str | None, str | None]:
    """``'title\\ttext'`` → (title, text); a leading tab means no title."""
    if text is None or "\t" not in text:
        return None, clean_text(text)
    title, _, body = text.partition("\t")
    return clean_text(title), clean_text(body)


class GooglePlayApiFormat(SourceFormat):
    name = "google_play_api"
    kind = "review"
    version = "1.0"
    sniff_priority = 15

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:20_000].lstrip(b"\xef\xbb\xbf \t\r\n")
        return head[:1] in (b"[", b"{") and b'"userComment"' in head and b'"reviewId"' in head

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        warnings: list[str] = []
        obj = load_json(data, location, "Android Publisher API reviews", warnings)
        if isinstance(obj, dict) and "reviews" in obj:
            reviews = obj["reviews"]
        elif isinstance(obj, dict) and "reviewId" in obj:
            reviews = [obj]
        else:
            reviews = obj
        if not isinstance(reviews, list):
            raise ParseError(location, "expected a reviews.list response ({\"reviews\": [...]}), a list of review "
                                       "objects or one review object")
        rows: list[dict[str, Any]] = []
        versions: dict[str, str] = {}
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
                row, version = self._row(review, where, location)
            except ParseError as exc:  # one bad review is refused; the rest of the file is kept
                refuse(rejects, exc, where, review.get("reviewId"))
                continue
            if row["native_id"] in seen:
                warnings.append(f"{where} repeats review {row['native_id']}; kept the first")
                continue
            seen.add(row["native_id"])
            if version:
                versions[row["native_id"]] = version
            rows.append(row)
        check_not_all_refused(location, rejects, len(rows))
        page = PageInfo(total_count=len(rows), business={"app_versions": versions})
        token = get(obj, "tokenPagination", "nextPageToken") if isinstance(obj, dict) else None
        if token:
            warnings.append("the response has a nextPageToken: more reviews exist than this file holds")
        return ParseResult(SOURCE, self.parser_id, measures_frame(rows), len(rows), page=page, warnings=warnings,
                           empty_reason=None if rows else "the response lists no reviews", rejects=rejects)

    def _row(self, review: dict[str, Any], where: str, location: str) -> tuple[dict[str, Any], str | None]:
        rid = review.get("reviewId")
        if not isinstance(rid, str) or not rid.strip():
            raise ParseError(location, f"{where} has no reviewId", field="reviewId", value=rid)
        comments = review.get("comments")
        if not isinstance(comments, list):
            raise ParseError(location, f"{where} ({rid}) has no comments list")
        user = next((c["userComment"] for c in comments if isinstance(c, dict)
                     and isinstance(c.get("userComment"), dict)), None)
        dev = next((c["developerComment"] for c in comments if isinstance(c, dict)
                    and isinstance(c.get("developerComment"), dict)), None)
        if user is None:
            raise ParseError(location, f"{where} ({rid}) has no userComment")
        rating = stars(user.get("starRating"), where=f"{where} ({rid})", location=location)
        raw_text = user.get("text")
        title, text = split_title(raw_text if isinstance(raw_text, str) else None)
        name = review.get("authorName")  # masked in the texts, never stored
        name, code = clean_text(user.get("appVersionName")), user.get("appVersionCode")
        version = " ".join(v for v in (name, f"({code})" if code not in (None, "") else None) if v) or None
        return {
            **app_stars(rid.strip(), where, rating),
            "published_at": utc_from_seconds_nanos(user.get("lastModified"), field=f"{where} lastModified",
                                                   location=location),
            "language": language_code(user.get("reviewerLanguage")),
            "title": clean_own_text(title, name),
            "text": clean_own_text(text, name),
            "reply_text": clean_reply(dev.get("text"), name) if dev else None,
            "replied_at": utc_from_seconds_nanos(dev.get("lastModified"), field=f"{where} developerComment",
                                                 location=location) if dev else None,
        }, version
