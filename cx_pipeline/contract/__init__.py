"""The touchpoint-event contract: schema, taxonomy and identity rules shared by every stage."""

from cx_pipeline.contract.event_schema import (
    COLUMN_NAMES,
    COLUMNS,
    EVENT_POLARS_SCHEMA,
    EVENT_SCHEMA,
    SCHEMA_VERSION,
    ContractError,
    conform,
    contract_violations,
    empty_events,
    to_arrow,
)

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "EVENT_POLARS_SCHEMA",
    "EVENT_SCHEMA",
    "SCHEMA_VERSION",
    "ContractError",
    "conform",
    "contract_violations",
    "empty_events",
    "to_arrow",
]
