"""Asset checks derived from the contract: one set of rules for every events dataset."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from cx_pipeline.contract import contract_violations

CONTRACT = "contract_schema"
UNIQUE_EVENT_ID = "unique_event_id"


def event_check_specs(asset: AssetKey | str) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            CONTRACT,
            asset=asset,
            blocking=True,
            description="Columns, types, required values and enum values match the touchpoint-event contract.",
        ),
        AssetCheckSpec(
            UNIQUE_EVENT_ID,
            asset=asset,
            blocking=True,
            description="Each event_id appears once (one version per event in this dataset).",
        ),
    ]


def event_check_results(
    asset: AssetKey | str, events: pl.DataFrame, *, unique_on: tuple[str, ...] = ("event_id",)
) -> list[AssetCheckResult]:
    problems = contract_violations(events)
    dupes = events.height - events.select(list(unique_on)).n_unique() if events.height else 0
    return [
        AssetCheckResult(
            asset_key=asset,
            check_name=CONTRACT,
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            metadata={"problems": "; ".join(problems) or "none"},
        ),
        AssetCheckResult(
            asset_key=asset,
            check_name=UNIQUE_EVENT_ID,
            passed=dupes == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={"duplicates": dupes, "rows": events.height},
        ),
    ]


DATASET_SCHEMA = "dataset_schema"


def dataset_check_spec(asset: AssetKey | str | list[str], unique_on: tuple[str, ...] = ()) -> AssetCheckSpec:
    key = " × ".join(unique_on)
    return AssetCheckSpec(
        DATASET_SCHEMA,
        asset=asset,
        blocking=True,
        description="Columns and types match the dataset's declared schema"
        + (f"; one row per {key}." if unique_on else "."),
    )


def dataset_check_result(
    asset: AssetKey | str | list[str],
    frame: pl.DataFrame,
    schema: Mapping[str, pl.DataType],
    unique_on: tuple[str, ...] = (),
) -> AssetCheckResult:
    """One schema (and key uniqueness) check for a non-event dataset, from the schema its module declares."""
    problems = []
    missing = [c for c in schema if c not in frame.columns]
    extra = [c for c in frame.columns if c not in schema]
    if missing:
        problems.append(f"missing column(s) {missing}")
    if extra:
        problems.append(f"unexpected column(s) {extra}")
    for name, dtype in schema.items():
        if name in frame.columns and frame.schema[name] != dtype and frame.schema[name] != pl.Null:
            problems.append(f"{name}: {frame.schema[name]} (declared {dtype})")
    dupes = 0
    if unique_on and frame.height and not missing:
        dupes = frame.height - frame.select(list(unique_on)).n_unique()
        if dupes:
            problems.append(f"{dupes} duplicate row(s) on {list(unique_on)}")
    return AssetCheckResult(
        asset_key=asset,
        check_name=DATASET_SCHEMA,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={"problems": "; ".join(problems) or "none", "rows": frame.height, "duplicates": dupes},
    )
