"""Crawling a Trustpilot-like site: pagination, languages=all, incremental stop, blocks and layout changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cx_pipeline.fetch import (
    CrawlJob,
    LocalPagesClient,
    LocalResponse,
    PoliteHttpClient,
    crawl,
    crawl_many,
    known_from_fingerprints,
    review_fingerprints,
    with_forced_query,
)
from cx_pipeline.sources.reviews.trustpilot import TrustpilotFormat
from cx_pipeline_tests.fault_server import Fault, FaultServer, make_reviews, render_page
from cx_pipeline_tests.test_http_client import INTERVAL, fast_config

TP = TrustpilotFormat()
SLUG = "nordlys.dk"
PATH = f"/review/{SLUG}"
N_REVIEWS = 23  # 5 pages of 5, the last one short


@pytest.fixture
def client(tmp_path: Path) -> Iterator[PoliteHttpClient]:
    c = PoliteHttpClient(fast_config(tmp_path))
    yield c
    c.close()


def served_ids(srv: FaultServer) -> list[str]:
    return [r["id"] for r in srv.businesses[SLUG]]


def page_requests(srv: FaultServer) -> list[dict[str, str]]:
    return [r.query for r in srv.records(PATH)]


@pytest.mark.parametrize("next_link", ["absolute", "relative", "none"])
def test_full_crawl_gets_every_review_once_in_all_languages(client: PoliteHttpClient, next_link: str) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}, next_link=next_link) as srv:  # type: ignore[arg-type]
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "last_page" and res.ok and res.problems == []
        assert [p.number for p in res.pages] == [1, 2, 3, 4, 5]
        # nothing lost, nothing duplicated, in every language (not only the site's default Danish)
        assert res.review_ids() == served_ids(srv) and res.review_count == N_REVIEWS
        langs = {lang for p in res.pages for lang in p.parsed.measures["language"].to_list()}  # type: ignore[union-attr]
        assert langs == {"da", "no", "sv", "en"}
        # every request asked for languages=all, also when the next link omitted it (relative links)
        assert [q.get("languages") for q in page_requests(srv)] == ["all"] * 5
        assert [int(q.get("page", "1")) for q in page_requests(srv)] == [1, 2, 3, 4, 5]
        assert res.requested_urls[0] == srv.url(SLUG, languages="all")
        assert len(res.archivable()) == 5 and all(p.parsed.page.language_filter == "all" for p in res.pages)  # type: ignore[union-attr]


def test_locale_hosts_get_languages_all() -> None:
    for host in ("www", "dk", "no", "se", "de", "fr"):
        url = with_forced_query(f"https://{host}.trustpilot.com/review/x.dk?languages=da&page=2", TP)
        q = parse_qs(urlsplit(url).query)
        assert q == {"languages": ["all"], "page": ["2"]} and urlsplit(url).netloc == f"{host}.trustpilot.com"


def test_applied_language_filter_is_read_back(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(12, languages=("da", "en"))}, honour_languages=False) as srv:
        res = crawl(client, srv.url(SLUG), TP, max_pages=5)
        assert res.ok
        lang_problems = [p for p in res.problems if p.kind == "language_filter"]
        assert len(lang_problems) == len(res.pages) >= 1
        assert "languages='da'" in lang_problems[0].reason and lang_problems[0].url.startswith(srv.base_url)


def test_max_pages_stops_and_says_so(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        res = crawl(client, srv.url(SLUG), TP, max_pages=2)
        assert res.stop_reason == "max_pages" and len(res.pages) == 2 and len(srv.records(PATH)) == 2
        assert res.review_ids() == served_ids(srv)[:10]


def test_faults_mid_crawl_lose_nothing(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        srv.add_fault(PATH, Fault("status", status=429, headers={"Retry-After": "0"}), page=2)
        srv.add_fault(PATH, Fault("status", status=503, times=2), page=3)
        srv.add_fault(PATH, Fault("truncate"), page=4)
        srv.add_fault(PATH, Fault("hang", delay=0.5), page=5)
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "last_page" and res.problems == []
        assert res.review_ids() == served_ids(srv)
        assert [p.fetched.attempts for p in res.pages] == [1, 2, 3, 2, 2]
        assert min(srv.gaps()) >= INTERVAL


@pytest.mark.parametrize(("fault", "kind"), [(Fault("login_wall"), "login_wall"), (Fault.waf(), "waf"),
                                             (Fault("captcha"), "captcha")])
def test_block_mid_crawl_is_reported_not_empty(client: PoliteHttpClient, fault: Fault, kind: str) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        srv.add_fault(PATH, fault, page=3)
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "blocked" and not res.ok
        assert [(p.number, p.outcome) for p in res.pages] == [(1, "ok"), (2, "ok"), (3, "blocked")]
        assert res.review_ids() == served_ids(srv)[:10] and res.review_count == 10
        (problem,) = res.problems
        assert problem.kind == "blocked" and problem.page_number == 3 and problem.reason.startswith(kind)
        assert "page=3" in problem.url and problem.page is not None and problem.page.body
        blocked = res.pages[-1]
        assert blocked.parsed is None and blocked.reason == problem.reason and blocked.fetched is problem.page
        assert res.archivable()[-1] is problem.page  # the block page goes to the raw archive too


def test_changed_layout_is_reported_with_its_body(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        srv.add_fault(PATH, Fault("changed_layout"), page=2)
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "changed" and [p.outcome for p in res.pages] == ["ok", "changed"]
        (problem,) = res.problems
        assert problem.kind == "changed" and "no props.pageProps.reviews" in problem.reason
        assert problem.page is not None and b"reviewCards" in problem.page.body and "page=2" in problem.url


def test_page_without_reviews_where_reviews_were_expected(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        srv.add_fault(PATH, Fault("empty_reviews"), page=3)  # mid-crawl
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "changed" and [p.outcome for p in res.pages] == ["ok", "ok", "changed"]
        assert "lists no reviews on page 3" in res.problems[0].reason and res.review_count == 10
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        srv.add_fault(PATH, Fault("empty_reviews"), page=1)  # page 1 says 23 reviews but shows none
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "changed" and [p.outcome for p in res.pages] == ["changed"]
        assert f"a source with {N_REVIEWS} reviews" in res.problems[0].reason and res.review_ids() == []


def test_business_without_reviews_is_a_normal_empty_crawl(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: []}) as srv:
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "last_page" and res.ok and res.review_count == 0 and len(res.pages) == 1
        assert res.problems == []


def test_site_ignoring_the_page_parameter_is_caught(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        srv.add_fault(PATH, Fault("other_page", serve_page=1), page=2)
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "changed"
        kinds = [p.kind for p in res.problems]
        assert kinds == ["pagination", "changed"] and "already on an earlier page" in res.problems[1].reason
        assert res.review_ids() == served_ids(srv)[:5]  # page 1's reviews once, not twice


def test_off_site_next_link_is_not_followed(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        srv.add_fault(PATH, Fault("redirect", location="http://evil.example/review/x"), page=2)
        res = crawl(client, srv.url(SLUG), TP, max_pages=10)
        assert res.stop_reason == "failed" and len(res.pages) == 1
        assert "evil.example" in res.problems[0].reason


# -- incremental --------------------------------------------------------------------------------
def test_incremental_stops_at_known_reviews_and_full_resync_does_not(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        first = crawl(client, srv.url(SLUG), TP, max_pages=10)
        stored: dict[str, str] = {}
        for p in first.pages:
            stored.update(review_fingerprints(p.parsed))  # type: ignore[arg-type]
        # three new reviews arrive at the top (newest first): page 1 has new ones, page 2 only known ones
        new = make_reviews(3, prefix="new")
        srv.businesses[SLUG][:0] = new
        srv.requests.clear()
        inc = crawl(client, srv.url(SLUG), TP, max_pages=10, known=known_from_fingerprints(stored))
        assert inc.stop_reason == "known_reached" and [p.known for p in inc.pages] == [False, True]
        assert set(inc.review_ids()) >= {r["id"] for r in new} and len(srv.records(PATH)) == 2

        # an edit (new company reply) on an old review makes its page "not known" again
        srv.businesses[SLUG][7]["reply"] = {"message": "Sorry!", "publishedDate": "2025-04-01T10:00:00.000Z"}
        inc2 = crawl(client, srv.url(SLUG), TP, max_pages=10, known=known_from_fingerprints(stored))
        assert [p.known for p in inc2.pages] == [False, False, True]

        full = crawl(client, srv.url(SLUG), TP, max_pages=10, known=known_from_fingerprints(stored),
                     full_resync=True)
        assert full.stop_reason == "last_page" and full.review_ids() == served_ids(srv)
        assert len(set(full.review_ids())) == N_REVIEWS + 3


def test_unchanged_first_page_costs_a_304(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(N_REVIEWS)}) as srv:
        first = crawl(client, srv.url(SLUG), TP, max_pages=1)
        etags = {p.requested_url: (p.fetched.etag, p.fetched.last_modified) for p in first.pages}

        def validators(url: str) -> tuple[str | None, str | None]:
            return etags.get(url, (None, None))

        again = crawl(client, srv.url(SLUG), TP, max_pages=10, validators=validators)
        assert again.stop_reason == "known_reached" and again.pages[0].fetched.not_modified
        assert again.pages[0].outcome == "not_modified"
        assert again.pages[0].parsed is None and again.archivable() == []
        assert srv.records(PATH)[-1].served == "304"
        resync = crawl(client, srv.url(SLUG), TP, max_pages=10, validators=validators, full_resync=True)
        assert resync.stop_reason == "last_page" and "if-none-match" not in srv.records(PATH)[-1].headers


# -- many sources -------------------------------------------------------------------------------
def test_crawl_many_runs_hosts_in_parallel_politely(tmp_path: Path) -> None:
    c = PoliteHttpClient(fast_config(tmp_path, min_interval=0.1))
    with FaultServer({SLUG: make_reviews(15), "other.no": make_reviews(8, prefix="o")}) as a, \
            FaultServer({SLUG: make_reviews(10, prefix="b")}) as b:
        jobs = [CrawlJob(a.url(SLUG), TP, 10), CrawlJob(b.url(SLUG), TP, 10), CrawlJob(a.url("other.no"), TP, 10)]
        results = crawl_many(c, jobs, max_hosts=2)
        assert [r.start_url for r in results] == [j.start_url for j in jobs]
        assert [r.stop_reason for r in results] == ["last_page"] * 3
        assert [r.review_count for r in results] == [15, 10, 8]
        for srv in (a, b):
            assert min(srv.gaps()) >= 0.1
        # both hosts were busy at the same time
        assert min(r.t for r in b.records()) < max(r.t for r in a.records())


# -- offline ------------------------------------------------------------------------------------
def test_crawl_offline_with_local_pages() -> None:
    base = "https://dk.trustpilot.com/review/x.dk"
    revs = make_reviews(7)
    p1 = render_page("x.dk", revs[:5], page=1, total_pages=2, total_count=7, languages="all",
                     next_href="/review/x.dk?page=2")
    p2 = render_page("x.dk", revs[5:], page=2, total_pages=2, total_count=7, languages="all", next_href=None)
    local = LocalPagesClient({f"{base}?languages=all": p1, f"{base}?page=2&languages=all": p2,
                              f"{base}?page=3&languages=all": LocalResponse(b"gone", status=404)})
    res = crawl(local, f"{base}?languages=da", TP, max_pages=5)
    assert res.stop_reason == "last_page" and res.review_ids() == [r["id"] for r in revs]
    assert local.requested == [f"{base}?languages=all", f"{base}?page=2&languages=all"]


def test_format_detected_when_not_configured(client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(12)}) as srv:
        res = crawl(client, srv.url(SLUG), None, max_pages=10)
        assert res.format == "trustpilot" and res.stop_reason == "last_page"
        # the first answer (default language only) is kept for the archive, then asked again with languages=all
        assert [p.outcome for p in res.pages] == ["superseded", "ok", "ok", "ok"]
        assert [q.get("languages") for q in page_requests(srv)] == [None, "all", "all", "all"]
        assert res.review_ids() == served_ids(srv)
    # on a Trustpilot host the format is known before the first request: no extra fetch
    base = "https://no.trustpilot.com/review/x.no"
    body = render_page("x.no", make_reviews(2), page=1, total_pages=1, total_count=2, languages="all",
                       next_href=None)
    local = LocalPagesClient({f"{base}?languages=all": body})
    res = crawl(local, base, None, max_pages=3)
    assert res.format == "trustpilot" and local.requested == [f"{base}?languages=all"] and res.review_count == 2


# -- Trustpilot in date order -------------------------------------------------------------------
class _SortingSite:
    """Trustpilot-like pages that report ``filters.selected.sort``: ``recency`` when asked for it and honoured,
    else ``relevance`` (what Trustpilot answers when it ignores the parameter)."""

    def __init__(self, reviews: list[dict], *, honour_sort: bool = True, per_page: int = 5) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.reviews, self.honour_sort, self.per_page = reviews, honour_sort, per_page
        self.queries: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/robots.txt":
                    body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
                else:
                    q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                    outer.queries.append(q)
                    body, ctype = outer.page(q), "text/html; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def page(self, q: dict[str, str]) -> bytes:
        n = int(q.get("page", "1"))
        total = -(-len(self.reviews) // self.per_page)
        chunk = self.reviews[(n - 1) * self.per_page: n * self.per_page]
        sort = "recency" if q.get("sort") == "recency" and self.honour_sort else "relevance"
        nxt = f"/review/{SLUG}?page={n + 1}" if n < total else None
        body = render_page(SLUG, chunk, page=n, total_pages=total, total_count=len(self.reviews),
                           languages=q.get("languages", "da"), next_href=nxt)
        return body.replace(b'"selected": {"languages": ', f'"selected": {{"sort": "{sort}", "languages": '.encode())

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/review/{SLUG}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _stored(res) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in res.ok_pages:
        out.update(review_fingerprints(p.parsed))
    return out


def test_incremental_crawl_asks_for_recency_and_stops_at_the_first_known_review(client: PoliteHttpClient) -> None:
    site = _SortingSite(make_reviews(N_REVIEWS))
    try:
        first = crawl(client, site.url, TP, max_pages=10)
        assert [q.get("sort") for q in site.queries] == [None] * 5  # a full crawl needs no order
        stored = _stored(first)
        site.reviews[:0] = make_reviews(2, prefix="new")  # page 1: 2 new + 3 known, its oldest review known
        site.queries.clear()
        inc = crawl(client, site.url, TP, max_pages=10, known=known_from_fingerprints(stored))
        assert [q.get("sort") for q in site.queries] == ["recency"]
        assert inc.stop_reason == "known_reached" and [p.known for p in inc.pages] == [True] and inc.notes == []
        assert inc.pages[0].parsed.page.sort == "recency"  # type: ignore[union-attr]
        assert {r["id"] for r in site.reviews[:2]} <= set(inc.review_ids())
    finally:
        site.close()


def test_relevance_sorted_answer_falls_back_to_a_full_crawl_and_says_so(client: PoliteHttpClient) -> None:
    site = _SortingSite(make_reviews(N_REVIEWS), honour_sort=False)
    try:
        stored = _stored(crawl(client, site.url, TP, max_pages=10))
        site.queries.clear()
        inc = crawl(client, site.url, TP, max_pages=10, known=known_from_fingerprints(stored))
        # every page is known, but in relevance order that proves nothing: the whole source is read
        assert inc.stop_reason == "last_page" and len(inc.pages) == 5 and not any(p.known for p in inc.pages)
        assert all(q.get("sort") == "recency" for q in site.queries)
        assert inc.ok and inc.problems == [] and len(inc.notes) == 1
        assert "sort=recency" in inc.notes[0] and "'relevance'" in inc.notes[0] and "full crawl" in inc.notes[0]
        assert "full crawl" in (inc.pages[0].reason or "")
    finally:
        site.close()
