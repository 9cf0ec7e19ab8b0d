from __future__ import annotations

import pytest

from cx_pipeline.config import ConfigError, load_sources, parse_sources
from cx_pipeline.defs.resources import BUNDLED_SOURCES


def test_bundled_sources_load(monkeypatch) -> None:
    monkeypatch.setenv("CX_SAMPLE_SITE_URL", "http://127.0.0.1:9999")
    cfg = load_sources(BUNDLED_SOURCES)
    assert [s.id for s in cfg.review_sources] == ["nordlys-trustpilot", "fjordsko-trustpilot", "nordlys-appstore-dk",
                                                  "nordlys-appstore-no"]
    assert cfg.review_sources[0].url == "http://127.0.0.1:9999/review/nordlys-shop.dk"
    assert cfg.allowed_hosts == {"127.0.0.1"}
    assert cfg.brands() == ["Fjord Sko", "Nordlys Shop"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"brand": "B", "url": "https://x"}, "review_sources[0]: missing required key 'id'"),
        ({"id": "a", "brand": "B", "url": "ftp://x"}, "review source 'a': url 'ftp://x' is not an http(s) URL"),
        ({"id": "a", "brand": "B", "url": "https://x", "format": "rss"}, "format 'rss' is not one of"),
        (
            {"id": "a", "brand": "B", "url": "https://x", "default_touchpoint": "parking"},
            "'parking' is not in the taxonomy",
        ),
        ({"id": "a", "brand": "B", "url": "https://x", "max_pages": 0}, "max_pages must be a positive integer"),
        ({"id": "a", "brand": "B", "url": "https://x", "pages": 3}, "unknown key(s) ['pages']"),
    ],
)
def test_bad_entries_are_named(entry, message) -> None:
    with pytest.raises(ConfigError) as err:
        parse_sources({"review_sources": [entry]}, path="sources.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("sources.yaml: ")


def test_duplicate_ids_and_missing_env(monkeypatch) -> None:
    entry = {"id": "a", "brand": "B", "url": "https://x"}
    with pytest.raises(ConfigError, match=r"review source .a.: duplicate id"):
        parse_sources({"review_sources": [entry, entry]}, path="s.yaml")
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(ConfigError, match="environment variable NOPE is not set"):
        parse_sources({"review_sources": [dict(entry, url="${NOPE}/x")]}, path="s.yaml")


def test_unreadable_and_invalid_yaml(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read the sources file"):
        load_sources(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("review_sources: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_sources(bad)


def test_reporting_time_zones_are_validated(tmp_path) -> None:
    from cx_pipeline.config.sources_config import ConfigError, Reporting, parse_sources

    ok = parse_sources({"version": 1, "reporting": {"time_zone": "Europe/Copenhagen",
                                                    "brands": {"Fjord Sko": "Europe/Oslo"}}}, path="s.yaml")
    assert ok.reporting == Reporting("Europe/Copenhagen", (("Fjord Sko", "Europe/Oslo"),))
    assert parse_sources({"version": 1}, path="s.yaml").reporting == Reporting("UTC", ())
    with pytest.raises(ConfigError, match=r"s.yaml: reporting.brands.B.*unknown time zone 'Mars/Olympus'"):
        parse_sources({"version": 1, "reporting": {"brands": {"B": "Mars/Olympus"}}}, path="s.yaml")
    with pytest.raises(ConfigError, match=r"s\.yaml: reporting: unknown key"):
        parse_sources({"version": 1, "reporting": {"timezone": "UTC"}}, path="s.yaml")
