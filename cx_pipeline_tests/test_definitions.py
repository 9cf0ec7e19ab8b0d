"""The asset graph as a snapshot: an accidental change to keys, groups, partitions or dependencies fails here."""

from __future__ import annotations

from cx_pipeline.definitions import defs

EXPECTED = {
    # key: (group, partitions, upstream keys)
    "raw/review_pages": ("raw", "daily", set()),
    "raw/survey_files": ("raw", "survey_file", set()),
    "events/review_events": ("events", "daily", {"raw/review_pages"}),
    "events/review_site_summaries": ("events", "daily", {"raw/review_pages"}),
    "events/survey_events": ("events", "survey_file", {"raw/survey_files"}),
    "events/touchpoint_events": (
        "events",
        None,
        {"events/review_events", "events/survey_events", "raw/review_pages"},
    ),
    "scored/scored_events": ("scored", None, {"events/touchpoint_events"}),
    "scored/touchpoint_mentions": ("scored", None, {"events/touchpoint_events"}),
    "scored/cx_metrics": ("scored", None, {"scored/scored_events", "scored/touchpoint_mentions"}),
    "scored/key_drivers": ("scored", None, {"scored/scored_events", "scored/touchpoint_mentions", "scored/cx_metrics"}),
    "scored/peaks_potholes": ("scored", None, {"scored/scored_events", "scored/touchpoint_mentions"}),
    "scored/customer_journeys": ("scored", None, {"scored/scored_events"}),
    "scored/alert_tests": ("scored", None, {"scored/cx_metrics"}),
    "scored/cx_alerts": ("scored", None, {"scored/alert_tests"}),
    "scored/reply_latency": ("scored", None, {"scored/scored_events"}),
    "scored/cx_report": ("scored", None, {"scored/scored_events", "scored/touchpoint_mentions", "scored/cx_metrics",
                                          "scored/key_drivers", "scored/peaks_potholes", "scored/alert_tests",
                                          "scored/cx_alerts", "scored/reply_latency"}),
    "scored/cx_duckdb": ("scored", None, {"scored/scored_events", "scored/touchpoint_mentions", "scored/cx_metrics",
                                          "scored/key_drivers", "scored/peaks_potholes", "scored/alert_tests",
                                          "scored/cx_alerts", "scored/reply_latency", "events/touchpoint_events",
                                          "scored/customer_journeys"}),
}
# files written for people and BI tools, not datasets: no schema check applies
NOT_DATASETS = {"scored/cx_report", "scored/cx_duckdb"}


def _partitions_name(pdef) -> str | None:
    if pdef is None:
        return None
    return getattr(pdef, "name", None) or "daily"


def test_asset_graph_matches_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    seen = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        seen[key.to_user_string()] = (
            node.group_name,
            _partitions_name(node.partitions_def),
            {p.to_user_string() for p in node.parent_keys},
        )
    assert seen == EXPECTED


def test_every_dataset_has_a_blocking_schema_check() -> None:
    graph = defs.resolve_asset_graph()
    checked = {}
    for check_key in graph.asset_check_keys:
        checked.setdefault(check_key.asset_key.to_user_string(), set()).add(check_key.name)
    for asset in EXPECTED.keys() - NOT_DATASETS:
        assert checked.get(asset, set()) & {"contract_schema", "dataset_schema", "contract_columns"}, asset


def test_jobs_schedules_and_sensors_resolve() -> None:
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {"ingest_reviews", "reparse_review_archive", "ingest_survey_file", "build_scored"} <= jobs
    assert defs.resolve_schedule_def("ingest_reviews_schedule").cron_schedule == "15 5 * * *"
    assert {s.name for s in defs.sensors} == {"survey_inbox_sensor", "rebuild_scored_after_ingest"}


def test_one_documented_path_rebuilds_scored_data_after_ingestion() -> None:
    """Ops turn on exactly one thing: the coalescing rebuild_scored_after_ingest sensor. No asset carries an
    automation condition (an eager touchpoint_events rebuilt once per ingest, racing the sensor), so Dagster adds
    no default_automation_condition_sensor either."""
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string(): graph.get(k).automation_condition for k in graph.get_all_asset_keys()
            if graph.get(k).automation_condition is not None} == {}
    repo = defs.get_repository_def()
    assert {s.name for s in repo.sensor_defs} == {"survey_inbox_sensor", "rebuild_scored_after_ingest"}
    rebuild = repo.get_sensor_def("rebuild_scored_after_ingest")
    assert rebuild.job_name == "build_scored"
    assert "one automatic path from ingestion to scored data" in (rebuild.description or "")
    builders = [s.name for s in repo.sensor_defs if s.job_name == "build_scored"]
    assert builders == ["rebuild_scored_after_ingest"] and [s.name for s in repo.schedule_defs
                                                           if s.job_name == "build_scored"] == []
