from __future__ import annotations

import polars as pl
import pyarrow.dataset as ds
import pytest

from cx_pipeline.storage import ParquetStore, RawArchive, StoreError


def test_partition_replace_never_duplicates(tmp_path) -> None:
    store = ParquetStore(str(tmp_path))
    df = pl.DataFrame({"a": [1, 2, 3]})
    store.write_partition("events/x", df, {"day": "2026-11-24"})
    store.write_partition("events/x", df, {"day": "2026-11-24"})
    store.write_partition("events/x", df.head(1), {"day": "2026-11-25"})
    assert store.read("events/x").height == 4
    assert store.partition_values("events/x", "day") == ["2026-11-24", "2026-11-25"]
    assert (tmp_path / "events/x/day=2026-11-24/part-0.parquet").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cx_txn", "events"]  # no _staging/ beside the data
    assert list((tmp_path / ".cx_txn").iterdir()) == []  # nothing left behind


def test_failed_write_leaves_previous_partition_intact(tmp_path, monkeypatch) -> None:
    store = ParquetStore(str(tmp_path))
    store.write_partition("d", pl.DataFrame({"a": [1, 2]}), {"day": "1"})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("cx_pipeline.storage.parquet_store._Transactions._commit", boom)
    with pytest.raises(OSError):
        store.write_partition("d", pl.DataFrame({"a": [9]}), {"day": "1"})
    monkeypatch.undo()
    assert store.read("d")["a"].to_list() == [1, 2]
    assert len(list(tmp_path.rglob("*.parquet"))) == 1
    ParquetStore(str(tmp_path))  # the next open discards the uncommitted staging
    assert list((tmp_path / ".cx_txn").iterdir()) == []


def test_hive_layout_reads_back_with_pyarrow_dataset(tmp_path) -> None:
    store = ParquetStore(str(tmp_path))
    store.write_partitioned("t", pl.DataFrame({"source": ["a", "b", "a"], "v": [1, 2, 3]}), ["source"])
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["source=a", "source=b"]
    table = ds.dataset(tmp_path / "t", format="parquet").to_table()
    assert sorted(table.column("v").to_pylist()) == [1, 2, 3]


def test_fsspec_url_root(tmp_path) -> None:
    store = ParquetStore("memory://cx-test-bucket/prefix")
    store.write_partition("events/x", pl.DataFrame({"a": [1]}), {"day": "2026-11-24"})
    assert store.url("events/x") == "memory://cx-test-bucket/prefix/events/x"
    assert store.read("events/x")["a"].to_list() == [1]
    key = RawArchive(store).put(b"<html>page</html>")
    assert RawArchive(store).get(key) == b"<html>page</html>"


def test_raw_archive_is_content_addressed_and_verifies(tmp_path) -> None:
    store = ParquetStore(str(tmp_path))
    archive = RawArchive(store)
    k1 = archive.put(b"same")
    assert archive.put(b"same") == k1
    assert k1.startswith("raw/blobs/") and k1.endswith(".gz")
    assert archive.get(k1 + "#reviews[3]") == b"same"
    (tmp_path / k1).write_bytes(__import__("gzip").compress(b"tampered"))
    with pytest.raises(StoreError, match="corrupt"):
        archive.get(k1)
    with pytest.raises(StoreError, match="no blob"):
        archive.get("raw/blobs/00/00.gz")


def test_partition_values_must_be_folder_safe(tmp_path) -> None:
    with pytest.raises(StoreError):
        ParquetStore(str(tmp_path)).write_partition("d", pl.DataFrame({"a": [1]}), {"day": "../x"})


def test_failure_mid_swap_is_completed_by_the_next_open(tmp_path, monkeypatch) -> None:
    import os

    store = ParquetStore(str(tmp_path))
    store.write_partition("d", pl.DataFrame({"a": [1, 2]}), {"day": "1"})
    real_replace = os.replace
    calls = []

    def replace_fails_after_commit(src, dst):
        calls.append(dst)
        if str(dst).endswith("part-0.parquet"):  # the staged → target rename, after the commit point
            raise OSError("crash mid-swap")
        return real_replace(src, dst)

    monkeypatch.setattr("cx_pipeline.storage.parquet_store.os.replace", replace_fails_after_commit)
    with pytest.raises(OSError, match="crash mid-swap"):
        store.write_partition("d", pl.DataFrame({"a": [9]}), {"day": "1"})
    monkeypatch.undo()
    assert store.read("d")["a"].to_list() == [1, 2]  # the old version until someone completes the write
    assert ParquetStore(str(tmp_path)).read("d")["a"].to_list() == [9]  # committed: completed on open
    assert list((tmp_path / ".cx_txn").iterdir()) == []


def test_partitions_from_an_older_contract_read_with_new_columns_null(tmp_path) -> None:
    from datetime import UTC, datetime

    from cx_pipeline.contract import COLUMN_NAMES, EVENT_POLARS_SCHEMA, EVENT_SCHEMA, contract_violations, to_arrow

    row = {c: None for c in COLUMN_NAMES} | {
        "event_id": "e1",
        "record_id": "r",
        "measure_key": "stars",
        "content_hash": "h",
        "source": "trustpilot",
        "source_kind": "review",
        "brand": "B",
        "touchpoint": "overall",
        "taxonomy_version": "1",
        "metric": "star_rating",
        "language_origin": "declared",
        "is_removed": False,
        "source_url": "u",
        "raw_ref": "k#0",
        "parser": "p",
        "schema_version": "1.1",
        "ingested_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    new = pl.DataFrame([row], schema=EVENT_POLARS_SCHEMA).with_columns(location=pl.lit("Aarhus"))
    store = ParquetStore(str(tmp_path))
    store.write_partition("events/x", to_arrow(new), {"day": "2"})
    old = to_arrow(new.with_columns(event_id=pl.lit("e0"))).drop_columns(["location"])  # a 1.0 file
    store.write_partition("events/x", old, {"day": "1"})
    both = store.scan("events/x", schema=EVENT_SCHEMA).collect().sort("event_id")
    assert both["location"].to_list() == [None, "Aarhus"]
    assert contract_violations(both) == []
