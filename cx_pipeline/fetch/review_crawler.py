"""Crawl one review source page by page, and say loudly why the crawl stopped.

Design against what breaks other scrapers (see notes/peers.md): language filters that hide Nordic
reviews (Trustpilot: always ``languages=all``, read the applied filter back), login walls and WAF
pages served mid-crawl (reported as *blocked*, never as "0 new reviews"), layouts that change
(a page that parses to zero reviews where reviews were expected is *changed*), pages served again
for a different page number (duplicates), and incremental runs that must stop early without
missing edits (the caller's ``known`` callback decides per page; ``full_resync`` disables it).

Where a page says it lists reviews newest first (``PageInfo.newest_first``: the App Store feed,
Trustpilot with ``sort=recency``) the incremental crawl stops at the first page whose *oldest* review
is known: everything after it is older and already stored. Incremental Trustpilot crawls ask for
``sort=recency``; a page that comes back in another order (relevance) cannot prove that nothing new
hides behind known reviews, so the crawl falls back to a full crawl and says so in the page's reason
and in ``CrawlResult.notes``. Feeds that end with an empty page past the last one (the App Store
feed) report ``current_page > total_pages``: the end of the feed, not a changed layout.

Every fetched body — including blocked and changed ones — is reachable from the result so the
caller can archive it (``CrawlResult.archivable()``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from cx_pipeline.fetch.http_client import (
    FetchBlocked,
    FetchedPage,
    FetchError,
    HttpClient,
    PageChanged,
    canonical_url,
    host_key,
    set_query_params,
)
from cx_pipeline.sources.base import PageInfo, ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.registry import detect_format, get_format

#: "truncated": the source serves only part of its reviews (App Store feed past page 10, Places' five): the
#: crawl read all it could but is not complete, so no review is inferred removed from it
StopReason = Literal["last_page", "max_pages", "known_reached", "truncated", "blocked", "changed", "failed"]
ProblemKind = Literal["blocked", "changed", "failed", "language_filter", "pagination", "duplicates", "rejects",
                      "warning"]

#: query parameters forced on every request of a format (Trustpilot hides other languages otherwise)
FORMAT_QUERY: dict[str, dict[str, str]] = {"trustpilot": {"languages": "all"}}
#: hosts whose format is known before fetching (lets ``fmt=None`` send the right query at once)
FORMAT_HOSTS: dict[str, tuple[str, ...]] = {"trustpilot": ("trustpilot.com",), "appstore": ("itunes.apple.com",)}
#: parameters added only on incremental crawls (the order that lets a crawl stop early)
FORMAT_INCREMENTAL_QUERY: dict[str, dict[str, str]] = {"trustpilot": {"sort": "recency"}}
#: the filter value a page must report back for those parameters
FORMAT_EXPECTED_LANGUAGE: dict[str, str] = {"trustpilot": "all"}

Validators = Callable[[str], tuple[str | None, str | None]]


#: "superseded": fetched before the format was known, then asked again with the format's query;
#: "error": served but unusable for another reason (5xx after retries, other 4xx, a 304 nobody asked for)
Outcome = Literal["ok", "not_modified", "blocked", "changed", "superseded", "error"]


@dataclass
class CrawledPage:
    """One served response of the crawl: parsed pages, 304s, and blocked/changed pages (for archiving)."""

    number: int  # 1-based position in this crawl
    requested_url: str
    fetched: FetchedPage
    parsed: ParseResult | None  # None when not_modified, blocked or changed
    outcome: Outcome = "ok"
    reason: str | None = None  # why, when the outcome is not "ok"
    format_name: str | None = None
    known: bool = False  # the ``known`` callback said every review on it is stored and unchanged
    new_review_ids: tuple[str, ...] = ()  # ids not seen on earlier pages of this crawl

    @property
    def location(self) -> str:
        return self.fetched.final_url

    @property
    def result(self) -> ParseResult | None:
        """Alias of ``parsed``."""
        return self.parsed


@dataclass
class CrawlProblem:
    """Something the operator must see; ``page`` holds the served body when there was one."""

    kind: ProblemKind
    url: str
    reason: str
    page: FetchedPage | None = None
    page_number: int | None = None

    def __str__(self) -> str:
        where = f" (page {self.page_number})" if self.page_number else ""
        return f"{self.kind}: {self.url}{where}: {self.reason}"


@dataclass
class CrawlResult:
    start_url: str
    format: str | None
    pages: list[CrawledPage] = field(default_factory=list)
    stop_reason: StopReason = "last_page"
    problems: list[CrawlProblem] = field(default_factory=list)
    requested_urls: list[str] = field(default_factory=list)
    #: things the operator should know that are not failures (e.g. a fallback to a full crawl)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the crawl ended normally (not blocked, changed or failed)."""
        return self.stop_reason in ("last_page", "max_pages", "known_reached", "truncated")

    @property
    def ok_pages(self) -> list[CrawledPage]:
        return [p for p in self.pages if p.outcome == "ok"]

    @property
    def review_count(self) -> int:
        return sum(p.parsed.record_count for p in self.ok_pages if p.parsed is not None)

    def review_ids(self) -> list[str]:
        """Distinct review ids in crawl order (duplicates across pages collapsed)."""
        return [rid for p in self.ok_pages for rid in p.new_review_ids]

    def archivable(self) -> list[FetchedPage]:
        """Every served body of this crawl, blocked and changed pages included, for the raw archive."""
        return [p.fetched for p in self.pages if p.fetched.body]


def forced_query(fmt: SourceFormat | None, *, incremental: bool = False) -> dict[str, str]:
    if fmt is None:
        return {}
    params = dict(FORMAT_QUERY.get(fmt.name, {}))
    if incremental:
        params.update(FORMAT_INCREMENTAL_QUERY.get(fmt.name, {}))
    return params


def with_forced_query(url: str, fmt: SourceFormat, *, incremental: bool = False) -> str:
    """``url`` with the format's forced parameters (any Trustpilot locale host: www, dk., fr., …)."""
    params = forced_query(fmt, incremental=incremental)
    return set_query_params(url, params) if params else url


def _oldest_review(parsed: ParseResult) -> ParseResult:
    """``parsed`` narrowed to its last-listed review: on a newest-first page, the oldest one."""
    ids = [x for x in parsed.measures.get_column("native_id").to_list() if x is not None]
    if not ids:
        return parsed
    last = ids[-1]
    measures = parsed.measures.filter(parsed.measures["native_id"] == last)
    return replace(parsed, measures=measures, record_count=1)


_PAGE_SEGMENT = re.compile(r"/page=(\d+)(?:/|$)", re.I)


def _page_param(url: str) -> int | None:
    """The page number a URL asks for: ``?page=N`` or a ``/page=N/`` path segment (the App Store feed)."""
    parts = urlsplit(url)
    for k, v in parse_qsl(parts.query):
        if k == "page" and v.isdigit():
            return int(v)
    m = _PAGE_SEGMENT.search(parts.path)
    return int(m.group(1)) if m else None


def crawl(
    client: HttpClient,
    start_url: str,
    fmt: SourceFormat | None,
    *,
    max_pages: int,
    known: Callable[[ParseResult], bool] | None = None,
    full_resync: bool = False,
    validators: Validators | None = None,
) -> CrawlResult:
    """Fetch ``start_url`` and its following pages (≤ ``max_pages``) and parse each with ``fmt``.

    ``fmt=None`` detects the format from the first page (``sources.registry.detect_format``).
    ``known(parsed)`` returns True when every review on a page is already stored unchanged; the
    crawl then stops after that page (``known_reached``) unless ``full_resync``. ``validators(url)``
    returns the stored (etag, last_modified) for conditional requests; a 304 counts as known.
    """
    if max_pages < 1:
        raise ValueError("max_pages must be ≥ 1")
    if fmt is None and _host_format(start_url) is not None:
        fmt = _host_format(start_url)
    result = CrawlResult(start_url=start_url, format=fmt.name if fmt else None)
    seen_ids: set[str] = set()
    seen_urls: set[str] = set()
    incremental = known is not None and not full_resync
    url: str | None = with_forced_query(start_url, fmt, incremental=incremental) if fmt else start_url
    number = 0

    def stop(outcome: Outcome, kind: ProblemKind, reason: str, fetched: FetchedPage | None,
             at: str, stop_reason: StopReason) -> CrawlResult:
        if fetched is not None:
            result.pages.append(CrawledPage(number, at, fetched, None, outcome=outcome, reason=reason,
                                            format_name=fmt.name if fmt else None))
        result.problems.append(CrawlProblem(kind, fetched.final_url if fetched else at, reason, fetched, number))
        result.stop_reason = stop_reason
        return result

    while url is not None:
        number += 1
        result.requested_urls.append(url)
        seen_urls.add(canonical_url(url))
        etag = last_modified = None
        if validators is not None and not full_resync:
            etag, last_modified = validators(url)
        try:
            fetched = client.get(url, etag=etag, last_modified=last_modified)
        except FetchBlocked as exc:
            return stop("blocked", "blocked", f"{exc.kind}: {exc.reason}", exc.page, url, "blocked")
        except PageChanged as exc:
            return stop("changed", "changed", exc.reason, exc.page, url, "changed")
        except FetchError as exc:
            if exc.page is not None:  # the served answer gets its page row (and is archived)
                return stop("error", "failed", exc.reason, exc.page, url, "failed")
            result.problems.append(CrawlProblem("failed", exc.url, exc.reason, None, number))
            result.stop_reason = "failed"
            return result

        if fetched.not_modified:
            result.pages.append(CrawledPage(number, url, fetched, None, outcome="not_modified",
                                            reason="HTTP 304: unchanged since the stored copy",
                                            format_name=fmt.name if fmt else None, known=True))
            result.stop_reason = "known_reached"
            return result

        location = fetched.final_url
        if fmt is None:
            try:
                fmt = _detect(fetched.body, location)
            except Exception as exc:  # a detector choking on a hostile page: this source stops, loudly
                return stop("changed", "changed", f"format detection failed: {type(exc).__name__}: {exc}",
                            fetched, url, "changed")
            if fmt is None:
                return stop("changed", "changed", "no known source format recognizes this page", fetched, url,
                            "changed")
            result.format = fmt.name
            forced = with_forced_query(url, fmt, incremental=incremental)
            if canonical_url(forced) != canonical_url(url):  # detected late: ask again with the right filter
                fetched_first = fetched
                result.pages.append(CrawledPage(number, url, fetched_first, None, outcome="superseded",
                                                reason=f"fetched again as {forced} (format {fmt.name})",
                                                format_name=fmt.name))
                number -= 1
                url = forced
                continue

        try:
            parsed = fmt.parse(fetched.body, location=location)
        except ParseError as exc:
            return stop("changed", "changed", f"page does not parse as {fmt.parser_id}: {exc.reason}", fetched,
                        url, "changed")
        except Exception as exc:  # a parser bug on one hostile page stops this source, never the whole crawl
            return stop("changed", "changed", f"page does not parse as {fmt.parser_id}: "
                        f"{type(exc).__name__}: {exc}", fetched, url, "changed")

        rejects = getattr(parsed, "rejects", None) or []
        if rejects:  # the page's other reviews are kept; the refused ones must still be seen
            first = rejects[0]
            where = " ".join(x for x in (first.position, first.field) if x)
            result.problems.append(CrawlProblem(
                "rejects", location, f"{len(rejects)} record(s) on page {number} refused by {fmt.parser_id} "
                f"(first: {where + ': ' if where else ''}{first.reason})", None, number))

        info = parsed.page
        total_count = info.total_count if info else None
        past_end = (info is not None and info.current_page is not None and info.total_pages is not None
                    and info.current_page > info.total_pages)
        if parsed.record_count == 0 and past_end and number > 1:
            result.pages.append(CrawledPage(number, url, fetched, parsed, format_name=fmt.name,
                                            reason=f"end of the feed: {parsed.empty_reason or 'past the last page'}"))
            result.stop_reason = "last_page"
            return result
        if parsed.record_count == 0:
            declared = total_count
            if declared is None and info is not None:
                declared = info.business.get("numberOfReviews")
            if number > 1 or (declared or 0) > 0:
                why = (f"page {number} of the crawl" if number > 1 else f"page 1 of a source with {declared} reviews")
                return stop("changed", "changed", f"parsed but lists no reviews on {why} "
                            f"({parsed.empty_reason or 'no reason given'}): layout changed or content withheld",
                            fetched, url, "changed")
            if declared is None:
                result.problems.append(CrawlProblem(
                    "warning", location, f"page has no reviews and states no review count ({parsed.empty_reason})",
                    None, number))

        expected_lang = FORMAT_EXPECTED_LANGUAGE.get(fmt.name)
        if expected_lang is not None and (info is None or info.language_filter != expected_lang):
            applied = info.language_filter if info else None
            result.problems.append(CrawlProblem(
                "language_filter", location,
                f"asked for languages={expected_lang} but the page applied languages={applied!r}: "
                "reviews in other languages are missing", None, number))

        expected_page = _page_param(url) or 1
        if info is not None and info.current_page is not None and info.current_page != expected_page:
            result.problems.append(CrawlProblem(
                "pagination", location, f"requested page {expected_page} but the page says it is page "
                f"{info.current_page}", None, number))

        ids = [str(x) for x in parsed.measures.get_column("native_id").unique(maintain_order=True).to_list()
               if x is not None]
        new_ids = tuple(i for i in ids if i not in seen_ids)
        if ids and not new_ids:
            return stop("changed", "changed", f"every review on page {number} was already on an earlier page: "
                        "the site is serving the same page again (pagination ignored)", fetched, url, "changed")
        if len(new_ids) < len(ids):
            result.problems.append(CrawlProblem(
                "duplicates", location, f"{len(ids) - len(new_ids)} review(s) on page {number} already appeared on "
                "an earlier page (overlapping sort); kept once", None, number))
        seen_ids.update(new_ids)

        page_reason = None
        newest_first = info.newest_first if info is not None else None
        asked_order = FORMAT_INCREMENTAL_QUERY.get(fmt.name)
        if incremental and known is not None and asked_order and newest_first is False:
            page_reason = (f"asked for {urlencode(asked_order)} but the page is sorted by "
                           f"{info.sort if info else None!r}: an incremental crawl cannot stop at known reviews in "
                           "that order, so this crawl falls back to a full crawl")
            result.notes.append(f"{location}: {page_reason}")
            known = None  # a new review may sit behind any page of known ones
        if known is not None and parsed.record_count:
            is_known = bool(known(_oldest_review(parsed) if newest_first else parsed))
        else:
            is_known = False
        result.pages.append(CrawledPage(number, url, fetched, parsed, format_name=fmt.name, known=is_known,
                                        new_review_ids=new_ids, reason=page_reason))
        if is_known and not full_resync:
            result.stop_reason = "known_reached"
            return result

        next_url = _next_url(url, location, info)
        if next_url is None:
            why = _truncated(fmt, info, parsed)
            if why:
                result.notes.append(f"{location}: {why}")
                result.stop_reason = "truncated"
                return result
            result.stop_reason = "last_page"
            return result
        next_url = with_forced_query(next_url, fmt, incremental=incremental)
        if canonical_url(next_url) in seen_urls:
            result.problems.append(CrawlProblem(
                "pagination", location, f"next page link points back to an already fetched URL {next_url}: "
                "pagination loop", None, number))
            result.stop_reason = "changed"
            return result
        if number >= max_pages:
            result.stop_reason = "max_pages"
            return result
        url = next_url
    return result  # pragma: no cover


def _truncated(fmt: SourceFormat, info: PageInfo | None, parsed: ParseResult) -> str | None:
    """Why the last page served is not the end of the source's reviews, or None when it is.

    Formats declare ``partial_listing`` (the source never lists everything) or ``max_depth`` (pages
    served at most); a full page at that depth means older reviews exist that cannot be reached.
    """
    if getattr(fmt, "partial_listing", False):
        return f"{fmt.name} lists only part of the reviews: the crawl is not complete (no removals inferred)"
    depth = getattr(fmt, "max_depth", None)
    if depth and info is not None and (info.current_page or 0) >= depth and parsed.record_count > 0:
        return (f"{fmt.name} serves at most {depth} pages: older reviews cannot be reached, the crawl is not "
                "complete (no removals inferred)")
    return None


def _host_format(url: str) -> SourceFormat | None:
    """A format known from the host alone (Trustpilot locale hosts), so the first request is already right."""
    host = (urlsplit(url).hostname or "").lower()
    for name, suffixes in FORMAT_HOSTS.items():
        if any(host == s or host.endswith("." + s) for s in suffixes):
            return get_format(name)
    return None


def _detect(body: bytes, location: str) -> SourceFormat | None:
    return detect_format(body, urlsplit(location).path.rsplit("/", 1)[-1] or "page.html")


def _next_url(url: str, location: str, info: PageInfo | None) -> str | None:
    """Next link if the page has one (already absolute), else the next page number, else None."""
    if info is None:
        return None
    if info.current_page is not None and info.total_pages is not None and info.current_page >= info.total_pages:
        return None
    if info.next_url:
        return info.next_url
    if info.current_page is not None and info.total_pages is not None:
        return set_query_params(location or url, {"page": str(info.current_page + 1)})
    return None


@dataclass(frozen=True)
class CrawlJob:
    """One source to crawl in :func:`crawl_many`."""

    start_url: str
    fmt: SourceFormat | None
    max_pages: int
    known: Callable[[ParseResult], bool] | None = None
    full_resync: bool = False
    validators: Validators | None = None


def crawl_many(client: HttpClient, jobs: Sequence[CrawlJob], *, max_hosts: int = 4) -> list[CrawlResult]:
    """Run ``jobs`` with up to ``max_hosts`` hosts in parallel; jobs on one host run one after another.

    Results come back in the order of ``jobs``. A job that raises unexpectedly becomes a 'failed' result.
    """
    by_host: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        by_host.setdefault(host_key(job.start_url), []).append(i)
    results: dict[int, CrawlResult] = {}
    lock = threading.Lock()

    def run(indices: list[int]) -> None:
        for i in indices:
            job = jobs[i]
            try:
                res = crawl(client, job.start_url, job.fmt, max_pages=job.max_pages, known=job.known,
                            full_resync=job.full_resync, validators=job.validators)
            except Exception as exc:  # one broken source must not sink the others
                res = CrawlResult(job.start_url, job.fmt.name if job.fmt else None, stop_reason="failed",
                                  problems=[CrawlProblem("failed", job.start_url, f"{type(exc).__name__}: {exc}")])
            with lock:
                results[i] = res

    with ThreadPoolExecutor(max_workers=max(1, max_hosts), thread_name_prefix="crawl-host") as pool:
        for fut in [pool.submit(run, idx) for idx in by_host.values()]:
            fut.result()
    return [results[i] for i in range(len(jobs))]


_FINGERPRINT_COLUMNS = ("score_raw", "title", "text", "updated_at", "reply_text", "replied_at", "is_verified")


def review_fingerprints(parsed: ParseResult) -> dict[str, str]:
    """native_id → digest of what can change on a review (rating, text, edit date, company reply).

    Compares more than the creation cursor on purpose: edits and late replies on old reviews
    must make the page "not known" so the incremental crawl re-reads it.
    """
    out: dict[str, list[object]] = {}
    cols = [c for c in _FINGERPRINT_COLUMNS if c in parsed.measures.columns]
    for row in parsed.measures.select(["native_id", "measure_key", *cols]).iter_rows(named=True):
        if row["native_id"] is None:
            continue
        out.setdefault(str(row["native_id"]), []).append([str(row[c]) for c in ("measure_key", *cols)])
    return {rid: hashlib.sha256(json.dumps(sorted(v, key=str)).encode()).hexdigest()[:32] for rid, v in out.items()}


def known_from_fingerprints(
    stored: Mapping[str, str],
    *,
    key: Callable[[ParseResult], Mapping[str, str]] = review_fingerprints,
) -> Callable[[ParseResult], bool]:
    """A ``known`` callback: a page is known when every review on it is stored with the same fingerprint."""

    def _known(parsed: ParseResult) -> bool:
        prints = key(parsed)
        return bool(prints) and all(stored.get(rid) == fp for rid, fp in prints.items())

    return _known


__all__ = ["CrawlJob", "CrawlProblem", "CrawlResult", "CrawledPage", "crawl", "crawl_many", "forced_query",
           "known_from_fingerprints", "review_fingerprints", "with_forced_query"]
