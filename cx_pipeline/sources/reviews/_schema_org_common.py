"""Shared schema.org machinery for the ``jsonld`` and ``microdata`` formats (no SourceFormat here).

Both syntaxes describe the same vocabulary (Review, Rating, AggregateRating), so both extractors
produce the same neutral ``RawReview`` / aggregate dicts and one builder turns them into measures.
That keeps ids, scales, dates, languages and de-duplication identical whichever syntax a page uses.

Rules worth knowing (also in the format docstrings):

* **Which syntax wins.** Reviews are read from ONE syntax per page: JSON-LD when it carries any
  Review, otherwise microdata. The other syntax's reviews are ignored with a warning (never merged:
  the two are usually the same reviews marked up twice, without a shared id). AggregateRatings are
  collected from BOTH syntaxes and de-duplicated, since a page often has the aggregate in one and
  the reviews in the other.
* **native_id.** The review's ``@id`` / ``url`` when present, else a stable hash of (page anchor,
  author, date, body) where the anchor is the page's canonical URL, else the reviewed item's name,
  else the parse location. Two different reviews colliding on that hash (same author, date and body
  but a different rating) get ``~2``, ``~3`` suffixes in page order.
* **Duplicates.** Reviews identical in author, date, body, title and rating are collapsed to the
  first, with a warning.
* **Scales.** ``bestRating``/``worstRating`` default to 5/1; ``worstRating`` 0 is allowed. A rating
  outside its scale is dropped (the text survives as a comment measure) with a warning.
* **No rating.** A review without a rating becomes a ``metric="comment"`` measure (score null).
* **Language.** The review's ``inLanguage``, else the page's ``<html lang>``, reduced to ISO 639-1.
  ``se`` (Northern Sami, but usually a typo for Swedish) becomes ``sv`` only when the page itself
  says Swedish elsewhere (``og:locale sv_*``, a ``sv`` inLanguage, or a ``.se`` canonical host).
* **Authors.** Never emitted: the name only becomes ``customer_ref`` ("<syntax>-author:<name>"),
  which normalize hashes and drops; placeholder names ("Anonymous", …) get no customer_ref.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from cx_pipeline.contract.identity import stable_id
from cx_pipeline.normalize.redact import redact_name
from cx_pipeline.sources import base as _base
from cx_pipeline.sources.base import CpuBudget, InputTooLarge, ParseError, ParseResult, Reject, measures_frame
from cx_pipeline.sources.reviews._review_common import decode_json

_LD_TAG = re.compile(rb"<script\b[^>]*\btype\s*=\s*[\"']?application/ld\+json[\"']?[^>]*>", re.I)
_SCRIPT_END = re.compile(rb"</script\s*>", re.I)
_HTML_TAG = re.compile(rb"<html\b[^>]*>", re.I)
_LANG_ATTR = re.compile(rb"\blang\s*=\s*[\"']?([A-Za-z0-9_-]{1,20})", re.I)
_OG_LOCALE = re.compile(rb"<meta\b[^>]*\bproperty\s*=\s*[\"']og:locale[\"'][^>]*>", re.I)
_CANONICAL = re.compile(rb"<link\b[^>]*\brel\s*=\s*[\"']canonical[\"'][^>]*>", re.I)
_OG_URL = re.compile(rb"<meta\b[^>]*\bproperty\s*=\s*[\"']og:url[\"'][^>]*>", re.I)
_CONTENT_ATTR = re.compile(rb"\bcontent\s*=\s*[\"']([^\"']*)[\"']", re.I)
_HREF_ATTR = re.compile(rb"\bhref\s*=\s*[\"']([^\"']*)[\"']", re.I)
#: a microdata Review / AggregateRating itemtype (cheap sniff, no parse)
MICRODATA_REVIEW = re.compile(rb"itemtype\s*=\s*[\"']?https?://schema\.org/Review[\"'\s>]", re.I)
MICRODATA_AGGREGATE = re.compile(rb"itemtype\s*=\s*[\"']?https?://schema\.org/AggregateRating[\"'\s>]", re.I)
#: a JSON-LD Review / AggregateRating @type inside some block (cheap sniff, no parse)
LD_REVIEW_TYPE = re.compile(rb"\"@type\"\s*:\s*(?:\[[^\]]*)?\"(?:https?://schema\.org/)?(?:User|Critic)?Review\"")
LD_AGGREGATE_TYPE = re.compile(rb"\"(?:@type\"\s*:\s*\"(?:https?://schema\.org/)?AggregateRating|aggregateRating)\"")

REVIEW_TYPES = frozenset({"Review", "UserReview", "CriticReview", "EmployerReview"})
_PLACEHOLDER_AUTHORS = frozenset({"anonymous", "anonym", "anonyme", "anonimo", "guest", "gast", "gæst", "n/a", "-"})
_LANG_NAMES = {
    "english": "en", "swedish": "sv", "svenska": "sv", "danish": "da", "dansk": "da", "norwegian": "no",
    "norsk": "no", "german": "de", "deutsch": "de", "french": "fr", "français": "fr", "spanish": "es",
    "español": "es", "italian": "it", "italiano": "it", "dutch": "nl", "nederlands": "nl", "finnish": "fi",
    "suomi": "fi",
}
_LANG_639_2 = {"eng": "en", "swe": "sv", "dan": "da", "nor": "no", "nob": "nb", "nno": "nn", "deu": "de",
               "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it", "nld": "nl", "dut": "nl",
               "fin": "fi"}


@dataclass
class RawReview:
    """One schema.org Review as read from either syntax, before ids/scales/dates are decided."""

    syntax: str
    position: str
    ref: str | None = None  # @id or url
    author: str | None = None
    published: Any = None
    created: Any = None
    modified: Any = None
    rating: Any = None
    best: Any = None
    worst: Any = None
    body: str | None = None
    title: str | None = None
    language: Any = None
    item_name: str | None = None
    item_type: str | None = None


@dataclass
class PageMeta:
    html_lang: str | None = None
    og_locale: str | None = None
    canonical: str | None = None


@dataclass
class Collected:
    reviews: list[RawReview] = field(default_factory=list)
    aggregates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- page facts

def page_meta(data: bytes) -> PageMeta:
    """<html lang>, og:locale and canonical URL by regex (they live in the first tags of a page)."""
    meta = PageMeta()
    html = _HTML_TAG.search(data)
    if html:
        lang = _LANG_ATTR.search(html.group(0))
        if lang:
            meta.html_lang = lang.group(1).decode("ascii", "replace")
    for pattern, attr, name in ((_OG_LOCALE, _CONTENT_ATTR, "og_locale"), (_CANONICAL, _HREF_ATTR, "canonical"),
                                (_OG_URL, _CONTENT_ATTR, "og_url")):
        tag = pattern.search(data)
        if not tag:
            continue
        val = attr.search(tag.group(0))
        if not val:
            continue
        text = val.group(1).decode("utf-8", "replace").strip()
        if name == "og_locale":
            meta.og_locale = text or None
        elif text and meta.canonical is None:
            meta.canonical = text.replace("&amp;", "&")
    return meta


def text_of(value: Any) -> str | None:
    """A schema.org text value: strings as-is, lists → first text, objects → their name/@value."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        for v in value:
            t = text_of(v)
            if t:
                return t
        return None
    if isinstance(value, dict):
        return text_of(value.get("name")) or text_of(value.get("@value"))
    return None


def type_names(node: dict[str, Any]) -> set[str]:
    """Bare type names of a node ('http://schema.org/Review' and 'Review' both → 'Review')."""
    t = node.get("@type")
    names = t if isinstance(t, list) else [t]
    return {n.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1] for n in names if isinstance(n, str)}


def to_number(value: Any) -> float | None:
    """'4.4', '4,4', 4, '89\\n ' → float; anything else → None (caller warns)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            f = float(value)
        except OverflowError:  # an integer with hundreds of digits
            return None
        return f if f == f and abs(f) != float("inf") else None
    if isinstance(value, dict):  # a Rating object where a number was expected
        return to_number(value.get("ratingValue", value.get("@value")))
    if isinstance(value, list) and len(value) == 1:
        return to_number(value[0])
    if not isinstance(value, str):
        return None
    s = value.strip()
    if "," in s and "." not in s:
        s = s.replace(",", ".")
    try:
        f = float(s)
    except ValueError:
        return None
    return f if f == f and abs(f) != float("inf") else None


def to_count(value: Any) -> int | None:
    f = to_number(value)
    return int(f) if f is not None and f >= 0 and f == int(f) else None


def parse_when(value: Any) -> datetime | None:
    """ISO date or datetime → UTC; date-only means midnight UTC; naive times are taken as UTC."""
    return when_and_problem(value)[0]


def when_and_problem(value: Any) -> tuple[datetime | None, str | None]:
    """``parse_when`` with the reason a given date could not be used (None when absent or fine)."""
    s = text_of(value)
    if not s:
        return None, None
    try:
        dt = datetime.fromisoformat(s.replace(" ", "T", 1) if len(s) > 10 else s)
    except ValueError:
        return None, "not an ISO date"
    try:
        return (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)), None
    except OverflowError:  # 0001-01-01T00:00+05:00 is before year 1 in UTC
        return None, "date out of range in UTC"


def _swedish_evidence(meta: PageMeta, declared: list[str]) -> bool:
    if meta.og_locale and meta.og_locale.lower().startswith("sv"):
        return True
    if any(d.lower().startswith("sv") for d in declared):
        return True
    host = urlparse(meta.canonical or "").hostname or ""
    return host.endswith(".se")


def normalize_language(tag: Any) -> str | None:
    """A language tag or name → ISO 639-1 (lower case), or None when it is not recognisable."""
    s = text_of(tag)
    if not s:
        return None
    s = s.strip().lower()
    if s in _LANG_NAMES:
        return _LANG_NAMES[s]
    primary = re.split(r"[-_]", s, maxsplit=1)[0]
    if len(primary) == 2 and primary.isascii() and primary.isalpha():
        return primary
    if primary in _LANG_639_2:
        return _LANG_639_2[primary]
    return None


# ---------------------------------------------------------------------------------------- JSON-LD

def jsonld_blocks(data: bytes, location: str, warnings: list[str]) -> list[Any]:
    """Every parseable <script type=application/ld+json> block (regex slice; no HTML parse).

    One broken block is a warning (pages often carry a bad third-party block next to a good one);
    when every block is broken the page is unreadable: ParseError.
    """
    out: list[Any] = []
    bad: list[str] = []
    budget = CpuBudget(location)
    for i, m in enumerate(_LD_TAG.finditer(data)):
        # find() rather than a lazy (.*?)</script> regex: ~100x faster on large blocks
        end = data.find(b"</script", m.end())
        if end < 0:
            tail = _SCRIPT_END.search(data, m.end())
            if tail is None:
                bad.append(f"block {i}: no </script>")
                continue
            end = tail.start()
        raw = data[m.end():end].strip()
        budget.check()
        if raw.startswith(b"<!--"):
            raw = raw[4:].rsplit(b"-->", 1)[0]
        if raw.startswith(b"//<![CDATA["):
            raw = raw[len(b"//<![CDATA["):].rsplit(b"//]]>", 1)[0]
        if not raw.strip():
            continue
        try:
            out.append(decode_json(raw, location, f"JSON-LD block {i}", warnings, strict=False))
        except InputTooLarge:
            raise
        except ParseError as exc:
            bad.append(f"block {i}: {exc.reason[:100]}")
    if bad and not out:
        raise ParseError(location, f"no readable JSON-LD: {'; '.join(bad)}")
    if bad:
        warnings.append(f"skipped unreadable JSON-LD block(s): {'; '.join(bad)}")
    return out


def _rating_parts(rating: Any) -> tuple[Any, Any, Any]:
    if isinstance(rating, dict):
        return rating.get("ratingValue"), rating.get("bestRating"), rating.get("worstRating")
    return rating, None, None  # bare "4" / 4


def aggregate_dict(node: dict[str, Any], syntax: str, item_name: str | None, item_type: str | None,
                   warnings: list[str]) -> dict[str, Any]:
    """The documented ``aggregate_rating`` shape (see the jsonld format docstring)."""
    value = to_number(node.get("ratingValue"))
    rating_count = to_count(node.get("ratingCount"))
    review_count = to_count(node.get("reviewCount"))
    best = to_number(node.get("bestRating"))
    worst = to_number(node.get("worstRating"))
    counts = [c for c in (rating_count, review_count) if c is not None]
    if value == 0 and counts and max(counts) == 0:
        warnings.append(f"AggregateRating of {item_name or 'the page'} has 0 ratings: ratingValue 0 is a "
                        "placeholder, recorded as null")
        value = None
    return {
        "kind": "aggregate_rating",
        "syntax": syntax,
        "name": item_name,
        "item_type": item_type,
        "rating_value": value,
        "rating_count": rating_count,
        "review_count": review_count,
        "best_rating": best if best is not None else 5.0,
        "worst_rating": worst if worst is not None else 1.0,
    }


def collect_jsonld(objs: list[Any], location: str = "") -> Collected:
    """Reviews and AggregateRatings anywhere in the JSON-LD (any nesting, @graph list or object)."""
    col = Collected()
    budget = CpuBudget(location)
    by_id: dict[str, dict[str, Any]] = {}
    # iterative walk (deep or hostile JSON must not hit the recursion limit); parent = enclosing item
    stack: list[tuple[Any, dict[str, Any] | None, str | None, str]] = [
        (o, None, None, f"jsonld[{i}]") for i, o in reversed(list(enumerate(objs)))
    ]
    found: list[tuple[dict[str, Any], dict[str, Any] | None, str]] = []
    aggs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    seen: set[int] = set()
    while stack:
        budget.check()
        node, parent, key, path = stack.pop()
        if isinstance(node, list):
            stack.extend((v, parent, key, f"{path}[{j}]") for j, v in reversed(list(enumerate(node))))
            continue
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        types = type_names(node)
        nid = node.get("@id")
        if isinstance(nid, str) and len(node) > 1:
            by_id.setdefault(nid, node)
        is_review = bool(types & REVIEW_TYPES) or (
            not types and key in ("review", "reviews") and ("reviewBody" in node or "reviewRating" in node)
        )
        if is_review:
            found.append((node, parent, path))
        elif "AggregateRating" in types or (not types and key == "aggregateRating"):
            aggs.append((node, parent))
            continue
        child_parent = parent if is_review else node
        for k, v in reversed(list(node.items())):
            if isinstance(v, dict | list) and k not in ("author", "reviewRating", "publisher", "@context"):
                stack.append((v, child_parent, k, f"{path}.{k}"))

    def item_of(review: dict[str, Any], parent: dict[str, Any] | None) -> tuple[str | None, str | None]:
        item = review.get("itemReviewed")
        if isinstance(item, dict) and set(item) <= {"@id"} and isinstance(item.get("@id"), str):
            item = by_id.get(item["@id"], item)
        if isinstance(item, str):
            return item.strip() or None, None
        if not isinstance(item, dict):
            item = parent
        if not isinstance(item, dict):
            return None, None
        types = sorted(type_names(item))
        return text_of(item.get("name")), (types[0] if types else None)

    for node, parent, path in found:
        if set(node) <= {"@id", "@type"}:
            continue  # a reference ({"@id": …}) to a Review node listed elsewhere in the graph
        name, typ = item_of(node, parent)
        value, best, worst = _rating_parts(node.get("reviewRating"))
        author = node.get("author")
        col.reviews.append(RawReview(
            syntax="jsonld", position=path,
            ref=text_of(node.get("@id")) or text_of(node.get("url")),
            author=text_of(author), published=node.get("datePublished"), created=node.get("dateCreated"),
            modified=node.get("dateModified"), rating=value, best=best, worst=worst,
            body=text_of(node.get("reviewBody")) or text_of(node.get("description")) or text_of(node.get("text")),
            title=text_of(node.get("name")) or text_of(node.get("headline")),
            language=node.get("inLanguage"), item_name=name, item_type=typ,
        ))
    for node, parent in aggs:
        ptypes = sorted(type_names(parent)) if isinstance(parent, dict) else []
        item = node.get("itemReviewed")
        name = text_of(item) if item is not None else None
        if name is None and isinstance(parent, dict):
            name = text_of(parent.get("name"))
        col.aggregates.append(aggregate_dict(node, "jsonld", name, ptypes[0] if ptypes else None, col.warnings))
    return col


# ---------------------------------------------------------------------------------------- microdata

@dataclass
class MicroItem:
    types: set[str]
    props: dict[str, list[Any]] = field(default_factory=dict)
    order: int = 0

    def first(self, name: str) -> Any:
        vals = self.props.get(name)
        return vals[0] if vals else None


_WS = re.compile(r"[ \t\r\f\v\u00a0]+")
_NL = re.compile(r"\n\s*\n+")


def _clean_text(s: str) -> str | None:
    lines = [_WS.sub(" ", ln).strip() for ln in s.split("\n")]
    out = _NL.sub("\n\n", "\n".join(ln for ln in lines if ln)).strip()
    return out or None


#: elements without content (never nest) and elements whose end tag may be left out (the parser closes them
#: at the next sibling, so counting them would see depth where there is none)
_VOID = frozenset(b"area base br col embed hr img input link meta param source track wbr basefont bgsound frame "
                  b"keygen image".split())
_OPTIONAL_END = frozenset(b"p li dt dd option optgroup tr td th thead tbody tfoot colgroup caption rb rt rp rtc "
                          b"html head body".split())
_RAW_TEXT = frozenset(b"script style textarea title xmp iframe noembed noframes plaintext".split())
_TAG = re.compile(rb"<(?:(!--)|(/?)([A-Za-z][A-Za-z0-9:-]*)([^>]*)>)")


def check_html_nesting(data: bytes, location: str) -> None:
    """InputTooLarge when elements nest deeper than ``LIMITS.max_nesting``, from one regex pass over the tags.

    Before the HTML parse on purpose: the parse is linear, but reading microdata off a deep tree is not (each
    property's text is its whole subtree, each property looks up its item through its ancestors), so 10^5
    nested elements would take minutes. Comments and raw-text elements (script, style) are skipped, void
    elements and elements with an optional end tag are not counted: real pages stay far below the budget.
    """
    limit = _base.LIMITS.max_nesting
    if data.count(b"<") <= limit:
        return
    budget = CpuBudget(location)
    depth = 0
    pos = 0
    n = 0
    while (m := _TAG.search(data, pos)) is not None:
        pos = m.end()
        n += 1
        if n % 10_000 == 0:
            budget.check()
        if m.group(1):  # <!-- … -->
            end = data.find(b"-->", m.start() + 4)
            pos = len(data) if end < 0 else end + 3
            continue
        name = m.group(3).lower()
        if name in _VOID or name in _OPTIONAL_END:
            continue
        if m.group(2):
            depth = max(depth - 1, 0)
            continue
        if m.group(4).endswith(b"/"):
            continue
        if name in _RAW_TEXT:
            close = re.compile(rb"</" + re.escape(name), re.I).search(data, pos)
            pos = len(data) if close is None else close.start()
            continue
        depth += 1
        if depth > limit:
            raise InputTooLarge(location, f"HTML elements nest more than {limit} levels deep (the nesting budget, "
                                          f"LIMITS.max_nesting; at byte {m.start()}); refused before parsing")


def microdata_items(data: bytes, location: str = "") -> list[MicroItem]:
    """All microdata items of a page, nested items as MicroItem values (selectolax/lexbor parse).

    Only elements carrying itemscope/itemprop are visited; each property is attached to its nearest
    itemscope ancestor, which is what the microdata spec says and what handles nested items.
    """
    from selectolax.lexbor import LexborHTMLParser

    check_html_nesting(data, location)
    tree = LexborHTMLParser(data.decode("utf-8", "replace"))
    nodes = tree.css("[itemscope], [itemprop]")
    items: dict[int, MicroItem] = {}
    top: list[MicroItem] = []
    visited: set[int] = set()
    budget = CpuBudget(location)
    for order, node in enumerate(nodes):
        budget.check()
        if node.mem_id in visited:  # lexbor returns a node once per matching selector of the group
            continue
        visited.add(node.mem_id)
        attrs = node.attributes
        if "itemscope" in attrs:
            types = {t.rstrip("/").rsplit("/", 1)[-1] for t in (attrs.get("itemtype") or "").split() if t}
            items[node.mem_id] = MicroItem(types=types, order=order)
        owner = None
        parent = node.parent
        while parent is not None:
            if "itemscope" in parent.attributes:
                owner = items.get(parent.mem_id)
                break
            parent = parent.parent
        prop = attrs.get("itemprop")
        if "itemscope" in attrs and (owner is None or not prop):
            top.append(items[node.mem_id])
        if owner is None or not prop:
            continue
        value: Any
        if "itemscope" in attrs:
            value = items[node.mem_id]
        else:
            tag = node.tag
            if tag == "meta":
                value = attrs.get("content")
            elif tag in ("a", "link", "area"):
                value = attrs.get("href")
            elif tag in ("img", "audio", "video", "source", "iframe", "embed", "track"):
                value = attrs.get("src")
            elif tag == "time":
                value = attrs.get("datetime") or _clean_text(node.text(deep=True))
            elif tag in ("data", "meter"):
                value = attrs.get("value")
            elif tag == "object":
                value = attrs.get("data")
            else:
                value = _clean_text(node.text(deep=True, separator="", strip=False))
        if value is None:
            continue
        for name in prop.split():
            vals = owner.props.setdefault(name, [])
            if isinstance(value, MicroItem) or value not in vals:  # duplicated blocks (mobile + desktop)
                vals.append(value)
    return top


def _md_text(value: Any) -> str | None:
    if isinstance(value, MicroItem):
        return _md_text(value.first("name"))
    if isinstance(value, str):
        return value.strip() or None
    return None


def collect_microdata(items: list[MicroItem]) -> Collected:
    col = Collected()
    stack: list[tuple[MicroItem, MicroItem | None]] = [(it, None) for it in reversed(items)]
    n = 0
    seen: set[int] = set()
    while stack:
        item, parent = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if item.types & REVIEW_TYPES:
            rating = item.first("reviewRating")
            if isinstance(rating, MicroItem):
                value = rating.first("ratingValue")
                best, worst = rating.first("bestRating"), rating.first("worstRating")
            else:
                value, best, worst = rating, None, None
            reviewed = item.first("itemReviewed")
            item_name = _md_text(reviewed) if reviewed is not None else (
                _md_text(parent.first("name")) if parent else None)
            item_type = None
            if isinstance(reviewed, MicroItem) and reviewed.types:
                item_type = sorted(reviewed.types)[0]
            elif parent is not None and parent.types:
                item_type = sorted(parent.types)[0]
            col.reviews.append(RawReview(
                syntax="microdata", position=f"microdata/review[{n}]",
                ref=_md_text(item.first("url")),
                author=_md_text(item.first("author")), published=_md_text(item.first("datePublished")),
                created=_md_text(item.first("dateCreated")), modified=_md_text(item.first("dateModified")),
                rating=value if not isinstance(value, MicroItem) else None, best=best, worst=worst,
                body=_md_text(item.first("reviewBody")) or _md_text(item.first("description")),
                title=_md_text(item.first("name")) or _md_text(item.first("headline")),
                language=_md_text(item.first("inLanguage")), item_name=item_name, item_type=item_type,
            ))
            n += 1
        elif "AggregateRating" in item.types:
            props = {k: _md_text(v[0]) if v else None for k, v in item.props.items()}
            reviewed = item.first("itemReviewed")
            name = _md_text(reviewed) if reviewed is not None else (_md_text(parent.first("name")) if parent else None)
            ptype = sorted(parent.types)[0] if parent is not None and parent.types else None
            col.aggregates.append(aggregate_dict(props, "microdata", name, ptype, col.warnings))
            continue
        for vals in reversed(list(item.props.values())):
            for v in reversed(vals):
                if isinstance(v, MicroItem):
                    stack.append((v, item))
    return col


# ---------------------------------------------------------------------------------------- measures

def dedupe_aggregates(aggs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for a in aggs:
        key = (a["rating_value"], a["rating_count"], a["review_count"], a["best_rating"], a["worst_rating"])
        if key in seen:
            continue
        seen.add(key)
        out.append(a)
    return out


def build_result(source: str, parser_id: str, col: Collected, *, meta: PageMeta, location: str,
                 empty_reason_if_none: str) -> ParseResult:
    """Measures from collected reviews: de-duplication, ids, scales, dates, language (see module doc)."""
    warnings = col.warnings
    anchor_page = meta.canonical
    declared = [t for r in col.reviews if (t := text_of(r.language))]
    page_lang = normalize_language(meta.html_lang)
    if page_lang == "se" and not any(normalize_language(d) for d in declared):
        if _swedish_evidence(meta, declared):
            warnings.append(f"<html lang={meta.html_lang!r}> is Northern Sami; the page says Swedish elsewhere "
                            "(og:locale/canonical host), used 'sv'")
            page_lang = "sv"
        else:
            warnings.append(f"<html lang={meta.html_lang!r}> kept as 'se' (Northern Sami): "
                            "no evidence it means Swedish")
    elif meta.html_lang and page_lang is None:
        warnings.append(f"<html lang={meta.html_lang!r} > is not a language code; ignored")

    rows: list[dict[str, Any]] = []
    seen_content: set[tuple[Any, ...]] = set()
    id_uses: dict[str, int] = {}
    dup = 0
    bad_dates: list[str] = []
    rejects: list[Reject] = []
    budget = CpuBudget(location)
    for r in col.reviews:
        budget.check()
        published = parse_when(r.published) or parse_when(r.created)
        for field_name, raw in (("datePublished", r.published), ("dateCreated", r.created),
                                ("dateModified", r.modified)):
            problem = when_and_problem(raw)[1]
            if problem:  # the value is refused (left empty); the review is kept
                bad_dates.append(str(text_of(raw))[:40])
                rejects.append(Reject(r.position, f"{field_name}: {problem} ({str(text_of(raw))[:40]!r}); left empty",
                                      field_name, text_of(raw)))
        value = to_number(r.rating)
        best = to_number(r.best)
        worst = to_number(r.worst)
        best = 5.0 if best is None else best
        worst = 1.0 if worst is None else worst
        if r.rating is not None and text_of(r.rating) is not None and value is None:
            warnings.append(f"{r.position}: rating {text_of(r.rating)!r} is not a number; kept as comment")
        if value is not None and not (worst <= value <= best and worst < best):
            warnings.append(f"{r.position}: rating {value} outside its scale {worst}..{best}; kept as comment")
            value = None
        author = r.author.strip() if r.author else None
        content_key = (author, text_of(r.published) or text_of(r.created), r.body, r.title, value)
        if content_key in seen_content:
            dup += 1
            continue
        seen_content.add(content_key)
        if value is None and not r.body and not r.title:
            warnings.append(f"{r.position}: review has neither rating nor text; skipped")
            continue
        native = r.ref or stable_id("schema.org-review", anchor_page or r.item_name or location, author,
                                    text_of(r.published) or text_of(r.created), r.body)
        n = id_uses.get(native, 0) + 1
        id_uses[native] = n
        if n > 1:
            warnings.append(f"{r.position}: same author, date and text as an earlier review but a different "
                            f"rating; kept as {native}~{n}")
            native = f"{native}~{n}"
        lang = normalize_language(r.language)
        if lang == "se" and _swedish_evidence(meta, declared):
            lang = "sv"
        rated = value is not None
        customer = None
        if author and author.lower() not in _PLACEHOLDER_AUTHORS:
            customer = f"{r.syntax}-author:{author}"
        rows.append({
            "native_id": native,
            "position": r.position,
            "measure_key": "rating" if rated else "comment",
            "metric": ("star_rating" if best == 5 and worst in (0, 1) else "rating") if rated else "comment",
            "touchpoint": None,
            "score_raw": value,
            "scale_min": worst if rated else None,
            "scale_max": best if rated else None,
            "higher_is_better": True if rated else None,
            "occurred_at": None,
            "published_at": published,
            "updated_at": parse_when(r.modified),
            "language": lang or page_lang,
            "title": redact_name(r.title, author, parts=False),  # a signature; the author is never stored
            "text": redact_name(r.body, author, parts=False),
            "reply_text": None,
            "replied_at": None,
            "is_verified": None,
            "country": None,
            "customer_ref": customer,
        })
    if dup:
        warnings.append(f"collapsed {dup} duplicate review(s) (identical author, date, text and rating)")
    if bad_dates:
        warnings.append(f"unreadable review date(s) left null: {sorted(set(bad_dates))[:5]}")
    aggregates = dedupe_aggregates(col.aggregates)
    empty_reason = None
    if not rows:
        if col.reviews:
            empty_reason = "every schema.org Review on the page lacked both rating and text"
        elif aggregates:
            empty_reason = "no schema.org Review on page; AggregateRating only"
        else:
            empty_reason = empty_reason_if_none
    return ParseResult(source, parser_id, measures_frame(rows), len(rows), page=None, aggregates=aggregates,
                       warnings=warnings, empty_reason=empty_reason, rejects=rejects)
