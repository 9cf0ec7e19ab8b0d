"""Property tests: whatever bytes arrive, the review parsers either parse or raise ParseError.

A crawler archives blocked pages, truncated downloads and redesigned sites; one stray KeyError or
TypeError in a parser would abort a whole re-parse run instead of becoming a note on one page.
Inputs: arbitrary bytes, and real fixture pages that are truncated, byte-flipped, or have keys
deleted / values replaced inside their embedded JSON (__NEXT_DATA__, JSON-LD, JSON dumps).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_pipeline.sources.base import ParseError, ParseResult
from cx_pipeline.sources.registry import get_format

FORMATS = ("trustpilot", "jsonld", "microdata")
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SAMPLES = (
    "trustpilot_html/tp_www_granada.no_2025-05_single-review_norwegian.html",
    "trustpilot_html/tp_www_bt.com_2023-05_date-last6months_replies.html",
    "trustpilot_json/tp_nextdata_reviews_majority.com_page1.json",
    "trustpilot_json/tp_nextdata_businessunit_majority.com_page0.json",
    "schema_org_html/jsonld_schemaorg-example_book_author-string_bare-rating.html",
    "schema_org_html/jsonld_recept.se_swedish_reviews-without-rating_dup.html",
    "schema_org_html/microdata_getapp_2017_single-review-fragment.html",
    "schema_org_html/microdata_schemaorg-example_product_aggregaterating.html",
)
_JSON_SLOT = re.compile(
    rb"(<script\b[^>]*(?:id=\"__NEXT_DATA__\"|application/ld\+json)[^>]*>)(.*?)(</script>)", re.S
)
#: CX_FUZZ_EXAMPLES=5000 for a longer local fuzz run
PROPS = settings(
    max_examples=int(os.environ.get("CX_FUZZ_EXAMPLES", "150")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _pages() -> dict[str, bytes]:
    if not FIXTURES.is_dir():
        return {}
    return {name: (FIXTURES / name).read_bytes() for name in SAMPLES if (FIXTURES / name).is_file()}


PAGES = _pages()
needs_fixtures = pytest.mark.skipif(not PAGES, reason=f"shared fixtures not available under {FIXTURES}")


def _parse_or_parse_error(fmt: str, data: bytes) -> None:
    try:
        result = get_format(fmt).parse(data, location="https://fuzz.test/page")
    except ParseError as exc:
        assert exc.location == "https://fuzz.test/page"
        return
    assert isinstance(result, ParseResult)
    assert result.record_count == result.measures["native_id"].n_unique()
    if result.measures.height == 0:
        assert result.empty_reason


@PROPS
@given(data=st.binary(max_size=4096), fmt=st.sampled_from(FORMATS))
def test_arbitrary_bytes_only_raise_parse_error(data: bytes, fmt: str) -> None:
    _parse_or_parse_error(fmt, data)


_HTMLISH = st.lists(st.sampled_from([
    b"<script id=\"__NEXT_DATA__\" type=\"application/json\">", b"<script type=\"application/ld+json\">",
    b"</script>", b"{", b"}", b"[", b"]", b"\"props\":", b"\"pageProps\":", b"\"reviews\":", b"\"@type\":",
    b"\"Review\"", b"\"AggregateRating\"", b"\"reviewRating\":", b"\"ratingValue\":", b"\"@graph\":", b",",
    b"null", b"1", b"\"5\"", b"<div itemscope itemtype=\"http://schema.org/Review\">", b"</div>",
    b"<meta itemprop=\"ratingValue\" content=\"x\">", b"<span itemprop=\"reviewRating\" itemscope>",
    b"trustpilot", b"\"consumer\":", b"\"trustScore\":", b"\"id\":", b"\"rating\":", b"\"dates\":",
    b"<html lang=\"se\">", b"\"datePublished\":", b"\"2024-13-45\"", b"\"author\":",
]), max_size=60).map(b"".join)


@PROPS
@given(data=_HTMLISH, fmt=st.sampled_from(FORMATS))
def test_structured_garbage_only_raises_parse_error(data: bytes, fmt: str) -> None:
    _parse_or_parse_error(fmt, data)


@needs_fixtures
@PROPS
@given(name=st.sampled_from(sorted(PAGES) or ["-"]), cut=st.floats(0, 1), fmt=st.sampled_from(FORMATS))
def test_truncated_real_pages(name: str, cut: float, fmt: str) -> None:
    page = PAGES[name]
    _parse_or_parse_error(fmt, page[: int(len(page) * cut)])


@needs_fixtures
@PROPS
@given(name=st.sampled_from(sorted(PAGES) or ["-"]), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                                                 min_size=1, max_size=20),
       fmt=st.sampled_from(FORMATS))
def test_byte_flipped_real_pages(name: str, flips: list[tuple[float, int]], fmt: str) -> None:
    page = bytearray(PAGES[name])
    for where, byte in flips:
        page[min(int(len(page) * where), len(page) - 1)] = byte
    _parse_or_parse_error(fmt, bytes(page))


def _slots(obj: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair of a JSON value, iteratively."""
    out: list[tuple[Any, Any]] = []
    stack = [obj]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            out.append((node, k))
            stack.append(v)
    return out


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@needs_fixtures
@PROPS
@given(name=st.sampled_from(sorted(PAGES) or ["-"]), picks=st.lists(st.floats(0, 1), min_size=1, max_size=12),
       replacement=_JSON_VALUES, delete=st.booleans(), fmt=st.sampled_from(FORMATS))
def test_mutated_embedded_json(name: str, picks: list[float], replacement: Any, delete: bool, fmt: str) -> None:
    """Keys deleted (or values swapped for random JSON) inside the page's real JSON."""
    page = PAGES[name]

    def mutate(raw: bytes) -> bytes:
        obj = json.loads(raw)
        slots = _slots(obj)
        if not slots:
            return raw
        for p in picks:
            container, key = slots[min(int(p * len(slots)), len(slots) - 1)]
            try:
                if delete and isinstance(container, dict):
                    container.pop(key, None)
                elif isinstance(container, list) and delete:
                    del container[key]
                else:
                    container[key] = replacement
            except (IndexError, KeyError):
                continue  # an earlier pick already removed this slot
        return json.dumps(obj).encode()

    if name.endswith(".json"):
        mutated = mutate(page)
    else:
        mutated = _JSON_SLOT.sub(lambda m: m.group(1) + mutate(m.group(2)) + m.group(3), page)
    _parse_or_parse_error(fmt, mutated)
