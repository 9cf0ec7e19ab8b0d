"""Google reviews of a place through the Places API (New) with an API key, via the polite client.

Why a wrapper and not a second HTTP stack: the Places API is fetched like any review page (rate
limit, retries, size limits, the raw archive, ``raw/review_pages`` rows, the crawler's reporting), so
the only difference is authentication. The key goes in the ``X-Goog-Api-Key`` header, never in the
URL: URLs are stored in the fetch metadata and shown in the UI; headers are not stored anywhere.
That is also why only the New API is fetched here: the legacy Place Details API takes its key as a
``key=`` query parameter, which would end up in stored URLs (legacy responses still come in through
the file inbox).

The field mask asks for what the ``google_places`` format reads and no more (Google bills by the
fields requested). ``reviews`` are at most five, "most relevant" first: a sample per fetch, not a feed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit

from cx_pipeline.fetch.http_client import FetchedPage, FetchError, FetchFailed

PLACES_HOST = "places.googleapis.com"
FIELD_MASK = "id,displayName,rating,userRatingCount,reviews"
API_KEY_ENV = "CX_PIPELINE_PLACES_API_KEY"


def place_url(place_id: str, *, language: str | None = None, host: str = PLACES_HOST, scheme: str = "https") -> str:
    """The Places API (New) URL of one place; ``language`` asks Google to translate into it (originals are kept)."""
    if not place_id or "/" in place_id:
        raise ValueError(f"not a place id: {place_id!r} (expected e.g. ChIJwXZbCQAFdkgRreFxm0ah5yQ)")
    query = f"?{urlencode({'languageCode': language})}" if language else ""
    return f"{scheme}://{host}/v1/places/{quote(place_id)}{query}"


class PlacesApiKeyClient:
    """An ``HttpClient`` that adds the Places API key (and field mask) to requests for the API host only.

    ``inner`` is the polite client (``PoliteHttpClient``); every other host passes through untouched, so
    one client serves a whole crawl. ``api_host`` is the API's host[:port] (a local server in tests).
    """

    def __init__(self, inner: object, api_key: str, *, api_host: str = PLACES_HOST,
                 field_mask: str = FIELD_MASK) -> None:
        if not api_key or not api_key.strip():
            raise ValueError(f"a Places API key is required (set {API_KEY_ENV})")
        self.inner = inner
        self.api_host = api_host.lower()
        self._headers = {"X-Goog-Api-Key": api_key.strip(), "X-Goog-FieldMask": field_mask}

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchedPage:
        if urlsplit(url).netloc.lower() != self.api_host:
            return self.inner.get(url, etag=etag, last_modified=last_modified)  # type: ignore[attr-defined,no-any-return]
        try:
            return self.inner.get(url, etag=etag, last_modified=last_modified,  # type: ignore[attr-defined,no-any-return]
                                  headers=self._headers)
        except FetchError as exc:
            if exc.status in (400, 403) and exc.body and b"API key" in exc.body:
                raise FetchFailed(url, f"the Places API refused the key (HTTP {exc.status}): check {API_KEY_ENV} "
                                       "and that the Places API (New) is enabled for it", page=exc.page,
                                  attempts=exc.attempts) from exc
            raise


def with_places_key(inner: object, api_key: str | None = None,
                    environ: Mapping[str, str] | None = None) -> object:
    """``inner`` wrapped with the key from ``api_key`` or ``CX_PIPELINE_PLACES_API_KEY``; unchanged without one."""
    key = api_key or (environ if environ is not None else os.environ).get(API_KEY_ENV)
    return PlacesApiKeyClient(inner, key) if key else inner


__all__ = ["API_KEY_ENV", "FIELD_MASK", "PLACES_HOST", "PlacesApiKeyClient", "place_url", "with_places_key"]
