"""Turning parsed measures into contract events: ids, scales, redaction, customer keys."""

from cx_pipeline.normalize.events import NormalizeContext, latest_versions, to_events

__all__ = ["NormalizeContext", "latest_versions", "to_events"]
