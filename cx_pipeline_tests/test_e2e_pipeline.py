"""End to end: materialize every asset into a temp dir from the sample site and sample exports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

from cx_pipeline.contract import COLUMN_NAMES, EVENT_SCHEMA, contract_violations
from cx_pipeline.demo.run_demo import SAMPLE_SURVEYS
from cx_pipeline.demo.sample_site import load_apps, load_businesses
from cx_pipeline.storage import ParquetStore

from .conftest import REPO_ROOT

pytestmark = pytest.mark.e2e
SAMPLE_REVIEWS = sum(len(b.reviews) for b in load_businesses().values())
SAMPLE_APP_REVIEWS = sum(len(a.reviews) for a in load_apps().values())  # the App Store feed of the demo app


def test_every_run_succeeds_with_every_check_passing(pipeline_run) -> None:
    """Every check passes except the warning about the sample data's real NPS drop (see the alert test below)."""
    for runs in (pipeline_run["first"], pipeline_run["second"]):
        assert [r.name for r in runs if not r.success] == []
        assert [c for r in runs for c in r.failed_checks] == ["scored/cx_alerts:no_significant_drop (WARN)"]
    assert len(pipeline_run["first"]) == 1 + len(list(SAMPLE_SURVEYS.glob("*.csv"))) + 1


def test_crawler_used_http_with_all_languages(pipeline_run) -> None:
    paths = [p for p, _ in pipeline_run["requests"]]
    assert "/robots.txt" in paths
    review_requests = [p for p in paths if p.startswith("/review/")]
    assert review_requests and all("languages=all" in p for p in review_requests)
    assert all("cx_pipeline" in ua for _, ua in pipeline_run["requests"])


def test_touchpoint_events_hold_each_review_once(pipeline_run) -> None:
    events = ParquetStore(str(pipeline_run["root"])).read("events/touchpoint_events")
    assert contract_violations(events) == []
    assert events["event_id"].n_unique() == events.height
    stars = events.filter(pl.col("metric") == "star_rating")
    assert stars.height == SAMPLE_REVIEWS + SAMPLE_APP_REVIEWS
    assert stars.filter(pl.col("source") == "appstore")["touchpoint"].unique().to_list() == ["app"]
    assert set(stars.filter(pl.col("source") == "trustpilot")["language"].unique()) == {"da", "no", "sv", "en"}
    assert stars.filter(pl.col("reply_text").is_not_null()).height == 5
    surveys = events.filter(pl.col("source_kind") == "survey")
    assert {"nps", "csat"} <= set(surveys["metric"].unique())


def test_outputs_read_back_with_schema_intact(pipeline_run) -> None:
    root = pipeline_run["root"] / "events" / "touchpoint_events"
    lf = pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True)
    schema = lf.collect_schema()
    assert list(schema.names())[: len(COLUMN_NAMES)] == list(COLUMN_NAMES) or set(COLUMN_NAMES) <= set(schema.names())
    assert schema["published_at"] == pl.Datetime("us", "UTC")
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    for field in EVENT_SCHEMA:
        assert table.schema.field(field.name).type == field.type, field.name
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)").fetchall()[0][0]
    assert n == lf.select(pl.len()).collect().item()
    file_schema = ds.dataset(next(root.rglob("*.parquet")), format="parquet").schema
    assert file_schema.field("event_id").metadata[b"description"].startswith(b"Deterministic id")


def test_no_personal_data_in_outputs(pipeline_run) -> None:
    for parquet in pipeline_run["root"].rglob("*.parquet"):
        if "raw" in parquet.relative_to(pipeline_run["root"]).parts[:1]:
            continue
        df = pl.read_parquet(parquet)
        text = str(df.to_dicts())
        assert "Sample Customer" not in text, parquet
        assert "@example.com" not in text, parquet
        assert "192.0.2." not in text, parquet


def test_definitions_validate_from_the_command_line() -> None:
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "CX_PIPELINE_HASH_SECRET": "x"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_touchpoint_mentions_are_materialized_once_per_text(pipeline_run) -> None:
    from cx_pipeline.scoring.text.mentions import MENTION_SCHEMA, MENTION_UNIQUE

    store = ParquetStore(str(pipeline_run["root"]))
    mentions = store.read("scored/touchpoint_mentions")
    scored = store.read("scored/scored_events")
    assert mentions is not None and scored is not None and mentions.height > 50
    assert {c: mentions.schema[c] for c in MENTION_SCHEMA} == MENTION_SCHEMA
    assert mentions.select(MENTION_UNIQUE).is_duplicated().sum() == 0  # the second run added nothing
    assert mentions["method"].str.starts_with("cx-linear@").all()
    assert mentions["text_method_version"].str.starts_with("cx_text@").all()
    # a survey comment is mentioned once per response: at most one event of a record carries mentions
    survey = mentions.filter(pl.col("source") != "trustpilot")
    assert survey.group_by("source", "record_id").agg(pl.col("event_id").n_unique())["event_id"].max() == 1
    # every mention points at a scored event of the same record
    joined = mentions.join(scored.select("event_id", "record_id"), on="event_id", how="left", suffix="_ev")
    assert (joined["record_id"] == joined["record_id_ev"]).all()


def test_the_march_to_april_nps_drop_is_tested_and_alerted(pipeline_run) -> None:
    """The sample NPS falls from +31 (March, n=29) to −13 (April, n=60): it used to be skipped silently (n < 30)."""
    store = ParquetStore(str(pipeline_run["root"]))
    tests = store.read("scored/alert_tests")
    assert tests is not None
    row = tests.filter((pl.col("metric") == "nps") & (pl.col("grain") == "month") & (pl.col("period") == "2025-04")
                       & (pl.col("touchpoint") == "overall")).row(0, named=True)
    assert (row["status"], row["previous_period"], row["n_previous"], row["n_current"]) == ("tested", "2025-03", 29,
                                                                                            60)
    assert (round(row["previous_value"]), round(row["current_value"])) == (31, -13)
    assert row["z"] == pytest.approx(-2.30, abs=0.01) and row["p_value"] == pytest.approx(0.0106, abs=0.0005)
    assert row["flagged"] and row["p_adjusted"] <= 0.05
    skipped = tests.filter(pl.col("status") == "skipped")
    assert skipped.height and skipped["reason"].is_not_null().all()
    alerts = store.read("scored/cx_alerts")
    assert alerts is not None
    assert any("nps fell from 31.03 in 2025-03 to -13.33 in 2025-04" in m for m in alerts["message"])


def test_every_scored_dataset_carries_column_descriptions_in_its_footer(pipeline_run) -> None:
    """An analyst opening any scored file in DuckDB, pyarrow or a BI tool sees what each column means."""
    from cx_pipeline.pipeline.dataset_catalog import CATALOG

    root = pipeline_run["root"]
    checked = 0
    for entry in CATALOG:
        if not entry.path.startswith("scored/") or entry.path == "scored/scored_events":
            continue
        assert entry.extra_descriptions and set(entry.schema) <= set(entry.extra_descriptions), entry.path
        files = sorted((root / entry.path).rglob("*.parquet"))
        assert files, entry.path
        schema = ds.dataset(files[0], format="parquet").schema
        for name in entry.schema:
            meta = schema.field(name).metadata or {}
            assert meta.get(b"description"), (entry.path, name)
        checked += 1
    assert checked >= 7
