from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pytest

from cx_pipeline.contract import (
    COLUMN_NAMES,
    EVENT_SCHEMA,
    ContractError,
    conform,
    contract_violations,
    empty_events,
    to_arrow,
)
from cx_pipeline.contract.event_schema import data_dictionary_markdown
from cx_pipeline.contract.identity import CustomerKeyer, MissingSecretError, event_id
from cx_pipeline.contract.taxonomy import taxonomy_version, touchpoints

from .conftest import REPO_ROOT


def _one_event(**overrides: object) -> pl.DataFrame:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    row = {name: None for name in COLUMN_NAMES}
    row.update(
        event_id="e1", record_id="trustpilot:r1", measure_key="stars", content_hash="h", source="trustpilot",
        source_kind="review", brand="B", touchpoint="overall", taxonomy_version="1", metric="star_rating",
        score_raw=4.0, scale_min=1.0, scale_max=5.0, higher_is_better=True, score_norm=0.75, ingested_at=now,
        language_origin="declared", is_removed=False, source_url="http://x", raw_ref="raw#0", parser="p@1",
        schema_version="1.0",
    )
    row.update(overrides)
    return pl.DataFrame([row]).with_columns(pl.col("ingested_at").cast(pl.Datetime("us", "UTC")))


def test_every_column_has_a_description() -> None:
    for field in EVENT_SCHEMA:
        assert field.metadata and field.metadata[b"description"].strip(), field.name


def test_timestamps_are_tz_aware_utc() -> None:
    ts = [f for f in EVENT_SCHEMA if pa.types.is_timestamp(f.type)]
    assert {f.name for f in ts} == {"occurred_at", "published_at", "updated_at", "ingested_at", "replied_at"}
    assert all(f.type.tz == "UTC" for f in ts)


def test_docs_dataset_catalog_is_current() -> None:
    from cx_pipeline.pipeline.dataset_catalog import catalog_markdown

    doc = (REPO_ROOT / "docs" / "datasets.md").read_text(encoding="utf-8")
    assert doc == catalog_markdown(), "docs/datasets.md is stale: run `cx-pipeline dictionary`"


def test_docs_data_dictionary_matches_schema() -> None:
    doc = (REPO_ROOT / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert doc == data_dictionary_markdown(), "docs/data_dictionary.md is stale: run `cx-pipeline dictionary`"
    for name in COLUMN_NAMES:
        assert f"| `{name}` |" in doc


def test_conform_accepts_a_valid_event_and_keeps_descriptions() -> None:
    table = to_arrow(_one_event())
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=False)
    assert table.schema.field("score_norm").metadata[b"description"].startswith(b"Direction-aware")


def test_conform_rejects_missing_and_bad_values() -> None:
    with pytest.raises(ContractError, match="missing contract column"):
        conform(_one_event().drop("brand"))
    problems = contract_violations(_one_event(metric="stars", score_norm=1.5))
    assert any("metric" in p and "stars" in p for p in problems)
    assert any("score_norm outside 0..1" in p for p in problems)
    problems = contract_violations(_one_event(brand=None))
    assert problems == ["column 'brand' has 1 null(s) but is required"]


def test_empty_events_has_the_contract_schema() -> None:
    assert empty_events().columns == list(COLUMN_NAMES)
    assert contract_violations(empty_events()) == []


def test_event_id_is_deterministic_and_measure_specific() -> None:
    a = event_id("qualtrics", "qualtrics:R_1", "Q1")
    assert a == event_id("qualtrics", "qualtrics:R_1", "Q1")
    assert a != event_id("qualtrics", "qualtrics:R_1", "Q2")
    assert len(a) == 32


def test_customer_key_is_hmac_of_normalised_identifier() -> None:
    keyer = CustomerKeyer("s3cret")
    expected = hmac.new(b"s3cret", b"ann@example.com", hashlib.sha256).hexdigest()[:32]
    assert keyer.key("  Ann@Example.com ") == expected
    assert CustomerKeyer("other").key("ann@example.com") != expected
    assert keyer.key(None) is None and keyer.key("  ") is None


def test_customer_key_secret_must_come_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CX_PIPELINE_HASH_SECRET", raising=False)
    with pytest.raises(MissingSecretError, match="CX_PIPELINE_HASH_SECRET"):
        CustomerKeyer.from_env()


def test_taxonomy_is_versioned_and_complete() -> None:
    assert taxonomy_version() == "1"
    assert set(touchpoints()) == {
        "overall", "website", "delivery", "customer_service", "product", "price", "returns", "store", "app", "other",
    }


def test_batch_customer_keys_equal_single_keys_for_short_and_long_secrets() -> None:
    values = ["ann@example.com", "trustpilot-consumer:5faa6d39", "æøå@example.dk", "x"]
    for secret in ("s3cret", "k" * 100):  # RFC 2104: secrets longer than a block are hashed first
        keyer = CustomerKeyer(secret)
        assert keyer.keys(values) == [keyer.key(v) for v in values]
        assert keyer.keys(values)[0] == hmac.new(secret.encode(), b"ann@example.com", hashlib.sha256).hexdigest()[:32]
