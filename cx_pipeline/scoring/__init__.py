"""Scored CX datasets from touchpoint events: metrics, aggregates, key drivers, peaks/potholes, alerts.

Pure functions over polars frames (no Dagster here); ``cx_pipeline.scoring.text`` adds language, sentiment
and touchpoint mentions that these functions use when present (``sentiment``, ``sentiment_label``,
``text_touchpoints`` columns).
"""

from cx_pipeline.scoring.aggregates import (
    AGGREGATE_SCHEMA,
    metric_aggregates,
)
from cx_pipeline.scoring.alerts import (
    ALERT_SCHEMA,
    ALERT_TEST_SCHEMA,
    AlertConfig,
    alert_messages,
    alert_tests,
    significant_drops,
)
from cx_pipeline.scoring.drivers import DRIVER_SCHEMA, DriverConfig, key_drivers
from cx_pipeline.scoring.metrics import ScoringConfig
from cx_pipeline.scoring.peaks_potholes import (
    JOURNEY_SCHEMA,
    JOURNEY_SUMMARY_SCHEMA,
    PEAK_SCHEMA,
    PeakConfig,
    peak_end_journeys,
    peak_end_summary,
    peaks_potholes,
)

__all__ = [
    "AGGREGATE_SCHEMA",
    "ALERT_SCHEMA",
    "ALERT_TEST_SCHEMA",
    "DRIVER_SCHEMA",
    "JOURNEY_SCHEMA",
    "JOURNEY_SUMMARY_SCHEMA",
    "PEAK_SCHEMA",
    "AlertConfig",
    "DriverConfig",
    "PeakConfig",
    "ScoringConfig",
    "alert_messages",
    "alert_tests",
    "key_drivers",
    "metric_aggregates",
    "peak_end_journeys",
    "peak_end_summary",
    "peaks_potholes",
    "significant_drops",
]
