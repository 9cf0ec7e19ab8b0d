"""Asset checks derived from the contract: one set of rules for every events dataset."""

from __future__ import annotations

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
