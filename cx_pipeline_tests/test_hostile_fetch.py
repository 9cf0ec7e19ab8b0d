"""Issue 15, fetch side: a hostile or broken site must not hang the crawl, widen what robots.txt allows,
pass as "nothing new", or cost the other sources their day. Every test runs against a real server on
127.0.0.1 (``fault_server.FaultServer``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

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
