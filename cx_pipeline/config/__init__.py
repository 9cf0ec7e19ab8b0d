"""Configuration files: the sources file (brands, review pages, survey inbox)."""

from cx_pipeline.config.sources_config import (
    ConfigError,
    ReviewSource,
    SourcesConfig,
    SurveyInbox,
    SurveyRule,
    load_sources,
    parse_sources,
)

__all__ = ["ConfigError", "ReviewSource", "SourcesConfig", "SurveyInbox", "SurveyRule", "load_sources", "parse_sources"]
