"""cx.duckdb: one view per stored dataset over a glob of its Parquet files, whatever the partition layout."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from cx_pipeline.report import write_bi_database
from cx_pipeline.report.bi import view_name
from cx_pipeline.storage import ParquetStore


def _store(tmp_path: Path) -> ParquetStore:
    store = ParquetStore(str(tmp_path / "data"))
    metrics = pl.DataFrame({"brand": ["A", "A", "B"], "metric": ["nps", "nps", "csat"],
                            "period": ["2025-03", "2025-04", "2025-04"], "value": [31.0, -13.3, 58.2]})
    store.write_partition("scored/cx_metrics", metrics)
    events = pl.DataFrame({"source": ["trustpilot", "qualtrics", "qualtrics"], "event_id": ["a", "b", "c"]})
    store.write_partitioned("events/touchpoint_events", events, ["source"])
    return store


def test_one_view_per_stored_dataset_in_a_schema_per_layer(tmp_path: Path) -> None:
    store = _store(tmp_path)
    db = write_bi_database(store)
    assert db.path == str(tmp_path / "data" / "cx.duckdb")
    assert db.views == ["events.touchpoint_events", "scored.cx_metrics"]
    assert "scored/key_drivers" in db.skipped  # not stored yet: no view, and said so
    con = duckdb.connect(db.path, read_only=True)
    assert con.execute("SELECT count(*) FROM scored.cx_metrics").fetchone() == (3,)
    assert con.execute("SELECT source, count(*) FROM events.touchpoint_events GROUP BY 1 ORDER BY 1").fetchall() == [
        ("qualtrics", 2), ("trustpilot", 1)]
    assert con.execute("SELECT view_name FROM cx_datasets ORDER BY 1").fetchall() == [
        ("events.touchpoint_events",), ("scored.cx_metrics",)]
    con.close()


def test_views_follow_a_new_partition_layout_and_new_files(tmp_path: Path) -> None:
    """The view is a glob, so re-partitioning a dataset (by month, say) or adding files needs no rebuild."""
    store = _store(tmp_path)
    db = write_bi_database(store)
    monthly = pl.DataFrame({"brand": ["A", "A"], "metric": ["nps", "nps"], "period": ["2025-03", "2025-04"],
                            "value": [1.0, 2.0]})
    store.write_partitioned("scored/cx_metrics", monthly, ["period"])
    con = duckdb.connect(db.path, read_only=True)
    assert con.execute("SELECT sum(value) FROM scored.cx_metrics").fetchone() == (3.0,)
    con.close()


def test_rebuilding_replaces_the_file_while_a_reader_has_it_open(tmp_path: Path) -> None:
    store = _store(tmp_path)
    db = write_bi_database(store)
    reader = duckdb.connect(db.path, read_only=True)
    store.write_partition("scored/key_drivers", pl.DataFrame({"brand": ["A"], "importance": [0.5]}))
    again = write_bi_database(store)
    assert "scored.key_drivers" in again.views
    assert reader.execute("SELECT count(*) FROM scored.cx_metrics").fetchone() == (3,)  # the old file still reads
    reader.close()
    con = duckdb.connect(again.path, read_only=True)
    assert con.execute("SELECT count(*) FROM scored.key_drivers").fetchone() == (1,)
    con.close()
    assert not list((tmp_path / "data").glob(".*.tmp"))


def test_view_names_mirror_the_folders() -> None:
    assert view_name("scored/cx_metrics") == "scored.cx_metrics"
    assert view_name("raw/review_pages") == "raw.review_pages"


def test_a_remote_data_root_is_refused_with_the_reason(tmp_path: Path) -> None:
    from cx_pipeline.report import ReportInputError

    with pytest.raises(ReportInputError, match=r"memory://bucket.*local data root"):
        write_bi_database(ParquetStore("memory://bucket/data"))
