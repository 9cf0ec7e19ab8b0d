"""Issue 15, fetch side: a hostile or broken site must not hang the crawl, widen what robots.txt allows,
pass as "nothing new", or cost the other sources their day. Every test runs against a real server on
127.0.0.1 (``fault_server.FaultServer``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey

from cx_pipeline.fetch import (
    ClientConfig,
    FetchFailed,
    PoliteHttpClient,
    RobotsDisallowed,
    crawl,
)
from cx_pipeline.sources import get_format
from cx_pipeline_tests.fault_server import Fault, FaultServer, make_reviews

UA = "cx_pipeline-test/0.1 (+https://example.org/contact)"
SLUG = "acme.dk"
PATH = f"/review/{SLUG}"
DEADLINE = 2.0
SLACK = 1.0  # thread wake-up and teardown; far below one more byte of a 1-byte/s drip per second of slack


def config(tmp_path: Path, **overrides: object) -> ClientConfig:
    # read_timeout above the deadline: each 1-byte read arrives well inside it, so only the deadline can end it
    cfg = ClientConfig(user_agent=UA, state_dir=str(tmp_path / "http-state"), min_interval=0.01,
                       connect_timeout=1.0, read_timeout=5.0, max_response_time=DEADLINE, max_bytes=200_000,
                       max_attempts=3, backoff_base=0.01, backoff_max=0.05, max_retry_after=5.0, trust_env=False)
    return replace(cfg, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def site() -> Iterator[FaultServer]:
    with FaultServer({SLUG: make_reviews(12, languages=("da",))}) as srv:
        yield srv


# -- 5: a slow drip ends at the deadline ---------------------------------------------------------------
@pytest.mark.parametrize("drip_headers", [False, True], ids=["body", "headers"])
def test_page_dripping_one_byte_a_second_ends_at_the_deadline(site: FaultServer, tmp_path: Path,
                                                               drip_headers: bool) -> None:
    client = PoliteHttpClient(config(tmp_path))
    client.get(site.url(SLUG))  # robots.txt cached, so the clock below times the page alone
    site.add_fault(PATH, Fault("drip", delay=1.0, drip_headers=drip_headers, times=0), page=2)
    url = site.url(SLUG, page="2")
    t0 = time.monotonic()
    with pytest.raises(FetchFailed) as err:
        client.get(url)
    took = time.monotonic() - t0
    assert DEADLINE - 0.2 < took < DEADLINE + SLACK, took
    assert url in str(err.value) and "deadline" in str(err.value)
    assert err.value.attempts == 1  # not retried: a dripping server would drip again
    assert len([r for r in site.records(PATH) if r.page == 2]) == 1


def test_robots_txt_dripping_ends_at_the_deadline(site: FaultServer, tmp_path: Path) -> None:
    site.add_fault("/robots.txt", Fault("drip", delay=1.0, times=0))
    client = PoliteHttpClient(config(tmp_path))
    url = site.url(SLUG)
    t0 = time.monotonic()
    with pytest.raises(FetchFailed) as err:
        client.get(url)
    took = time.monotonic() - t0
    assert DEADLINE - 0.2 < took < DEADLINE + SLACK, took
    assert url in str(err.value) and "robots.txt" in str(err.value) and "deadline" in str(err.value)
    assert [r.path for r in site.records()] == ["/robots.txt"]  # the page was never asked for


def test_slow_but_steady_page_within_the_deadline_still_succeeds(site: FaultServer, tmp_path: Path) -> None:
    site.add_fault(PATH, Fault("slow", delay=0.1), page=1)  # 8 pieces in 0.8 s
    page = PoliteHttpClient(config(tmp_path)).get(site.url(SLUG))
    assert page.body == site.page_body(SLUG, 1, None, PATH)


# -- 6: robots.txt over the size limit is read up to the limit ------------------------------------------
def test_oversized_robots_txt_is_parsed_up_to_the_limit(tmp_path: Path) -> None:
    padding = "".join(f"# comment line {i:06d} padding padding padding padding\n" for i in range(12_000))
    robots = "User-agent: *\nDisallow: /\n" + padding
    assert len(robots.encode()) > 612_000
    with FaultServer({SLUG: make_reviews(3)}, robots_txt=robots) as srv:
        client = PoliteHttpClient(config(tmp_path))
        with pytest.raises(RobotsDisallowed) as err:
            client.get(srv.url(SLUG))
        assert "first" in err.value.reason and str(512 * 1024) in err.value.reason
        # through the crawler too: no page of the disallowed site is ever requested
        result = crawl(client, srv.url(SLUG), get_format("trustpilot"), max_pages=5)
        assert result.stop_reason == "blocked" and not result.ok_pages
        assert {r.path for r in srv.records()} == {"/robots.txt"}


def test_oversized_robots_txt_rule_cut_mid_line_is_dropped(tmp_path: Path) -> None:
    """The limit falls inside ``Allow: /review/acme.dk/x``: kept whole it would not allow /review/acme.dk."""
    limit = 4096
    head = "User-agent: *\nDisallow: /review/\n"
    filler = "#" * (limit - len(head) - len("Allow: /review/") - 1) + "\n"
    robots = head + filler + "Allow: /review/acme.dk/x\n"
    with FaultServer({SLUG: make_reviews(3)}, robots_txt=robots) as srv:
        client = PoliteHttpClient(config(tmp_path, robots_max_bytes=limit))
        with pytest.raises(RobotsDisallowed):
            client.get(srv.url(SLUG))


def test_robots_txt_304_to_an_unconditional_request_disallows(tmp_path: Path) -> None:
    with FaultServer({SLUG: make_reviews(3)}) as srv:
        srv.add_fault("/robots.txt", Fault("status", status=304))
        with pytest.raises(RobotsDisallowed, match="HTTP 304"):
            PoliteHttpClient(config(tmp_path)).get(srv.url(SLUG))


# -- 7: a 304 nobody asked for is an error, not "nothing new" -------------------------------------------
def test_304_to_an_unconditional_get_is_an_error(site: FaultServer, tmp_path: Path) -> None:
    client = PoliteHttpClient(config(tmp_path))
    site.add_fault(PATH, Fault("status", status=304), page=1)
    url = site.url(SLUG)
    with pytest.raises(FetchFailed) as err:
        client.get(url)
    assert url in str(err.value) and "304" in err.value.reason and "no validator" in err.value.reason
    # a real conditional 304 is still "unchanged"
    first = client.get(url)
    assert client.get(url, etag=first.etag).not_modified


def test_crawl_reports_an_unasked_304_as_an_error_page(site: FaultServer, tmp_path: Path) -> None:
    client = PoliteHttpClient(config(tmp_path))
    site.add_fault(PATH, Fault("status", status=304), page=1)
    result = crawl(client, site.url(SLUG), get_format("trustpilot"), max_pages=5)
    assert result.stop_reason == "failed" and not result.ok
    assert [p.outcome for p in result.pages] == ["error"]
    assert "no validator" in (result.pages[0].reason or "")
    assert [p.kind for p in result.problems] == ["failed"] and "304" in result.problems[0].reason


# -- 12: one broken source never costs the healthy one its day ------------------------------------------
HEALTHY, BROKEN = "healthy.dk", "broken.dk"


def _break(site: FaultServer, kind: str) -> int:
    """Script ``kind`` on the broken source; returns how many of its pages are fetched OK before it."""
    path = f"/review/{BROKEN}"
    page2 = site.page_body(BROKEN, 2, "all", path)
    page1 = site.page_body(BROKEN, 1, "all", path)
    assert page1 and page2
    if kind == "http_403":
        site.add_fault(path, Fault("status", status=403, times=0))
        return 0
    if kind == "invalid_json":  # page 2's __NEXT_DATA__ is cut: a parse error in the middle of the source
        site.add_fault(path, Fault("body", body=page2.replace(b'"reviews": [', b'"reviews": [,', 1), times=0), page=2)
        return 1
    if kind == "date_out_of_range":  # one review on page 1 has month 13
        bad = page1.replace(b'"publishedDate": "2025-03-', b'"publishedDate": "2025-13-', 1)
        assert bad != page1
        site.add_fault(path, Fault("body", body=bad, times=0), page=1)
        return 0
    if kind == "unasked_304":
        site.add_fault(path, Fault("status", status=304, times=0), page=1)
        return 0
    raise ValueError(kind)


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["http_403", "invalid_json", "date_out_of_range", "unasked_304"])
def test_a_broken_source_does_not_cost_the_healthy_one_its_events(tmp_path: Path, monkeypatch, kind: str) -> None:
    from dagster import DagsterInstance

    from cx_pipeline.definitions import build_definitions
    from cx_pipeline.defs.automation import ingests_to_build
    from cx_pipeline.storage import ParquetStore

    with FaultServer({HEALTHY: make_reviews(7, prefix="h"), BROKEN: make_reviews(7, prefix="b")}) as site:
        ok_before = _break(site, kind)
        sources = tmp_path / "sources.yaml"
        sources.write_text(
            f"""
user_agent: "cx_pipeline-test/1 (+mailto:test@example.com)"
review_sources:
  - id: broken
    brand: Broken
    url: {site.url(BROKEN)}
    max_pages: 10
  - id: healthy
    brand: Healthy
    url: {site.url(HEALTHY)}
    max_pages: 10
""",
            encoding="utf-8",
        )
        monkeypatch.setenv("CX_PIPELINE_HASH_SECRET", "broken-source-secret")
        defs = build_definitions(data_root=str(tmp_path / "data"), sources_path=str(sources))
        instance = DagsterInstance.ephemeral()
        t0 = time.monotonic()
        ingest = defs.resolve_job_def("ingest_reviews").execute_in_process(
            instance=instance, partition_key="2026-11-24", raise_on_error=False)
        ingest_seconds = time.monotonic() - t0
    build = defs.resolve_job_def("build_scored").execute_in_process(
        instance=instance, asset_selection=[AssetKey(["events", "touchpoint_events"])], raise_on_error=False)

    # the ingest run succeeds (no step retry, nothing skipped), so the build sensor picks it up the same day
    assert ingest.success and build.success
    assert ingest.run_id in ingests_to_build(instance, None)[0]
    assert ingest_seconds < 30, ingest_seconds  # no retry of the whole step (it took 125-170 s before)
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in ingest.get_asset_check_evaluations()}
    crawl_check = checks[("raw/review_pages", "not_blocked")]
    assert not crawl_check.passed and crawl_check.severity.value == "ERROR"
    problems = crawl_check.metadata["problems"].value
    assert crawl_check.metadata["problem_sources"].value == ["broken"]
    assert "broken:" in problems and site.url(BROKEN).split("?")[0] in problems and "healthy" not in problems

    store = ParquetStore(str(tmp_path / "data"))
    pages = store.read("raw/review_pages").sort("source_id", "page_no")
    healthy = pages.filter(pl.col("source_id") == "healthy")
    broken = pages.filter(pl.col("source_id") == "broken")
    assert healthy["outcome"].to_list() == ["ok", "ok"]
    events = store.read("events/touchpoint_events")
    assert events is not None
    by_brand = dict(events.group_by("brand").agg(pl.col("record_id").n_unique()).iter_rows())
    assert by_brand.get("Healthy") == 7  # every review of the healthy source reached the analyst table
    if kind == "date_out_of_range":
        # one bad review is a row-level reject: its page is kept, the other 6 reviews reach the table, and the
        # reject is stored with its reason beside the events
        assert broken["outcome"].to_list() == ["ok", "ok"]
        assert by_brand.get("Broken") == 6
        rejects = store.read("events/rejects")
        assert rejects is not None and rejects.filter(pl.col("brand") == "Broken").height == 1
        assert "rejects" in problems
        return
    assert broken["outcome"].to_list()[:ok_before] == ["ok"] * ok_before
    failed_row = broken.row(ok_before, named=True)
    assert failed_row["outcome"] in ("blocked", "changed", "error") and failed_row["reason"]
    assert failed_row["requested_url"].startswith(site.url(BROKEN))
    assert by_brand.get("Broken", 0) == 5 * ok_before  # the broken source's good pages are kept too


def test_a_parser_crash_stops_only_that_source_as_changed(site: FaultServer, tmp_path: Path) -> None:
    """Not a ParseError: a parser bug on a hostile page 2 becomes that page's 'changed' row, page 1 is kept."""
    base = type(get_format("trustpilot"))

    class Crashing(base):  # type: ignore[misc, valid-type]
        def parse(self, data: bytes, *, location: str):  # type: ignore[no-untyped-def]
            if "page=2" in location:
                raise OverflowError("date value out of range")
            return super().parse(data, location=location)

    result = crawl(PoliteHttpClient(config(tmp_path)), site.url(SLUG), Crashing(), max_pages=5)
    assert result.stop_reason == "changed"
    assert [p.outcome for p in result.pages] == ["ok", "changed"]
    assert "OverflowError: date value out of range" in (result.pages[1].reason or "")
    assert result.review_count == 5


def test_one_source_raising_anything_keeps_the_other_sources_rows(site: FaultServer, tmp_path: Path) -> None:
    from cx_pipeline.config import ReviewSource, SourcesConfig
    from cx_pipeline.pipeline.reviews import crawl_review_sources
    from cx_pipeline.storage import ParquetStore, RawArchive

    polite = PoliteHttpClient(config(tmp_path))

    class Exploding:
        def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None):  # type: ignore[no-untyped-def]
            if "/review/other.dk" in url:
                raise MemoryError("simulated")
            return polite.get(url, etag=etag, last_modified=last_modified)

    cfg = SourcesConfig(path="sources.yaml", user_agent=UA, survey_inbox=None, review_sources=(
        ReviewSource(id="bad", brand="Bad", url=site.base_url + "/review/other.dk"),
        ReviewSource(id="good", brand="Good", url=site.url(SLUG)),
    ))
    pages, crawls = crawl_review_sources(cfg, Exploding(), RawArchive(ParquetStore(str(tmp_path / "data"))))
    rows = {r["source_id"]: r for r in pages.iter_rows(named=True) if r["page_no"] == 1}
    assert rows["bad"]["outcome"] == "error" and "MemoryError: simulated" in rows["bad"]["reason"]
    assert rows["bad"]["requested_url"].endswith("/review/other.dk")
    assert pages.filter(pl.col("source_id") == "good")["outcome"].to_list() == ["ok", "ok", "ok"]
    assert [c.stop_reason for c in crawls] == ["failed", "last_page"]


def test_after_an_incomplete_crawl_the_next_one_does_not_stop_at_known_pages(site: FaultServer,
                                                                              tmp_path: Path) -> None:
    """Day 1 is blocked on page 2; day 2's page 1 is all known, yet the crawl must go on to read pages 2-3."""
    from cx_pipeline.config import ReviewSource, SourcesConfig
    from cx_pipeline.pipeline.reviews import CrawlHistory, crawl_review_sources
    from cx_pipeline.storage import ParquetStore, RawArchive

    client = PoliteHttpClient(config(tmp_path))
    archive = RawArchive(ParquetStore(str(tmp_path / "data")))
    cfg = SourcesConfig(path="sources.yaml", user_agent=UA, survey_inbox=None,
                        review_sources=(ReviewSource(id="acme", brand="Acme", url=site.url(SLUG)),))
    site.add_fault(PATH, Fault("status", status=403), page=2)
    day1, _ = crawl_review_sources(cfg, client, archive)
    assert day1["outcome"].to_list() == ["ok", "blocked"]
    history = CrawlHistory(day1, archive)
    assert not history.last_crawl_complete("acme")
    day2, _ = crawl_review_sources(cfg, client, archive, history=history)
    assert day2["outcome"].to_list()[-2:] == ["ok", "ok"] and day2.height == 3  # pages 2 and 3 read
    assert CrawlHistory(pl.concat([day1, day2]), archive).last_crawl_complete("acme")


def _fault_for(kind: str, site: FaultServer) -> tuple[str, Fault, int | None]:
    """(path, fault, page) for one single-source fault of the broken site."""
    path = f"/review/{BROKEN}"
    page1 = site.page_body(BROKEN, 1, "all", path) or b""
    page2 = site.page_body(BROKEN, 2, "all", path) or b""
    return {
        "http_403": (path, Fault("status", status=403, times=0), None),
        "http_503_forever": (path, Fault("status", status=503, times=0), None),
        "http_404_page_2": (path, Fault("status", status=404, times=0), 2),
        "unasked_304": (path, Fault("status", status=304, times=0), 1),
        "drip": (path, Fault("drip", delay=1.0, times=0), 1),
        "truncated_forever": (path, Fault("truncate", times=0), 1),
        "oversize": (path, Fault("oversize", size=5_000_000, times=0), 1),
        "redirect_off_site": (path, Fault("redirect", location="http://evil.example/x", times=0), 1),
        "login_wall_page_2": (path, Fault("login_wall", times=0), 2),
        "waf": (path, Fault.waf(times=0), None),
        "captcha": (path, Fault("captcha", times=0), None),
        "changed_layout": (path, Fault("changed_layout", times=0), None),
        "empty_reviews_page_2": (path, Fault("empty_reviews", times=0), 2),
        "pagination_ignored": (path, Fault("other_page", serve_page=1, times=0), 2),
        "invalid_json_page_2": (path, Fault("body", body=page2.replace(b'"reviews": [', b'"reviews": [,', 1),
                                            times=0), 2),
        "date_out_of_range": (path, Fault("body", body=page1.replace(b'"publishedDate": "2025-03-',
                                                                     b'"publishedDate": "2025-13-', 1), times=0), 1),
        "not_html": (path, Fault("body", body=b"\x00\xff" * 500, times=0), None),
        "robots_503": ("/robots.txt", Fault("status", status=503, times=0), None),
        "robots_drip": ("/robots.txt", Fault("drip", delay=1.0, times=0), None),
        "robots_disallow_all": ("/robots.txt", Fault("body", body=b"User-agent: *\nDisallow: /\n", times=0), None),
    }[kind]


FAULTS = ["http_403", "http_503_forever", "http_404_page_2", "unasked_304", "drip", "truncated_forever", "oversize",
          "redirect_off_site", "login_wall_page_2", "waf", "captcha", "changed_layout", "empty_reviews_page_2",
          "pagination_ignored", "invalid_json_page_2", "date_out_of_range", "not_html", "robots_503", "robots_drip",
          "robots_disallow_all"]


@pytest.mark.parametrize("kind", FAULTS)
def test_every_single_source_fault_is_named_and_leaves_the_healthy_source_whole(tmp_path: Path, kind: str) -> None:
    """The 20 single-source faults, without Dagster: the broken source's own rows name the fault, the healthy
    source on another host is crawled whole, and nothing hangs (drips end at the 2 s deadline)."""
    from cx_pipeline.config import ReviewSource, SourcesConfig
    from cx_pipeline.pipeline.reviews import crawl_review_sources
    from cx_pipeline.storage import ParquetStore, RawArchive

    with FaultServer({HEALTHY: make_reviews(12, prefix="h")}) as good, \
            FaultServer({BROKEN: make_reviews(12, prefix="b")}) as bad:
        path, fault, page = _fault_for(kind, bad)
        bad.add_fault(path, fault, page=page)
        cfg = SourcesConfig(path="sources.yaml", user_agent=UA, survey_inbox=None, review_sources=(
            ReviewSource(id="broken", brand="Broken", url=bad.url(BROKEN)),
            ReviewSource(id="healthy", brand="Healthy", url=good.url(HEALTHY)),
        ))
        client = PoliteHttpClient(config(tmp_path, allowed_hosts=("127.0.0.1",)))
        t0 = time.monotonic()
        pages, crawls = crawl_review_sources(cfg, client, RawArchive(ParquetStore(str(tmp_path / "data"))))
        took = time.monotonic() - t0
    assert took < DEADLINE * 2 + 3, took
    healthy = pages.filter(pl.col("source_id") == "healthy")
    assert healthy["outcome"].to_list() == ["ok", "ok", "ok"] and healthy["record_count"].sum() == 12
    broken = {c.source.id: c for c in crawls}["broken"]
    rows = pages.filter(pl.col("source_id") == "broken")
    assert broken.problems, "the fault must be reported"
    assert all(bad.base_url in p for p in broken.problems)  # each problem names the URL
    assert broken.stop_reason in ("blocked", "changed", "failed") or any("rejects" in p for p in broken.problems)
    if broken.stop_reason in ("blocked", "changed", "failed"):
        last = rows.row(rows.height - 1, named=True)
        assert last["outcome"] in ("blocked", "changed", "error") and last["reason"]
        assert not {c.source.id: c for c in crawls}["healthy"].problems


def test_tls_handshake_dripping_ends_at_the_deadline(tmp_path: Path) -> None:
    """A TLS server that answers the ClientHello one byte a second: the deadline also covers the handshake."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    conn.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record announcing 16 KiB ...
                    while not stop.wait(1.0):
                        conn.sendall(b"\x00")  # ... that arrives one byte a second
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client = PoliteHttpClient(config(tmp_path, max_attempts=1, connect_timeout=5.0))  # each byte is in time
        url = f"https://127.0.0.1:{port}/review/x"
        t0 = time.monotonic()
        with pytest.raises(FetchFailed) as err:
            client.get(url)
        took = time.monotonic() - t0
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert DEADLINE - 0.2 < took < DEADLINE + SLACK, took
    assert url in str(err.value) and "deadline" in str(err.value)


def test_refused_records_on_a_page_are_reported_by_the_crawl(site: FaultServer, tmp_path: Path) -> None:
    """A parser that keeps a page but refuses one review (row-level reject): the page stays ok, the crawl says so."""
    from dataclasses import replace as dc_replace

    from cx_pipeline.sources.base import Reject

    base = type(get_format("trustpilot"))

    class Refusing(base):  # type: ignore[misc, valid-type]
        def parse(self, data: bytes, *, location: str):  # type: ignore[no-untyped-def]
            parsed = super().parse(data, location=location)
            if "page=2" not in location:
                return parsed
            return dc_replace(parsed, rejects=[Reject("review 3", "publishedDate out of range", field="publishedDate",
                                                      value="2025-13-45", native_id="x")])

    result = crawl(PoliteHttpClient(config(tmp_path)), site.url(SLUG), Refusing(), max_pages=5)
    assert result.stop_reason == "last_page" and [p.outcome for p in result.pages] == ["ok", "ok", "ok"]
    [problem] = result.problems
    assert problem.kind == "rejects" and "page=2" in problem.url
    assert "1 record(s) on page 2 refused" in problem.reason and "publishedDate out of range" in problem.reason
