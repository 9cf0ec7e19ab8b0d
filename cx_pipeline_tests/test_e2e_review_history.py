"""Review history across days: edits become new versions, removals are soft-deleted, incremental crawls stop
early, and re-parsing the archive needs no HTTP."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
import yaml
from dagster import DagsterInstance

from cx_pipeline.definitions import build_definitions
from cx_pipeline.demo.sample_site import SAMPLE_SITE_DIR, SampleSiteServer
from cx_pipeline.storage import ParquetStore

pytestmark = pytest.mark.e2e
EDITED, REMOVED, REPLIED = "6a1f0c000000000000000101", "6a1f0c000000000000000124", "6a1f0c000000000000000104"
FULL_RESYNC = {"ops": {"raw__review_pages": {"config": {"full_resync": True}}}}


def _edit_site(folder) -> None:
    path = folder / "nordlys-shop.dk.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    reviews = []
    for r in data["reviews"]:
        if r["id"] == REMOVED:
            continue
        if r["id"] == EDITED:
            r = dict(r, text="Opdatering: pakken kom, men den var beskadiget.", updated="2026-11-21T08:00:00Z")
        if r["id"] == REPLIED:
            r = dict(r, reply={"message": "Vi har refunderet beløbet nu.", "published": "2026-11-21T09:00:00Z"})
        reviews.append(r)
    data["reviews"] = reviews
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("history")
    site = tmp / "site"
    shutil.copytree(SAMPLE_SITE_DIR, site)
    mp = pytest.MonkeyPatch()
    mp.setenv("CX_PIPELINE_HASH_SECRET", "history-secret")
    mp.setenv("CX_PIPELINE_INBOX", str(tmp / "empty-inbox"))
    defs = build_definitions(data_root=str(tmp / "data"))
    instance = DagsterInstance.ephemeral()
    ingest = defs.resolve_job_def("ingest_reviews")
    build = defs.resolve_job_def("build_scored")
    out = {"root": tmp / "data"}
    with SampleSiteServer(site) as server:
        mp.setenv("CX_SAMPLE_SITE_URL", server.base_url)
        assert ingest.execute_in_process(instance=instance, partition_key="2026-11-20").success
        _edit_site(site)
    with SampleSiteServer(site) as server:  # the edited site
        mp.setenv("CX_SAMPLE_SITE_URL", server.base_url)
        assert ingest.execute_in_process(instance=instance, partition_key="2026-11-21", run_config=FULL_RESYNC).success
        assert ingest.execute_in_process(instance=instance, partition_key="2026-11-22").success  # incremental
        out["requests_before_reparse"] = len(server.requests)
        assert (
            defs.resolve_job_def("reparse_review_archive")
            .execute_in_process(instance=instance, partition_key="2026-11-20")
            .success
        )
        out["requests_after_reparse"] = len(server.requests)
    assert build.execute_in_process(instance=instance).success
    out["events"] = ParquetStore(str(tmp / "data")).read("events/touchpoint_events")
    out["pages"] = ParquetStore(str(tmp / "data")).read("raw/review_pages")
    yield out
    mp.undo()


def _review(events: pl.DataFrame, review_id: str) -> dict:
    rows = events.filter(pl.col("record_id") == f"trustpilot:{review_id}")
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def test_each_review_once_with_its_latest_version(history) -> None:
    events = history["events"].filter(pl.col("source") == "trustpilot")
    assert events.height == 32 and events["event_id"].n_unique() == 32
    edited = _review(events, EDITED)
    assert edited["text"] == "Opdatering: pakken kom, men den var beskadiget."
    assert edited["updated_at"].isoformat() == "2026-11-21T08:00:00+00:00"
    assert _review(events, REPLIED)["reply_text"] == "Vi har refunderet beløbet nu."


def test_removed_review_is_soft_deleted_not_dropped(history) -> None:
    events = history["events"]
    assert _review(events, REMOVED)["is_removed"] is True
    assert events.filter(pl.col("is_removed")).height == 1


def test_incremental_crawl_stops_at_known_pages(history) -> None:
    pages = history["pages"]
    nordlys = pages.filter(pl.col("source_id") == "nordlys-trustpilot")
    per_day = {d: n for d, n in nordlys.group_by("crawl_started_at").len().sort("crawl_started_at").iter_rows()}
    assert sorted(per_day.values()) == [1, 3, 3]  # full, full resync, then incremental: page 1 only
    stops = set(nordlys.filter(pl.col("page_no") == 1)["stop_reason"])
    assert stops == {"last_page", "known_reached"}


def test_reparse_reads_the_archive_not_the_site(history) -> None:
    assert history["requests_after_reparse"] == history["requests_before_reparse"]
