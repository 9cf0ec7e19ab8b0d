"""Issue 16, fail early and clearly: a bad sources file or an unusable or empty data root is named in one
sentence with the remedy, at load or in the first step that sees it, and never retried."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest
from dagster import DagsterEventType, DagsterInstance, materialize
from fsspec.implementations.memory import MemoryFileSystem

from cx_pipeline.config.data_root import DataRootError, check_reachable, open_store, require_touchpoint_events
from cx_pipeline.defs.assets.raw import review_pages
from cx_pipeline.defs.resources import DataStore, ReviewSiteClient, SourcesFile

from .conftest import DAY, REPO_ROOT

BAD_SOURCES = """\
review_sources:
  - id: shop
    brand: Shop
    url: https://shop.example/review/shop.dk
    pages: 3
"""


def _step_failures(result) -> dict[str, str]:
    return {e.step_key: e.step_failure_data.error.message for e in result.all_events
            if e.event_type == DagsterEventType.STEP_FAILURE}


def _retries(result) -> int:
    return sum(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


def test_definitions_validate_names_the_bad_sources_file_and_key(tmp_path) -> None:
    """`dagster definitions validate` (what CI and the UI's reload run) fails on the sources file, not a run."""
    bad = tmp_path / "sources.yaml"
    bad.write_text(BAD_SOURCES, encoding="utf-8")
    env = {**os.environ, "CX_PIPELINE_SOURCES": str(bad), "PYTHONPATH": str(REPO_ROOT),
           "CX_PIPELINE_DATA_ROOT": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    dagster = Path(sys.executable).with_name("dagster")
    out = subprocess.run([str(dagster), "definitions", "validate", "-m", "cx_pipeline.definitions"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert f"{bad}: review source 'shop': unknown key(s) ['pages']" in text
    assert "Validation failed for code location cx_pipeline.definitions" in text


def test_a_configuration_error_in_a_run_fails_at_once_without_retries(tmp_path) -> None:
    """review_pages retries transient HTTP trouble (30 s, then 60 s); a bad sources file is not transient."""
    bad = tmp_path / "sources.yaml"
    bad.write_text(BAD_SOURCES, encoding="utf-8")
    started = time.perf_counter()
    result = materialize([review_pages], partition_key=DAY, instance=DagsterInstance.ephemeral(),
                         raise_on_error=False,
                         resources={"data_store": DataStore(data_root=str(tmp_path / "data")),
                                    "sources": SourcesFile(path=str(bad)),
                                    "review_site_client": ReviewSiteClient(state_dir=str(tmp_path / "http"))})
    seconds = time.perf_counter() - started
    assert not result.success
    assert _retries(result) == 0 and seconds < 25
    (message,) = _step_failures(result).values()
    assert f"{bad}: review source 'shop': unknown key(s) ['pages']" in message


def test_a_data_root_url_without_its_package_fails_at_once_without_retries(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as where the s3 extra is not installed
    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "s3", raising=False)
    result = materialize([review_pages], partition_key=DAY, instance=DagsterInstance.ephemeral(),
                         raise_on_error=False,
                         resources={"data_store": DataStore(data_root="s3://my-bucket/cx"), "sources": SourcesFile(),
                                    "review_site_client": ReviewSiteClient(state_dir=str(tmp_path / "http"))})
    assert not result.success and _retries(result) == 0
    (message,) = _step_failures(result).values()
    assert "data root s3://my-bucket/cx is on s3://, whose filesystem package is not installed" in message
    assert "pip install 'cx-pipeline[s3]'" in message


def _build_scored(tmp_path: Path, data_root: str):
    from cx_pipeline.definitions import build_definitions

    defs = build_definitions(data_root=data_root)
    return defs.resolve_job_def("build_scored").execute_in_process(instance=DagsterInstance.ephemeral(),
                                                                   raise_on_error=False)


def test_an_empty_data_root_is_named_with_the_remedy(tmp_path, monkeypatch) -> None:
    """Before: touchpoint_events and scored_events succeeded with 0 rows and passed their checks, then cx_metrics
    failed with "events need occurred_at or published_at to be placed in periods"."""
    inbox = tmp_path / "inbox"
    monkeypatch.setenv("CX_PIPELINE_INBOX", str(inbox))
    result = _build_scored(tmp_path, str(tmp_path / "data"))
    assert not result.success and _retries(result) == 0
    failures = _step_failures(result)
    assert list(failures) == ["events__touchpoint_events"]
    assert (f"data root {tmp_path / 'data'} holds no ingested review pages or survey files; run ingest_reviews or "
            f"drop a survey file into {inbox}") in failures["events__touchpoint_events"]
    assert "occurred_at" not in "".join(failures.values())
    mats = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION]
    assert mats == []  # nothing downstream ran on an empty table


def test_a_data_root_that_is_a_file_is_named(tmp_path) -> None:
    root = tmp_path / "data"
    root.write_text("not a folder", encoding="utf-8")
    result = _build_scored(tmp_path, str(root))
    failures = _step_failures(result)
    assert list(failures) == ["events__touchpoint_events"] and _retries(result) == 0
    assert f"data root {root} is a file, not a folder" in failures["events__touchpoint_events"]


class _DeniedFileSystem(MemoryFileSystem):
    """An object store that refuses to list, as a bucket without the list permission does."""

    protocol = "denied"

    def ls(self, path, detail=True, **kwargs):
        raise PermissionError(f"Access Denied listing {path}")

    def exists(self, path, **kwargs):
        raise PermissionError(f"Access Denied on {path}")


class _NoBucketFileSystem(MemoryFileSystem):
    protocol = "nobucket"


def test_unreachable_data_roots_are_named_with_the_cause(monkeypatch) -> None:
    import cx_pipeline.config.data_root as data_root

    monkeypatch.setattr(data_root, "BUCKET_PROTOCOLS", {*data_root.BUCKET_PROTOCOLS, "nobucket"})
    fsspec.register_implementation("denied", _DeniedFileSystem, clobber=True)
    fsspec.register_implementation("nobucket", _NoBucketFileSystem, clobber=True)
    with pytest.raises(DataRootError) as err:
        check_reachable(open_store("denied://cx-bucket/prod"))
    assert str(err.value).startswith("data root denied://cx-bucket/prod is unreachable: PermissionError: Access "
                                     "Denied on ")
    with pytest.raises(DataRootError) as err:
        check_reachable(open_store("nobucket://missing-bucket/prod"))
    assert "bucket 'missing-bucket' does not exist" in str(err.value)
    with pytest.raises(DataRootError) as err:
        open_store("nosuchproto://bucket/cx")
    assert str(err.value).startswith("data root nosuchproto://bucket/cx: nosuchproto:// is not a storage protocol")


def test_scoring_without_touchpoint_events_is_named(tmp_path) -> None:
    from cx_pipeline.contract import empty_events

    store = open_store(str(tmp_path))
    store.write_partition("events/review_events", empty_events(), {"day": DAY})
    with pytest.raises(DataRootError) as err:
        require_touchpoint_events(store, None)
    assert "holds no touchpoint events" in str(err.value) and "run build_scored" in str(err.value)
