"""Shared fixtures. Real-world fixtures live outside the repo in ../shared/fixtures (never copied in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cx_pipeline.contract.identity import CustomerKeyer

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
TEST_SECRET = "test-secret-not-for-production"


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
