"""Day partitions (inside month folders) for the event tables, and the manifests that tell a downstream step
what changed.

Why the day of the experience: a daily run adds events to the last few weeks (a review is published days after
the experience; a late or edited review lands on its own day). With day partitions a run rewrites those days
and nothing else, so its cost does not grow as a month fills or as years pass; a month-sized partition would be
rewritten whole every day (600 k rows at 20,000 events a day). The month folder above the day keeps a month's
query to one folder for readers that prune by path, and keeps listings short for people browsing the store.
Source is not a level: there are a handful of sources and every query reads most of them.

Layout: ``<dataset>/month=YYYY-MM/day=YYYY-MM-DD/part-0.parquet``: the UTC day of ``occurred_at``, else
``published_at`` (``month=undated/day=undated`` for events with neither), each file sorted by that time. One
scan still reads everything once: ``pl.scan_parquet("<dataset>/**/*.parquet")`` or DuckDB's
``read_parquet('<dataset>/**/*.parquet', hive_partitioning = true)``.

Manifests (``_state/manifests/<dataset>``): one row per day with a token that changes whenever the day is
rewritten. A downstream step stores the tokens it consumed (``_state/consumed/<step>/<dataset>``) and reads
only the days whose token differs: one small file read instead of a probe per partition or a diff of history.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pyarrow as pa

from cx_pipeline.pipeline.dataset_catalog import described_schema
from cx_pipeline.scoring.aggregates import time_base_expr
from cx_pipeline.storage import ParquetStore
from cx_pipeline.storage.parquet_store import PART_FILE

MONTH = "month"
DAY = "day"
UNDATED = "undated"
ROW_GROUP_ROWS = 64_000
MANIFEST_SCHEMA = {"day": pl.String(), "token": pl.String(), "rows": pl.Int64(),
                   "written_at": pl.Datetime("us", "UTC")}


def time_base(columns: Iterable[str]) -> pl.Expr:
    """The experience time of every dataset (``scoring.aggregates.time_base_expr``); a frame with neither time
    column (a mentions frame of an older version) is undated rather than an error."""
    cols = set(columns)
    if not cols & {"occurred_at", "published_at"}:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    return time_base_expr(cols)


def day_expr(columns: Iterable[str]) -> pl.Expr:
    """The storage day (UTC) of an event; ``undated`` when it has no time at all."""
    return time_base(columns).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d").fill_null(UNDATED)


def _partition(day: str) -> dict[str, str]:
    return {MONTH: day[:7] if day != UNDATED else UNDATED, DAY: day}


def _folders(day: str) -> list[str]:
    return [f"{k}={v}" for k, v in _partition(day).items()]


def neighbours(days: Iterable[str]) -> set[str]:
    """The days plus the one before and after each: a local day, week or month cut in a reporting time zone can
    start on the previous UTC day or end on the next."""
    out: set[str] = set()
    for d in days:
        out.add(d)
        if d == UNDATED:
            continue
        at = date.fromisoformat(d)
        out |= {(at - timedelta(days=1)).isoformat(), (at + timedelta(days=1)).isoformat()}
    return out


def _stored(store: ParquetStore, dataset: str) -> dict[str, str]:
    """day → file of a dataset: from the manifest (one small read, no listing of years of folders), or from one
    recursive listing where no manifest was written (data written by an older version)."""
    listed = manifest(store, dataset)
    if listed.height:
        return {d: store.path(dataset, *_folders(d), PART_FILE) for d in listed["day"].to_list()}
    found = {}
    for path in store.list_files(dataset):
        for part in path.split("/"):
            if part.startswith(f"{DAY}="):
                found[part.split("=", 1)[1]] = path
    return found


def day_files(store: ParquetStore, dataset: str) -> dict[str, str]:
    """day → its Parquet file, for readers that pick files themselves."""
    return _stored(store, dataset)


def stored_days(store: ParquetStore, dataset: str) -> list[str]:
    return sorted(_stored(store, dataset))


def scan_days(store: ParquetStore, dataset: str, days: Iterable[str] | None = None, *,
              schema: pa.Schema | None = None) -> pl.LazyFrame | None:
    """Lazy frame over some stored days (all with ``days=None``); None when none of them is stored."""
    stored = _stored(store, dataset)
    wanted = sorted(stored) if days is None else sorted(set(days) & set(stored))
    if not wanted:
        return None
    return store.scan_files([stored[d] for d in wanted], schema=schema)


def read_days(store: ParquetStore, dataset: str, days: Iterable[str], *,
              schema: pa.Schema | None = None) -> pl.DataFrame | None:
    lf = scan_days(store, dataset, days, schema=schema)
    # one chunk: a frame of many small files is otherwise many chunks, which some polars string kernels
    # (concat_str on the streaming engine, polars 2.1) mishandle
    return None if lf is None else lf.collect().rechunk()


def scan_all(store: ParquetStore, dataset: str, *, schema: pa.Schema | None = None) -> pl.LazyFrame | None:
    return store.scan(dataset, schema=schema)


def write_days(store: ParquetStore, dataset: str, frame: pl.DataFrame, days: Iterable[str], *,
               schema: pa.Schema | None = None) -> dict[str, int]:
    """Replace the given days of a dataset with the rows of ``frame`` on them (a day left without rows is
    deleted), each sorted by time; then record new tokens in the manifest. Returns rows per day written.

    The manifest is written after the data; callers record what they consumed only after this returns, so a
    crash in between makes the next run redo work, never skip it.
    """
    days = sorted(set(days))
    if not days:
        return {}
    cols = frame.columns
    keyed = frame.with_columns(_day=day_expr(cols), _t=time_base(cols))
    parts = {k[0]: g for k, g in keyed.filter(pl.col("_day").is_in(days)).group_by("_day")}
    written: dict[str, int] = {}
    for d in days:
        part = parts.get(d)
        if part is not None and part.height:
            part = part.sort("_t", nulls_last=True).drop("_day", "_t")
            store.write_partition(dataset, part, _partition(d), schema=schema or described_schema(part, dataset),
                                  row_group_size=ROW_GROUP_ROWS)
            written[d] = part.height
        else:
            store.delete_partition(dataset, _partition(d))
            written[d] = 0
    _update_manifest(store, dataset, written)
    return written


def delete_all(store: ParquetStore, dataset: str) -> None:
    for d in stored_days(store, dataset):
        store.delete_partition(dataset, _partition(d))
    store.write_partition(_manifest_path(dataset), pl.DataFrame(schema=MANIFEST_SCHEMA))


def _manifest_path(dataset: str) -> str:
    return f"_state/manifests/{dataset}"


def manifest(store: ParquetStore, dataset: str) -> pl.DataFrame:
    stored = store.read(_manifest_path(dataset))
    if stored is None or set(stored.columns) != set(MANIFEST_SCHEMA):
        return pl.DataFrame(schema=MANIFEST_SCHEMA)
    return stored.select(list(MANIFEST_SCHEMA)).cast(MANIFEST_SCHEMA)


def _update_manifest(store: ParquetStore, dataset: str, written: dict[str, int]) -> None:
    now = datetime.now(UTC)
    fresh = pl.DataFrame(
        {"day": list(written), "token": [uuid.uuid4().hex for _ in written], "rows": list(written.values()),
         "written_at": [now] * len(written)}, schema=MANIFEST_SCHEMA,
    ).filter(pl.col("rows") > 0)
    kept = manifest(store, dataset).filter(~pl.col("day").is_in(list(written)))
    store.write_partition(_manifest_path(dataset), pl.concat([kept, fresh]).sort("day"))


def changed_days(store: ParquetStore, dataset: str, consumer: str) -> tuple[set[str], pl.DataFrame]:
    """Days of ``dataset`` written or removed since ``consumer`` last recorded what it consumed, and the current
    manifest (to pass to :func:`mark_consumed` once the consumer's own outputs are written)."""
    current = manifest(store, dataset)
    seen = store.read(_consumed_path(consumer, dataset))
    if seen is None or "token" not in seen.columns:
        return set(current["day"].to_list()) | set(stored_days(store, dataset)), current
    diff = current.join(seen.select("day", "token"), on=["day", "token"], how="anti")
    gone = seen.join(current.select("day"), on="day", how="anti")
    return set(diff["day"].to_list()) | set(gone["day"].to_list()), current


def changed_days_of(store: ParquetStore, datasets: Iterable[str], consumer: str,
                    ) -> tuple[set[str], list[tuple[str, pl.DataFrame]]]:
    """Days rewritten in any of ``datasets`` since ``consumer`` last ran, and (dataset, manifest) pairs to pass to
    :func:`mark_consumed` afterwards (scored events and their mentions are written together, read together)."""
    days: set[str] = set()
    manifests = []
    for dataset in datasets:
        changed, current = changed_days(store, dataset, consumer)
        days |= changed
        manifests.append((dataset, current))
    return days, manifests


def mark_consumed(store: ParquetStore, dataset: str, consumer: str, current: pl.DataFrame) -> None:
    store.write_partition(_consumed_path(consumer, dataset), current.select("day", "token"))


def _consumed_path(consumer: str, dataset: str) -> str:
    return f"_state/consumed/{consumer}/{dataset}"
