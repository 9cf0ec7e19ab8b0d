"""PoliteHttpClient against a real local HTTP server with scripted faults (never the internet)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from cx_pipeline.fetch import (
    ClientConfig,
    FetchBlocked,
    FetchFailed,
    LocalPagesClient,
    LocalResponse,
    PoliteHttpClient,
    RedirectRefused,
    ResponseTooLarge,
    RobotsDisallowed,
    detect_block,
    fetch_many,
    parse_retry_after,
    set_query_params,
)
from cx_pipeline.fetch.http_client import host_allowed
from cx_pipeline_tests.conftest import REPO_ROOT, shared_fixture_dir
from cx_pipeline_tests.fault_server import Fault, FaultServer, make_reviews

UA = "cx_pipeline-test/0.1 (+https://example.org/contact)"
INTERVAL = 0.05  # 20 requests/s: fast tests, still measurable
SLUG = "acme.dk"
DANISH = ("da",)  # the site shows only Danish without languages=all; these tests ask for plain pages


def fast_config(tmp_path: Path, **overrides: object) -> ClientConfig:
    cfg = ClientConfig(user_agent=UA, state_dir=str(tmp_path / "http-state"), min_interval=INTERVAL,
                       connect_timeout=1.0, read_timeout=0.3, max_response_time=2.0, max_bytes=200_000,
                       max_attempts=3, backoff_base=0.01, backoff_max=0.05, max_retry_after=5.0, trust_env=False)
    return replace(cfg, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def site() -> Iterator[FaultServer]:
    with FaultServer({SLUG: make_reviews(15, languages=DANISH)}) as srv:
        yield srv


@pytest.fixture
def client(tmp_path: Path) -> Iterator[PoliteHttpClient]:
    c = PoliteHttpClient(fast_config(tmp_path))
    yield c
    c.close()


PATH = f"/review/{SLUG}"


def test_fetch_returns_the_page_with_metadata(site: FaultServer, client: PoliteHttpClient) -> None:
    page = client.get(site.url(SLUG, languages="all"))
    assert page.status == 200 and not page.not_modified
    assert page.body == site.page_body(SLUG, 1, "all", PATH)
    assert page.final_url == page.url == site.url(SLUG, languages="all")
    assert page.etag and page.last_modified and page.content_type.startswith("text/html")
    assert page.fetched_at.tzinfo is not None and page.fetched_at.utcoffset() == timedelta(0)
    assert page.attempts == 1 and page.elapsed > 0
    client.get(site.url(SLUG, page="2"))
    # robots.txt fetched once for the host and cached; our UA on every request
    assert [r.path for r in site.records()] == ["/robots.txt", PATH, PATH]
    assert {r.headers["user-agent"] for r in site.records()} == {UA}


def test_user_agent_must_carry_a_contact(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="contact"):
        PoliteHttpClient(fast_config(tmp_path, user_agent="python-requests/2.32"))
    PoliteHttpClient(fast_config(tmp_path, user_agent="cx/1.0 (ops@example.org)"))


def test_robots_disallow_is_obeyed(tmp_path: Path) -> None:
    with FaultServer({SLUG: make_reviews(3)}, robots_txt="User-agent: *\nDisallow: /review/\n") as srv:
        c = PoliteHttpClient(fast_config(tmp_path))
        with pytest.raises(RobotsDisallowed) as err:
            c.get(srv.url(SLUG))
        assert err.value.kind == "robots" and srv.url(SLUG) in str(err.value)
        assert [r.path for r in srv.records()] == ["/robots.txt"]  # the page itself was never requested


def test_robots_for_our_token_only(tmp_path: Path) -> None:
    robots = "User-agent: cx_pipeline-test\nDisallow: /review/\n\nUser-agent: *\nAllow: /\n"
    with FaultServer({SLUG: make_reviews(3)}, robots_txt=robots) as srv:
        with pytest.raises(RobotsDisallowed):
            PoliteHttpClient(fast_config(tmp_path)).get(srv.url(SLUG))
        other = PoliteHttpClient(fast_config(tmp_path, user_agent="otherbot/1 (+https://example.org)"))
        assert other.get(srv.url(SLUG)).status == 200


def test_robots_5xx_means_disallow_and_404_means_allow(tmp_path: Path) -> None:
    with FaultServer({SLUG: make_reviews(3)}) as srv:
        srv.add_fault("/robots.txt", Fault("status", status=503, times=0))
        with pytest.raises(RobotsDisallowed, match="disallow-all"):
            PoliteHttpClient(fast_config(tmp_path)).get(srv.url(SLUG))
        assert {r.path for r in srv.records()} == {"/robots.txt"}
    with FaultServer({SLUG: make_reviews(3)}) as srv:
        srv.add_fault("/robots.txt", Fault("status", status=404))
        assert PoliteHttpClient(fast_config(tmp_path)).get(srv.url(SLUG)).status == 200


def test_robots_crawl_delay_slows_us_down(tmp_path: Path) -> None:
    robots = "User-agent: *\nCrawl-delay: 0.2\nAllow: /\n"
    with FaultServer({SLUG: make_reviews(20, languages=DANISH)}, robots_txt=robots) as srv:
        c = PoliteHttpClient(fast_config(tmp_path))
        for p in (1, 2, 3):
            c.get(srv.url(SLUG, page=str(p)))
        page_gaps = srv.gaps(PATH)
        assert len(page_gaps) == 2 and min(page_gaps) >= 0.2


# -- retries ------------------------------------------------------------------------------------
def test_429_retry_after_seconds_is_honoured(site: FaultServer, client: PoliteHttpClient) -> None:
    site.add_fault(PATH, Fault("status", status=429, headers={"Retry-After": "1"}), page=1)
    page = client.get(site.url(SLUG))
    assert page.status == 200 and page.attempts == 2
    arrivals = [r.t for r in site.records(PATH)]
    assert [r.served for r in site.records(PATH)] == ["status", "page"]
    assert arrivals[1] - arrivals[0] >= 1.0


def test_retry_after_http_date_and_cap(site: FaultServer, client: PoliteHttpClient) -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    # an HTTP-date in the past: retry at once (after the normal interval)
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=1), usegmt=True)
    site.add_fault(PATH, Fault("status", status=503, headers={"Retry-After": past}), page=1)
    assert client.get(site.url(SLUG)).attempts == 2
    # longer than max_retry_after: reported at once, not slept through
    site.add_fault(PATH, Fault("status", status=429, headers={"Retry-After": "3600"}), page=2)
    started = time.monotonic()
    with pytest.raises(FetchBlocked) as err:
        client.get(site.url(SLUG, page="2"))
    assert time.monotonic() - started < 1.0
    assert err.value.kind == "rate_limited" and "3600" in err.value.reason and err.value.attempts == 1
    assert err.value.page is not None and err.value.page.status == 429


def test_503_burst_is_retried_with_growing_backoff(site: FaultServer, tmp_path: Path) -> None:
    c = PoliteHttpClient(fast_config(tmp_path, max_attempts=4, backoff_base=0.1, backoff_max=1.0))
    site.add_fault(PATH, Fault("status", status=503, times=3), page=1)
    page = c.get(site.url(SLUG))
    assert page.attempts == 4 and page.body == site.page_body(SLUG, 1, None, PATH)
    gaps = site.gaps(PATH)
    # jitter keeps each delay within [0.5, 1] x 0.1·2^k
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2


def test_5xx_forever_fails_after_bounded_attempts(site: FaultServer, client: PoliteHttpClient) -> None:
    site.add_fault(PATH, Fault("status", status=503, times=0))
    with pytest.raises(FetchFailed) as err:
        client.get(site.url(SLUG))
    assert err.value.status == 503 and err.value.attempts == 3
    assert len(site.records(PATH)) == 3


def test_429_forever_is_reported_as_blocked(site: FaultServer, client: PoliteHttpClient) -> None:
    site.add_fault(PATH, Fault("status", status=429, times=0))
    with pytest.raises(FetchBlocked) as err:
        client.get(site.url(SLUG))
    assert err.value.kind == "rate_limited" and len(site.records(PATH)) == 3


def test_timeout_is_retried_then_reported(site: FaultServer, tmp_path: Path) -> None:
    client = PoliteHttpClient(fast_config(tmp_path, read_timeout=0.15))
    site.add_fault(PATH, Fault("hang", delay=0.4), page=1)
    page = client.get(site.url(SLUG))
    assert page.attempts == 2 and page.status == 200
    site.add_fault(PATH, Fault("hang", delay=0.4, times=0), page=2)
    with pytest.raises(FetchFailed, match=r"gave up after 3 attempts.*(?i:timed? ?out)"):
        client.get(site.url(SLUG, page="2"))


def test_truncated_body_is_retried_not_kept(site: FaultServer, client: PoliteHttpClient) -> None:
    site.add_fault(PATH, Fault("truncate"), page=1)
    page = client.get(site.url(SLUG))
    assert page.attempts == 2
    assert page.body == site.page_body(SLUG, 1, None, PATH)  # whole page, not the half


def test_slow_body_within_limits_succeeds_and_slow_drip_is_cut(site: FaultServer, tmp_path: Path) -> None:
    c = PoliteHttpClient(fast_config(tmp_path))
    site.add_fault(PATH, Fault("slow", delay=0.05), page=1)  # 8 pieces: 0.4 s, each under read timeout
    assert c.get(site.url(SLUG)).body == site.page_body(SLUG, 1, None, PATH)
    strict = PoliteHttpClient(fast_config(tmp_path, max_response_time=0.15, max_attempts=2))
    site.add_fault(PATH, Fault("slow", delay=0.05, times=0), page=2)
    with pytest.raises(FetchFailed, match="not complete after"):
        strict.get(site.url(SLUG, page="2"))


def test_oversize_pages_are_refused(site: FaultServer, client: PoliteHttpClient) -> None:
    site.add_fault(PATH, Fault("oversize", size=5_000_000), page=1)
    with pytest.raises(ResponseTooLarge, match="Content-Length 5000000"):
        client.get(site.url(SLUG))
    site.add_fault(PATH, Fault("oversize", size=5_000_000, declare_length=False), page=2)
    with pytest.raises(ResponseTooLarge, match="stopped reading") as err:
        client.get(site.url(SLUG, page="2"))
    assert err.value.attempts == 1 and err.value.page is None  # no retry, nothing huge kept
    assert len(site.records(PATH)) == 2


def test_404_is_not_retried(site: FaultServer, client: PoliteHttpClient) -> None:
    with pytest.raises(FetchFailed) as err:
        client.get(site.url(SLUG, page="99"))
    assert err.value.status == 404 and err.value.attempts == 1 and len(site.records(PATH)) == 1


# -- redirects ----------------------------------------------------------------------------------
def test_redirect_within_host_is_followed(site: FaultServer, client: PoliteHttpClient) -> None:
    site.add_fault(PATH, Fault("redirect", location=f"{PATH}?page=2"), page=1)
    page = client.get(site.url(SLUG))
    assert page.final_url == f"{site.base_url}{PATH}?page=2" and page.redirects == (site.url(SLUG),)
    assert page.body == site.page_body(SLUG, 2, None, PATH)


def test_redirect_off_site_is_refused(site: FaultServer, client: PoliteHttpClient) -> None:
    with FaultServer({SLUG: make_reviews(3)}) as other:
        off_site = f"http://localhost:{other.netloc.split(':')[1]}{PATH}"
        site.add_fault(PATH, Fault("redirect", location=off_site), page=1)
        with pytest.raises(RedirectRefused, match="localhost"):
            client.get(site.url(SLUG))
        assert other.records() == []


def test_redirect_loop_is_bounded(site: FaultServer, client: PoliteHttpClient) -> None:
    site.add_fault(PATH, Fault("redirect", location=f"{PATH}?page=1", times=0), page=1)
    with pytest.raises(RedirectRefused, match="more than 5 redirects"):
        client.get(site.url(SLUG))
    assert len(site.records(PATH)) == 6


def test_allowed_hosts_and_wildcards(site: FaultServer, tmp_path: Path) -> None:
    assert host_allowed("dk.trustpilot.com", ["*.trustpilot.com"])
    assert host_allowed("trustpilot.com", ["*.trustpilot.com"])
    assert not host_allowed("trustpilot.com.evil.org", ["*.trustpilot.com"])
    c = PoliteHttpClient(fast_config(tmp_path, allowed_hosts=("www.trustpilot.com",)))
    with pytest.raises(RedirectRefused, match="not among the allowed hosts"):
        c.get(site.url(SLUG))
    assert site.records() == []


# -- conditional requests -----------------------------------------------------------------------
def test_unchanged_page_costs_a_304(site: FaultServer, client: PoliteHttpClient) -> None:
    first = client.get(site.url(SLUG))
    again = client.get(site.url(SLUG), etag=first.etag)
    assert again.not_modified and again.status == 304 and again.body == b"" and again.etag == first.etag
    by_date = client.get(site.url(SLUG), last_modified=first.last_modified)
    assert by_date.not_modified
    assert site.records(PATH)[1].headers["if-none-match"] == first.etag
    site.businesses[SLUG].insert(0, make_reviews(1, prefix="new")[0])  # content changes → full answer
    changed = client.get(site.url(SLUG), etag=first.etag)
    assert not changed.not_modified and changed.status == 200 and changed.etag != first.etag


# -- blocking -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.waf(403), "waf"),
        (Fault("status", status=403), "http_403"),
        (Fault("status", status=401), "http_401"),
        (Fault("login_wall"), "login_wall"),
        (Fault("captcha"), "captcha"),
    ],
)
def test_blocked_answers_raise_with_body(site: FaultServer, client: PoliteHttpClient, fault: Fault, kind: str) -> None:
    site.add_fault(PATH, fault, page=3)
    with pytest.raises(FetchBlocked) as err:
        client.get(site.url(SLUG, page="3"))
    exc = err.value
    assert exc.kind == kind and exc.url == site.url(SLUG, page="3") and exc.reason
    assert exc.page is not None and exc.body  # kept for the raw archive
    assert len(site.records(PATH)) == 1  # blocks are not retried


def test_waf_challenge_with_503_is_not_retried(site: FaultServer, client: PoliteHttpClient) -> None:
    site.add_fault(PATH, Fault.waf(503, times=0))
    with pytest.raises(FetchBlocked) as err:
        client.get(site.url(SLUG))
    assert err.value.kind == "waf" and len(site.records(PATH)) == 1


def test_real_trustpilot_pages_are_not_mistaken_for_blocks() -> None:
    """Real pages carry an invisible reCAPTCHA and 'Log in' links: those alone are not a block."""
    folder = shared_fixture_dir("trustpilot_html")
    pages = sorted(folder.glob("*.html"))
    assert pages
    for path in pages:
        url = "https://www.trustpilot.com/review/x"
        assert detect_block(200, {"content-type": "text/html"}, path.read_bytes(), url) is None, path.name
    for path in sorted((folder.parent / "schema_org_html").glob("*.html")):
        assert detect_block(200, {}, path.read_bytes(), "https://example.org/p") is None, path.name


# -- rate limit ---------------------------------------------------------------------------------
def test_rate_limit_holds_for_sequential_requests(site: FaultServer, client: PoliteHttpClient) -> None:
    for p in (1, 2, 3, 1, 2, 3):
        client.get(site.url(SLUG, page=str(p)))
    gaps = site.gaps()
    assert len(gaps) == 6 and min(gaps) >= INTERVAL


def test_rate_limit_holds_across_threads(site: FaultServer, client: PoliteHttpClient) -> None:
    barrier = threading.Barrier(2)

    def worker(pages: list[int]) -> None:
        barrier.wait()
        for p in pages:
            client.get(site.url(SLUG, page=str(p)))

    threads = [threading.Thread(target=worker, args=([1, 2, 3, 1],)),
               threading.Thread(target=worker, args=([3, 2, 1, 2],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(site.records(PATH)) == 8
    assert min(site.gaps()) >= INTERVAL


def test_rate_limit_holds_across_processes(site: FaultServer, tmp_path: Path) -> None:
    state = tmp_path / "shared-state"
    ready = tmp_path / "ready"
    ready.mkdir()
    code = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from cx_pipeline.fetch import ClientConfig, PoliteHttpClient
        c = PoliteHttpClient(ClientConfig(user_agent={UA!r} + " worker" + sys.argv[1], state_dir={str(state)!r},
                                          min_interval={INTERVAL}, trust_env=False))
        Path({str(ready)!r}, str(os.getpid())).touch()
        deadline = time.time() + 30
        while len(os.listdir({str(ready)!r})) < 2 and time.time() < deadline:  # start together
            time.sleep(0.005)
        for p in (1, 2, 3, 1):
            c.get({site.url(SLUG)!r} + "?page=" + str(p))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], cwd=REPO_ROOT) for i in range(2)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    recs = site.records()
    assert len([r for r in recs if r.path == PATH]) == 8 and len([r for r in recs if r.path == "/robots.txt"]) == 2
    assert min(site.gaps()) >= INTERVAL
    # the two processes really ran at the same time: their request spans overlap
    spans = [[r.t for r in recs if r.headers["user-agent"].endswith(f"worker{i}")] for i in range(2)]
    assert all(len(s) == 5 for s in spans)
    assert min(spans[0]) < max(spans[1]) and min(spans[1]) < max(spans[0])


def test_hosts_are_fetched_in_parallel_but_each_host_stays_polite(tmp_path: Path) -> None:
    interval = 0.2
    c = PoliteHttpClient(fast_config(tmp_path, min_interval=interval))
    with FaultServer({SLUG: make_reviews(15, languages=DANISH)}) as a, \
            FaultServer({SLUG: make_reviews(15, languages=DANISH)}) as b:
        urls = [s.url(SLUG, page=str(p)) for s in (a, b) for p in (1, 2, 3)]
        started = time.monotonic()
        results = fetch_many(c, urls, max_hosts=2)
        took = time.monotonic() - started
        assert all(results[u].status == 200 for u in urls)  # type: ignore[union-attr]
        for srv in (a, b):
            assert len(srv.records()) == 4 and min(srv.gaps()) >= interval
        # sequential would be ≥ 6 gaps of 0.2 s; two hosts side by side take about half that
        assert took < 6 * interval


def test_default_limit_is_one_request_per_second(site: FaultServer, tmp_path: Path) -> None:
    cfg = ClientConfig(user_agent=UA, state_dir=str(tmp_path / "s"), trust_env=False)
    assert cfg.min_interval == 1.0
    c = PoliteHttpClient(cfg)
    c.get(site.url(SLUG))
    c.get(site.url(SLUG, page="2"))
    gaps = site.gaps()  # robots.txt, page 1, page 2
    assert len(gaps) == 2 and min(gaps) >= 1.0


def test_errors_push_back_the_whole_host(site: FaultServer, tmp_path: Path) -> None:
    """A 429 seen by one client delays the next request of another client sharing the state dir."""
    c1 = PoliteHttpClient(fast_config(tmp_path, max_attempts=1))
    c2 = PoliteHttpClient(fast_config(tmp_path))
    c1.get(site.url(SLUG, page="2"))
    site.add_fault(PATH, Fault("status", status=429, headers={"Retry-After": "1"}), page=1)
    with pytest.raises(FetchBlocked):
        c1.get(site.url(SLUG))
    c2.get(site.url(SLUG, page="3"))
    t = {r.query.get("page", "1"): r.t for r in site.records(PATH)}
    assert t["3"] - t["1"] >= 1.0


# -- offline client -----------------------------------------------------------------------------
def test_local_pages_client(tmp_path: Path) -> None:
    page = b"<html><head><title>ok</title></head><body>reviews</body></html>"
    local = LocalPagesClient({
        "https://www.trustpilot.com/review/x?page=2&languages=all": page,
        "https://www.trustpilot.com/review/login": LocalResponse(
            b'<html><form><input type="password" name="p"></form></html>'),
        "https://www.trustpilot.com/review/waf": LocalResponse(b"blocked", status=403),
    })
    got = local.get("https://www.trustpilot.com/review/x?languages=all&page=2")  # query order is irrelevant
    assert got.body == page and got.status == 200 and got.etag
    assert local.get("https://www.trustpilot.com/review/x?languages=all&page=2", etag=got.etag).not_modified
    with pytest.raises(FetchBlocked, match="password"):
        local.get("https://www.trustpilot.com/review/login")
    with pytest.raises(FetchBlocked) as err:
        local.get("https://www.trustpilot.com/review/waf")
    assert err.value.kind == "http_403" and err.value.body == b"blocked"
    with pytest.raises(FetchFailed) as missing:
        local.get("https://www.trustpilot.com/review/unknown")
    assert missing.value.status == 404
    assert len(local.requested) == 5

    (tmp_path / "review").mkdir()
    (tmp_path / "review" / "a.html").write_bytes(page)
    (tmp_path / "p2.html").write_bytes(b"<html>page two</html>")
    (tmp_path / "urls.tsv").write_text("https://s.example/review/a?page=2\tp2.html\n", encoding="utf-8")
    folder = LocalPagesClient.from_folder(tmp_path, "https://s.example")
    assert folder.get("https://s.example/review/a").body == page
    assert folder.get("https://s.example/review/a?page=2").body == b"<html>page two</html>"


def test_set_query_params_overrides_existing() -> None:
    assert set_query_params("https://dk.trustpilot.com/review/x?languages=da&page=3", {"languages": "all"}) == \
        "https://dk.trustpilot.com/review/x?page=3&languages=all"


def test_unreachable_host_fails_after_bounded_retries(tmp_path: Path) -> None:
    with FaultServer({}) as srv:
        dead = srv.base_url  # port is free again once the server is closed
    c = PoliteHttpClient(fast_config(tmp_path))
    with pytest.raises(FetchFailed, match=r"host unreachable.*gave up after 3 attempts.*ConnectionError"):
        c.get(f"{dead}{PATH}")
