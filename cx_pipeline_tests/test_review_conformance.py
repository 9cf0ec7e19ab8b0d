"""Every real review fixture → parse → normalize.to_events, checked against independent expectations.

Trustpilot expectations are derived here from the page's own ``__NEXT_DATA__`` (a separate regex +
``json.loads``, not the parser's code) AND pinned with a few literal values per file, so a parser
that reads the wrong block, the wrong field or the wrong review order fails. Fixtures live outside
the repo (../shared/fixtures) and are never copied in; absent fixtures skip with the reason.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
import pytest

from cx_pipeline.contract import contract_violations
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.normalize.redact import redact_name, redact_text
from cx_pipeline.sources.base import ParseError, ParseResult
from cx_pipeline.sources.registry import detect_format, get_format

pytestmark = pytest.mark.conformance

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
DIRS = ("trustpilot_html", "trustpilot_json", "schema_org_html")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _dir(name: str) -> Path:
    folder = FIXTURES / name
    if not folder.is_dir():
        pytest.skip(f"shared fixtures not available: {folder} is absent (conformance tests need ../shared/fixtures)")
    return folder


def _files(name: str) -> list[str]:
    folder = FIXTURES / name
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _url(filename: str) -> str:
    return f"https://fixtures.test/{filename}"


def _parse(folder: str, filename: str, fmt: str | None = None) -> tuple[ParseResult, pl.DataFrame, bytes]:
    data = (_dir(folder) / filename).read_bytes()
    parser = get_format(fmt) if fmt else detect_format(data, filename)
    assert parser is not None, f"no format sniffs {filename}"
    result = parser.parse(data, location=_url(filename))
    ctx = NormalizeContext(
        brand="Test Brand",
        source_url=_url(filename),
        raw_key=f"raw/{filename}",
        ingested_at=T0,
        keyer=CustomerKeyer("test-secret"),
    )
    events = to_events(result, ctx, source_kind=parser.kind)
    assert contract_violations(events) == []
    return result, events, data


def _utc(s: str | None) -> datetime | None:
    if not s:
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def _next_data_reviews(data: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Independent read of the expectations: the raw review objects (and pageProps) of a fixture."""
    stripped = data.lstrip()
    if stripped[:1] in (b"[", b"{"):
        obj = json.loads(stripped)
        return (obj, None) if isinstance(obj, list) else ([], None)
    m = re.search(rb'<script id="__NEXT_DATA__" type="application/json">(.+?)</script>', data, re.S)
    assert m, "fixture lost its __NEXT_DATA__ block"
    pp = json.loads(m.group(1))["props"]["pageProps"]
    return pp["reviews"], pp


# ------------------------------------------------------------------------------------------ Trustpilot

class Tp(NamedTuple):
    """Literal pins of one Trustpilot fixture, read by hand from its ``__NEXT_DATA__``.

    first_id/first_rating/first_published: reviews[0]; replies: reviews with a reply; languages: review languages;
    reviews: reviews in the file; trust_score/number_of_reviews/histogram (1..5 stars): the business unit.
    None where the file has no such part (a reviews-only JSON, or a business-unit-only JSON).
    """

    first_id: str | None
    first_rating: int | None
    first_published: str | None
    replies: int | None
    languages: set[str] | None
    reviews: int | None
    trust_score: float | None = None
    number_of_reviews: int | None = None
    histogram: list[int] | None = None


# One line per file in ../shared/fixtures/trustpilot_html and trustpilot_json; a new file fails
# test_every_trustpilot_fixture_is_pinned until it has one. To pin a new file, read its __NEXT_DATA__
# (props.pageProps: reviews[0].id/rating/dates.publishedDate, businessUnit.trustScore/numberOfReviews,
# filters.reviewStatistics.ratings one..five) and add a line; the tests below cross-check it against the parser.
TP: dict[str, Tp] = {
    "tp_fr_airtransat.com_2025-06_fr-FR-locale.html": Tp("6840a0c571f0237422cd27b8", 1, "2025-06-04T21:38:45", 0, {"fr"}, 20, 1.8, 83, [63, 8, 3, 1, 8]),
    "tp_it_studiosamo.it_2025-07_it-IT-locale.html": Tp("6836054b101367b4dce3ee3e", 5, "2025-05-27T20:32:43", 0, {"it"}, 20, 4.6, 43, [1, 0, 0, 5, 37]),
    "tp_www_beautytheshop.com_2024-06_multilang-with-replies.html": Tp("66685a58c62d2f2148b5f054", 5, "2024-06-11T16:08:24", 18, {"de", "en", "es", "it", "nl"}, 20, 4.4, 2989, [368, 41, 51, 185, 2344]),
    "tp_www_bt.com_2023-05_date-last6months_replies.html": Tp("6456378afe4e676d706281c4", 1, "2023-05-06T13:18:34", 12, {"en"}, 20, 1.5, 13582, [11798, 415, 198, 208, 963]),
    "tp_www_burgerking.dk_2024-06_languages-all_da-en-no-sv.html": Tp("667498c610cb1b1553fc3a1f", 5, "2024-06-20T23:01:58", 0, {"da", "en", "no", "sv"}, 20, 1.9, 3205, [2344, 240, 106, 120, 395]),
    "tp_www_burgerking.no_2024-06_languages-all_norwegian.html": Tp("66753e394753b480b0081de4", 5, "2024-06-21T10:47:53", 0, {"no"}, 20, 2.3, 99, [62, 14, 4, 3, 16]),
    # sort=recency is the page's default; filtered to English: 19 of 305 reviews on one page, newest first
    "tp_www_burgerking.no_2025-05_sort-recency_lang-en.html": Tp("681212c2b626af4cb337a959", 4, "2025-04-30T14:08:35", 0, {"en"}, 19, 3.9, 333, [104, 19, 9, 24, 177]),
    "tp_www_granada.no_2025-05_single-review_norwegian.html": Tp("5faa6d8c5e693f0a8422eca0", 5, "2020-11-10T10:38:04", 0, {"no"}, 1, 3.7, 1, [0, 0, 0, 0, 1]),
    "tp_nextdata_reviews_majority.com_page1.json": Tp("683aa0f4993055f0ee3fae6c", 5, "2025-05-31T08:25:56", 4, {"en"}, 20),
    "tp_nextdata_reviews_majority.com_page2.json": Tp("67f7dc670be4a47cadec6400", 1, "2025-04-10T16:57:43", 10, {"en", "es"}, 20),
    "tp_nextdata_businessunit_majority.com_page0.json": Tp(None, None, None, None, None, None, 4.7, 11211),
}
TP_PINS = {name: pin for name, pin in TP.items() if pin.first_id is not None}
TP_BUSINESS = {name: pin for name, pin in TP.items() if pin.trust_score is not None}


def _tp_cases() -> list[tuple[str, str]]:
    return [(d, f) for d in ("trustpilot_html", "trustpilot_json") for f in _files(d)]


def test_every_trustpilot_fixture_is_pinned() -> None:
    files = {f for _, f in _tp_cases()}
    if not files:
        pytest.skip(f"shared fixtures not available under {FIXTURES}")
    assert files == set(TP), "a fixture was added or renamed: pin its expectations in TP"


@pytest.mark.parametrize(("folder", "filename"), _tp_cases() or [("trustpilot_html", "absent")])
def test_trustpilot_events_match_next_data(folder: str, filename: str) -> None:
    result, events, data = _parse(folder, filename)
    assert result.source == "trustpilot"
    raw, pp = _next_data_reviews(data)
    expected = [r for r in raw if not r.get("pending")]
    assert result.record_count == len(expected) == events.height
    by_id = {row["record_id"]: row for row in events.iter_rows(named=True)}
    assert len(by_id) == events.height  # one star event per review, no duplicates
    for r in expected:
        ev = by_id[f"trustpilot:{r['id']}"]
        assert ev["measure_key"] == "stars" and ev["metric"] == "star_rating"
        assert ev["score_raw"] == r["rating"]
        assert (ev["scale_min"], ev["scale_max"]) == (1.0, 5.0)
        assert ev["score_norm"] == pytest.approx((r["rating"] - 1) / 4)
        assert ev["published_at"] == _utc(r["dates"]["publishedDate"])
        assert ev["occurred_at"] == _utc(r["dates"].get("experiencedDate"))
        assert ev["updated_at"] == _utc(r["dates"].get("updatedDate"))
        assert ev["language"] == r["language"] and ev["language_origin"] == "declared"
        reply = r.get("reply") or {}
        # replies are written by support staff: their e-mails/hotlines are masked (bt.com: "0330 1234 150")
        # and the reviewer's name is masked ("Dear Nando Boerdam, …")
        assert ev["reply_text"] == redact_text(redact_name(reply.get("message") or None, r["consumer"]["displayName"]))
        assert ev["replied_at"] == _utc(reply.get("publishedDate"))
        assert ev["is_verified"] == r["labels"]["verification"]["isVerified"]
        assert ev["customer_key"] == CustomerKeyer("test-secret").key(f"trustpilot-consumer:{r['consumer']['id']}")
    # texts are compared before normalize redacts e-mails/phones (a title can be a bare number)
    texts = {row["native_id"]: (row["title"], row["text"]) for row in result.measures.iter_rows(named=True)}
    # a reviewer signing the review with their full name is masked too
    own = {r["id"]: tuple(redact_name(r.get(k) or None, r["consumer"]["displayName"], parts=False)
                          for k in ("title", "text")) for r in expected}
    assert texts == own
    if filename in TP_PINS:
        first_id, rating, published, replies, langs, count, *_ = TP_PINS[filename]
        first = events.filter(pl.col("raw_ref") == f"raw/{filename}#reviews[0]").row(0, named=True)
        assert first["record_id"] == f"trustpilot:{first_id}"
        assert first["score_raw"] == rating
        assert first["published_at"] == datetime.fromisoformat(published).replace(tzinfo=UTC)
        assert events["reply_text"].is_not_null().sum() == replies
        assert set(events["language"].to_list()) == langs
        assert events.height == count
    if pp is not None:
        pagination = pp["filters"]["pagination"]
        assert result.page is not None
        assert (result.page.current_page, result.page.total_pages, result.page.total_count) == (
            pagination["currentPage"],
            pagination["totalPages"],
            pagination["totalCount"],
        )
        assert result.page.language_filter == pp["filters"]["selected"]["languages"]
        # the applied order is read back: only recency lets an incremental crawl stop at known reviews
        assert result.page.sort == pp["filters"]["selected"]["sort"]
        assert result.page.newest_first is (pp["filters"]["selected"]["sort"] == "recency")


@pytest.mark.parametrize("filename", sorted(TP_BUSINESS))
def test_trustpilot_business_unit_aggregate(filename: str) -> None:
    folder = "trustpilot_json" if filename.endswith(".json") else "trustpilot_html"
    result, events, _ = _parse(folder, filename)
    trust, count, hist = TP_BUSINESS[filename][6:]
    [agg] = result.aggregates
    assert agg["kind"] == "business_unit"
    assert (agg["rating_value"], agg["rating_count"], agg["trustScore"], agg["numberOfReviews"]) == (
        trust,
        count,
        trust,
        count,
    )
    assert (agg["best_rating"], agg["worst_rating"]) == (5.0, 1.0)
    if hist is None:
        assert agg["histogram"] is None and events.height == 0
        assert result.empty_reason == "business-unit summary only, no reviews in this file"
    else:
        assert [agg["histogram"][str(k)] for k in range(1, 6)] == hist
        assert agg["histogram_total"] == sum(hist)
        assert agg["histogram_source"] == "reviewStatistics"


def test_trustpilot_histogram_falls_back_to_the_jsonld_dataset_block() -> None:
    filename = "tp_fr_airtransat.com_2025-06_fr-FR-locale.html"
    data = (_dir("trustpilot_html") / filename).read_bytes()
    cut = data.replace(b'"reviewStatistics"', b'"reviewStatisticsGone"', 1)
    agg = get_format("trustpilot").parse(cut, location=_url(filename)).aggregates[0]
    assert agg["histogram_source"] == "jsonld_dataset"
    assert [agg["histogram"][str(k)] for k in range(1, 6)] == [63, 8, 3, 1, 8]
    assert agg["histogram_total"] == 83


def test_trustpilot_location_is_kept_per_review() -> None:
    result, _, data = _parse("trustpilot_json", "tp_nextdata_reviews_majority.com_page1.json")
    raw = json.loads(data)
    with_loc = {r["id"]: r["location"]["name"] for r in raw if r.get("location")}
    assert len(with_loc) == 8
    assert result.page is not None
    got = {rid: loc["name"] for rid, loc in result.page.business["review_locations"].items()}
    assert got == with_loc
    assert got["683aa0f4993055f0ee3fae6c"] == "Meetup Dallas"
    events = to_events(
        result,
        NormalizeContext(brand="M", source_url="u", raw_key="k", ingested_at=T0, keyer=CustomerKeyer("t")),
        source_kind="review",
    )
    by_review = dict(zip(events["record_id"].str.replace("trustpilot:", ""), events["location"], strict=True))
    assert {k: v for k, v in by_review.items() if v is not None} == with_loc


def _mutated_next_data(filename: str, mutate: Any) -> bytes:
    data = (_dir("trustpilot_html") / filename).read_bytes()
    m = re.search(rb'(<script id="__NEXT_DATA__" type="application/json">)(.+?)(</script>)', data, re.S)
    assert m
    obj = json.loads(m.group(2))
    mutate(obj["props"]["pageProps"])
    return data[: m.start(2)] + json.dumps(obj).encode() + data[m.end(2) :]


def test_trustpilot_schema_drift_is_tolerated_and_reported() -> None:
    filename = "tp_www_beautytheshop.com_2024-06_multilang-with-replies.html"

    def drift(pp: dict[str, Any]) -> None:
        for r in pp["reviews"]:
            r["isPending"] = r.pop("pending")
            r["dates"]["createdAt"] = r["dates"].pop("publishedDate")
            r["sentimentScore"] = 0.5
        pp["reviews"][1]["isPending"] = True

    result = get_format("trustpilot").parse(_mutated_next_data(filename, drift), location=_url(filename))
    assert result.record_count == 19  # the pending one is left out
    assert "66685a58c62d2f2148b5f054" in result.measures["native_id"].to_list()
    assert result.measures["published_at"].null_count() == 0
    text = " | ".join(result.warnings)
    assert "used isPending for pending (20 review(s))" in text
    assert "used createdAt for publishedDate" in text
    assert "unknown review fields (ignored): sentimentScore" in text
    assert "left out 1 pending review(s)" in text


@pytest.mark.parametrize("breakage", ["no_reviews", "reviews_not_list", "review_without_id", "rating_out_of_range"])
def test_trustpilot_unknown_structure_fails_clearly(breakage: str) -> None:
    filename = "tp_www_granada.no_2025-05_single-review_norwegian.html"

    def mutate(pp: dict[str, Any]) -> None:
        if breakage == "no_reviews":
            pp["reviewList"] = pp.pop("reviews")
        elif breakage == "reviews_not_list":
            pp["reviews"] = {"items": pp["reviews"]}
        elif breakage == "review_without_id":
            del pp["reviews"][0]["id"]
        else:
            pp["reviews"][0]["rating"] = 11

    with pytest.raises(ParseError) as err:
        get_format("trustpilot").parse(_mutated_next_data(filename, mutate), location=_url(filename))
    assert err.value.location == _url(filename)


@pytest.mark.parametrize("filename", _files("trustpilot_html") or ["absent"])
def test_trustpilot_jsonld_agrees_with_next_data(filename: str) -> None:
    """The page's JSON-LD (read by the generic jsonld format) lists the same reviews and stars."""
    ld, _, data = _parse("trustpilot_html", filename, fmt="jsonld")
    raw, _ = _next_data_reviews(data)
    stars = {r["id"]: float(r["rating"]) for r in raw}
    got = {nid.rsplit("/", 1)[-1]: s for nid, s in zip(ld.measures["native_id"], ld.measures["score_raw"], strict=True)}
    assert got == stars
    [agg] = [a for a in ld.aggregates if a["item_type"] == "LocalBusiness"]
    assert agg["rating_count"] is None and agg["review_count"] == TP[filename].number_of_reviews


# ------------------------------------------------------------------------------------------ schema.org

SNIFF = {
    "jsonld_realmomnutrition.com_100-reviews.html": "jsonld",
    "jsonld_recept.se_swedish_reviews-without-rating_dup.html": "jsonld",
    "jsonld_schemaorg-example_book_author-string_bare-rating.html": "jsonld",
    "microdata_getapp_2017_single-review-fragment.html": "microdata",
    "microdata_littlespicejar.com_comment-reviews-meta-tags.html": "microdata",
    "microdata_schemaorg-example_product_aggregaterating.html": "microdata",
    "microdata_spisbedre.dk_danish_aggregaterating-only.html": "microdata",
}


def test_every_fixture_sniffs_to_its_format() -> None:
    checked = 0
    for folder in DIRS:
        for filename in _files(folder):
            data = (FIXTURES / folder / filename).read_bytes()
            fmt = detect_format(data, filename)
            want = SNIFF.get(filename, "trustpilot")
            assert fmt is not None and fmt.name == want, filename
            checked += 1
    if not checked:
        pytest.skip(f"shared fixtures not available under {FIXTURES}")
    assert set(SNIFF) == set(_files("schema_org_html")), "a schema.org fixture was added: pin it"


def _agg(result: ParseResult) -> dict[str, Any]:
    [agg] = result.aggregates
    assert agg["kind"] == "aggregate_rating"
    return agg


def _no_author_names(events: pl.DataFrame, names: list[str]) -> None:
    strings = [c for c, t in events.schema.items() if t == pl.String]
    for name in names:
        for c in strings:
            assert not events[c].str.contains(name, literal=True).any(), f"author name leaked into {c}"


def test_jsonld_recipe_with_100_reviews() -> None:
    result, events, _ = _parse("schema_org_html", "jsonld_realmomnutrition.com_100-reviews.html")
    assert result.source == "jsonld" and events.height == 100
    assert events["event_id"].n_unique() == 100
    assert events["metric"].unique().to_list() == ["star_rating"]
    assert events["score_raw"].value_counts().sort("score_raw").rows() == [(4.0, 42), (5.0, 58)]
    assert set(zip(events["scale_min"], events["scale_max"], strict=True)) == {(1.0, 5.0)}
    first = events.filter(pl.col("raw_ref").str.ends_with("#jsonld[1].review[0]")).row(0, named=True)
    assert first["published_at"] == datetime(2025, 1, 23, 22, 27, 30, tzinfo=UTC)
    assert first["title"] == "Quick and Easy" and first["score_raw"] == 4.0
    assert set(events["language"].to_list()) == {"en"}
    # two anonymous ratings share author, second and (empty) text but differ in stars: both kept
    assert events.filter(pl.col("record_id").str.ends_with("~2")).height == 1
    assert events.filter(pl.col("customer_key").is_null()).height >= 2  # 'Anonymous' links nobody
    agg = _agg(result)
    assert (agg["rating_value"], agg["review_count"], agg["rating_count"]) == (4.6, 174, None)
    assert agg["item_type"] == "Recipe"
    _no_author_names(events, ["Justina", "Bill"])


def test_jsonld_reviews_without_rating_become_comments() -> None:
    result, events, _ = _parse("schema_org_html", "jsonld_recept.se_swedish_reviews-without-rating_dup.html")
    assert events.height == 5  # 10 reviews, 5 exact duplicates collapsed
    assert set(events["metric"]) == {"comment"} and set(events["measure_key"]) == {"comment"}
    assert events["score_raw"].null_count() == 5 and events["score_norm"].null_count() == 5
    assert set(events["language"]) == {"sv"}  # <html lang="se"> with og:locale sv_SE
    assert sorted(events["published_at"].dt.date().to_list())[-1].isoformat() == "2024-01-26"
    assert events["published_at"].max() == datetime(2024, 1, 26, tzinfo=UTC)
    assert any("collapsed 5 duplicate" in w for w in result.warnings)
    assert any("used 'sv'" in w for w in result.warnings)
    agg = _agg(result)
    assert (agg["rating_value"], agg["rating_count"], agg["best_rating"], agg["worst_rating"]) == (4.4, 197, 5.0, 1.0)
    _no_author_names(events, ["Tage", "Parvin", "Anna-Lena"])


def test_jsonld_author_string_and_bare_rating() -> None:
    result, events, _ = _parse("schema_org_html", "jsonld_schemaorg-example_book_author-string_bare-rating.html")
    rows = events.sort("published_at").rows(named=True)
    assert [(r["score_raw"], r["title"]) for r in rows] == [(5.0, "A masterpiece of literature"), (4.0, "A good read.")]
    assert [r["published_at"] for r in rows] == [datetime(2006, 5, 4, tzinfo=UTC), datetime(2006, 6, 15, tzinfo=UTC)]
    assert {r["language"] for r in rows} == {"en"}
    assert all(r["customer_key"] for r in rows)
    agg = _agg(result)
    assert (agg["rating_value"], agg["review_count"], agg["name"], agg["item_type"]) == (
        4.0,
        3077,
        "The Catcher in the Rye",
        "Book",
    )
    _no_author_names(events, ["John Doe", "Bob Smith"])


def test_microdata_getapp_worst_rating_zero_and_duplicated_author() -> None:
    result, events, _ = _parse("schema_org_html", "microdata_getapp_2017_single-review-fragment.html")
    [ev] = events.rows(named=True)
    assert (ev["score_raw"], ev["scale_min"], ev["scale_max"], ev["score_norm"]) == (4.0, 0.0, 5.0, 0.8)
    assert ev["published_at"] == datetime(2017, 1, 17, 19, 47, 50, tzinfo=UTC)
    assert ev["language"] is None and ev["language_origin"] == "unknown"
    assert ev["text"].startswith("Hubspot enables us to automate")
    assert ev["customer_key"] == CustomerKeyer("test-secret").key("microdata-author:Maria Douich")
    assert result.aggregates == []
    _no_author_names(events, ["Maria Douich"])


def test_microdata_meta_tag_reviews_with_jsonld_aggregate() -> None:
    result, events, _ = _parse("schema_org_html", "microdata_littlespicejar.com_comment-reviews-meta-tags.html")
    assert result.source == "microdata" and events.height == 5
    assert set(events["score_raw"]) == {5.0}
    assert sorted(d.isoformat() for d in events["published_at"].dt.date()) == [
        "2021-10-29",
        "2021-12-16",
        "2021-12-27",
        "2021-12-29",
        "2022-12-23",
    ]
    assert set(events["language"]) == {"en"}
    assert events.filter(pl.col("raw_ref").str.ends_with("#microdata/review[0]"))["text"].item() == (
        "I made it and everyone loved it. ❤"
    )
    agg = _agg(result)
    assert (agg["syntax"], agg["rating_value"], agg["review_count"]) == ("jsonld", 5.0, 42)


@pytest.mark.parametrize(
    ("filename", "value", "count_key", "count", "name", "item_type"),
    [
        (
            "microdata_schemaorg-example_product_aggregaterating.html",
            4.4,
            "review_count",
            89,
            "Executive Anvil",
            "Product",
        ),
        (
            "microdata_spisbedre.dk_danish_aggregaterating-only.html",
            None,
            "rating_count",
            0,
            "Kyllingetærte med butterdejslåg",
            "Recipe",
        ),
    ],
)
def test_aggregate_only_pages_give_zero_events_with_reason(
    filename: str, value: float | None, count_key: str, count: int, name: str, item_type: str
) -> None:
    result, events, _ = _parse("schema_org_html", filename)
    assert events.height == 0 and result.record_count == 0
    assert result.empty_reason == "no schema.org Review on page; AggregateRating only"
    agg = _agg(result)
    assert (agg["rating_value"], agg[count_key], agg["name"], agg["item_type"]) == (value, count, name, item_type)


def test_native_ids_are_stable_across_parses() -> None:
    a, _, _ = _parse("schema_org_html", "jsonld_recept.se_swedish_reviews-without-rating_dup.html")
    b, _, _ = _parse("schema_org_html", "jsonld_recept.se_swedish_reviews-without-rating_dup.html")
    assert a.measures["native_id"].to_list() == b.measures["native_id"].to_list()


def test_jsonld_format_on_a_microdata_review_page_points_to_microdata() -> None:
    result, events, _ = _parse(
        "schema_org_html", "microdata_littlespicejar.com_comment-reviews-meta-tags.html", fmt="jsonld"
    )
    assert events.height == 0
    assert result.empty_reason is not None and "5 microdata Review item(s)" in result.empty_reason
