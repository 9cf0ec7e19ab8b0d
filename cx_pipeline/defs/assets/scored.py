"""Scored group: text scores per event, CX metrics with confidence intervals, drivers, peaks/potholes, alerts."""

import time
from datetime import timedelta
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    Config,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)
from pydantic import Field

from cx_pipeline.contract import COLUMN_NAMES, EVENT_POLARS_SCHEMA, contract_violations
from cx_pipeline.defs.assets.events import TOUCHPOINT_EVENTS_KEY, checked_store
from cx_pipeline.defs.checks import dataset_check_result, dataset_check_spec
from cx_pipeline.defs.metadata import counts_by, frame_metadata, markdown_table
from cx_pipeline.defs.resources import DataStore, SourcesFile
from cx_pipeline.pipeline.downstream import (
    build_journeys,
    build_key_drivers,
    build_peaks_potholes,
    build_reply_latency,
)
from cx_pipeline.pipeline.scoring_state import aggregates_incrementally
from cx_pipeline.pipeline.text_scoring_state import (
    MENTIONS_DATASET,
    SCORED_DATASET,
    MethodChanged,
    update_scored_days,
)
from cx_pipeline.pipeline.time_layout import read_days
from cx_pipeline.scoring import (
    AGGREGATE_SCHEMA,
    ALERT_SCHEMA,
    ALERT_TEST_SCHEMA,
    DRIVER_SCHEMA,
    JOURNEY_SCHEMA,
    PEAK_SCHEMA,
    AlertConfig,
    DriverConfig,
    ScoringConfig,
    alert_tests,
    peak_end_summary,
    significant_drops,
)
from cx_pipeline.scoring.peaks_potholes import PeakConfig
from cx_pipeline.scoring.reply_latency import REPLY_SCHEMA
from cx_pipeline.scoring.text.mentions import MENTION_SCHEMA, MENTION_UNIQUE
from cx_pipeline.scoring.text.score import DEFAULT_SENTIMENT_METHOD

SCORED_EVENTS_KEY = ["scored", "scored_events"]
MENTIONS_KEY = ["scored", "touchpoint_mentions"]
METRICS_KEY = ["scored", "cx_metrics"]
DRIVERS_KEY = ["scored", "key_drivers"]
PEAKS_KEY = ["scored", "peaks_potholes"]
JOURNEYS_KEY = ["scored", "customer_journeys"]
ALERTS_KEY = ["scored", "cx_alerts"]
ALERT_TESTS_KEY = ["scored", "alert_tests"]
REPLIES_KEY = ["scored", "reply_latency"]

METRICS_UNIQUE = ("brand", "touchpoint", "source", "grain", "period", "metric")
DRIVERS_UNIQUE = ("brand", "grain", "period", "method", "outcome", "touchpoint")
PEAKS_UNIQUE = ("brand", "grain", "period", "touchpoint")
JOURNEYS_UNIQUE = ("brand", "customer_key")
REPLIES_UNIQUE = ("brand", "source", "grain", "period")
ALERTS_UNIQUE = ("brand", "touchpoint", "source", "metric", "grain", "period")
ALERT_TESTS_UNIQUE = ALERTS_UNIQUE

DAILY_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(hours=26))


def _zones(sources: SourcesFile) -> dict[str, Any]:
    """The sources file's reporting time zones, as the keyword arguments every period-cutting config takes."""
    reporting = sources.load().reporting
    return {"time_zone": reporting.time_zone, "brand_time_zones": reporting.brand_time_zones}


class TextScoringConfig(Config):
    sentiment_method: str = DEFAULT_SENTIMENT_METHOD
    """cx-linear (default: trained linear model + lexicon), lexicon (rules only), e5 or e5+lexicon
    (multilingual-e5-small; needs the `e5` extra; ~40 s per 1k texts)."""
    extra_term_files: list[str] = Field(default_factory=list)
    """Touchpoint term files (YAML) merged over the bundled lists, e.g. a brand's own words."""
    rescore_all: bool = False
    """Rescore every stored day: the backfill after a change of method or term lists (a run with a different
    method fails with the size of that backfill until this is set)."""


@multi_asset(
    deps=[TOUCHPOINT_EVENTS_KEY],
    outs={
        "scored_events": AssetOut(
            key=SCORED_EVENTS_KEY,
            group_name="scored",
            metadata={"cx/partition_by": ["month", "day"]},
            kinds={"polars", "parquet"},
            freshness_policy=DAILY_FRESHNESS,
            is_required=False,
            description="Every touchpoint event with language (declared, detected, or detected over a wrong "
            "declaration), sentiment −1..1 with label computed from its clauses, touchpoints mentioned in the text "
            "(with evidence) and the method/version that made each score. By day, like touchpoint_events.",
        ),
        "touchpoint_mentions": AssetOut(
            key=MENTIONS_KEY,
            group_name="scored",
            metadata={"cx/partition_by": ["month", "day"]},
            kinds={"polars", "parquet"},
            is_required=False,
            description="One row per event × touchpoint its text talks about: the clause(s), the matched terms, "
            "and the sentiment of those clauses alone (a survey comment counts once per response). By day.",
        ),
    },
    check_specs=[
        AssetCheckSpec(
            "contract_columns",
            asset=SCORED_EVENTS_KEY,
            blocking=True,
            description="The contract columns are intact; scoring only adds columns.",
        ),
        dataset_check_spec(MENTIONS_KEY, MENTION_UNIQUE),
    ],
)
def scored_events(context: AssetExecutionContext, config: TextScoringConfig, data_store: DataStore,
                  sources: SourcesFile):
    """One scoring pass writes both datasets, so mentions and event sentiment come from the same clauses. Only the
    days of touchpoint_events rewritten since the last run are read, and within them only records whose events
    changed are scored (``text_scoring_state``)."""
    store = checked_store(data_store, sources, need_events=True)
    t0 = time.perf_counter()
    try:
        result = update_scored_days(store, sentiment_method=config.sentiment_method,
                                      extra_term_files=config.extra_term_files, rescore_all=config.rescore_all)
    except MethodChanged as exc:
        raise Failure(str(exc), allow_retries=False) from None
    seconds = time.perf_counter() - t0
    days = sorted(d for d, n in result.days.items() if n)
    scored = read_days(store, SCORED_DATASET, days)
    mentions = read_days(store, MENTIONS_DATASET, days)
    scored = scored if scored is not None else pl.DataFrame(schema=EVENT_POLARS_SCHEMA)
    mentions = mentions if mentions is not None else pl.DataFrame(schema=MENTION_SCHEMA)
    context.log.info(f"text scoring: {len(result.days)} day(s), {result.rescored_records} record(s) scored, "
                     f"{result.reused_records} reused ({result.reason})")
    texts = scored.filter(pl.col("sentiment").is_not_null()) if "sentiment" in scored.columns else scored.clear()
    written = len(result.days)
    yield MaterializeResult(
        asset_key=SCORED_EVENTS_KEY,
        metadata=frame_metadata(
            scored,
            [c for c in ("source", "language", "sentiment_label", "sentiment", "text_touchpoints", "title")
             if c in scored.columns],
            days_rewritten=written,
            sentiment_labels=counts_by(texts, "sentiment_label"),
            records_scored=result.rescored_records,
            records_reused=result.reused_records,
            scoring=result.reason,
            scoring_seconds=round(seconds, 2),
            languages=counts_by(scored, "language"),
        ),
    )
    yield MaterializeResult(
        asset_key=MENTIONS_KEY,
        metadata=frame_metadata(
            mentions,
            ["source", "touchpoint", "origin", "sentiment_label", "sentiment", "clause"],
            days_rewritten=written,
            mentions_by_touchpoint=counts_by(mentions, "touchpoint"),
            labels=counts_by(mentions, "sentiment_label"),
        ),
    )
    problems = contract_violations(scored.select(COLUMN_NAMES))
    yield AssetCheckResult(
        asset_key=SCORED_EVENTS_KEY,
        check_name="contract_columns",
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={"problems": "; ".join(problems) or "none", "days_checked": len(days)},
    )
    yield dataset_check_result(MENTIONS_KEY, mentions, MENTION_SCHEMA, MENTION_UNIQUE)


@asset(
    key=METRICS_KEY,
    deps=[SCORED_EVENTS_KEY, MENTIONS_KEY],
    group_name="scored",
    kinds={"polars", "parquet"},
    freshness_policy=DAILY_FRESHNESS,
    check_specs=[dataset_check_spec(METRICS_KEY, METRICS_UNIQUE)],
    description="NPS (adjusted-Wald CI), CSAT top-2-box (Wilson CI), CES % easy, star mean / Bayesian average / "
    "Wilson lower bound, net sentiment — per brand × touchpoint × source × day/ISO week/month/all, with n and a "
    "low-n flag. Only periods whose events changed are recomputed.",
)
def cx_metrics(context: AssetExecutionContext, data_store: DataStore, sources: SourcesFile):
    """Reads only the rewritten days of scored events (and their neighbours) and rolls stored day cells up for the
    whole-history rows (``scoring_state``)."""
    aggregates, recomputed, full = aggregates_incrementally(data_store.store(), ScoringConfig(**_zones(sources)))
    overall = aggregates.filter((pl.col("grain") == "all") & (pl.col("source") == "all"))
    yield Output(
        aggregates,
        metadata=frame_metadata(
            overall,
            ["brand", "touchpoint", "metric", "n", "value", "ci_low", "ci_high", "low_n"],
            recomputed_periods=recomputed.height,
            full_recompute=full,
            rows_by_metric=counts_by(aggregates, "metric"),
        ),
    )
    yield dataset_check_result(METRICS_KEY, aggregates, AGGREGATE_SCHEMA, METRICS_UNIQUE)


@asset(
    key=DRIVERS_KEY,
    deps=[SCORED_EVENTS_KEY, MENTIONS_KEY, METRICS_KEY],
    group_name="scored",
    kinds={"polars", "parquet"},
    check_specs=[dataset_check_spec(DRIVERS_KEY, DRIVERS_UNIQUE)],
    description="Which touchpoints move the overall outcome: Shapley-value regression on per-touchpoint ratings "
    "(with R²) and text impact = score(all) − score(without mentions); importance × performance per brand/period.",
)
def key_drivers_table(context: AssetExecutionContext, data_store: DataStore, sources: SourcesFile):
    update = build_key_drivers(data_store.store(), DriverConfig(**_zones(sources)))
    drivers = update.table
    latest = drivers.filter(pl.col("grain") == "all").sort("brand", "method", "rank")
    yield Output(
        drivers,
        metadata=frame_metadata(
            latest,
            ["brand", "method", "outcome", "touchpoint", "n", "importance_share", "impact", "performance", "quadrant"],
            rows_by_method=counts_by(drivers, "method"),
            months_recomputed=len(update.months),
            full_rebuild=update.full,
        ),
    )
    yield dataset_check_result(DRIVERS_KEY, drivers, DRIVER_SCHEMA, DRIVERS_UNIQUE)


@asset(
    key=PEAKS_KEY,
    deps=[SCORED_EVENTS_KEY, MENTIONS_KEY],
    group_name="scored",
    kinds={"polars", "parquet"},
    check_specs=[dataset_check_spec(PEAKS_KEY, PEAKS_UNIQUE)],
    description="Per touchpoint: peak rate (top box with strongly positive language) and pothole rate (bottom "
    "scores or strongly negative language about that touchpoint, from its mentions) with Wilson CIs, ranked, "
    "with redacted example clauses.",
)
def peaks_and_potholes(context: AssetExecutionContext, data_store: DataStore, sources: SourcesFile):
    update = build_peaks_potholes(data_store.store(), PeakConfig(**_zones(sources)))
    table = update.table
    overall = table.filter(pl.col("grain") == "all").sort("brand", "rank")
    examples = overall.select(
        "brand",
        "touchpoint",
        pl.col("pothole_examples").list.first().alias("pothole_example"),
        pl.col("peak_examples").list.first().alias("peak_example"),
    )
    yield Output(
        table,
        metadata=frame_metadata(
            overall,
            ["brand", "touchpoint", "n", "peak_rate", "pothole_rate", "net", "rank"],
            examples=MetadataValue.md(markdown_table(examples, n=12)),
            months_recomputed=len(update.months),
            full_rebuild=update.full,
        ),
    )
    yield dataset_check_result(PEAKS_KEY, table, PEAK_SCHEMA, PEAKS_UNIQUE)


@asset(
    key=JOURNEYS_KEY,
    deps=[SCORED_EVENTS_KEY],
    group_name="scored",
    kinds={"polars", "parquet"},
    check_specs=[dataset_check_spec(JOURNEYS_KEY, JOURNEYS_UNIQUE)],
    description="Per customer (linked by customer_key, never identity): peak-end score of the journey against its "
    "plain mean (Kahneman's peak-end rule).",
)
def customer_journeys(context: AssetExecutionContext, data_store: DataStore):
    journeys = build_journeys(data_store.store())
    summary = peak_end_summary(journeys)
    yield Output(
        journeys,
        metadata=frame_metadata(
            journeys,
            ["brand", "n_moments", "mean_score", "peak_score", "end_score", "peak_end_score", "peak_end_gap"],
            summary=MetadataValue.md(markdown_table(summary)),
        ),
    )
    yield dataset_check_result(JOURNEYS_KEY, journeys, JOURNEY_SCHEMA, JOURNEYS_UNIQUE)


class AlertTestConfig(Config):
    q: float = AlertConfig.q
    """False-discovery rate across one run's tests (Benjamini–Hochberg)."""
    min_n: int = AlertConfig.min_n
    """Minimum answers in both periods for a series × period to be tested."""


@asset(
    key=ALERT_TESTS_KEY,
    ins={"cx_metrics": AssetIn(key=METRICS_KEY)},
    group_name="scored",
    kinds={"polars", "parquet"},
    check_specs=[dataset_check_spec(ALERT_TESTS_KEY, ALERT_TESTS_UNIQUE)],
    description="Every brand × touchpoint × metric series and period: the period-over-period drop test (z, "
    "one-sided p, Benjamini–Hochberg adjusted p) or the reason it was skipped (first period, gap, too few answers).",
)
def alert_test_log(context: AssetExecutionContext, config: AlertTestConfig, cx_metrics: pl.DataFrame):
    log = alert_tests(cx_metrics, config=AlertConfig(q=config.q, min_n=config.min_n))
    yield Output(
        log,
        metadata=frame_metadata(
            log.filter(pl.col("status") == "tested").sort("p_value"),
            ["brand", "touchpoint", "metric", "period", "previous_value", "current_value", "z", "p_value",
             "p_adjusted", "flagged"],
            status=counts_by(log, "status"),
            skipped_because=counts_by(log.filter(pl.col("status") == "skipped")
                                      .with_columns(pl.col("reason").str.replace(r" \(.*", "")), "reason"),
            flagged=int(log["flagged"].sum()),
        ),
    )
    yield dataset_check_result(ALERT_TESTS_KEY, log, ALERT_TEST_SCHEMA, ALERT_TESTS_UNIQUE)


@asset(
    key=ALERTS_KEY,
    ins={"alert_tests": AssetIn(key=ALERT_TESTS_KEY)},
    group_name="scored",
    kinds={"polars", "parquet"},
    check_specs=[
        dataset_check_spec(ALERTS_KEY, ALERTS_UNIQUE),
        AssetCheckSpec(
            "no_significant_drop",
            asset=ALERTS_KEY,
            description="No brand × touchpoint metric dropped significantly from the previous period (after "
            "Benjamini–Hochberg control across the run's tests; see scored/alert_tests for what was tested).",
        ),
    ],
    description="The significant period-over-period drops of scored/alert_tests, with the numbers behind them.",
)
def cx_alerts(context: AssetExecutionContext, alert_tests: pl.DataFrame):
    alerts = significant_drops(alert_tests, tests=alert_tests)
    yield Output(
        alerts,
        metadata=frame_metadata(
            alerts,
            ["brand", "touchpoint", "metric", "grain", "period", "previous_value", "current_value", "z",
             "p_adjusted", "n_current"],
        ),
    )
    yield dataset_check_result(ALERTS_KEY, alerts, ALERT_SCHEMA, ALERTS_UNIQUE)
    lines = alerts["message"].to_list() if alerts.height else []
    tested = int((alert_tests["status"] == "tested").sum()) if alert_tests.height else 0
    skipped = alert_tests.height - tested
    yield AssetCheckResult(
        asset_key=ALERTS_KEY,
        check_name="no_significant_drop",
        passed=not lines,
        severity=AssetCheckSeverity.WARN,
        metadata={"alerts": len(lines), "tests": tested, "skipped": skipped,
                  "drops": MetadataValue.md("\n".join(f"- {m}" for m in lines[:50]) or "none")},
    )


@asset(
    key=REPLIES_KEY,
    deps=[SCORED_EVENTS_KEY],
    group_name="scored",
    kinds={"polars", "parquet"},
    check_specs=[dataset_check_spec(REPLIES_KEY, REPLIES_UNIQUE)],
    description="Company replies to public reviews as a customer-service touchpoint: reply rate (Wilson CI) and "
    "median / p90 / mean hours to reply, per brand × source × month and overall.",
)
def reply_latency_table(context: AssetExecutionContext, data_store: DataStore, sources: SourcesFile):
    update = build_reply_latency(data_store.store(), **_zones(sources))
    table = update.table
    yield Output(
        table,
        metadata=frame_metadata(
            table.filter(pl.col("grain") == "all"),
            ["brand", "source", "reviews", "reply_rate", "reply_rate_ci_low", "reply_rate_ci_high", "median_hours"],
        ),
    )
    yield dataset_check_result(REPLIES_KEY, table, REPLY_SCHEMA, REPLIES_UNIQUE)
