"""The survey inbox: sensor → dynamic partitions → archive/processed, and quarantine of unreadable files."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from dagster import DagsterInstance, DagsterRunStatus, SensorResult, SkipReason, build_sensor_context

from cx_pipeline.definitions import build_definitions
from cx_pipeline.defs.automation import survey_inbox_sensor
from cx_pipeline.demo.run_demo import SAMPLE_SURVEYS
from cx_pipeline.storage import ParquetStore, RawArchive

QUALTRICS_SAMPLE = SAMPLE_SURVEYS / "nordlys_shop_qualtrics_2025-03.csv"


def _add_run(instance: DagsterInstance, key: str, status, tags: dict[str, str] | None = None):
    from dagster import DagsterRun

    return instance.add_run(DagsterRun(job_name="ingest_survey_file", status=status,
                                       tags={"dagster/partition": key, **(tags or {})}))


@pytest.fixture
def inbox(tmp_path, monkeypatch):
    folder = tmp_path / "inbox"
    folder.mkdir()
    monkeypatch.setenv("CX_PIPELINE_INBOX", str(folder))
    monkeypatch.delenv("CX_PIPELINE_SOURCES", raising=False)
    return folder


def test_sensor_requests_one_run_per_new_file_and_ignores_redrops(inbox) -> None:
    instance = DagsterInstance.ephemeral()
    shutil.copyfile(QUALTRICS_SAMPLE, inbox / "a.csv")
    shutil.copyfile(QUALTRICS_SAMPLE, inbox / "same-content.csv")  # same bytes: one partition
    result = survey_inbox_sensor(build_sensor_context(instance=instance))
    assert isinstance(result, SensorResult)
    keys = [r.partition_key for r in result.run_requests]
    assert len(keys) == 1 and len(keys[0]) == 16
    assert result.dynamic_partitions_requests[0].partition_keys == keys
    instance.add_dynamic_partitions("survey_file", keys)
    registered_only = survey_inbox_sensor(build_sensor_context(instance=instance))  # no run yet: not "known"
    assert isinstance(registered_only, SensorResult) and registered_only.dynamic_partitions_requests == []
    _add_run(instance, keys[0], DagsterRunStatus.SUCCESS)  # an ingest that succeeded: re-drops are ignored
    again = survey_inbox_sensor(build_sensor_context(instance=instance))
    assert isinstance(again, SkipReason) and "1 file(s) already ingested" in again.skip_message
    changed = QUALTRICS_SAMPLE.read_bytes().replace(b"R_NordlysTest0001x", b"R_NordlysTest9001x")
    (inbox / "a.csv").write_bytes(changed)  # a changed file is a new partition
    third = survey_inbox_sensor(build_sensor_context(instance=instance))
    assert isinstance(third, SensorResult)
    assert len(third.run_requests) == 1 and third.run_requests[0].partition_key not in keys


def test_unreadable_file_is_quarantined_and_others_unaffected(inbox, tmp_path) -> None:
    shutil.copyfile(QUALTRICS_SAMPLE, inbox / "good.csv")
    (inbox / "broken.csv").write_bytes(b"\x00\x01\x02 not a survey export \xff\xfe")
    data_root = tmp_path / "data"
    defs = build_definitions(data_root=str(data_root))
    instance = DagsterInstance.ephemeral()
    from cx_pipeline.defs.automation import register_inbox_files

    keys = register_inbox_files(instance)
    assert len(keys) == 2
    job = defs.resolve_job_def("ingest_survey_file")
    outcomes = {}
    for key in keys:
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
        assert result.success
        outcomes[key] = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    readable = sorted(o["file_readable"] for o in outcomes.values())
    assert readable == [False, True]
    quarantined = list((inbox / "quarantine").glob("*broken.csv"))
    assert len(quarantined) == 1
    reason = json.loads(quarantined[0].with_name(quarantined[0].name + ".reason.json").read_text(encoding="utf-8"))
    assert reason["file"] == "broken.csv" and reason["problem"]
    assert [p.name for p in inbox.iterdir() if p.is_file()] == []  # both files left the inbox, none deleted
    assert len(list((inbox / "processed").rglob("*good.csv"))) == 1
    store = ParquetStore(str(data_root))
    events = store.read("events/survey_events")
    assert events is not None and events["source"].unique().to_list() == ["qualtrics"]
    assert events.filter(pl.col("metric") == "nps").height == 29
    files = store.read("raw/survey_files")
    for raw_key in files["raw_key"]:
        assert RawArchive(store).get(raw_key)  # the broken file's bytes are kept in the raw archive too


@pytest.mark.conformance
def test_every_shared_survey_export_through_the_sensor_path(inbox, tmp_path) -> None:
    from cx_pipeline.contract.identity import CustomerKeyer
    from cx_pipeline.defs.automation import register_inbox_files
    from cx_pipeline.pipeline.parse_files import parse_bytes

    from .conftest import shared_fixture_dir
    from .test_survey_conformance import GAPS

    exports = sorted(p for p in shared_fixture_dir("survey_exports").iterdir() if p.is_file())
    for p in exports:  # copied into a temp inbox for this test only, never into the repo
        shutil.copyfile(p, inbox / p.name)
    defs = build_definitions(data_root=str(tmp_path / "data"))
    instance = DagsterInstance.ephemeral()
    keys = register_inbox_files(instance)
    assert len(keys) == len(exports)
    job = defs.resolve_job_def("ingest_survey_file")
    for key in keys:
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
        assert result.success, key
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        assert failed in ([], ["file_readable"]), (key, failed)
    store = ParquetStore(str(tmp_path / "data"))
    files = store.read("raw/survey_files")
    events = store.read("events/survey_events")
    keyer = CustomerKeyer("test")
    for p in exports:
        row = files.filter(pl.col("file_name") == p.name).row(0, named=True)
        stored = events.filter(pl.col("raw_ref").str.starts_with(row["raw_key"]))
        if p.name in GAPS:  # an expected gap: quarantined with its reason, no events, the bytes still archived
            assert stored.height == 0, p.name
            [reason_file] = (inbox / "quarantine").glob(f"*_{p.name}.reason.json")
            reason = json.loads(reason_file.read_text(encoding="utf-8"))
            assert reason["file"] == p.name and GAPS[p.name].error in reason["problem"], reason
            assert RawArchive(store).get(row["raw_key"]) == p.read_bytes()
            continue
        direct = parse_bytes(p.read_bytes(), location=str(p), keyer=keyer, brand="Nordlys Shop")
        assert stored.height == direct.events.height, p.name
        assert sorted(stored["event_id"].to_list()) == sorted(direct.events["event_id"].to_list()), p.name
    readable = [p.name for p in (inbox / "processed").rglob("*") if p.is_file()]
    assert len(readable) == len(exports) - len(GAPS)


def test_inbox_on_object_storage(tmp_path, monkeypatch) -> None:
    """An fsspec inbox (memory:// here, s3:// in production): same sensor, archive and quarantine rules."""
    import fsspec

    from cx_pipeline.defs.automation import register_inbox_files

    url = f"memory://cx-inbox-{tmp_path.name}"
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{url}/good.csv", QUALTRICS_SAMPLE.read_bytes())
    fs.pipe_file(f"{url}/broken.csv", b"\x00\x01 nothing readable \xff")
    monkeypatch.setenv("CX_PIPELINE_INBOX", url)
    monkeypatch.delenv("CX_PIPELINE_SOURCES", raising=False)
    instance = DagsterInstance.ephemeral()
    result = survey_inbox_sensor(build_sensor_context(instance=instance))
    assert isinstance(result, SensorResult) and len(result.run_requests) == 2
    keys = register_inbox_files(instance)
    defs = build_definitions(data_root=str(tmp_path / "data"))
    readable = []
    for key in keys:
        run = defs.resolve_job_def("ingest_survey_file").execute_in_process(instance=instance, partition_key=key)
        readable += [e.passed for e in run.get_asset_check_evaluations() if e.check_name == "file_readable"]
    assert sorted(readable) == [False, True]
    left = [p.rsplit("/", 1)[-1] for p in fs.find(url)]
    assert "good.csv" not in left and "broken.csv" not in left  # both left the inbox …
    assert any(p.endswith("_good.csv") for p in fs.find(f"{url}/processed"))  # … one archived
    quarantined = fs.find(f"{url}/quarantine")
    assert any(p.endswith("_broken.csv") for p in quarantined) and any(p.endswith(".reason.json") for p in quarantined)
    assert not any(p.endswith("_broken.csv") for p in fs.find(f"{url}/processed"))
    events = ParquetStore(str(tmp_path / "data")).read("events/survey_events")
    assert events.filter(pl.col("metric") == "nps").height == 29


def test_declarative_table_mapping_from_the_sources_file(tmp_path, monkeypatch) -> None:
    """Any CSV through a column mapping in config: here a Delighted-style export with non-standard headers."""
    from cx_pipeline.defs.automation import register_inbox_files

    inbox = tmp_path / "drop"
    inbox.mkdir()
    (inbox / "delighted_2026-11.csv").write_text(
        "Svar-id,Kunde,Dato,Karakter,Hvorfor?\n"
        "d1,ann@example.com,24-11-2026,10,Super levering\n"
        "d2,bo@example.com,23-11-2026,3,Ingen svar fra kundeservice\n"
        "d3,cy@example.com,22-11-2026,8,\n",
        encoding="utf-8",
    )
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"""
survey_inbox:
  path: {inbox}
  default_brand: Nordlys Shop
  rules:
    - match: "delighted_*"
      table_mapping:
        id_column: Svar-id
        customer_column: Kunde
        date_column: Dato
        comment_columns: ["Hvorfor?"]
        questions:
          Karakter: {{metric: nps, scale: [0, 10], touchpoint: overall}}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("CX_PIPELINE_SOURCES", str(sources))
    instance = DagsterInstance.ephemeral()
    keys = register_inbox_files(instance)
    defs = build_definitions(data_root=str(tmp_path / "data"), sources_path=str(sources))
    run = defs.resolve_job_def("ingest_survey_file").execute_in_process(instance=instance, partition_key=keys[0])
    assert all(e.passed for e in run.get_asset_check_evaluations())
    events = ParquetStore(str(tmp_path / "data")).read("events/survey_events").sort("record_id")
    assert events["source"].unique().to_list() == ["csv"]
    assert events["metric"].to_list() == ["nps", "nps", "nps"]
    assert events["score_raw"].to_list() == [10.0, 3.0, 8.0]
    assert events["text"].to_list() == ["Super levering", "Ingen svar fra kundeservice", None]
    assert events["published_at"].dt.date().cast(pl.String).to_list() == ["2026-11-24", "2026-11-23", "2026-11-22"]
    assert "ann@example.com" not in str(events.to_dicts())


def test_bad_table_mapping_is_named(tmp_path) -> None:
    from cx_pipeline.config import ConfigError, parse_sources

    cfg = {
        "survey_inbox": {
            "path": "x",
            "default_brand": "B",
            "rules": [{"match": "*.csv", "table_mapping": {"id_col": "x"}}],
        }
    }
    with pytest.raises(ConfigError, match=r"survey_inbox\.rules\[0\]\.table_mapping: .*id_col"):
        parse_sources(cfg, path="s.yaml")
