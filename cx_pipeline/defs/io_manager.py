"""Dagster IO manager over ``ParquetStore``: asset outputs are polars frames stored as Hive-style Parquet.

Why our own and not dagster-polars: dagster-polars breaks on polars 2 (``scan_parquet(rechunk=…)``
was removed), writes ``<asset>/<partition>.parquet`` rather than ``key=value/`` folders, and cannot
store a multi-partition run. This one is ~100 lines over the store the rest of the code uses anyway.

Layout: asset key ``["events", "review_events"]`` partitioned by day → ``<root>/events/review_events/
day=2026-11-24/part-0.parquet``. Unpartitioned assets may declare ``cx/partition_by`` in their
definition metadata to be split into Hive folders by columns. Assets tagged ``cx/schema:
touchpoint_event`` are written with the contract's arrow schema (column descriptions included).
"""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import ConfigurableIOManager, InputContext, OutputContext

from cx_pipeline.contract import EVENT_SCHEMA, conform, empty_events
from cx_pipeline.pipeline.dataset_catalog import footer_schema
from cx_pipeline.storage import ParquetStore

PARTITION_FOLDER_KEYS = {"daily": "day", "survey_file": "file"}


def _partition_key_name(context: OutputContext | InputContext) -> str:
    pdef = context.asset_partitions_def
    name = getattr(pdef, "name", None)
    if name:
        return PARTITION_FOLDER_KEYS.get(name, name)
    return "day"


def _definition_metadata(context: OutputContext | InputContext) -> dict[str, Any]:
    if isinstance(context, InputContext):
        upstream = context.upstream_output
        return dict(upstream.definition_metadata or {}) if upstream is not None else {}
    return dict(context.definition_metadata or {})


class ParquetIOManager(ConfigurableIOManager):
    """Stores polars DataFrames under ``data_root`` (local path or fsspec URL)."""

    data_root: str

    def _store(self) -> ParquetStore:
        return ParquetStore(self.data_root)

    def _dataset(self, context: OutputContext | InputContext) -> str:
        return "/".join(context.asset_key.path)

    def handle_output(self, context: OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        if isinstance(obj, pl.LazyFrame):
            obj = obj.collect()
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got {type(obj).__name__}"
            )
        store = self._store()
        meta = _definition_metadata(context)
        dataset = self._dataset(context)
        is_events = meta.get("cx/schema") == "touchpoint_event"
        table = conform(obj) if is_events else obj  # the store casts to the schema (descriptions) once
        # column descriptions travel in every file's footer: the contract for events, the catalog otherwise
        schema = EVENT_SCHEMA if is_events else footer_schema(dataset)
        if schema is not None and not is_events and set(obj.columns) != set(schema.names):
            schema = None  # written as it is; the dataset's blocking schema check reports the mismatch
        # dagster/row_count here overrides an asset's own metadata (which may describe a filtered preview frame):
        # the badge in the UI shows the rows actually stored
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) != 1:
                raise ValueError(f"{dataset}: one partition per run expected, got {len(keys)}")
            url = store.write_partition(dataset, table, {_partition_key_name(context): keys[0]}, schema=schema)
            context.add_output_metadata({"path": url, "rows": obj.height,
                                         "dagster/row_count": obj.height})
        elif meta.get("cx/partition_by"):
            files = store.write_partitioned(dataset, table, list(meta["cx/partition_by"]), schema=schema)
            context.add_output_metadata({"path": store.url(dataset), "files": len(files), "rows": obj.height,
                                         "dagster/row_count": obj.height})
        else:
            url = store.write_partition(dataset, table, None, schema=schema)
            context.add_output_metadata({"path": url, "rows": obj.height,
                                         "dagster/row_count": obj.height})

    def load_input(self, context: InputContext) -> pl.DataFrame | pl.LazyFrame:
        store = self._store()
        dataset = self._dataset(context)
        meta = _definition_metadata(context)
        schema = EVENT_SCHEMA if meta.get("cx/schema") == "touchpoint_event" else None
        if context.has_asset_partitions:
            key_name = _partition_key_name(context)
            stored = set(store.partition_values(dataset, key_name))  # one listing, not a probe per key
            wanted = [k for k in context.asset_partition_keys if k in stored]
            lf = store.scan(dataset, [{key_name: k} for k in wanted], schema=schema) if wanted else None
        else:
            lf = store.scan(dataset, schema=schema)
        if lf is None:
            lf = empty_events().lazy() if schema is not None else pl.LazyFrame()
        if context.dagster_type.typing_type is pl.DataFrame:
            return lf.collect()
        return lf
