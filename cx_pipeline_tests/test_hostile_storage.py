"""Issue 15, storage and inbox side: a kill, a hostile file name or a failed run never loses data or passes as ok."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from cx_pipeline.storage import ParquetStore

REPO = Path(__file__).resolve().parents[1]

# A writer in its own process that dies (os._exit, like kill -9: no cleanup, no finally) at one step of a
# partition replacement. argv: root, "<method>:<before|after>" or "replace:<n>" (die at the n-th rename).
_KILLED_WRITER = textwrap.dedent("""
    import os, sys
    import polars as pl
    from cx_pipeline.storage import parquet_store as ps

    root, point = sys.argv[1], sys.argv[2]
    what, when = point.split(":")
    if what == "replace":
        real, calls = os.replace, []
        def replace(src, dst):
            calls.append(dst)
            if len(calls) == int(when):
                os._exit(9)
            return real(src, dst)
        ps.os.replace = replace
    else:
        real_method = getattr(ps._Transactions, what)
        def wrapped(*args, **kwargs):
            if when == "before":
                os._exit(9)
            out = real_method(*args, **kwargs)
            os._exit(9)
        setattr(ps._Transactions, what, wrapped)
    store = ps.ParquetStore(root)
    if sys.argv[3] == "partition":
        store.write_partition("events/survey_events", pl.DataFrame({"v": ["new"] * 5}), {"file": "a"})
    else:
        store.write_partitioned("scored/m", pl.DataFrame({"k": ["x", "y", "y"], "v": ["new"] * 3}), ["k"])
    os._exit(0)
""")


def _run_killed_writer(root: Path, point: str, kind: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(root), point, kind], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 9), done.stderr
    return done.returncode


def _seed(root: Path) -> ParquetStore:
    store = ParquetStore(str(root))
    store.write_partition("events/survey_events", pl.DataFrame({"v": ["old"] * 3}), {"file": "a"})
    store.write_partition("events/survey_events", pl.DataFrame({"v": ["other"] * 2}), {"file": "b"})
    store.write_partitioned("scored/m", pl.DataFrame({"k": ["x", "z"], "v": ["old"] * 2}), ["k"])
    return store


def _parquet_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))


# (kill point, version the next open must show): before the commit point the old version stays, after it
# the new one is completed by whoever opens the store next
PARTITION_KILL_POINTS = [
    ("_lock:before", "old"), ("_lock:after", "old"), ("_stage:before", "old"), ("_stage:after", "old"),
    ("_commit:before", "old"), ("_commit:after", "new"), ("_apply:before", "new"), ("replace:3", "new"),
    ("_apply:after", "new"), ("_finish:before", "new"), ("_finish:after", "new"),
]


@pytest.mark.parametrize(("point", "expected"), PARTITION_KILL_POINTS)
def test_kill_at_each_step_of_a_partition_swap_recovers_old_or_new(tmp_path, point, expected) -> None:
    _seed(tmp_path)
    assert _run_killed_writer(tmp_path, point, "partition") == 9
    # at the instant after the kill a reader never sees the partition missing or doubled
    assert _parquet_files(tmp_path) == [
        "events/survey_events/file=a/part-0.parquet", "events/survey_events/file=b/part-0.parquet",
        "scored/m/k=x/part-0.parquet", "scored/m/k=z/part-0.parquet"]
    store = ParquetStore(str(tmp_path))  # the next open finishes or discards the interrupted write
    a = store.read("events/survey_events", [{"file": "a"}])
    assert a["v"].to_list() == (["old"] * 3 if expected == "old" else ["new"] * 5)
    assert store.read("events/survey_events", [{"file": "b"}])["v"].to_list() == ["other"] * 2
    assert list((tmp_path / ".cx_txn").iterdir()) == []  # no staging leftovers
    assert not (tmp_path / "_staging").exists()
    store.write_partition("events/survey_events", pl.DataFrame({"v": ["next"]}), {"file": "a"})  # writes go on
    assert store.read("events/survey_events")["v"].sort().to_list() == ["next", "other", "other"]


@pytest.mark.parametrize(("point", "expected"), [("_commit:before", "old"), ("replace:3", "new"),
                                                 ("replace:4", "new"), ("_apply:after", "new")])
def test_kill_inside_a_whole_dataset_rewrite_recovers_old_or_new(tmp_path, point, expected) -> None:
    """write_partitioned replaces several Hive folders at once (k=x, k=y new; k=z stale)."""
    _seed(tmp_path)
    _run_killed_writer(tmp_path, point, "partitioned")
    store = ParquetStore(str(tmp_path))
    got = store.read("scored/m").sort("k")
    if expected == "old":
        assert got.rows() == [("x", "old"), ("z", "old")]
    else:
        assert got.rows() == [("x", "new"), ("y", "new"), ("y", "new")]
        assert sorted(p.name for p in (tmp_path / "scored/m").iterdir()) == ["k=x", "k=y"]  # stale k=z gone
    assert list((tmp_path / ".cx_txn").iterdir()) == []


_LOOPING_WRITER = textwrap.dedent("""
    import sys
    import polars as pl
    from cx_pipeline.storage import ParquetStore
    store = ParquetStore(sys.argv[1])
    i = 0
    while True:
        n = 1000 if i % 2 else 2000
        store.write_partition("events/survey_events", pl.DataFrame({"v": [i] * n}), {"file": "a"})
        store.write_partitioned("scored/m", pl.DataFrame({"k": ["x", "y"], "v": [i, i]}), ["k"])
        i += 1
        print(i, flush=True)
""")


def test_real_kill_9_of_a_writing_process_never_loses_a_partition(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seen_versions = set()
    for delay in (0.0, 0.013, 0.029, 0.047, 0.071, 0.11, 0.17, 0.23):
        proc = subprocess.Popen([sys.executable, "-c", _LOOPING_WRITER, str(tmp_path)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one complete write, so the partitions exist
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        store = ParquetStore(str(tmp_path))
        a = store.read("events/survey_events")
        assert a.height in (1000, 2000) and a["v"].n_unique() == 1, a.height  # one whole version
        assert a.height == (1000 if a["v"][0] % 2 else 2000)
        seen_versions.add(a["v"][0])
        m = store.read("scored/m")
        assert sorted(m["k"].to_list()) == ["x", "y"]
        assert list((tmp_path / ".cx_txn").iterdir()) == []
        assert _parquet_files(tmp_path) == ["events/survey_events/file=a/part-0.parquet",
                                            "scored/m/k=x/part-0.parquet", "scored/m/k=y/part-0.parquet"]
    assert seen_versions  # the writer really was killed at different points


def test_leftovers_of_the_old_staging_layout_are_moved_out_of_root_wide_globs(tmp_path) -> None:
    """What an older version left in _staging/ (a partition renamed to old-… then a kill) is kept, not globbed."""
    _seed(tmp_path)
    old = tmp_path / "_staging" / "old-1234"
    old.mkdir(parents=True)
    (tmp_path / "events/survey_events/file=b/part-0.parquet").rename(old / "part-0.parquet")
    ParquetStore(str(tmp_path))
    assert not (tmp_path / "_staging").exists()
    assert [p for p in _parquet_files(tmp_path) if "_staging" in p] == []
    kept = list((tmp_path / ".cx_orphans").rglob("part-0.parquet"))
    assert len(kept) == 1 and pl.read_parquet(kept[0])["v"].to_list() == ["other"] * 2


def test_a_live_writers_transaction_is_not_taken_over(tmp_path) -> None:
    """Opening the store while another process is mid-write must not discard that process's staging."""
    import fcntl

    store = _seed(tmp_path)
    txns = store._txns
    assert txns is not None
    fd = txns._lock("feedface")
    try:
        (tmp_path / ".cx_txn" / "feedface").mkdir()
        (tmp_path / ".cx_txn" / "feedface" / "0.staged").write_bytes(b"x")
        assert ParquetStore(str(tmp_path)).recover() == []
        assert (tmp_path / ".cx_txn" / "feedface" / "0.staged").exists()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    done = ParquetStore(str(tmp_path)).recover()
    assert done == [] and list((tmp_path / ".cx_txn").iterdir()) == []  # discarded on that open (uncommitted)


def _datasets(root: Path) -> list[str]:
    """Every dataset folder under the data root: the path down to its first Hive folder or Parquet file."""
    found = set()
    for f in root.rglob("*.parquet"):
        parts = f.relative_to(root).parts
        cut = next(i for i, p in enumerate(parts) if "=" in p or p.endswith(".parquet"))
        found.add("/".join(parts[:cut]))
    return sorted(found)


def test_every_dataset_reads_the_same_with_polars_pyarrow_and_duckdb(pipeline_run) -> None:
    """Item 13: the documented readers agree on every dataset of a clean demo run (file types and Hive columns)."""
    import duckdb
    import pyarrow.dataset as ds

    root = pipeline_run["root"]
    datasets = _datasets(root)
    assert {"events/touchpoint_events", "scored/scored_events", "scored/cx_metrics", "events/survey_events",
            "_state/touchpoint_events_index"} <= set(datasets)
    counts = {}
    for name in datasets:
        folder = root / name
        by_polars = pl.scan_parquet(f"{folder}/**/*.parquet", hive_partitioning=True).collect()
        by_arrow = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
        by_duckdb = duckdb.sql(f"select count(*) from read_parquet('{folder}/**/*.parquet', hive_partitioning=true)")
        counts[name] = (by_polars.height, by_arrow.num_rows, by_duckdb.fetchall()[0][0])
    disagree = {k: v for k, v in counts.items() if len(set(v)) != 1}
    assert disagree == {}
    assert counts["events/touchpoint_events"][0] > 300 and counts["scored/scored_events"][0] > 300


# -- item 9: a killed or failed survey ingest is retried, never "already known" ----------------------------------

QUALTRICS = REPO / "cx_pipeline/sample_data/surveys/nordlys_shop_qualtrics_2025-03.csv"


@pytest.fixture
def inbox(tmp_path, monkeypatch):
    folder = tmp_path / "inbox"
    folder.mkdir()
    monkeypatch.setenv("CX_PIPELINE_INBOX", str(folder))
    monkeypatch.delenv("CX_PIPELINE_SOURCES", raising=False)
    return folder


def _add_run(instance, key: str, status, tags: dict[str, str] | None = None):
    from dagster import DagsterRun

    return instance.add_run(DagsterRun(job_name="ingest_survey_file", status=status,
                                       tags={"dagster/partition": key, **(tags or {})}))


def _tick(instance):
    from dagster import build_sensor_context

    from cx_pipeline.defs.automation import survey_inbox_sensor

    return survey_inbox_sensor(build_sensor_context(instance=instance))


def _dead_worker_token() -> str:
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return f"{socket.gethostname()}:{gone.pid}:12345"


def test_failed_and_dead_ingest_runs_are_retried_with_new_run_keys(inbox) -> None:
    from dagster import DagsterInstance, DagsterRunStatus, SensorResult, SkipReason

    from cx_pipeline.defs.automation import WORKER_TAG, run_worker_token

    shutil_copy(QUALTRICS, inbox / "a.csv")
    instance = DagsterInstance.ephemeral()
    [first] = _tick(instance).run_requests
    key = first.partition_key
    assert first.run_key == f"survey_file:{key}"
    instance.add_dynamic_partitions("survey_file", [key])
    # a run that is going on a live worker: wait for it
    live = _add_run(instance, key, DagsterRunStatus.STARTED, {WORKER_TAG: run_worker_token()})
    waiting = _tick(instance)
    assert isinstance(waiting, SkipReason) and f"run {live.run_id} is STARTED" in waiting.skip_message
    instance.report_run_failed(live)
    retry = _tick(instance)
    assert isinstance(retry, SensorResult) and [r.run_key for r in retry.run_requests] == [f"survey_file:{key}:1"]
    assert retry.dynamic_partitions_requests == []  # already registered
    # STARTED but its worker was killed (kill -9, OOM): reported failed, and retried
    dead = _add_run(instance, key, DagsterRunStatus.STARTED, {WORKER_TAG: _dead_worker_token()})
    again = _tick(instance)
    assert [r.run_key for r in again.run_requests] == [f"survey_file:{key}:2"]
    assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
    # after three failed attempts it waits for a re-drop …
    _add_run(instance, key, DagsterRunStatus.FAILURE)
    gave_up = _tick(instance)
    assert isinstance(gave_up, SkipReason) and "failed 3 times" in gave_up.skip_message
    # … and a re-drop (a newer arrival than the last attempt) redoes it
    time.sleep(0.05)
    (inbox / "a.csv").unlink()
    shutil_copy(QUALTRICS, inbox / "a.csv")
    redo = _tick(instance)
    assert [r.run_key for r in redo.run_requests] == [f"survey_file:{key}:3"]
    _add_run(instance, key, DagsterRunStatus.SUCCESS)
    done = _tick(instance)
    assert isinstance(done, SkipReason) and "1 file(s) already ingested" in done.skip_message


def shutil_copy(src: Path, dest: Path) -> None:
    dest.write_bytes(src.read_bytes())


def test_ingest_killed_after_the_file_left_the_inbox_is_retried_and_ingested(inbox, tmp_path, monkeypatch) -> None:
    """The run dies after survey_files moved the file to processed/ and before its events are stored: the next
    sensor tick retries it (the file is taken from processed/), and its events land."""
    from dagster import DagsterInstance, DagsterRunStatus, SkipReason

    from cx_pipeline.definitions import build_definitions
    from cx_pipeline.storage import parquet_store

    shutil_copy(QUALTRICS, inbox / "a.csv")
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(data_root=str(tmp_path / "data"))
    job = defs.resolve_job_def("ingest_survey_file")
    [req] = _tick(instance).run_requests
    instance.add_dynamic_partitions("survey_file", [req.partition_key])
    real = parquet_store.ParquetStore.write_partition

    def dies_on_events(self, dataset, *args, **kwargs):
        if dataset == "events/survey_events":
            raise OSError("worker killed")
        return real(self, dataset, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(parquet_store.ParquetStore, "write_partition", dies_on_events)
        failed = job.execute_in_process(instance=instance, partition_key=req.partition_key, raise_on_error=False)
    assert not failed.success
    assert [p.name for p in inbox.iterdir() if p.is_file()] == []  # the file already left the inbox
    [retry] = _tick(instance).run_requests  # not "already known"
    assert retry.partition_key == req.partition_key and retry.run_key == f"survey_file:{req.partition_key}:1"
    ok = job.execute_in_process(instance=instance, partition_key=retry.partition_key, tags=retry.tags)
    assert ok.success
    assert ok.dagster_run.tags["dagster/max_runtime_seconds"] == "3600"
    events = ParquetStore(str(tmp_path / "data")).read("events/survey_events")
    assert events.filter(pl.col("metric") == "nps").height == 29
    assert instance.get_run_by_id(ok.run_id).status == DagsterRunStatus.SUCCESS
    assert isinstance(_tick(instance), SkipReason)


# -- item 10: any name the OS accepts ----------------------------------------------------------------------------

LONG_NAME = "nordlys_" + "kundetilfredshed_" * 13 + "tilbagemelding_eksport.csv"  # 255 bytes
LATIN1_NAME = os.fsdecode(b"caf\xe9_export.csv")  # a byte that is not UTF-8, as Linux allows


def test_hostile_file_names_go_through_inbox_sensor_and_assets(inbox, tmp_path) -> None:
    import json

    from dagster import DagsterInstance, SkipReason

    from cx_pipeline.definitions import build_definitions

    assert len(LONG_NAME.encode()) <= 255 and len(LONG_NAME.encode()) > 240
    shutil_copy(QUALTRICS, inbox / LONG_NAME)
    changed = QUALTRICS.read_bytes().replace(b"R_NordlysTest0001x", b"R_NordlysTest9001x")
    (inbox / LATIN1_NAME).write_bytes(changed)
    (inbox / os.fsdecode(b"\xff" * 3 + b"_" + b"x" * 240 + b".csv")).write_bytes(b"\x00\x01 not a survey \xff")
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(data_root=str(tmp_path / "data"))
    job = defs.resolve_job_def("ingest_survey_file")
    requests = _tick(instance).run_requests
    assert len(requests) == 3
    instance.add_dynamic_partitions("survey_file", [r.partition_key for r in requests])
    readable = {}
    for r in requests:
        run = job.execute_in_process(instance=instance, partition_key=r.partition_key, tags=r.tags)
        assert run.success
        [check] = [e for e in run.get_asset_check_evaluations() if e.check_name == "file_readable"]
        readable[r.partition_key] = check.passed
    assert sorted(readable.values()) == [False, True, True]
    assert isinstance(_tick(instance), SkipReason)  # all three done, none skipped for ever
    assert [p for p in inbox.iterdir() if p.is_file()] == []
    files = ParquetStore(str(tmp_path / "data")).read("raw/survey_files")
    assert sorted(files["file_name"].to_list()) == sorted(
        [LONG_NAME, "caf\\xe9_export.csv", "\\xff\\xff\\xff_" + "x" * 240 + ".csv"])
    processed = sorted(p.name for p in (inbox / "processed").rglob("*") if p.is_file())
    assert len(processed) == 2 and all(len(n.encode()) <= 255 - 12 for n in processed)
    assert any(n.endswith("_caf\\xe9_export.csv") for n in processed)
    assert any(n.endswith("~.csv") and "nordlys_kundetilfredshed_" in n for n in processed)  # cut, extension kept
    [reason] = (inbox / "quarantine").glob("*.reason.json")
    info = json.loads(reason.read_text(encoding="utf-8"))
    assert info["file"].startswith("\\xff\\xff\\xff_x") and info["problem"]
    events = ParquetStore(str(tmp_path / "data")).read("events/survey_events")
    assert events.filter(pl.col("metric") == "nps").height == 58  # both readable files, 29 NPS answers each


def test_long_names_on_an_object_store_inbox(tmp_path, monkeypatch) -> None:
    import fsspec
    from dagster import DagsterInstance

    from cx_pipeline.definitions import build_definitions

    url = f"memory://cx-hostile-{tmp_path.name}"
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{url}/{LONG_NAME}", QUALTRICS.read_bytes())
    fs.pipe_file(f"{url}/{'y' * 250}.csv", b"\x00 nothing readable \xff")
    monkeypatch.setenv("CX_PIPELINE_INBOX", url)
    monkeypatch.delenv("CX_PIPELINE_SOURCES", raising=False)
    instance = DagsterInstance.ephemeral()
    requests = _tick(instance).run_requests
    instance.add_dynamic_partitions("survey_file", [r.partition_key for r in requests])
    job = build_definitions(data_root=str(tmp_path / "data")).resolve_job_def("ingest_survey_file")
    for r in requests:
        assert job.execute_in_process(instance=instance, partition_key=r.partition_key).success
    names = [p.rsplit("/", 1)[-1] for p in fs.find(url)]
    assert LONG_NAME not in names and all(len(n.encode()) <= 255 for n in names)
    assert len(fs.find(f"{url}/processed")) == 1 and len(fs.find(f"{url}/quarantine")) == 3
