"""A crawl that hits a login wall is reported as blocked in the Dagster UI, never as "0 new reviews";
the pages fetched before the wall are kept and parsed."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from cx_pipeline.definitions import build_definitions
from cx_pipeline.storage import ParquetStore, RawArchive

from .fault_server import Fault, FaultServer, make_reviews

pytestmark = pytest.mark.e2e


def test_login_wall_fails_the_crawl_check_and_keeps_the_raw_page(tmp_path, monkeypatch) -> None:
    with FaultServer({"shop.dk": make_reviews(12)}, per_page=5) as site:
        site.add_fault("/review/shop.dk", Fault("login_wall"), page=2)
        sources = tmp_path / "sources.yaml"
        sources.write_text(
            f"""
user_agent: "cx_pipeline-test/1 (+mailto:test@example.com)"
review_sources:
  - id: shop
    brand: Shop
    url: {site.url("shop.dk")}
    max_pages: 10
""",
            encoding="utf-8",
        )
        monkeypatch.setenv("CX_PIPELINE_HASH_SECRET", "blocked-secret")
        defs = build_definitions(data_root=str(tmp_path / "data"), sources_path=str(sources))
        result = defs.resolve_job_def("ingest_reviews").execute_in_process(
            instance=DagsterInstance.ephemeral(), partition_key="2026-11-24", raise_on_error=False
        )
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    blocked = checks[("raw/review_pages", "not_blocked")]
    assert not blocked.passed
    problems = blocked.metadata["problems"].value
    assert "blocked" in problems and "login" in problems.lower() and "page=2" in problems
    assert blocked.severity.value == "ERROR" and blocked.metadata["problem_sources"].value == ["shop"]
    # the check does not hold back what was fetched fine: page 1's reviews are events, the run still ends
    # (a failed ERROR check in the UI, not a failed run that would also cost every other source its day)
    assert result.success
    store = ParquetStore(str(tmp_path / "data"))
    events = store.read("events/review_events")
    assert events is not None and events["record_id"].n_unique() == 5
    pages = store.read("raw/review_pages").sort("page_no")
    assert pages["outcome"].to_list() == ["ok", "blocked"]
    wall = pages.row(1, named=True)
    assert wall["stop_reason"] == "blocked" and wall["raw_key"]
    assert b"password" in RawArchive(store).get(wall["raw_key"]).lower()  # the login page kept for inspection
