"""Fetching review pages politely (pure Python; the Dagster resource wraps :class:`PoliteHttpClient`)."""

from cx_pipeline.fetch.http_client import (
    BaseHttpClient,
    ClientConfig,
    FetchBlocked,
    FetchedPage,
    FetchError,
    FetchFailed,
    HostRateLimiter,
    HttpClient,
    LocalPagesClient,
    LocalResponse,
    PageChanged,
    PoliteHttpClient,
    RedirectRefused,
    ResponseTooLarge,
    RobotsDisallowed,
    canonical_url,
    detect_block,
    fetch_many,
    host_key,
    parse_retry_after,
    set_query_params,
)
from cx_pipeline.fetch.review_crawler import (
    CrawledPage,
    CrawlJob,
    CrawlProblem,
    CrawlResult,
    crawl,
    crawl_many,
    forced_query,
    known_from_fingerprints,
    review_fingerprints,
    with_forced_query,
)

__all__ = [
    "BaseHttpClient", "ClientConfig", "CrawlJob", "CrawlProblem", "CrawlResult", "CrawledPage", "FetchBlocked",
    "FetchError", "FetchFailed", "FetchedPage", "HostRateLimiter", "HttpClient", "LocalPagesClient",
    "LocalResponse", "PageChanged", "PoliteHttpClient", "RedirectRefused", "ResponseTooLarge", "RobotsDisallowed",
    "canonical_url", "crawl", "crawl_many", "detect_block", "fetch_many", "forced_query", "host_key",
    "known_from_fingerprints", "parse_retry_after", "review_fingerprints", "set_query_params", "with_forced_query",
]
