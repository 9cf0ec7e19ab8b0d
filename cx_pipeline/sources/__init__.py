"""Source formats: one module per format under ``reviews/`` and ``surveys/``, all behind ``base.SourceFormat``."""

from cx_pipeline.sources.base import (
    LIMITS,
    MEASURE_SCHEMA,
    REJECT_SCHEMA,
    CpuBudget,
    InputTooLarge,
    PageInfo,
    ParseError,
    ParseResult,
    Reject,
    SourceFormat,
    rejects_frame,
)
from cx_pipeline.sources.registry import all_formats, detect_format, get_format

__all__ = [
    "LIMITS",
    "MEASURE_SCHEMA",
    "REJECT_SCHEMA",
    "CpuBudget",
    "InputTooLarge",
    "PageInfo",
    "ParseError",
    "ParseResult",
    "Reject",
    "SourceFormat",
    "all_formats",
    "detect_format",
    "get_format",
    "rejects_frame",
]
