"""Issue 15, storage and inbox side: a kill, a hostile file name or a failed run never loses data or passes as success."""

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
