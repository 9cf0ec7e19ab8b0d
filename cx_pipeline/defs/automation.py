"""Jobs, schedules and sensors: when each part of the graph runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    build_schedule_from_partitioned_job,
    define_asset_job,
    sensor,
)

from cx_pipeline.config import SurveyInbox, load_sources
from cx_pipeline.defs.partitions import SURVEY_FILES
from cx_pipeline.pipeline.surveys import list_inbox

SURVEY_FILES_NAME = SURVEY_FILES.name or "survey_file"

ingest_reviews_job = define_asset_job(
    "ingest_reviews",
    selection=AssetSelection.assets(
        ["raw", "review_pages"], ["events", "review_events"], ["events", "review_site_summaries"]
    ),
    description="Crawl every configured review source into the raw archive and parse the day's pages to events.",
)

reparse_review_archive_job = define_asset_job(
    "reparse_review_archive",
    selection=AssetSelection.assets(["events", "review_events"], ["events", "review_site_summaries"]),
    description="Rebuild review events from the raw archive with the current parser version, without fetching: "
    "backfill it over the days to re-parse history after a parser change.",
)

ingest_survey_file_job = define_asset_job(
    "ingest_survey_file",
    selection=AssetSelection.assets(["raw", "survey_files"], ["events", "survey_events"]),
    description="Archive one survey export from the inbox and parse it to events.",
)

build_scored_job = define_asset_job(
    "build_scored",
    selection=AssetSelection.assets(["events", "touchpoint_events"]) | AssetSelection.groups("scored"),
    description="Rebuild the analyst events table and every scored dataset from the stored events.",
)

daily_review_schedule = build_schedule_from_partitioned_job(ingest_reviews_job, hour_of_day=5, minute_of_hour=15)


def _sources_path() -> str:
    import os

    from cx_pipeline.defs.resources import BUNDLED_SOURCES

    return os.environ.get("CX_PIPELINE_SOURCES", str(BUNDLED_SOURCES))


def _inbox_keys(instance: DagsterInstance, inbox: SurveyInbox) -> tuple[list[str], list[str]]:
    """(every inbox file's partition key, the keys not yet registered), each once, in inbox order."""
    keys = list(dict.fromkeys(f.file_key for f in list_inbox(inbox)))
    known = set(instance.get_dynamic_partitions(SURVEY_FILES_NAME))
    return keys, [k for k in keys if k not in known]


def register_inbox_files(instance: DagsterInstance) -> list[str]:
    """Add a survey_file partition for every inbox file not seen before; returns all inbox keys."""
    cfg = load_sources(_sources_path())
    if cfg.survey_inbox is None:
        return []
    keys, new = _inbox_keys(instance, cfg.survey_inbox)
    if new:
        instance.add_dynamic_partitions(SURVEY_FILES_NAME, new)
    return keys


@sensor(
    job=ingest_survey_file_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Watches the survey inbox: a new or changed file (new content hash) starts a run for that file.",
)
def survey_inbox_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    cfg = load_sources(_sources_path())
    if cfg.survey_inbox is None:
        return SkipReason(f"{cfg.path}: no survey_inbox configured")
    keys, new = _inbox_keys(context.instance, cfg.survey_inbox)
    if not new:
        return SkipReason(f"no new files in {cfg.survey_inbox.path} ({len(keys)} already known)")
    return SensorResult(
        run_requests=[RunRequest(partition_key=k, run_key=f"survey_file:{k}") for k in new],
        dynamic_partitions_requests=[SURVEY_FILES.build_add_request(new)],
    )


BUILD_BUSY = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED)


def ingests_to_build(instance: DagsterInstance, cursor: str | None) -> tuple[list[str], str]:
    """Ingest runs that succeeded since the cursor, and the cursor after them.

    The cursor is the newest finish time seen plus the runs that finished at exactly that time (two runs can
    finish within the clock's resolution), so a run is built once and never skipped."""
    state = json.loads(cursor) if cursor else {"t": None, "ids": []}
    since = datetime.fromtimestamp(state["t"], UTC) - timedelta(seconds=1) if state["t"] is not None else None
    seen = set(state["ids"])
    records = [
        r for job in (ingest_reviews_job.name, ingest_survey_file_job.name)
        for r in instance.get_run_records(RunsFilter(job_name=job, statuses=[DagsterRunStatus.SUCCESS],
                                                     updated_after=since))
        if r.dagster_run.run_id not in seen and (state["t"] is None or r.update_timestamp.timestamp() >= state["t"])
    ]
    if not records:
        return [], cursor or ""
    newest = max(r.update_timestamp.timestamp() for r in records)
    at_newest = [r.dagster_run.run_id for r in records if r.update_timestamp.timestamp() == newest]
    if newest == state["t"]:
        at_newest += state["ids"]
    return [r.dagster_run.run_id for r in records], json.dumps({"t": newest, "ids": sorted(at_newest)})


@sensor(
    job=build_scored_job,
    minimum_interval_seconds=120,
    default_status=DefaultSensorStatus.STOPPED,
    description="The one automatic path from ingestion to scored data (turn it on in production; no asset has an "
    "automation condition, so Dagster's default automation sensor does not exist here). After new events land, one "
    "build_scored run for every ingest that finished since the last build: a day with one crawl and two survey "
    "files starts one build, not three. While a build is queued or running, newer ingests wait for the next one. "
    "Without it, launch build_scored by hand after ingesting.",
)
def rebuild_scored_after_ingest(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    runs, cursor = ingests_to_build(context.instance, context.cursor)
    if not runs:
        return SkipReason("no ingest finished since the last build")
    busy = context.instance.get_runs(RunsFilter(job_name=build_scored_job.name, statuses=list(BUILD_BUSY)), limit=1)
    if busy:
        return SkipReason(f"{len(runs)} ingest run(s) wait: build_scored run {busy[0].run_id} is still going")
    return SensorResult(
        run_requests=[RunRequest(run_key=f"after:{max(runs)}:{len(runs)}", tags={"cx/ingest_runs": str(len(runs))})],
        cursor=cursor,
    )
