"""Apple App Store customer reviews from the public RSS JSON feed (no key, no login).

``https://itunes.apple.com/{country}/rss/customerreviews/page={n}/id={app_id}/sortBy=mostRecent/json``
serves 50 reviews a page, newest first, pages 1–10 only. One source is one app in one country's
store: the feed never mixes storefronts, so the store country is the customer's country.

What the feed does that a naive reader gets wrong:

* an app without reviews (or a page past the last one) is a feed with **no ``entry`` key**, and a
  single review arrives as an ``entry`` **object**, not a one-element list;
* older feeds put the **app itself as the first entry** (``im:name``, ``im:price``, no
  ``im:rating``); it is read as the app's metadata, not as a review;
* entries of some captures carry **no per-entry date** (``updated``): published_at is left null and
  the page says how many, instead of inventing a date from the feed's capture time;
* page 11 answers the plain text ``CustomerReviews RSS page depth is limited to 10``: the end of
  the feed, parsed as an empty last page with that reason, not as an error;
* the feed-level ``first/last/next`` links point at the **XML** feed; the next page is built from the
  JSON URL we fetched instead, and ``last`` only bounds the page count.

Reviewer names are not used. The reviewer's profile URL (``author.uri``, ``…/reviews/id123``) carries
a stable user id, which becomes ``customer_ref`` (hashed by normalize). App version and helpful votes
have no contract column; they are kept per review in ``ParseResult.page.business`` (``app_versions``,
``votes``) and in the raw page every event points to.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

from cx_pipeline.sources.base import CpuBudget, PageInfo, ParseError, ParseResult, Reject, SourceFormat, measures_frame
from cx_pipeline.sources.reviews._review_common import (
    app_stars,
    check_not_all_refused,
    clean_own_text,
    clean_text,
    get,
    load_json,
    refuse,
    stars,
    utc_from_iso,
)

#: Apple serves at most this many pages of the customer-reviews feed
MAX_PAGES = 10
DEPTH_LIMIT_MARKER = b"page depth is limited"
_PAGE_SEGMENT = re.compile(r"/page=(\d+)(?=/)", re.I)
_APP_ID = re.compile(r"/id=?(\d+)(?=[/?]|$)", re.I)
_COUNTRY = re.compile(r"^/([a-z]{2})/rss/", re.I)
_CC_PARAM = re.compile(r"[?&]cc=([a-z]{2})\b", re.I)
_USER_ID = re.compile(r"/reviews/id(\d+)", re.I)
_AUTHOR_COUNTRY = re.compile(r"itunes\.apple\.com/([a-z]{2})/reviews/", re.I)
_LAST_PAGE = re.compile(r"/page=(\d+)/", re.I)


def feed_url(country: str, app_id: str | int, page: int = 1) -> str:
    """The JSON feed URL of one app in one country's store (page 1..10), as the crawler requests it."""
    return (f"https://itunes.apple.com/{country.lower()}/rss/customerreviews/page={page}/id={app_id}"
            "/sortBy=mostRecent/json")


def page_number(url: str) -> int | None:
    m = _PAGE_SEGMENT.search(url.split("?", 1)[0])
    return int(m.group(1)) if m else None


def url_for_page(url: str, page: int) -> str | None:
    """``url`` pointing at page ``page``; None when ``url`` is not a customer-reviews feed URL."""
    path, sep, query = url.partition("?")
    if "/customerreviews/" not in path.lower():
        return None
    if _PAGE_SEGMENT.search(path):
        path = _PAGE_SEGMENT.sub(f"/page={page}", path, count=1)
    else:
        path = re.sub(r"(/customerreviews)/", rf"\1/page={page}/", path, count=1, flags=re.I)
    return path + sep + query


def _label(obj: Any) -> Any:
    """Apple wraps every scalar as ``{"label": value}``."""
    return obj.get("label") if isinstance(obj, dict) else None


def _is_app_entry(entry: dict[str, Any]) -> bool:
    return "im:rating" not in entry and ("im:name" in entry or "im:price" in entry or "im:artist" in entry)


def _content_text(content: Any) -> str | None:
    """``content`` is one ``{label, attributes{type}}`` or, in some feeds, a list of text + html variants."""
    if isinstance(content, list):
        plain = [c for c in content if isinstance(c, dict) and get(c, "attributes", "type") in (None, "text")]
        content = plain[0] if plain else (content[0] if content else None)
    return clean_text(_label(content))


class AppStoreRssFormat(SourceFormat):
    name = "appstore"
    kind = "review"
    version = "1.0"
    sniff_priority = 12
    #: Apple serves pages 1..10 only: a full 10th page means older reviews exist that cannot be read
    max_depth: ClassVar[int] = MAX_PAGES

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:4_000]
        if DEPTH_LIMIT_MARKER in head.lower() and b"customerreviews" in head.lower():
            return True
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not stripped.startswith(b"{") or b'"feed"' not in head:
            return False
        return any(m in head for m in (b"customerreviews", b"im:rating", b"iTunes Store", b"im:version"))

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        page_no = page_number(location)
        if DEPTH_LIMIT_MARKER in data[:2_000].lower():
            current = page_no or MAX_PAGES + 1
            return ParseResult(
                self.name, self.parser_id, measures_frame([]), 0,
                page=PageInfo(current_page=current, total_pages=min(current - 1, MAX_PAGES), sort="mostRecent",
                              newest_first=True),
                empty_reason=f"Apple's feed stops at page {MAX_PAGES} ('{data[:80].decode('utf-8', 'replace')}'): "
                             "the end of the feed, not an error",
            )
        warnings: list[str] = []
        obj = load_json(data, location, "an App Store customer-reviews feed", warnings)
        feed = obj.get("feed") if isinstance(obj, dict) else None
        if not isinstance(feed, dict):
            raise ParseError(location, "expected a JSON object with a 'feed' object (App Store customer-reviews feed)")
        entries = feed.get("entry")
        if entries is None:
            entries = []
        elif isinstance(entries, dict):  # a single review is an object, not a list
            entries = [entries]
        elif not isinstance(entries, list):
            raise ParseError(location, f"feed.entry is a {type(entries).__name__}, expected a list or an object")

        self_href = self._link(feed, "self") or (_label(feed.get("id")) or "")
        current = page_no or page_number(str(self_href)) or 1
        country = self._country(location, str(self_href))
        app_id = self._app_id(location, str(self_href))
        page = PageInfo(current_page=current, sort="mostRecent", newest_first=True)
        page.business = {"app_id": app_id, "country": country}

        rows: list[dict[str, Any]] = []
        versions: dict[str, str] = {}
        votes: dict[str, dict[str, int | None]] = {}
        notes: Counter[str] = Counter()
        seen: set[str] = set()
        rejects: list[Reject] = []
        budget = CpuBudget(location)
        for i, entry in enumerate(entries):
            budget.check()
            where = f"feed.entry[{i}]"
            if not isinstance(entry, dict):
                rejects.append(Reject(where, f"{where} is a {type(entry).__name__}, expected an object"))
                continue
            if _is_app_entry(entry):
                page.business.update({k: v for k, v in self._app_metadata(entry).items() if v is not None})
                notes["first entry is the app itself (legacy feed): read as app metadata"] += 1
                continue
            try:
                row = self._review_row(entry, where, location, country, notes)
            except ParseError as exc:  # one bad entry is refused; the rest of the page is kept
                refuse(rejects, exc, where, _label(entry.get("id")))
                continue
            rid = row["native_id"]
            if rid in seen:
                warnings.append(f"{where} repeats review {rid} on the same page; kept the first")
                continue
            seen.add(rid)
            version = clean_text(_label(entry.get("im:version")))
            if version:
                versions[rid] = version
            vote = {k: _int(_label(entry.get(f"im:{k}"))) for k in ("voteSum", "voteCount")}
            if any(v is not None for v in vote.values()):
                votes[rid] = vote
            rows.append(row)
        page.business["app_versions"] = versions
        page.business["votes"] = votes
        warnings.extend(f"{msg} ({n} entr{'y' if n == 1 else 'ies'})" for msg, n in sorted(notes.items()))

        check_not_all_refused(location, rejects, len(rows))
        last = self._last_page(feed)
        empty_reason = None
        if rows:
            page.total_pages = min(last or MAX_PAGES, MAX_PAGES)
            page.total_pages = max(page.total_pages, current)
        elif current <= 1:
            page.total_count = 0
            page.total_pages = 1
            empty_reason = "the feed lists no reviews for this app in this store (no 'entry' in the feed)"
        else:
            page.total_pages = current - 1  # past the last page: the end of the feed
            empty_reason = f"page {current} of the feed is empty (no 'entry'): the end of the feed"
        if page.total_pages is not None and current < page.total_pages:
            page.next_url = url_for_page(location, current + 1)
        return ParseResult(self.name, self.parser_id, measures_frame(rows), len(rows), page=page,
                           warnings=warnings, empty_reason=empty_reason, rejects=rejects)

    def _review_row(self, entry: dict[str, Any], where: str, location: str, country: str | None,
                    notes: Counter[str]) -> dict[str, Any]:
        rid = _label(entry.get("id"))
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)
        if not isinstance(rid, str) or not rid.strip():
            raise ParseError(location, f"{where} has no review id (id.label)", field="id.label", value=rid)
        rid = rid.strip()
        rating = stars(_label(entry.get("im:rating")), where=f"{where} ({rid})", location=location)
        published = utc_from_iso(_label(entry.get("updated")), field=f"{where} updated", location=location)
        if published is None:
            notes["no per-entry date (updated): published_at left null"] += 1
        author_uri = _label(get(entry, "author", "uri"))
        user = _USER_ID.search(author_uri) if isinstance(author_uri, str) else None
        if country is None and isinstance(author_uri, str):
            m = _AUTHOR_COUNTRY.search(author_uri)
            country = m.group(1).upper() if m else None
        name = _label(get(entry, "author", "name"))  # masked in the texts, never stored
        return {
            **app_stars(rid, where, rating),
            "published_at": published,
            "title": clean_own_text(_label(entry.get("title")), name),
            "text": clean_own_text(_content_text(entry.get("content")), name),
            "country": country,
            "customer_ref": f"appstore-user:{user.group(1)}" if user else None,
        }

    @staticmethod
    def _link(feed: dict[str, Any], rel: str) -> str | None:
        links = feed.get("link")
        for link in links if isinstance(links, list) else [links]:
            if get(link, "attributes", "rel") == rel:
                href = get(link, "attributes", "href")
                return href if isinstance(href, str) and href else None
        return None

    def _last_page(self, feed: dict[str, Any]) -> int | None:
        href = self._link(feed, "last")
        m = _LAST_PAGE.search(href.split("?", 1)[0] + "/") if href else None
        return int(m.group(1)) if m else None

    @staticmethod
    def _country(location: str, self_href: str) -> str | None:
        for url in (location, self_href):
            path = re.sub(r"^[a-z]+://[^/]+", "", url, flags=re.I)
            m = _COUNTRY.match(path) or _CC_PARAM.search(url)
            if m:
                return m.group(1).upper()
        return None

    @staticmethod
    def _app_id(location: str, self_href: str) -> str | None:
        for url in (location, self_href):
            m = _APP_ID.search(url.split("?", 1)[0])
            if m and "customerreviews" in url.lower():
                return m.group(1)
        return None

    @staticmethod
    def _app_metadata(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": clean_text(_label(entry.get("im:name"))),
            "app_id": get(entry, "id", "attributes", "im:id") or None,
            "bundle_id": get(entry, "id", "attributes", "im:bundleId") or None,
            "artist": clean_text(_label(entry.get("im:artist"))),
        }


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    return None
