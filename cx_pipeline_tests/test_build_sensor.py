"""One scored build per batch of ingests: the rebuild sensor coalesces every ingest that finished since the last
build into one run, and waits while a build is still going (issue 11)."""

from __future__ import annotations

import uuid

from dagster import DagsterInstance, DagsterRunStatus, RunRequest, SensorResult, SkipReason, build_sensor_context
from dagster._core.storage.dagster_run import DagsterRun

from cx_pipeline.defs.automation import rebuild_scored_after_ingest


def _run(instance: DagsterInstance, job: str, status: DagsterRunStatus) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name=job, run_id=run_id, status=status))
    return run_id


def _evaluate(instance: DagsterInstance, cursor: str | None) -> SensorResult | SkipReason:
    return rebuild_scored_after_ingest(build_sensor_context(instance=instance, cursor=cursor))


def test_three_ingests_start_one_build_and_a_running_build_makes_new_ingests_wait() -> None:
    with DagsterInstance.ephemeral() as instance:
        assert isinstance(_evaluate(instance, None), SkipReason)
        for job in ("ingest_reviews", "ingest_survey_file", "ingest_survey_file"):
            _run(instance, job, DagsterRunStatus.SUCCESS)
        _run(instance, "ingest_reviews", DagsterRunStatus.FAILURE)  # a failed ingest brings nothing to build
        first = _evaluate(instance, None)
        assert isinstance(first, SensorResult)
        assert len(first.run_requests or []) == 1
        request = (first.run_requests or [])[0]
        assert isinstance(request, RunRequest) and request.tags["cx/ingest_runs"] == "3"
        # nothing new since the cursor: no second build
        assert isinstance(_evaluate(instance, first.cursor), SkipReason)
        # a new ingest while a build is running waits for the next evaluation, without moving the cursor
        build = _run(instance, "build_scored", DagsterRunStatus.STARTED)
        _run(instance, "ingest_reviews", DagsterRunStatus.SUCCESS)
        waiting = _evaluate(instance, first.cursor)
        assert isinstance(waiting, SkipReason) and build in str(waiting.skip_message)
        instance.delete_run(build)
        after = _evaluate(instance, first.cursor)
        assert isinstance(after, SensorResult) and (after.run_requests or [])[0].tags["cx/ingest_runs"] == "1"
