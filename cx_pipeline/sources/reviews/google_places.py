"""Google reviews of a place (a store, branch or restaurant) from the Google Maps Places API.

Two API generations are read, as saved JSON dropped into the inbox or fetched by
``cx_pipeline.fetch.places_client`` with an API key:

* **legacy Place Details** (``maps/api/place/details/json``): ``{"result": {"reviews": [...]}, "status"}``;
  reviews carry ``author_name``, ``author_url``, ``language``, ``rating``, ``text``, ``time`` (epoch
  seconds), sometimes ``translated``/``original_language`` and, in old responses, ``aspects``;
* **Places API (New) v1** (``places.googleapis.com/v1/places/{id}``): the place object itself with
  ``reviews[]`` carrying ``name`` (a stable review id), ``rating``, ``text{text,languageCode}``,
  ``originalText{...}``, ``authorAttribution{displayName,uri}``, ``publishTime`` (nanoseconds).

What is decided here:

* **Machine translation.** The New API's ``text`` is translated into the request's language;
  ``originalText`` is what the customer wrote. The original text and its language are kept (the
  trap is a Dutch review stored as "en-US"). A legacy review marked ``translated`` has no original
  in the response; its translated text is kept under the language it is written in, with a warning
  (request with ``reviews_no_translations=true``, as the client does).
* **Legacy ``aspects``** rate a few dimensions on a 0–3 scale, a different scale from the 1–5 stars.
  They are mapped explicitly, never folded into the star rating: ``service`` → customer_service,
  ``food``/``quality`` → product, ``decor``/``atmosphere`` → store, ``value`` → price, each an event of
  metric ``rating`` on 0..3. The ``overall`` aspect is dropped (the 1–5 rating is the overall
  judgement; two overall scores from one review would count the customer twice); unknown types are
  dropped and named in the warnings.
* **Identity.** ``author_url`` / ``authorAttribution.uri`` hold the reviewer's Google account id
  (``…/maps/contrib/<id>``, ``plus.google.com/<id>``): that id is the ``customer_ref``; display names are
  never used. Legacy reviews have no review id: Google allows one review per account per place, so
  ``<place_id>:<account id>`` identifies it across edits (``<place_id>:t<time>`` when anonymous).
* The place's name goes to the ``location`` column; its rating and count become an aggregate.
* Places returns at most five reviews, "most relevant" first, not by date: a sample, not a feed.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

from cx_pipeline.sources.base import CpuBudget, PageInfo, ParseError, ParseResult, Reject, SourceFormat, measures_frame
from cx_pipeline.sources.reviews._review_common import (
    check_not_all_refused,
    clean_own_text,
    clean_text,
    get,
    language_code,
    load_json,
    refuse,
    stars,
    utc_from_epoch,
    utc_from_iso,
)

#: legacy aspect type → touchpoint (the 0..3 scale is kept as its own scale)
ASPECT_TOUCHPOINTS = {
    "service": "customer_service",
    "food": "product",
    "quality": "product",
    "decor": "store",
    "atmosphere": "store",
    "value": "price",
}
_ACCOUNT_ID = re.compile(r"(?:/maps/contrib/|plus\.google\.com/(?:u/\d+/)?)(\d{6,})")


def account_id(url: Any) -> str | None:
    m = _ACCOUNT_ID.search(url) if isinstance(url, str) else None
    return m.group(1) if m else None


class GooglePlacesFormat(SourceFormat):
    name = "google_places"
    kind = "review"
    version = "1.0"
    sniff_priority = 17
    #: at most five "most relevant" reviews per response: a crawl never proves a review was removed
    partial_listing: ClassVar[bool] = True

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:60_000].lstrip(b"\xef\xbb\xbf \t\r\n")
        if head[:1] != b"{":
            return False
        legacy = b'"result"' in head and (b'"place_id"' in head or b'"author_name"' in head)
        new = b'"authorAttribution"' in head or (b'"displayName"' in head and b'"userRatingCount"' in head)
        return legacy or new

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        warnings: list[str] = []
        obj = load_json(data, location, "a Places API response", warnings)
        result = self._dispatch(obj, location)
        result.warnings[:0] = warnings
        return result

    def _dispatch(self, obj: Any, location: str) -> ParseResult:
        if not isinstance(obj, dict):
            raise ParseError(location, "expected a Places API JSON object (Place Details or a v1 place)")
        if "result" in obj or "status" in obj:
            return self._legacy(obj, location)
        if isinstance(obj.get("places"), list):  # a v1 searchText/searchNearby answer with one place
            places = obj["places"]
            if len(places) != 1:
                raise ParseError(location, f"the response holds {len(places)} places; save one place per file")
            obj = places[0]
            if not isinstance(obj, dict):
                raise ParseError(location, "places[0] is not an object")
        if "reviews" in obj or "displayName" in obj or "userRatingCount" in obj:
            return self._new(obj, location)
        raise ParseError(location, "neither a legacy Place Details response ({result, status}) nor a Places API "
                                   "(New) place object (displayName, reviews)")

    # -- legacy Place Details ----------------------------------------------------------------
    def _legacy(self, obj: dict[str, Any], location: str) -> ParseResult:
        status = obj.get("status")
        if status not in (None, "OK"):
            detail = obj.get("error_message")
            raise ParseError(location, f"Places API answered status {status!r}"
                                       f"{f': {str(detail)[:200]}' if detail else ''} (no place in the response)")
        place = obj.get("result")
        if not isinstance(place, dict):
            raise ParseError(location, "Place Details 'result' is missing or not an object")
        place_id = clean_text(place.get("place_id")) or clean_text(place.get("id")) or "unknown-place"
        name = clean_text(place.get("name"))
        rows: list[dict[str, Any]] = []
        notes: Counter[str] = Counter()
        rejects: list[Reject] = []
        for where, review in self._reviews(place.get("reviews"), "result.reviews", location, rejects):
            try:
                rows.extend(self._legacy_rows(review, where, place_id, name, location, notes))
            except ParseError as exc:  # one bad review is refused; the rest of the response is kept
                refuse(rejects, exc, where)
        page = self._page(place_id, name, place.get("rating"), place.get("user_ratings_total"))
        return self._result(rows, page, notes, location, rejects)

    def _legacy_rows(self, review: dict[str, Any], where: str, place_id: str, name: str | None, location: str,
                     notes: Counter[str]) -> list[dict[str, Any]]:
        rating = stars(review.get("rating"), where=where, location=location)
        user = account_id(review.get("author_url"))
        published = utc_from_epoch(review.get("time"), field=f"{where} time", location=location)
        rid = f"{place_id}:{user}" if user else f"{place_id}:t{review.get('time')}"
        language = language_code(review.get("language"))
        if review.get("translated") is True:
            notes[f"machine-translated review without its original (original language "
                  f"{review.get('original_language')!r}); request reviews_no_translations=true"] += 1
        base = {
            "native_id": rid,
            "position": where,
            "occurred_at": None,
            "published_at": published,
            "language": language,
            "location": name,
            "customer_ref": f"google-user:{user}" if user else None,
        }
        text = clean_own_text(review.get("text"), review.get("author_name"))
        return [{**base, **_star(rating), "text": text},
                *self._aspects(review.get("aspects"), base, where, location, notes)]

    def _aspects(self, aspects: Any, base: dict[str, Any], where: str, location: str,
                 notes: Counter[str]) -> list[dict[str, Any]]:
        if aspects is None:
            return []
        if not isinstance(aspects, list):
            raise ParseError(location, f"{where}.aspects is a {type(aspects).__name__}, expected a list")
        out = []
        for j, aspect in enumerate(aspects):
            kind = get(aspect, "type")
            value = get(aspect, "rating")
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3:
                raise ParseError(location, f"{where}.aspects[{j}] has rating {value!r}, expected 0..3",
                                 field=f"aspects[{j}].rating", value=value)
            if kind == "overall":
                notes["legacy 'overall' aspect (0-3) dropped: the 1-5 rating is the overall score"] += 1
                continue
            touchpoint = ASPECT_TOUCHPOINTS.get(str(kind))
            if touchpoint is None:
                notes[f"legacy aspect type {kind!r} has no touchpoint mapping: dropped"] += 1
                continue
            out.append({**base, "position": f"{where}.aspects[{j}]", "measure_key": f"aspect_{kind}",
                        "metric": "rating", "touchpoint": touchpoint, "score_raw": float(value),
                        "scale_min": 0.0, "scale_max": 3.0, "higher_is_better": True})
        return out

    # -- Places API (New) ----------------------------------------------------------------------
    def _new(self, place: dict[str, Any], location: str) -> ParseResult:
        place_id = clean_text(place.get("id")) or clean_text(place.get("name")) or "unknown-place"
        display = place.get("displayName")
        name = clean_text(display.get("text")) if isinstance(display, dict) else clean_text(display)
        rows: list[dict[str, Any]] = []
        notes: Counter[str] = Counter()
        rejects: list[Reject] = []
        for where, review in self._reviews(place.get("reviews"), "reviews", location, rejects):
            try:
                rows.append(self._new_row(review, where, place_id, name, location, notes))
            except ParseError as exc:  # one bad review is refused; the rest of the response is kept
                refuse(rejects, exc, where, review.get("name"))
        page = self._page(place_id, name, place.get("rating"), place.get("userRatingCount"))
        return self._result(rows, page, notes, location, rejects)

    def _new_row(self, review: dict[str, Any], where: str, place_id: str, name: str | None, location: str,
                 notes: Counter[str]) -> dict[str, Any]:
        rating = stars(review.get("rating"), where=where, location=location)
        author = review.get("authorAttribution")
        user = account_id(author.get("uri")) if isinstance(author, dict) else None
        published = utc_from_iso(review.get("publishTime"), field=f"{where} publishTime", location=location)
        rid = clean_text(review.get("name")) or (f"{place_id}:{user}" if user else None)
        if rid is None:
            raise ParseError(location, f"{where} has neither a review name nor an author uri: cannot be identified",
                             field="name")
        shown, original = review.get("text"), review.get("originalText")
        text, language = self._original(shown, original, notes)
        reviewer = author.get("displayName") if isinstance(author, dict) else None
        return {
            "native_id": rid,
            "position": where,
            **_star(rating),
            "published_at": published,
            "language": language,
            "text": clean_own_text(text, reviewer),
            "location": name,
            "customer_ref": f"google-user:{user}" if user else None,
        }

    @staticmethod
    def _original(shown: Any, original: Any, notes: Counter[str]) -> tuple[str | None, str | None]:
        """The customer's own words and language; the translated ``text`` only when no original exists."""
        shown = shown if isinstance(shown, dict) else {}
        original = original if isinstance(original, dict) else {}
        o_text, o_lang = clean_text(original.get("text")), language_code(original.get("languageCode"))
        s_text, s_lang = clean_text(shown.get("text")), language_code(shown.get("languageCode"))
        if o_text is not None:
            if s_text is not None and (s_lang != o_lang or s_text != o_text):
                notes[f"machine-translated text ({shown.get('languageCode')}) replaced by the original "
                      f"({original.get('languageCode')})"] += 1
            return o_text, o_lang
        return s_text, s_lang

    # -- shared ----------------------------------------------------------------------------------
    @staticmethod
    def _reviews(reviews: Any, where: str, location: str, rejects: list[Reject]) -> list[tuple[str, dict[str, Any]]]:
        """(position, review) of each review object; anything else in the list is a reject."""
        if reviews is None:
            return []
        if not isinstance(reviews, list):
            raise ParseError(location, f"{where} is a {type(reviews).__name__}, expected a list")
        out = []
        budget = CpuBudget(location)
        for i, r in enumerate(reviews):
            budget.check()
            if isinstance(r, dict):
                out.append((f"{where}[{i}]", r))
            else:
                rejects.append(Reject(f"{where}[{i}]", f"{where}[{i}] is a {type(r).__name__}, expected an object"))
        return out

    @staticmethod
    def _page(place_id: str, name: str | None, rating: Any, count: Any) -> PageInfo:
        page = PageInfo(sort="relevance", newest_first=False,
                        business={"place_id": place_id, "name": name, "rating": rating, "rating_count": count})
        return page

    def _result(self, rows: list[dict[str, Any]], page: PageInfo, notes: Counter[str], location: str,
                rejects: list[Reject]) -> ParseResult:
        check_not_all_refused(location, rejects, len(rows))
        seen: set[tuple[str, str]] = set()
        kept = []
        warnings = [f"{msg} ({n} review(s))" for msg, n in sorted(notes.items())]
        for row in rows:
            key = (row["native_id"], row["measure_key"])
            if key in seen:
                warnings.append(f"{row['position']} repeats review {row['native_id']}; kept the first")
                continue
            seen.add(key)
            kept.append(row)
        n_reviews = len({r["native_id"] for r in kept})
        page.total_count = n_reviews
        b = page.business
        rating = b.get("rating")
        count = b.get("rating_count")
        aggregates = []
        if isinstance(rating, int | float) and not isinstance(rating, bool):
            aggregates.append({
                "kind": "google_place",
                "name": b.get("name"),
                "rating_value": float(rating),
                "rating_count": count if isinstance(count, int) and not isinstance(count, bool) else None,
                "best_rating": 5.0,
                "worst_rating": 1.0,
            })
        return ParseResult(self.name, self.parser_id, measures_frame(kept), n_reviews, page=page,
                           aggregates=aggregates, warnings=warnings, rejects=rejects,
                           empty_reason=None if kept else "the place has no reviews in this response")


def _star(rating: float) -> dict[str, Any]:
    return {"measure_key": "stars", "metric": "star_rating", "touchpoint": "store", "score_raw": rating,
            "scale_min": 1.0, "scale_max": 5.0, "higher_is_better": True}
