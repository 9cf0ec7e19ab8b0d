"""Google reviews of a place: Places API legacy and New (v1) responses, and the API-key client over HTTP.

Real responses live in ../shared/fixtures/google_places (never copied in; absent → skipped with the reason).
The key client runs against a real server on 127.0.0.1 standing in for places.googleapis.com.
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_pipeline.config.sources_config import ConfigError, parse_sources
from cx_pipeline.contract import contract_violations
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.fetch import FetchFailed, PoliteHttpClient, crawl
from cx_pipeline.fetch.places_client import PlacesApiKeyClient, place_url, with_places_key
from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.sources import ParseError, detect_format, get_format
from cx_pipeline_tests.conftest import SHARED_FIXTURES, shared_fixture_dir
from cx_pipeline_tests.test_http_client import fast_config

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FOLDER = "google_places"
FMT = get_format("google_places")


def _events(result: Any, location: str = "https://fixtures.test/x") -> pl.DataFrame:
    ctx = NormalizeContext(brand="B", source_url=location, raw_key="raw/x", ingested_at=T0,
                           keyer=CustomerKeyer("test-secret"), default_touchpoint="store")
    events = to_events(result, ctx, source_kind="review")
    assert contract_violations(events) == []
    return events


class Pin(NamedTuple):
    """Read by hand: reviews, stars in file order, place name, rating, count, languages kept, first publish time."""

    ratings: list[int]
    place: str
    rating: float
    count: int
    languages: set[str]
    first_published: str


PINS: dict[str, Pin] = {
    "places_api_details_fr_sacre_coeur_5reviews.json": Pin([5, 3, 4, 5, 1], "Sacré-Cœur", 4.5, 3688, {"fr"},
                                                           "2017-06-16T23:58:14"),
    "places_api_details_quay_sydney_legacy_aspects_5reviews.json": Pin([3, 5, 2, 1, 2], "Quay", 4.1, 273, {"en"},
                                                                       "2015-09-10T01:34:13"),
    "places_api_new_v1_joy_fried_chicken_london_5reviews.json": Pin([5, 1, 5, 3, 2], "Joy Fried Chicken", 2.6, 16,
                                                                    {"en"}, "2025-08-26T20:40:49.143565"),
    "places_api_new_v1_cjk_name_1review_nl_translated.json": Pin([1], "酔瓉楼", 1.0, 1, {"nl"},
                                                                 "2025-10-13T18:46:13.646489"),
}


def _files() -> list[str]:
    folder = SHARED_FIXTURES / FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_every_places_fixture_is_pinned() -> None:
    if not _files():
        pytest.skip(f"shared fixtures not available: {SHARED_FIXTURES / FOLDER} is absent")
    assert set(_files()) == set(PINS), "a file was added or renamed: pin it in PINS"


@pytest.mark.parametrize("filename", sorted(PINS))
def test_places_fixture_parses_to_pinned_reviews(filename: str) -> None:
    data = (shared_fixture_dir(FOLDER) / filename).read_bytes()
    fmt = detect_format(data, filename)
    assert fmt is not None and fmt.name == "google_places"
    result = fmt.parse(data, location=filename)
    events = _events(result, filename)
    pin = PINS[filename]
    stars = events.filter(pl.col("measure_key") == "stars").sort("raw_ref")
    assert result.record_count == len(pin.ratings) == stars.height
    assert stars["score_raw"].to_list() == pin.ratings
    assert set(stars["touchpoint"]) == {"store"} and set(stars["location"]) == {pin.place}
    assert set(stars["language"]) == pin.languages
    assert stars["published_at"][0] == datetime.fromisoformat(pin.first_published).replace(tzinfo=UTC)
    assert stars["customer_key"].null_count() == 0  # the Google account id, hashed
    [agg] = result.aggregates
    assert (agg["name"], agg["rating_value"], agg["rating_count"]) == (pin.place, pin.rating, pin.count)
    raw = json.loads(data)
    reviews = raw["result"]["reviews"] if "result" in raw else raw["reviews"]
    names = [r.get("author_name") or r["authorAttribution"]["displayName"] for r in reviews]
    strings = [c for c, t in events.schema.items() if t == pl.String]
    for name in names:
        for col in strings:
            assert not events[col].str.contains(name, literal=True).any(), (name, col)


def test_machine_translation_keeps_the_original_text_and_language() -> None:
    name = "places_api_new_v1_cjk_name_1review_nl_translated.json"
    result = FMT.parse((shared_fixture_dir(FOLDER) / name).read_bytes(), location=name)
    row = result.measures.row(0, named=True)
    assert row["language"] == "nl" and row["text"].startswith("Slecht\nVette rijst")
    assert any("machine-translated" in w for w in result.warnings)


def test_legacy_overall_aspect_is_not_a_second_rating() -> None:
    name = "places_api_details_quay_sydney_legacy_aspects_5reviews.json"
    result = FMT.parse((shared_fixture_dir(FOLDER) / name).read_bytes(), location=name)
    assert set(result.measures["measure_key"]) == {"stars"} and result.measures.height == 5
    assert any("'overall' aspect" in w for w in result.warnings)


def _legacy(reviews: list[dict[str, Any]], status: str = "OK") -> bytes:
    return json.dumps({"result": {"place_id": "ChIJtest000001", "name": "Nordlys Aarhus", "rating": 4.2,
                                  "user_ratings_total": 10, "reviews": reviews}, "status": status}).encode()


def test_legacy_aspects_are_mapped_explicitly_on_their_own_scale() -> None:
    review = {"author_name": "X", "author_url": "https://www.google.com/maps/contrib/123456789/reviews",
              "rating": 4, "text": "Nice staff", "time": 1700000000, "language": "da",
              "aspects": [{"type": "service", "rating": 3}, {"type": "decor", "rating": 1},
                          {"type": "overall", "rating": 2}, {"type": "parking", "rating": 0}]}
    res = FMT.parse(_legacy([review]), location="p.json")
    ev = _events(res).sort("measure_key")
    assert ev.select("measure_key", "touchpoint", "metric", "score_raw", "scale_max").rows() == [
        ("aspect_decor", "store", "rating", 1.0, 3.0),
        ("aspect_service", "customer_service", "rating", 3.0, 3.0),
        ("stars", "store", "star_rating", 4.0, 5.0)]
    assert ev["score_norm"].to_list() == pytest.approx([1 / 3, 1.0, 0.75])
    assert len(set(ev["record_id"])) == 1 and ev["record_id"][0] == "google_places:ChIJtest000001:123456789"
    assert any("'parking'" in w for w in res.warnings)


@pytest.mark.parametrize(("body", "needle"), [
    (_legacy([], status="REQUEST_DENIED"), "REQUEST_DENIED"),
    (_legacy([{"rating": 6, "time": 1}]), "rating 6"),
    (_legacy([{"rating": 5, "time": "soon"}]), "not an epoch"),
    (json.dumps({"displayName": {"text": "x"}, "reviews": [{"rating": 3, "publishTime": "2025-13-01T00:00:00Z",
                                                             "name": "places/a/reviews/b"}]}).encode(), "not an ISO"),
    (json.dumps({"displayName": {"text": "x"}, "reviews": [{"rating": 3}]}).encode(), "cannot be identified"),
    (b"[1, 2]", "expected a Places API JSON object"),
    (b"{nope", "not valid JSON"),
])
def test_bad_responses_fail_naming_the_file(body: bytes, needle: str) -> None:
    with pytest.raises(ParseError) as err:
        FMT.parse(body, location="inbox/place.json")
    assert needle in str(err.value) and err.value.location == "inbox/place.json"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
                     max_leaves=30)
_keys = st.sampled_from(["rating", "time", "text", "originalText", "languageCode", "publishTime", "name",
                         "authorAttribution", "uri", "author_url", "aspects", "type", "language", "translated"])
_review = st.dictionaries(_keys, _json, max_size=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), _json.map(lambda o: json.dumps(o).encode()),
                 st.lists(_review, max_size=3).map(lambda rs: _legacy(rs)),
                 st.lists(_review, max_size=3).map(lambda rs: json.dumps({"displayName": {"text": "p"},
                                                                          "reviews": rs}).encode())))
def test_arbitrary_input_raises_only_parse_error(data: bytes) -> None:
    try:
        res = FMT.parse(data, location="f.json")
    except ParseError as exc:
        assert exc.location == "f.json"
        return
    _events(res)


# ------------------------------------------------------------------------------------------ the key client
NEW_PLACE = {"id": "ChIJtest000002", "displayName": {"text": "Nordlys Odense", "languageCode": "da"}, "rating": 3.5,
             "userRatingCount": 2, "reviews": [
                 {"name": "places/ChIJtest000002/reviews/r1", "rating": 2,
                  "publishTime": "2026-11-01T10:00:00.123456789Z",
                  "text": {"text": "Long queue at the till", "languageCode": "en"},
                  "originalText": {"text": "Lang kø ved kassen", "languageCode": "da"},
                  "authorAttribution": {"displayName": "Someone", "uri": "https://www.google.com/maps/contrib/555555555"}}]}


class _PlacesServer:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.seen.append((self.path, dict(self.headers)))
                if self.path == "/robots.txt":
                    status, body = 404, b"none"
                elif self.headers.get("X-Goog-Api-Key") != "k-123":
                    status, body = 403, b'{"error": {"code": 403, "message": "API key not valid."}}'
                else:
                    status, body = 200, json.dumps(NEW_PLACE).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def netloc(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def places() -> Iterator[_PlacesServer]:
    srv = _PlacesServer()
    yield srv
    srv.close()


def test_key_client_sends_the_key_as_a_header_and_never_in_the_url(places: _PlacesServer, tmp_path: Path) -> None:
    inner = PoliteHttpClient(fast_config(tmp_path))
    client = PlacesApiKeyClient(inner, "k-123", api_host=places.netloc)
    url = place_url("ChIJtest000002", language="en", host=places.netloc, scheme="http")
    res = crawl(client, url, FMT, max_pages=3)
    # five "most relevant" reviews are a sample: read in full, yet never a complete crawl (no removals inferred)
    assert res.stop_reason == "truncated" and res.ok and res.problems == [] and res.review_count == 1
    assert "only part of the reviews" in res.notes[0]
    headers = next(h for p, h in places.seen if p.startswith("/v1/"))
    assert headers["X-Goog-Api-Key"] == "k-123" and "reviews" in headers["X-Goog-FieldMask"]
    page = res.pages[0]
    assert "k-123" not in page.requested_url + page.fetched.final_url + json.dumps(page.fetched.headers)
    row = page.parsed.measures.row(0, named=True)  # type: ignore[union-attr]
    assert (row["text"], row["language"], row["location"]) == ("Lang kø ved kassen", "da", "Nordlys Odense")
    # robots.txt and other hosts get no key
    assert all("X-Goog-Api-Key" not in h for p, h in places.seen if p == "/robots.txt")
    with pytest.raises(FetchFailed, match="refused the key"):
        PlacesApiKeyClient(inner, "wrong", api_host=places.netloc).get(url)
    inner.close()


def test_key_comes_from_the_environment_or_is_not_used() -> None:
    inner = object()
    assert with_places_key(inner, environ={}) is inner
    wrapped = with_places_key(inner, environ={"CX_PIPELINE_PLACES_API_KEY": "abc"})
    assert isinstance(wrapped, PlacesApiKeyClient) and wrapped.inner is inner
    with pytest.raises(ValueError):
        PlacesApiKeyClient(inner, " ")


def test_a_place_source_in_the_sources_file() -> None:
    cfg = parse_sources({"review_sources": [{"id": "aarhus-google", "brand": "B", "format": "google_places",
                                             "place_id": "ChIJwXZbCQAFdkgRreFxm0ah5yQ"}]}, path="s.yaml")
    [src] = cfg.review_sources
    assert src.url == "https://places.googleapis.com/v1/places/ChIJwXZbCQAFdkgRreFxm0ah5yQ"
    assert src.default_touchpoint == "store"
    with pytest.raises(ConfigError, match="place id"):
        parse_sources({"review_sources": [{"id": "g", "brand": "B", "format": "google_places", "place_id": "x/y"}]},
                      path="s.yaml")
