"""Apple App Store customer-reviews feed: the shared real feeds, arbitrary input, and crawling it over HTTP.

Real feeds live in ../shared/fixtures/appstore_rss (never copied in; absent → skipped with the reason).
Crawling runs against real servers on 127.0.0.1: the demo's sample site and a tiny feed server here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_pipeline.config.sources_config import ConfigError, parse_sources
from cx_pipeline.contract import contract_violations
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.demo.sample_site import SampleSiteServer, load_apps
from cx_pipeline.fetch import PoliteHttpClient, crawl, known_from_fingerprints, review_fingerprints
from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.sources import ParseError, detect_format, get_format
from cx_pipeline.sources.reviews.appstore_rss import AppStoreRssFormat, feed_url, url_for_page
from cx_pipeline_tests.conftest import SHARED_FIXTURES, shared_fixture_dir
from cx_pipeline_tests.test_http_client import fast_config

FMT = AppStoreRssFormat()
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
APP = "6740000001"


def _events(result: Any, location: str) -> pl.DataFrame:
    ctx = NormalizeContext(brand="B", source_url=location, raw_key="raw/x", ingested_at=T0,
                           keyer=CustomerKeyer("test-secret"), default_touchpoint="app")
    events = to_events(result, ctx, source_kind="review")
    assert contract_violations(events) == []
    return events


# ------------------------------------------------------------------------------------------ conformance
class Pin(NamedTuple):
    """Read by hand from each file: reviews, stars 1..5, first review id, country, empty reason or None."""

    reviews: int
    histogram: list[int]
    first_id: str | None
    country: str | None
    empty: str | None = None


PINS: dict[str, Pin] = {
    "itunes_rss_fr_xcode_page1_50reviews.json": Pin(50, [32, 6, 4, 4, 4], "6918761820", "FR"),
    "itunes_rss_gb_legacy2015_first_entry_app_metadata_50reviews.json": Pin(50, [6, 5, 2, 10, 27], "1172197819", "GB"),
    "itunes_rss_cn_empty_page_no_entry.json": Pin(0, [0, 0, 0, 0, 0], None, "CN", "no 'entry'"),
    "itunes_rss_us_page11_depth_limit_error.txt": Pin(0, [0, 0, 0, 0, 0], None, None, "stops at page 10"),
}


def _files() -> list[str]:
    folder = SHARED_FIXTURES / "appstore_rss"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_every_appstore_fixture_is_pinned() -> None:
    if not _files():
        pytest.skip(f"shared fixtures not available: {SHARED_FIXTURES / 'appstore_rss'} is absent")
    assert set(_files()) == set(PINS), "a feed was added or renamed: pin it in PINS"


@pytest.mark.parametrize("filename", sorted(PINS))
def test_appstore_fixture_parses_to_pinned_reviews(filename: str) -> None:
    data = (shared_fixture_dir("appstore_rss") / filename).read_bytes()
    fmt = detect_format(data, filename)
    assert fmt is not None and fmt.name == "appstore"
    location = f"https://fixtures.test/{filename}"
    result = fmt.parse(data, location=location)
    pin = PINS[filename]
    assert result.record_count == pin.reviews
    events = _events(result, location)
    assert events.height == pin.reviews
    hist = [events.filter(pl.col("score_raw") == k).height for k in range(1, 6)]
    assert hist == pin.histogram
    if pin.empty:
        assert result.empty_reason and pin.empty in result.empty_reason
        return
    assert events["record_id"][0] == f"appstore:{pin.first_id}"
    assert set(events["country"]) == {pin.country} and set(events["touchpoint"]) == {"app"}
    # these captures carry no per-entry date: null, and said so (not the feed's capture time)
    assert events["published_at"].null_count() == pin.reviews
    assert any("no per-entry date" in w for w in result.warnings)
    # reviewer ids from author.uri are hashed; display names never reach the events
    assert events["customer_key"].null_count() == 0
    raw = json.loads(data)
    names = [e["author"]["name"]["label"] for e in raw["feed"]["entry"] if "author" in e]
    strings = [c for c, t in events.schema.items() if t == pl.String]
    for name in names[:20]:
        for col in strings:
            assert not events[col].str.contains(name, literal=True).any(), (name, col)
    assert len(result.page.business["app_versions"]) == pin.reviews  # type: ignore[union-attr]


def test_legacy_first_entry_is_the_app_not_a_review() -> None:
    name = "itunes_rss_gb_legacy2015_first_entry_app_metadata_50reviews.json"
    data = (shared_fixture_dir("appstore_rss") / name).read_bytes()
    result = FMT.parse(data, location="https://itunes.apple.com/gb/rss/customerreviews/page=1/id=521142420/json")
    assert result.page is not None and result.page.business["name"] == "Foap - sell your photos"
    assert result.page.business["bundle_id"] == "com.foap.foap"
    assert result.measures["position"][0] == "feed.entry[1]"
    assert result.page.next_url == ("https://itunes.apple.com/gb/rss/customerreviews/page=2/id=521142420/json")


# ------------------------------------------------------------------------------------------ format details
def _entry(rid: str, rating: Any = "4", **extra: Any) -> dict[str, Any]:
    return {"id": {"label": rid}, "im:rating": {"label": rating}, "title": {"label": f"T{rid}"},
            "content": {"label": f"text {rid}", "attributes": {"type": "text"}},
            "author": {"uri": {"label": f"https://itunes.apple.com/dk/reviews/id9{rid}"}, "name": {"label": "Nick"}},
            **extra}


def _feed(entries: Any, last: int | None = 3) -> bytes:
    feed: dict[str, Any] = {"author": {"name": {"label": "iTunes Store"}}, "link": [
        {"attributes": {"rel": "last", "href": f"https://itunes.apple.com/dk/rss/customerreviews/page={last}/id=1/"
                                               "sortby=mostrecent/xml" if last else ""}}]}
    if entries is not None:
        feed["entry"] = entries
    return json.dumps({"feed": feed}).encode()


URL = feed_url("dk", 1, 2)


def test_single_entry_object_dates_and_paging() -> None:
    res = FMT.parse(_feed(_entry("5", updated={"label": "2026-11-20T10:05:00-07:00"})), location=URL)
    assert res.record_count == 1 and res.measures["published_at"][0] == datetime(2026, 11, 20, 17, 5, tzinfo=UTC)
    assert res.page is not None and (res.page.current_page, res.page.total_pages) == (2, 3)
    assert res.page.next_url == feed_url("dk", 1, 3) and res.page.newest_first is True
    assert res.measures["customer_ref"][0] == "appstore-user:95" and res.measures["country"][0] == "DK"


def test_empty_page_past_the_end_and_depth_limit_are_ends_not_errors() -> None:
    empty = FMT.parse(_feed(None), location=feed_url("dk", 1, 4))
    assert empty.record_count == 0 and empty.page is not None and empty.page.total_pages == 3
    assert "end of the feed" in (empty.empty_reason or "")
    depth = FMT.parse(b"CustomerReviews RSS page depth is limited to 10", location=feed_url("us", 1, 11))
    assert depth.record_count == 0 and depth.page is not None and depth.page.current_page == 11
    assert depth.page.total_pages == 10 and "not an error" in (depth.empty_reason or "")


@pytest.mark.parametrize(("body", "needle"), [
    (b"<html>nope</html>", "not valid JSON"),
    (b'{"items": []}', "'feed' object"),
    (json.dumps({"feed": {"entry": "x"}}).encode(), "feed.entry is a str"),
    (_feed([_entry("1", rating="7")]), "rating '7'"),
    (_feed([{"im:rating": {"label": "3"}}]), "no review id"),
    (_feed([_entry("1", updated={"label": "yesterday"})]), "not an ISO date"),
])
def test_bad_feeds_fail_naming_the_url(body: bytes, needle: str) -> None:
    with pytest.raises(ParseError) as err:
        FMT.parse(body, location=URL)
    assert needle in str(err.value) and err.value.location == URL


def test_url_for_page_builds_json_urls() -> None:
    assert url_for_page("https://itunes.apple.com/dk/rss/customerreviews/id=1/sortBy=mostRecent/json", 2) == \
        "https://itunes.apple.com/dk/rss/customerreviews/page=2/id=1/sortBy=mostRecent/json"
    assert url_for_page("file:///tmp/feed.json", 2) is None


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
                     max_leaves=30)
_entry_like = st.fixed_dictionaries({}, optional={
    "id": st.one_of(_json, st.fixed_dictionaries({"label": _json})),
    "im:rating": st.fixed_dictionaries({"label": _json}), "updated": st.fixed_dictionaries({"label": _json}),
    "content": _json, "title": _json, "author": _json, "im:name": _json, "im:version": _json})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), _json.map(lambda o: json.dumps(o).encode()),
                 st.lists(_entry_like, max_size=4).map(lambda es: _feed(es)),
                 _entry_like.map(lambda e: json.dumps({"feed": {"entry": e, "link": e}}).encode())))
def test_arbitrary_input_raises_only_parse_error(data: bytes) -> None:
    try:
        res = FMT.parse(data, location=URL)
    except ParseError as exc:
        assert exc.location == URL
        return
    _events(res, URL)


# ------------------------------------------------------------------------------------------ crawling
@pytest.fixture
def client(tmp_path: Path) -> Iterator[PoliteHttpClient]:
    c = PoliteHttpClient(fast_config(tmp_path))
    yield c
    c.close()


def test_sample_site_serves_an_app_store_feed(client: PoliteHttpClient) -> None:
    app = load_apps()[APP]
    with SampleSiteServer() as site:
        url = f"{site.base_url}/dk/rss/customerreviews/page=1/id={APP}/sortBy=mostRecent/json"
        res = crawl(client, url, get_format("appstore"), max_pages=10)
        assert res.stop_reason == "last_page" and res.problems == [] and res.notes == []
        assert res.review_ids() == [str(r["id"]) for r in app.stores["dk"]]
        assert [p.number for p in res.pages] == [1, 2, 3]
        events = pl.concat([_events(p.parsed, p.location) for p in res.pages])
        assert events["published_at"].null_count() == 0 and set(events["touchpoint"]) == {"app"}
        # past page 10 the site answers like Apple: plain text, read as the end of the feed
        r = requests.get(f"{site.base_url}/dk/rss/customerreviews/page=11/id={APP}/sortBy=mostRecent/json", timeout=5)
        assert r.status_code == 200 and "page depth is limited to 10" in r.text
        assert FMT.parse(r.content, location=r.url).record_count == 0
        # a store without reviews: a feed without entry, not blocked, not "changed"
        empty = crawl(client, url.replace("/dk/", "/se/"), get_format("appstore"), max_pages=10)
        assert empty.stop_reason == "last_page" and empty.problems == [] and empty.review_count == 0
        assert "no reviews" in (empty.pages[0].parsed.empty_reason or "")  # type: ignore[union-attr]


def test_incremental_crawl_stops_at_the_first_known_review(client: PoliteHttpClient, tmp_path: Path) -> None:
    import shutil

    from cx_pipeline.demo.sample_site import SAMPLE_SITE_DIR

    site_dir = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE_DIR, site_dir)
    with SampleSiteServer(site_dir) as site:
        url = f"{site.base_url}/dk/rss/customerreviews/page=1/id={APP}/sortBy=mostRecent/json"
        first = crawl(client, url, FMT, max_pages=10)
        stored: dict[str, str] = {}
        for p in first.pages:
            stored.update(review_fingerprints(p.parsed))  # type: ignore[arg-type]
        # three new reviews on top push two known ones onto page 1's tail: stop after page 1
        site.apps[APP].stores["dk"][:0] = [
            {"id": 11000000099 - i, "rating": 3, "user": 91000099 - i, "nick": "n", "version": "3.5.0",
             "updated": f"2026-11-2{5 - i}T10:00:00-07:00", "title": "Ny", "content": "Ny anmeldelse."}
            for i in range(3)]
        inc = crawl(client, url, FMT, max_pages=10, known=known_from_fingerprints(stored))
        assert inc.stop_reason == "known_reached" and [p.known for p in inc.pages] == [True]
        assert {"11000000099", "11000000098", "11000000097"} <= set(inc.review_ids())
        full = crawl(client, url, FMT, max_pages=10, known=known_from_fingerprints(stored), full_resync=True)
        assert full.stop_reason == "last_page" and len(full.review_ids()) == 17


class _FeedServer:
    """Apple-like quirk: ``last`` says page 10, but page ``empty_from`` already has no ``entry``."""

    def __init__(self, empty_from: int = 3) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.paths.append(self.path)
                if self.path == "/robots.txt":
                    body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
                else:
                    page = int(self.path.split("page=")[1].split("/")[0]) if "page=" in self.path else 1
                    entries = [_entry(f"{page}{i}") for i in range(2)] if page < empty_from else None
                    body, ctype = _feed(entries, last=10), "application/json"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/dk/rss/customerreviews/page=1/id=1/sortBy=mostRecent/json"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_an_empty_page_before_the_announced_last_page_ends_the_crawl(client: PoliteHttpClient) -> None:
    srv = _FeedServer()
    try:
        res = crawl(client, srv.url, FMT, max_pages=10)
    finally:
        srv.close()
    assert res.stop_reason == "last_page" and res.problems == [] and res.review_count == 4
    assert [p.outcome for p in res.pages] == ["ok", "ok", "ok"]
    assert "end of the feed" in (res.pages[-1].reason or "")


def test_a_full_tenth_page_is_a_truncated_crawl_not_a_complete_one(client: PoliteHttpClient) -> None:
    """Apple stops at page 10: older reviews exist but cannot be read, so nothing may be inferred removed."""
    srv = _FeedServer(empty_from=99)
    try:
        res = crawl(client, srv.url, FMT, max_pages=10)
    finally:
        srv.close()
    assert res.stop_reason == "truncated" and res.ok and res.problems == [] and len(res.pages) == 10
    assert not any("page=11" in p for p in srv.paths) and "at most 10 pages" in res.notes[0]


# ------------------------------------------------------------------------------------------ config
def test_one_source_per_app_and_country() -> None:
    cfg = parse_sources({"review_sources": [{"id": "app", "brand": "B", "format": "appstore", "app_id": 123,
                                             "countries": ["dk", "no", "se"]}]}, path="s.yaml")
    assert [s.id for s in cfg.review_sources] == ["app-dk", "app-no", "app-se"]
    assert cfg.review_sources[1].url == feed_url("no", 123)
    assert {s.default_touchpoint for s in cfg.review_sources} == {"app"}
    for bad, needle in [({"app_id": "x1", "countries": ["dk"]}, "numeric"), ({"app_id": 1}, "countries"),
                        ({"app_id": 1, "countries": ["dk"], "max_pages": 11}, "page 10"),
                        ({"app_id": 1, "countries": ["denmark"]}, "two-letter")]:
        with pytest.raises(ConfigError, match=needle):
            parse_sources({"review_sources": [{"id": "a", "brand": "B", "format": "appstore", **bad}]}, path="s.yaml")
