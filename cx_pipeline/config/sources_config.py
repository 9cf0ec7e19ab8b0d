"""The sources file: which brands, which review pages, which survey inbox.

Validated at load; every error names the file and the entry that is wrong. ``${VAR}`` in a value is
replaced by the environment variable (so one file serves dev, demo and production).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from cx_pipeline.contract.taxonomy import touchpoints
from cx_pipeline.sources.surveys.plain_table import TableMapping
from cx_pipeline.sources.surveys.question_registry import QuestionConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")
REVIEW_FORMATS = ("trustpilot", "jsonld", "microdata", "appstore", "google_places", "auto")
#: Places API (New) place URL; fetched with the key from CX_PIPELINE_PLACES_API_KEY (cx_pipeline.fetch.places_client)
PLACES_URL = "https://places.googleapis.com/v1/places/{place_id}"
#: Apple's customer-reviews feed serves pages 1..10 only
APPSTORE_MAX_PAGES = 10
APPSTORE_FEED = "https://itunes.apple.com/{country}/rss/customerreviews/page=1/id={app_id}/sortBy=mostRecent/json"
DEFAULT_USER_AGENT = "cx_pipeline/0.1 (+https://github.com/cx-pipeline/cx_pipeline; set user_agent to your contact)"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ReviewSource:
    id: str
    brand: str
    url: str
    format: str = "trustpilot"
    default_touchpoint: str = "overall"
    max_pages: int = 10

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


@dataclass(frozen=True)
class SurveyRule:
    """Applies to inbox files whose name matches ``match`` (a glob)."""

    match: str
    brand: str | None = None
    format: str | None = None
    default_touchpoint: str | None = None
    #: declarative column mapping for any CSV/XLSX (format "csv"): id/customer/date/comment columns, questions
    table_mapping: dict[str, Any] = field(default_factory=dict)
    #: question mapping for these files only (any survey format); it wins over the inbox's question_map
    question_map: dict[str, Any] = field(default_factory=dict)
    #: workbook sheet to read (name or 1-based number) instead of the one chosen by content
    sheet: str | None = None


@dataclass(frozen=True)
class SurveyInbox:
    path: str
    default_brand: str
    rules: tuple[SurveyRule, ...] = ()
    question_map: dict[str, Any] = field(default_factory=dict)

    def questions(self) -> QuestionConfig:
        return QuestionConfig.from_mapping(self.question_map)


@dataclass(frozen=True)
class Reporting:
    """Where reporting periods are cut: days, weeks and months start at midnight in this time zone.

    Timestamps stay UTC; a Danish brand's "March" is March in Copenhagen, not in UTC (reviews posted between
    midnight and 01:00/02:00 local time would otherwise land on the previous day or month).
    """

    time_zone: str = "UTC"
    #: brand -> time zone, for brands reported in another zone than ``time_zone``
    brand_time_zones: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SourcesConfig:
    path: str
    user_agent: str
    review_sources: tuple[ReviewSource, ...]
    survey_inbox: SurveyInbox | None
    reporting: Reporting = Reporting()

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(s.host for s in self.review_sources)

    def brands(self) -> list[str]:
        names = {s.brand for s in self.review_sources}
        if self.survey_inbox:
            names.add(self.survey_inbox.default_brand)
            names.update(r.brand for r in self.survey_inbox.rules if r.brand)
        return sorted(names)


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")

        return _ENV.sub(repl, value)
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}") for k, v in value.items()}
    return value


def _require(entry: dict[str, Any], key: str, where: str, kind: type = str) -> Any:
    if key not in entry or entry[key] in (None, ""):
        raise ConfigError(f"{where}: missing required key {key!r}")
    if not isinstance(entry[key], kind):
        raise ConfigError(f"{where}: {key!r} must be a {kind.__name__}, got {entry[key]!r}")
    return entry[key]


def _touchpoint(value: Any, where: str) -> str:
    if value not in touchpoints():
        raise ConfigError(f"{where}: default_touchpoint {value!r} is not in the taxonomy ({', '.join(touchpoints())})")
    return str(value)


def parse_sources(data: Any, *, path: str) -> SourcesConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - {"version", "user_agent", "review_sources", "survey_inbox", "reporting"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    data = _expand(data, path)
    user_agent = os.environ.get("CX_PIPELINE_USER_AGENT") or data.get("user_agent") or DEFAULT_USER_AGENT
    reviews: list[ReviewSource] = []
    seen: set[str] = set()
    raw_reviews = data.get("review_sources") or []
    if not isinstance(raw_reviews, list):
        raise ConfigError(f"{path}: review_sources must be a list")
    for i, entry in enumerate(raw_reviews):
        where = f"{path}: review_sources[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping")
        sid = _require(entry, "id", where)
        where = f"{path}: review source {sid!r}"
        if not _ID.match(sid):
            raise ConfigError(f"{where}: id must be lower-case letters, digits, '-' or '_'")
        if sid in seen:
            raise ConfigError(f"{where}: duplicate id")
        fmt = entry.get("format", "trustpilot")
        if fmt not in REVIEW_FORMATS:
            raise ConfigError(f"{where}: format {fmt!r} is not one of {REVIEW_FORMATS}")
        max_pages = entry.get("max_pages", 10)
        if not isinstance(max_pages, int) or max_pages < 1:
            raise ConfigError(f"{where}: max_pages must be a positive integer, got {max_pages!r}")
        extra = set(entry) - {"id", "brand", "url", "format", "default_touchpoint", "max_pages", "app_id", "countries",
                              "place_id"}
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {sorted(extra)}")
        if fmt != "appstore" and ({"app_id", "countries"} & set(entry)):
            raise ConfigError(f"{where}: app_id/countries apply to format 'appstore' only")
        if fmt != "google_places" and "place_id" in entry:
            raise ConfigError(f"{where}: place_id applies to format 'google_places' only")
        brand = _require(entry, "brand", where)
        default_tp = {"appstore": "app", "google_places": "store"}.get(fmt, "overall")
        touchpoint = _touchpoint(entry.get("default_touchpoint", default_tp), where)
        for source_id, url in _source_urls(entry, sid, fmt, max_pages, where):
            if source_id in seen and source_id != sid:
                raise ConfigError(f"{where}: source id {source_id!r} (app × country) is already used")
            seen.add(source_id)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"{where}: url {url!r} is not an http(s) URL")
            reviews.append(ReviewSource(id=source_id, brand=brand, url=url, format=fmt,
                                        default_touchpoint=touchpoint, max_pages=max_pages))
        seen.add(sid)
    inbox = None
    raw_inbox = data.get("survey_inbox")
    if raw_inbox is not None:
        where = f"{path}: survey_inbox"
        if not isinstance(raw_inbox, dict):
            raise ConfigError(f"{where}: expected a mapping")
        inbox_path = _require(raw_inbox, "path", where)
        if "://" not in inbox_path and not os.path.isabs(inbox_path):
            # relative to the working directory, like the data root (./data and ./data/inbox go together)
            inbox_path = str(Path(inbox_path).resolve())
        rules = []
        for j, rule in enumerate(raw_inbox.get("rules") or []):
            rwhere = f"{where}.rules[{j}]"
            if not isinstance(rule, dict):
                raise ConfigError(f"{rwhere}: expected a mapping")
            tp = rule.get("default_touchpoint")
            extra = set(rule) - {"match", "brand", "format", "default_touchpoint", "table_mapping", "question_map",
                                 "sheet"}
            if extra:
                raise ConfigError(f"{rwhere}: unknown key(s) {sorted(extra)}")
            mapping = rule.get("table_mapping") or {}
            if mapping:
                try:
                    TableMapping.from_mapping(mapping)
                    QuestionConfig.from_mapping(mapping.get("questions") or {})
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"{rwhere}.table_mapping: {exc}") from exc
            rule_qmap = rule.get("question_map") or {}
            if not isinstance(rule_qmap, dict):
                raise ConfigError(f"{rwhere}.question_map: expected a mapping")
            try:
                QuestionConfig.from_mapping(rule_qmap)
            except ValueError as exc:
                raise ConfigError(f"{rwhere}.question_map: {exc}") from exc
            sheet = rule.get("sheet")
            if sheet is not None and not isinstance(sheet, str | int):
                raise ConfigError(f"{rwhere}.sheet: expected a sheet name or number, got {sheet!r}")
            fmt = rule.get("format")
            if mapping and fmt not in (None, "csv"):
                raise ConfigError(f"{rwhere}: table_mapping applies to format 'csv', not {fmt!r}")
            rules.append(
                SurveyRule(
                    match=_require(rule, "match", rwhere),
                    brand=rule.get("brand"),
                    format="csv" if mapping else fmt,
                    default_touchpoint=_touchpoint(tp, rwhere) if tp is not None else None,
                    table_mapping=dict(mapping),
                    question_map=dict(rule_qmap),
                    sheet=str(sheet) if sheet is not None else None,
                )
            )
        qmap = raw_inbox.get("question_map") or {}
        if not isinstance(qmap, dict):
            raise ConfigError(f"{where}.question_map: expected a mapping")
        try:
            QuestionConfig.from_mapping(qmap)
        except ValueError as exc:
            raise ConfigError(f"{where}.question_map: {exc}") from exc
        inbox = SurveyInbox(
            path=inbox_path,
            default_brand=_require(raw_inbox, "default_brand", where),
            rules=tuple(rules),
            question_map=qmap,
        )
    return SourcesConfig(path=path, user_agent=user_agent, review_sources=tuple(reviews), survey_inbox=inbox,
                         reporting=_reporting(data.get("reporting"), f"{path}: reporting"))


def _source_urls(entry: dict[str, Any], sid: str, fmt: str, max_pages: int, where: str) -> list[tuple[str, str]]:
    """(source id, start URL) pairs of one review_sources entry.

    An App Store entry is one app in one or more countries' stores (Apple keeps reviews per storefront),
    so ``countries: [dk, no, se]`` becomes one source per country, ids suffixed ``-dk``, ``-no``, …; the
    URL is the public feed unless ``url`` (with a ``{country}`` placeholder for several countries) is given.
    """
    if fmt == "google_places" and "url" not in entry:
        place_id = _require(entry, "place_id", where)
        if not re.fullmatch(r"[A-Za-z0-9_\-]{10,}", place_id):
            raise ConfigError(f"{where}: place_id {place_id!r} is not a Google place id "
                              "(e.g. ChIJwXZbCQAFdkgRreFxm0ah5yQ)")
        return [(sid, PLACES_URL.format(place_id=place_id))]
    if fmt != "appstore":
        return [(sid, _require(entry, "url", where))]
    if max_pages > APPSTORE_MAX_PAGES:
        raise ConfigError(f"{where}: max_pages {max_pages} > {APPSTORE_MAX_PAGES}: Apple's feed stops at page 10")
    countries = entry.get("countries")
    if countries is None:
        countries = []
    if not isinstance(countries, list) or not all(isinstance(c, str) and re.fullmatch(r"[a-zA-Z]{2}", c)
                                                  for c in countries):
        raise ConfigError(f"{where}: countries must be a list of two-letter store codes such as [dk, no, se]")
    url = entry.get("url")
    app_id = entry.get("app_id")
    if url is None and app_id is None:
        raise ConfigError(f"{where}: an appstore source needs app_id (with countries) or url")
    if app_id is not None and not re.fullmatch(r"\d+", str(app_id)):
        raise ConfigError(f"{where}: app_id must be the numeric App Store id (…/id123456789), got {app_id!r}")
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"{where}: 'url' must be a str, got {url!r}")
    if not countries:
        if url is None:
            raise ConfigError(f"{where}: give countries (the stores to read, e.g. [dk, no, se]) or a url")
        return [(sid, url)]
    if url is not None and "{country}" not in url and len(countries) > 1:
        raise ConfigError(f"{where}: with several countries the url needs a {{country}} placeholder")
    template = url if url is not None else APPSTORE_FEED
    out = []
    for cc in countries:
        cc = cc.lower()
        out.append((f"{sid}-{cc}" if len(countries) > 1 else sid,
                    template.replace("{country}", cc).replace("{app_id}", str(app_id or ""))))
    return out


def _time_zone(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a time zone name such as Europe/Copenhagen")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: unknown time zone {value!r} (use an IANA name such as Europe/Oslo)") from exc
    return value


def _reporting(raw: Any, where: str) -> Reporting:
    if raw is None:
        return Reporting()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with time_zone and optionally brands")
    unknown = set(raw) - {"time_zone", "brands"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    zone = _time_zone(raw.get("time_zone", "UTC"), f"{where}.time_zone")
    brands = raw.get("brands") or {}
    if not isinstance(brands, dict):
        raise ConfigError(f"{where}.brands: expected brand: time zone pairs")
    per_brand = tuple(sorted((str(b), _time_zone(z, f"{where}.brands.{b}")) for b, z in brands.items()))
    return Reporting(time_zone=zone, brand_time_zones=per_brand)


def load_sources(path: str | Path) -> SourcesConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the sources file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    return parse_sources(data, path=str(p))
