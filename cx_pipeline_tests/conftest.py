"""Shared fixtures. Real-world fixtures live outside the repo in ../shared/fixtures (never copied in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cx_pipeline.contract.identity import CustomerKeyer

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
TEST_SECRET = "test-secret-not-for-production"
DAY = "2026-11-24"  # the crawl partition the end-to-end runs materialize


def shared_fixture_dir(name: str) -> Path:
    """A folder of ../shared/fixtures, or skip the test with the reason."""
    folder = SHARED_FIXTURES / name
    if not folder.is_dir():
        pytest.skip(f"shared fixtures not available: {folder} is absent (conformance tests need ../shared/fixtures)")
    return folder


@pytest.fixture
def keyer() -> CustomerKeyer:
    return CustomerKeyer(TEST_SECRET)


@pytest.fixture(autouse=True)
def _hash_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_PIPELINE_HASH_SECRET", TEST_SECRET)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory):
    """The demo's jobs end to end on the bundled samples, twice on the same partitions (the second must add
    nothing). One run per test session serves the end-to-end and the report tests."""
    import shutil

    from dagster import DagsterInstance

    from cx_pipeline.definitions import build_definitions
    from cx_pipeline.demo.run_demo import SAMPLE_SURVEYS, run_all_jobs
    from cx_pipeline.demo.sample_site import SampleSiteServer

    tmp = tmp_path_factory.mktemp("e2e")
    inbox = tmp / "inbox"
    inbox.mkdir()
    for f in SAMPLE_SURVEYS.glob("*"):
        shutil.copyfile(f, inbox / f.name)
    mp = pytest.MonkeyPatch()
    mp.setenv("CX_PIPELINE_INBOX", str(inbox))
    mp.setenv("CX_PIPELINE_HASH_SECRET", "e2e-secret")
    with SampleSiteServer() as site:
        mp.setenv("CX_SAMPLE_SITE_URL", site.base_url)
        defs = build_definitions(data_root=str(tmp / "data"))
        instance = DagsterInstance.ephemeral()
        first = run_all_jobs(defs, instance, DAY)
        second = run_all_jobs(defs, instance, DAY)  # re-running the same partitions must not duplicate
        requests = list(site.requests)
    yield {"root": tmp / "data", "first": first, "second": second, "requests": requests, "inbox": inbox,
           "instance": instance}
    mp.undo()
