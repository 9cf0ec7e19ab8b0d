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
REVIEW_FORMATS = ("trustpilot", "jsonld", "microdata", "auto")
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
        seen.add(sid)
        url = _require(entry, "url", where)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{where}: url {url!r} is not an http(s) URL")
        fmt = entry.get("format", "trustpilot")
        if fmt not in REVIEW_FORMATS:
            raise ConfigError(f"{where}: format {fmt!r} is not one of {REVIEW_FORMATS}")
        max_pages = entry.get("max_pages", 10)
        if not isinstance(max_pages, int) or max_pages < 1:
            raise ConfigError(f"{where}: max_pages must be a positive integer, got {max_pages!r}")
        extra = set(entry) - {"id", "brand", "url", "format", "default_touchpoint", "max_pages"}
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {sorted(extra)}")
        reviews.append(
            ReviewSource(
                id=sid,
                brand=_require(entry, "brand", where),
                url=url,
                format=fmt,
                default_touchpoint=_touchpoint(entry.get("default_touchpoint", "overall"), where),
                max_pages=max_pages,
            )
        )
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
            extra = set(rule) - {"match", "brand", "format", "default_touchpoint", "table_mapping"}
            if extra:
                raise ConfigError(f"{rwhere}: unknown key(s) {sorted(extra)}")
            mapping = rule.get("table_mapping") or {}
            if mapping:
                try:
                    TableMapping.from_mapping(mapping)
                    QuestionConfig.from_mapping(mapping.get("questions") or {})
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"{rwhere}.table_mapping: {exc}") from exc
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
