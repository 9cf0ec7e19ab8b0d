"""Jobs, schedules and sensors: when each part of the graph runs."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
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
from cx_pipeline.pipeline.surveys import InboxEntry, list_inbox

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


RUN_BUSY = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED)
RUN_ENDED_BADLY = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
#: a failed ingest of one file is retried this many times on its own; after that a re-drop of the file retries it
SURVEY_AUTO_ATTEMPTS = 3
#: failed ingests younger than this are retried even when the file already left the inbox (it is in processed/
#: or the raw archive); older ones wait for a re-drop
SURVEY_RETRY_WINDOW = timedelta(days=7)
#: run monitoring (``run_monitoring: enabled: true`` in dagster.yaml) fails an ingest run still going after this
SURVEY_RUN_MAX_SECONDS = 3600
WORKER_TAG = "cx/worker"
SURVEY_ASSETS = (AssetKey(["raw", "survey_files"]), AssetKey(["events", "survey_events"]))


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (``/proc/<pid>/stat`` field 22), None when no such process.

    Why: a pid alone is reused; pid + start time names one process for ever."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None
    except (OSError, IndexError):  # no /proc (macOS): alive or not, without the start time
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"


def run_worker_token() -> str:
    """``host:pid:start`` of the process that runs this Dagster run (the parent of a multiprocess step)."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid else os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid) or '?'}"


def worker_is_gone(token: str | None) -> bool:
    """True when the token names a process on this host that no longer exists (killed, OOM, machine rebooted).

    A token from another host proves nothing here: run monitoring's ``max_runtime_seconds`` covers that case."""
    if not token:
        return False
    host, _, rest = token.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    now = _process_start(int(pid_text))
    return now is None or (start not in ("", "?") and now not in ("?",) and now != start)


@dataclass(frozen=True)
class SurveyPlan:
    """What the inbox sensor does this tick: runs to request (key → run key) and why the rest waits."""

    requests: dict[str, str]
    new_partitions: list[str]
    waiting: dict[str, str]
    failed_dead_runs: list[str]


def plan_survey_runs(instance: DagsterInstance, entries: list[InboxEntry], *,
                     now: datetime | None = None) -> SurveyPlan:
    """Decide per survey file whether to start an ingest run.

    A file is done only when its last ingest run succeeded (or, without runs, both its assets are
    materialized): a registered partition, a run that died or failed, is not "known". A run still marked
    going whose worker process is gone is reported failed. A failed ingest is retried with a new run key up
    to ``SURVEY_AUTO_ATTEMPTS`` times (also when the file already left the inbox: the run takes it from
    processed/ or the raw archive), and again whenever the same file is dropped into the inbox after the last
    attempt.
    """
    now = now or datetime.now(UTC)
    arrived: dict[str, datetime | None] = {}
    for e in entries:
        arrived[e.file_key] = max((t for t in (arrived.get(e.file_key), e.arrived_at) if t), default=None)
    recent = instance.get_run_records(RunsFilter(job_name=ingest_survey_file_job.name,
                                                 statuses=[*RUN_ENDED_BADLY, *RUN_BUSY],
                                                 updated_after=now - SURVEY_RETRY_WINDOW))
    keys = list(arrived)
    keys += [k for r in recent if (k := r.dagster_run.tags.get("dagster/partition")) and k not in arrived]
    keys = list(dict.fromkeys(keys))
    registered = set(instance.get_dynamic_partitions(SURVEY_FILES_NAME))
    materialized = [instance.get_materialized_partitions(k) for k in SURVEY_ASSETS]
    requests: dict[str, str] = {}
    waiting: dict[str, str] = {}
    dead: list[str] = []
    for key in keys:
        runs = instance.get_run_records(RunsFilter(job_name=ingest_survey_file_job.name,
                                                   tags={"dagster/partition": key}))
        runs.sort(key=lambda r: r.create_timestamp, reverse=True)
        if not runs:
            if all(key in m for m in materialized):
                waiting[key] = "ingested"
            else:
                requests[key] = f"survey_file:{key}"
            continue
        last = runs[0].dagster_run
        status = last.status
        if status in RUN_BUSY:
            if not worker_is_gone(last.tags.get(WORKER_TAG)):
                waiting[key] = f"run {last.run_id} is {status.value}"
                continue
            instance.report_run_failed(last, f"the run's worker process ({last.tags[WORKER_TAG]}) is gone: "
                                             "killed or crashed; the survey inbox sensor retries the file")
            dead.append(last.run_id)
            status = DagsterRunStatus.FAILURE
        if status == DagsterRunStatus.SUCCESS:
            waiting[key] = "ingested"
            continue
        failures = 0
        for r in runs:
            if r.dagster_run.status not in RUN_ENDED_BADLY and r.dagster_run.run_id not in dead:
                break
            failures += 1
        started = runs[0].create_timestamp
        started = started if started.tzinfo else started.replace(tzinfo=UTC)
        dropped_again = arrived.get(key) is not None and arrived[key] > started
        if failures < SURVEY_AUTO_ATTEMPTS or dropped_again:
            requests[key] = f"survey_file:{key}:{len(runs)}"  # a new run key per attempt
        else:
            waiting[key] = (f"failed {failures} times (last run {last.run_id}); drop the file into the inbox "
                            "again to retry")
    return SurveyPlan(requests, [k for k in requests if k not in registered], waiting, dead)


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
    description="Watches the survey inbox: a new or changed file (new content hash) starts a run for that file; "
    "a run that failed or died is retried (a new run key per attempt), and again when the file is re-dropped.",
)
def survey_inbox_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    cfg = load_sources(_sources_path())
    if cfg.survey_inbox is None:
        return SkipReason(f"{cfg.path}: no survey_inbox configured")
    entries = list_inbox(cfg.survey_inbox)
    plan = plan_survey_runs(context.instance, entries)
    for run_id in plan.failed_dead_runs:
        context.log.warning(f"ingest run {run_id} was marked failed: its worker process is gone")
    if not plan.requests:
        why = "; ".join(f"{k}: {v}" for k, v in plan.waiting.items() if v != "ingested")
        done = sum(v == "ingested" for v in plan.waiting.values())
        return SkipReason(f"nothing to ingest in {cfg.survey_inbox.path} ({done} file(s) already ingested)"
                          + (f"; waiting: {why}" if why else ""))
    return SensorResult(
        run_requests=[RunRequest(partition_key=k, run_key=run_key,
                                 tags={"dagster/max_runtime_seconds": str(SURVEY_RUN_MAX_SECONDS)})
                      for k, run_key in plan.requests.items()],
        dynamic_partitions_requests=[SURVEY_FILES.build_add_request(plan.new_partitions)]
        if plan.new_partitions else [],
    )


BUILD_BUSY = RUN_BUSY


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
