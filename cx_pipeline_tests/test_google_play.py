"""Google Play reviews: Play Console exports (UTF-16 CSV), Publisher API objects and scraper JSON.

Real files live in ../shared/fixtures/google_play (never copied in; absent → skipped with the reason).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_pipeline.contract import contract_violations
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.fetch.inbox_local import is_waiting_survey_file, list_inbox
from cx_pipeline.normalize import NormalizeContext, to_events
from cx_pipeline.pipeline.parse_files import parse_bytes
from cx_pipeline.sources import ParseError, detect_format, get_format
from cx_pipeline_tests.conftest import SHARED_FIXTURES, shared_fixture_dir

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FOLDER = "google_play"


def _events(result: Any, location: str = "https://fixtures.test/x") -> pl.DataFrame:
    ctx = NormalizeContext(brand="B", source_url=location, raw_key="raw/x", ingested_at=T0,
                           keyer=CustomerKeyer("test-secret"))
    events = to_events(result, ctx, source_kind="review")
    assert contract_violations(events) == []
    return events


class Pin(NamedTuple):
    """Read by hand from each file: format, reviews, with text, with reply, stars 1..5, first id, first date."""

    fmt: str
    reviews: int
    texts: int
    replies: int
    histogram: list[int]
    first_id: str
    first_published: str


PINS: dict[str, Pin] = {
    "gplay_node_scraper_clashroyale_200reviews_sort_rating_paginated.json": Pin(
        "google_play_scraper", 200, 200, 0, [0, 0, 0, 0, 200], "af7182c2-4243-4b5d-bb77-71047fe84019",
        "2025-12-06T10:32:09.990"),
    "gplay_py_scraper_reviews_all_mox_hk_709reviews_en_zh.json": Pin(
        "google_play_scraper", 709, 709, 120, [186, 43, 47, 73, 360], "cd8cfa8c-b1d9-470b-b241-3b5196ecf1fd",
        "2024-11-04T21:34:50"),
    "play_developer_api_reviews_list_items_id_1review_tab_prefixed_text.json": Pin(
        "google_play_api", 1, 1, 0, [0, 0, 0, 0, 1], "762b87de-7f69-4742-a9e4-9517050c6488", "2025-05-22T07:01:43.139"),
    "play_console_export_no_sparebank1_201601.utf16le.csv": Pin(
        "google_play_console", 26, 6, 1, [2, 1, 3, 7, 13], "no.sparebank1.mobilbank:1451902729588:kccat6",
        "2016-01-04T10:18:49.588"),
    "play_console_export_no_sparebank1_201708.utf16le.csv": Pin(
        "google_play_console", 60, 41, 39, [28, 6, 3, 6, 17], "no.sparebank1.mobilbank:1501967712663:serranolte",
        "2017-08-05T21:15:12.663"),
}


def _files() -> list[str]:
    folder = SHARED_FIXTURES / FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_every_google_play_fixture_is_pinned() -> None:
    if not _files():
        pytest.skip(f"shared fixtures not available: {SHARED_FIXTURES / FOLDER} is absent")
    assert set(_files()) == set(PINS), "a file was added or renamed: pin it in PINS"


@pytest.mark.parametrize("filename", sorted(PINS))
def test_google_play_fixture_parses_to_pinned_reviews(filename: str) -> None:
    data = (shared_fixture_dir(FOLDER) / filename).read_bytes()
    pin = PINS[filename]
    fmt = detect_format(data, filename)
    assert fmt is not None and fmt.name == pin.fmt
    result = fmt.parse(data, location=filename)
    events = _events(result, filename)
    assert result.record_count == events.height == pin.reviews
    assert [events.filter(pl.col("score_raw") == k).height for k in range(1, 6)] == pin.histogram
    assert events["text"].is_not_null().sum() == pin.texts
    assert events["reply_text"].is_not_null().sum() == pin.replies
    assert (events["replied_at"].is_not_null() == events["reply_text"].is_not_null()).all()
    first = events.filter(pl.col("raw_ref").str.ends_with("#row 2" if pin.fmt == "google_play_console"
                                                          else "#reviews[0]")).row(0, named=True)
    assert first["record_id"].split(":", 1)[1] == pin.first_id
    assert first["published_at"] == datetime.fromisoformat(pin.first_published).replace(tzinfo=UTC)
    assert set(events["touchpoint"]) == {"app"}
    # rating-only rows are star events without text; no Play source gives a stable reviewer id
    assert events["customer_key"].null_count() == events.height
    assert result.page is not None and result.page.business["app_versions"]


def test_console_export_keeps_titles_versions_and_languages() -> None:
    data = (shared_fixture_dir(FOLDER) / "play_console_export_no_sparebank1_201601.utf16le.csv").read_bytes()
    result = get_format("google_play_console").parse(data, location="x.csv")
    assert result.measures["title"].is_not_null().sum() == 6
    assert result.page is not None and sum(v == "2.0.1 (13)" for v in result.page.business["app_versions"].values())
    assert set(result.measures["language"].drop_nulls()) >= {"no", "en"}
    assert any("rating-only" in w for w in result.warnings)


def test_support_contacts_in_replies_are_redacted() -> None:
    """Mox Bank's replies carry care@mox.com and +852 2888 8228: neither may reach the events."""
    name = "gplay_py_scraper_reviews_all_mox_hk_709reviews_en_zh.json"
    data = (shared_fixture_dir(FOLDER) / name).read_bytes()
    assert b"care@mox.com" in data and b"2888 8228" in data
    events = _events(get_format("google_play_scraper").parse(data, location=name), name)
    strings = [c for c, t in events.schema.items() if t == pl.String]
    for needle in ("care@mox.com", "2888 8228", "28888228"):
        for col in strings:
            assert not events[col].str.contains(needle, literal=True).any(), (needle, col)
    assert events["reply_text"].str.contains("[email]", literal=True).any()
    assert events["reply_text"].str.contains("[phone]", literal=True).any()
    assert not any(events[c].str.contains("Rommillie", literal=True).any() for c in strings)  # a reviewer name


def test_api_tab_separates_title_and_text_and_reply_is_read() -> None:
    review = {"reviewId": "gp:AOqp", "authorName": "A Person", "comments": [
        {"userComment": {"text": "Great\tWorks well, mail me at a.person@example.com",
                         "lastModified": {"seconds": "1700000000", "nanos": 5}, "starRating": 4,
                         "reviewerLanguage": "nb_NO", "appVersionName": "1.2", "appVersionCode": 12}},
        {"developerComment": {"text": "Thanks! Call 0047 22 33 44 55", "lastModified": {"seconds": "1700003600"}}}]}
    res = get_format("google_play_api").parse(json.dumps({"reviews": [review]}).encode(), location="api.json")
    row = res.measures.row(0, named=True)
    assert (row["title"], row["language"]) == ("Great", "nb")
    assert row["reply_text"] == "Thanks! Call 0047 22 33 44 55"  # normalize masks it, as in every reply
    assert row["replied_at"] == datetime.fromtimestamp(1700003600, tz=UTC)
    assert res.page is not None and res.page.business["app_versions"] == {"gp:AOqp": "1.2 (12)"}
    ev = _events(res)
    assert ev["reply_text"][0] == "Thanks! Call [phone]"
    assert ev["text"][0] == "Works well, mail me at [email]"


def test_node_and_python_scraper_names_give_the_same_events() -> None:
    node = {"data": [{"id": "r1", "userName": "U", "date": "2025-01-02T03:04:05.000Z", "score": 2, "scoreText": "2",
                      "text": "Slow app", "replyText": "Sorry", "replyDate": "2025-01-03T00:00:00.000Z",
                      "version": "4.1", "thumbsUp": 3}]}
    py = [[{"reviewId": "r1", "userName": "U", "at": "2025-01-02 03:04:05", "score": 2, "content": "Slow app",
            "replyContent": "Sorry", "repliedAt": "2025-01-03 00:00:00", "appVersion": "4.1", "thumbsUpCount": 3}],
          "token"]
    fmt = get_format("google_play_scraper")
    a = _events(fmt.parse(json.dumps(node).encode(), location="n.json"))
    b = _events(fmt.parse(json.dumps(py).encode(), location="p.json"))
    cols = ["event_id", "score_raw", "text", "reply_text", "replied_at", "published_at"]
    assert a.select(cols).to_dicts() == b.select(cols).to_dicts()
    assert detect_format(json.dumps(node).encode(), "n.json").name == "google_play_scraper"  # type: ignore[union-attr]
    assert detect_format(json.dumps(py).encode(), "p.json").name == "google_play_scraper"  # type: ignore[union-attr]


@pytest.mark.parametrize(("fmt", "body", "needle"), [
    ("google_play_console", "Package Name,Star Rating\n".encode("utf-16"), "header"),
    ("google_play_console", ("Package Name,Star Rating,Review Submit Millis Since Epoch\nx,9,1\n").encode("utf-16"),
     "rating '9'"),
    ("google_play_console", (b"Package Name,Star Rating,Review Submit Millis Since Epoch\nx,4\n"), "row 2"),
    ("google_play_console", b"\xff\xfe\x00\xd8", "UTF-16"),
    ("google_play_api", b'[{"reviewId": "x", "comments": []}]', "no userComment"),
    ("google_play_api", b'{"x": 1}', "reviews.list"),
    ("google_play_scraper", b'[{"reviewId": "x", "score": 3, "at": "sometime"}]', "not an ISO date"),
    ("google_play_scraper", b'{"userName": 1}', "expected a list"),
])
def test_bad_files_fail_naming_the_file(fmt: str, body: bytes, needle: str) -> None:
    with pytest.raises(ParseError) as err:
        get_format(fmt).parse(body, location="drop/f.x")
    assert needle in str(err.value) and err.value.location == "drop/f.x"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
                     max_leaves=30)
_keys = st.sampled_from(["id", "reviewId", "score", "text", "content", "date", "at", "replyText", "replyContent",
                         "replyDate", "repliedAt", "version", "comments", "userComment", "developerComment",
                         "starRating", "lastModified", "seconds", "nanos"])
_review_like = st.dictionaries(_keys, _json, max_size=8)
_csv_cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
HEADER = ("Package Name,App Version Code,App Version Name,Reviewer Language,Device,Review Submit Date and Time,"
          "Review Submit Millis Since Epoch,Review Last Update Date and Time,Review Last Update Millis Since Epoch,"
          "Star Rating,Review Title,Review Text,Developer Reply Date and Time,Developer Reply Millis Since Epoch,"
          "Developer Reply Text,Review Link")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["google_play_console", "google_play_api", "google_play_scraper"]),
       data=st.one_of(st.binary(max_size=200), _json.map(lambda o: json.dumps(o).encode()),
                      st.lists(_review_like, max_size=3).map(lambda o: json.dumps(o).encode()),
                      st.lists(st.lists(_csv_cell, min_size=16, max_size=16), max_size=3).map(
                          lambda rows: (HEADER + "\n" + "\n".join(",".join(json.dumps(c) for c in r) for r in rows))
                          .encode("utf-16"))))
def test_arbitrary_input_raises_only_parse_error(name: str, data: bytes) -> None:
    try:
        res = get_format(name).parse(data, location="f.bin")
    except ParseError as exc:
        assert exc.location == "f.bin"
        return
    _events(res)


def test_exports_enter_through_the_inbox(tmp_path: Path) -> None:
    """A UTF-16 Play Console CSV and a scraper JSON dropped in the inbox are listed and detected, not surveys."""
    assert is_waiting_survey_file("reviews.json") and is_waiting_survey_file("reviews_reviews_x_201601.csv")
    folder = shared_fixture_dir(FOLDER)
    for name in ("play_console_export_no_sparebank1_201601.utf16le.csv",
                 "play_developer_api_reviews_list_items_id_1review_tab_prefixed_text.json"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    listed = list_inbox(tmp_path)
    assert [f.name for f in listed] == sorted(p.name for p in tmp_path.iterdir())
    for f in listed:
        out = parse_bytes(f.path.read_bytes(), location=str(f.path), keyer=CustomerKeyer("s"), brand="SpareBank")
        assert out.format in ("google_play_console", "google_play_api") and out.events.height > 0
        assert set(out.events["source_kind"]) == {"review"}


def test_largest_console_month_in_review_datasets() -> None:
    """The same export type filed under review_datasets/: 1757 ratings, 694 texts, 689 replies (PROVENANCE.md)."""
    name = "no_googleplay_sparebank1_2018-06_stars.utf16le.csv"
    data = (shared_fixture_dir("review_datasets") / name).read_bytes()
    fmt = detect_format(data, name)
    assert fmt is not None and fmt.name == "google_play_console"
    events = _events(fmt.parse(data, location=name), name)
    assert events.height == 1757 and events["event_id"].n_unique() == 1757
    assert [events.filter(pl.col("score_raw") == k).height for k in range(1, 6)] == [14, 14, 56, 507, 1166]
    assert (events["text"].is_not_null().sum(), events["reply_text"].is_not_null().sum()) == (694, 689)
