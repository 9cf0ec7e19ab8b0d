"""Source formats: one module per format under ``reviews/`` and ``surveys/``, all behind ``base.SourceFormat``."""

from cx_pipeline.sources.base import MEASURE_SCHEMA, PageInfo, ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.registry import all_formats, detect_format, get_format

__all__ = [
    "MEASURE_SCHEMA",
    "PageInfo",
    "ParseError",
    "ParseResult",
    "SourceFormat",
    "all_formats",
    "detect_format",
    "get_format",
]
