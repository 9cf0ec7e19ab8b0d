"""The production path for real: Dagster on PostgreSQL, the data root and the survey inbox on S3, ``dagster-daemon``.

Everything runs as separate processes talking over 127.0.0.1, as in a deployment: a throwaway PostgreSQL cluster
holds the instance (runs, event logs, sensor state, pool slots), moto's server speaks the S3 API for the data root
and the inbox, and ``dagster-daemon run`` (started on an instance file with deploy/dagster.yaml's structure) runs
the sensors, the queued run coordinator, the backfill daemon and run monitoring; its runs are worker processes that
execute their steps with the multiprocess executor. The test only drops files and reads the instance and the bucket.

Flow: a backfill of three survey-file partitions and one of two crawl days of the sample review site (on 127.0.0.1),
all through the run queue → the inbox sensor, turned on through the instance, sees a fourth file and launches its
ingest → the rebuild sensor launches one build_scored whose steps overlap → the analyst table, cx_metrics and the
report are objects in the bucket with the expected rows. The two crawls never talk to the site at the same time:
raw/review_pages is in the `review_sites` pool, limited to 1 by the instance.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl
import pytest
import yaml

from .conftest import REPO_ROOT
from .prod_servers import dagster_daemon, postgres_bin, postgres_cluster, s3_server, wait_for

#: the hard cap; the waits below are bounds for a loaded machine (about 5 minutes on an idle 2-core one)
pytestmark = [pytest.mark.production_path, pytest.mark.timeout(1200)]

SURVEYS = REPO_ROOT / "cx_pipeline" / "sample_data" / "surveys"
DEPLOY_INSTANCE = REPO_ROOT / "deploy" / "dagster.yaml"
SECRET = "production-path-test-secret"
BUCKET = "cx-data"
DATA_ROOT = f"s3://{BUCKET}/data"
INBOX = f"s3://{BUCKET}/inbox"
BACKFILLED = sorted(SURVEYS.glob("*.csv"))


def _sample_reviews() -> int:
    from cx_pipeline.demo.sample_site import load_apps, load_businesses

    return sum(len(b.reviews) for b in load_businesses().values()) + sum(len(a.reviews) for a in load_apps().values())


SAMPLE_REVIEWS = _sample_reviews()
#: the file the sensor picks up: a Qualtrics export of the other brand (the rule `*fjordsko*` → Fjord Sko)
SENSOR_FILE = "fjordsko_qualtrics_2025-03.csv"
CRAWL_DAYS = ["2026-11-23", "2026-11-24"]


def _missing_requirements() -> str | None:
    missing = [m for m in ("s3fs", "moto", "dagster_postgres", "boto3") if importlib.util.find_spec(m) is None]
    if missing:
        return f"production-path test needs {', '.join(missing)}: pip install -e '.[test]'"
    if postgres_bin() is None:
        return "production-path test needs PostgreSQL's initdb/pg_ctl (apt-get install postgresql; .ci/run does it)"
    return None


def sensor_file_bytes() -> bytes:
    """Another brand's export: the March Qualtrics sample with its response ids changed (new events, new hash)."""
    return (SURVEYS / "nordlys_shop_qualtrics_2025-03.csv").read_bytes().replace(b"R_NordlysTest", b"R_FjordTest")


def file_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def instance_file(home: Path) -> dict:
    """deploy/dagster.yaml with test intervals: the queue is read every second, run monitoring polls every 2 s."""
    cfg = yaml.safe_load(DEPLOY_INSTANCE.read_text(encoding="utf-8"))
    cfg["run_coordinator"]["config"] = {"dequeue_interval_seconds": 1}
    cfg["concurrency"]["runs"]["max_concurrent_runs"] = 3
    cfg["run_monitoring"].update(poll_interval_seconds=2, start_timeout_seconds=180)
    (home / "dagster.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return cfg


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    exe = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(exe), *args, "-m", "cx_pipeline.definitions"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, f"dagster {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _step_spans(instance, run_id: str) -> dict[str, tuple[float, float]]:
    from dagster import DagsterEventType

    starts, ends = {}, {}
    for rec in instance.all_logs(run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}):
        target = starts if rec.dagster_event.event_type == DagsterEventType.STEP_START else ends
        target[rec.step_key] = rec.timestamp
    return {k: (starts[k], ends[k]) for k in starts if k in ends}


def _worker_pid(instance, run_id: str) -> int | None:
    """The pid of a started run's worker process, from the launcher's engine event."""
    from dagster import DagsterEventType, DagsterRunStatus

    run = instance.get_run_by_id(run_id)
    if run is None or run.status != DagsterRunStatus.STARTED:
        return None
    for rec in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        found = re.search(r"Started process for run \(pid: (\d+)\)", rec.message or "")
        if found:
            return int(found.group(1))
    return None


def _kill_tree(pid: int) -> None:
    """SIGKILL a run worker and every process below it, as when its machine or pod dies.

    Killing the worker alone is not a worker death under the multiprocess executor: its step processes (children
    of the forkserver it started) finish their steps after it, and the retry then finds nothing left to run.
    The process tree comes from /proc (Linux, where this test runs)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    family, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        family += frontier
    for member in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def _overlapping(spans: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    names = sorted(spans)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]]


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory):
    reason = _missing_requirements()
    if reason:
        pytest.skip(reason)
    import fsspec
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    tmp = tmp_path_factory.mktemp("production")
    home = tmp / "dagster_home"
    home.mkdir()
    config = instance_file(home)
    mp = pytest.MonkeyPatch()
    from cx_pipeline.demo.sample_site import SampleSiteServer

    with postgres_cluster(postgres_bin()) as pg, s3_server(BUCKET) as s3, SampleSiteServer() as site:
        env = {**os.environ, **pg.env(), **s3.env(), "DAGSTER_HOME": str(home), "CX_PIPELINE_DATA_ROOT": DATA_ROOT,
               "CX_SAMPLE_SITE_URL": site.base_url,
               "CX_PIPELINE_INBOX": INBOX, "CX_PIPELINE_HASH_SECRET": SECRET,
               "CX_PIPELINE_HTTP_STATE": str(tmp / "http_state"),
               "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
        for k in (*pg.env(), *s3.env(), "DAGSTER_HOME", "CX_PIPELINE_DATA_ROOT", "CX_PIPELINE_INBOX",
                  "CX_PIPELINE_HASH_SECRET"):
            mp.setenv(k, env[k])
        instance = DagsterInstance.from_config(str(home))
        fs = fsspec.filesystem("s3")
        daemon_log = tmp / "daemon.log"
        timings: dict[str, float] = {}

        def diagnose() -> str:
            lines = [f"{r.job_name} {r.run_id[:8]} {r.status.value} {r.tags.get('dagster/partition', '')}"
                     for r in instance.get_runs()]
            for r in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE])):
                lines += [f"  {e.message}" for e in instance.all_logs(r.run_id) if e.is_dagster_event
                          and e.dagster_event.is_failure and e.message][:5]
                lines += [str(e.dagster_event.event_specific_data)[:3000] for e in instance.all_logs(r.run_id)
                          if e.is_dagster_event and e.dagster_event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE")
                          ][:3]
            tail = daemon_log.read_text(errors="replace")[-4000:] if daemon_log.exists() else ""
            return "runs:\n" + "\n".join(lines) + "\ndaemon log tail:\n" + tail

        def finished(job: str, n: int, **filters):
            runs = instance.get_runs(RunsFilter(job_name=job, **filters))
            done = [r for r in runs if r.is_finished]
            if any(r.status != DagsterRunStatus.SUCCESS for r in done):
                raise AssertionError(f"a {job} run did not succeed\n{diagnose()}")
            return len(done) >= n and done

        started = time.monotonic()
        with dagster_daemon(env, tmp, daemon_log):
            # 1. a backfill of three survey files already in the inbox (one partition each), launched as one backfill
            for f in BACKFILLED:
                fs.pipe_file(f"{BUCKET}/inbox/{f.name}", f.read_bytes())
            keys = [file_key(f.read_bytes()) for f in BACKFILLED]
            instance.add_dynamic_partitions("survey_file", keys)
            _cli(env, tmp, "job", "backfill", "-j", "ingest_survey_file", "--partitions", ",".join(keys), "--noprompt")
            _cli(env, tmp, "job", "backfill", "-j", "ingest_reviews", "--partitions", ",".join(CRAWL_DAYS),
                 "--noprompt")
            # 2. meanwhile a fourth file is dropped and the inbox sensor is turned on: its run queues behind the three
            fs.pipe_file(f"{BUCKET}/inbox/{SENSOR_FILE}", sensor_file_bytes())
            _cli(env, tmp, "sensor", "start", "survey_inbox_sensor")
            ingest_runs = wait_for("the backfill's three ingest runs and the sensor's", lambda: finished(
                "ingest_survey_file", 4), 480, every=2, on_timeout=diagnose)
            crawl_runs = wait_for("the two crawl days", lambda: finished("ingest_reviews", 2), 480, every=2,
                                  on_timeout=diagnose)
            timings["ingests"] = time.monotonic() - started
            # 3. the rebuild sensor starts one build_scored for the four ingests
            _cli(env, tmp, "sensor", "start", "rebuild_scored_after_ingest")
            build_runs = wait_for("build_scored after the ingests", lambda: finished("build_scored", 1), 480,
                                  every=2, on_timeout=diagnose)
            timings["build"] = time.monotonic() - started
            # 4. a run whose worker dies is marked failed and launched again (run_retries). Locally the code server that
            # started the worker notices its death; on Kubernetes run monitoring asks the K8s launcher about the pod.
            killed_id = str(uuid.uuid4())
            _cli(env, tmp, "job", "launch", "-j", "reparse_review_archive", "--run-id", killed_id, "--tags",
                 json.dumps({"dagster/partition": CRAWL_DAYS[0]}))
            worker = wait_for("the run worker's pid", lambda: _worker_pid(instance, killed_id), 240, every=0.2,
                              on_timeout=diagnose)
            _kill_tree(worker)
            retried = wait_for("the retry of the run whose worker was killed", lambda: [
                r for r in instance.get_runs(RunsFilter(tags={"dagster/parent_run_id": killed_id}))
                if r.status == DagsterRunStatus.SUCCESS], 240, every=2, on_timeout=diagnose)
            timings["killed_and_retried"] = time.monotonic() - started
        fs.invalidate_cache()
        print(f"production path: {', '.join(f'{k} done after {v:.0f} s' for k, v in timings.items())}")
        yield {"instance": instance, "config": config, "fs": fs, "ingest_runs": ingest_runs, "crawl_runs": crawl_runs,
               "backfill_runs": [r for r in ingest_runs if "dagster/backfill" in r.tags],
               "sensor_runs": [r for r in ingest_runs if r.tags.get("dagster/sensor_name") == "survey_inbox_sensor"],
               "build_runs": build_runs, "timings": timings, "killed": instance.get_run_by_id(killed_id),
               "retried": retried}
    mp.undo()


def test_instance_is_postgres_with_the_deploy_file_structure(production) -> None:
    instance = production["instance"]
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_monitoring_enabled and instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert set(production["config"]) == set(yaml.safe_load(DEPLOY_INSTANCE.read_text(encoding="utf-8")))


def _run_spans(instance, runs) -> dict[str, tuple[float, float]]:
    records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
    return {r.run_id: (records[r.run_id].start_time, records[r.run_id].end_time) for r in runs}


def test_every_run_went_through_the_queue(production) -> None:
    from dagster import DagsterEventType

    instance = production["instance"]
    runs = [*production["ingest_runs"], *production["crawl_runs"], *production["build_runs"]]
    assert len({r.run_id for r in runs}) == 7
    for run in runs:
        assert instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_ENQUEUED), run.job_name
    assert sorted(r.tags["dagster/partition"] for r in production["backfill_runs"]) == sorted(
        file_key(f.read_bytes()) for f in BACKFILLED)
    assert [r.tags["dagster/partition"] for r in production["sensor_runs"]] == [file_key(sensor_file_bytes())]


def test_partition_runs_ran_in_parallel_within_the_queue_limit(production) -> None:
    """The backfill's partition runs were in progress at the same time, and never more than max_concurrent_runs."""
    spans = _run_spans(production["instance"], [*production["ingest_runs"], *production["crawl_runs"]])
    backfill = {r.run_id for r in production["backfill_runs"]}
    assert len([p for p in _overlapping(spans) if set(p) <= backfill]) >= 2, spans
    limit = production["config"]["concurrency"]["runs"]["max_concurrent_runs"]
    assert max(sum(s <= t < e for s, e in spans.values()) for t, _ in spans.values()) <= limit


def test_crawls_never_overlap_in_the_review_sites_pool(production) -> None:
    """Two crawl days were queued together; their crawl steps (pool review_sites, limit 1) ran one after the other."""
    instance = production["instance"]
    assert instance.event_log_storage.get_concurrency_info("review_sites").slot_count == 1  # the default limit
    crawls = {r.tags["dagster/partition"]: _step_spans(instance, r.run_id)["raw__review_pages"]
              for r in production["crawl_runs"]}
    assert sorted(crawls) == CRAWL_DAYS
    assert _overlapping(crawls) == [], crawls


def test_a_run_whose_worker_died_is_marked_failed_and_retried(production) -> None:
    from dagster import DagsterEventType, DagsterRunStatus

    instance = production["instance"]
    killed = production["killed"]
    assert killed.status == DagsterRunStatus.FAILURE
    assert instance.all_logs(killed.run_id, of_type=DagsterEventType.RUN_FAILURE)
    messages = [e.message or "" for e in instance.all_logs(killed.run_id)]
    # the worker could not report its own end: the code server that launched it did
    assert "This run has been marked as failed from outside the execution context." in messages, messages[-6:]
    [retry] = production["retried"]
    assert retry.tags["dagster/retry_number"] == "1" and retry.tags["dagster/partition"] == CRAWL_DAYS[0]


def test_build_steps_ran_in_parallel(production) -> None:
    """build_scored's steps run with the multiprocess executor: independent scored steps overlap in time."""
    spans = _step_spans(production["instance"], production["build_runs"][0].run_id)
    assert {"events__touchpoint_events", "scored__cx_metrics", "scored__cx_report"} <= set(spans)
    assert _overlapping(spans), spans


def test_outputs_are_objects_in_the_bucket_with_the_expected_rows(production) -> None:
    from cx_pipeline.contract.identity import CustomerKeyer
    from cx_pipeline.pipeline.parse_files import parse_bytes
    from cx_pipeline.storage import ParquetStore

    keyer = CustomerKeyer(SECRET)
    files = {f.name: f.read_bytes() for f in BACKFILLED} | {SENSOR_FILE: sensor_file_bytes()}
    expected = pl.concat([
        parse_bytes(data, location=name, keyer=keyer,
                    brand="Fjord Sko" if "fjordsko" in name else "Nordlys Shop").events
        for name, data in files.items()])
    assert expected.height > 0

    fs = production["fs"]
    store = ParquetStore(DATA_ROOT)
    assert not store.is_local
    events = store.read("events/touchpoint_events")
    assert events is not None
    surveys = events.filter(pl.col("source_kind") == "survey")
    assert sorted(surveys["event_id"].to_list()) == sorted(expected["event_id"].unique().to_list())
    stars = events.filter((pl.col("source_kind") == "review") & (pl.col("metric") == "star_rating"))
    assert stars.height == SAMPLE_REVIEWS  # each review of the sample site once, though both days crawled it
    assert events["event_id"].n_unique() == events.height
    assert fs.find(f"{BUCKET}/data/events/touchpoint_events")  # Parquet objects in the bucket, by day
    assert store.read("raw/survey_files").height == 4
    assert sorted(store.partition_values("raw/review_pages", "day")) == CRAWL_DAYS
    metrics = store.read("scored/cx_metrics")
    nps_all = metrics.filter((pl.col("metric") == "nps") & (pl.col("grain") == "all") & (pl.col("source") == "all")
                             & (pl.col("touchpoint") == "overall"))
    want = expected.filter((pl.col("metric") == "nps") & (pl.col("touchpoint") == "overall")).group_by("brand").len()
    assert set(metrics.filter(pl.col("metric") == "star_rating")["brand"]) == {"Nordlys Shop", "Fjord Sko"}
    assert dict(nps_all.select("brand", "n").iter_rows()) == dict(want.iter_rows())
    index = fs.cat_file(f"{BUCKET}/data/reports/index.html").decode("utf-8")
    assert "Nordlys Shop" in index and "Fjord Sko" in index
    pages = [p for p in fs.find(f"{BUCKET}/data/reports") if p.endswith(".html") and not p.endswith("index.html")]
    assert len(pages) == 2
    # the inbox is empty: every file was moved to processed/ after its bytes were archived
    assert [p for p in fs.ls(f"{BUCKET}/inbox", detail=False) if not p.endswith(("processed", "quarantine"))] == []
    assert len(fs.find(f"{BUCKET}/inbox/processed")) == 4


def test_s3_data_root_without_the_s3_extra_stops_the_load_naming_it() -> None:
    """Without s3fs the definitions do not load, and the last line says which extra to install."""
    code = "import sys; sys.modules['s3fs'] = None; import cx_pipeline.definitions"
    env = {**os.environ, "CX_PIPELINE_DATA_ROOT": "s3://cx-data/data", "CX_PIPELINE_HASH_SECRET": SECRET,
           "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "cx_pipeline.config.data_root.DataRootError: data root s3://cx-data/data is on "
        "s3://, whose filesystem package is not installed: pip install 'cx-pipeline[s3]'")


def test_s3_listings_see_objects_written_by_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inbox sensor and a store live in long-running processes: a file another process writes after the first
    listing must show up in the next one (fsspec caches listings per process)."""
    if importlib.util.find_spec("s3fs") is None or importlib.util.find_spec("moto") is None:
        pytest.skip("needs s3fs and moto[server]: pip install -e '.[test]'")
    import boto3

    from cx_pipeline.fetch.inbox_remote import list_remote
    from cx_pipeline.storage import ParquetStore

    with s3_server(BUCKET) as s3:
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        other = boto3.client("s3", endpoint_url=s3.endpoint_url)  # "another process": not through fsspec
        other.put_object(Bucket=BUCKET, Key="inbox/a.csv", Body=b"id,nps\n1,9\n")
        other.put_object(Bucket=BUCKET, Key="data/events/x/day=2026-11-01/part-0.parquet", Body=b"1")
        assert [f.name for f in list_remote(INBOX)] == ["a.csv"]
        assert ParquetStore(DATA_ROOT).partition_values("events/x", "day") == ["2026-11-01"]
        other.put_object(Bucket=BUCKET, Key="inbox/b.csv", Body=b"id,nps\n2,3\n")
        other.put_object(Bucket=BUCKET, Key="data/events/x/day=2026-11-02/part-0.parquet", Body=b"2")
        assert [f.name for f in list_remote(INBOX)] == ["a.csv", "b.csv"]
        assert ParquetStore(DATA_ROOT).partition_values("events/x", "day") == ["2026-11-01", "2026-11-02"]
