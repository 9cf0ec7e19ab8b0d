"""``cx.duckdb``: one database file with a view per dataset, so BI tools connect to one file.

Views (not tables) over a glob of every Parquet file under each dataset's folder: the file stays a few kB, always
shows the data as stored now, and survives the datasets being re-partitioned. It is rebuilt on each build and
swapped in with a rename, so a BI tool holding the old file open keeps reading it instead of seeing it half-built.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cx_pipeline.pipeline.dataset_catalog import CATALOG
from cx_pipeline.report.data import ReportInputError, tabular_datasets
from cx_pipeline.storage import ParquetStore

DUCKDB_FILE = "cx.duckdb"


@dataclass(frozen=True)
class BiDatabase:
    path: str
    views: list[str]  # schema.view, e.g. scored.cx_metrics
    skipped: dict[str, str]  # dataset → why it has no view


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def view_name(dataset: str) -> str:
    """``scored/cx_metrics`` → ``scored.cx_metrics``: the folder layout becomes DuckDB schemas."""
    layer, _, name = dataset.partition("/")
    return f"{layer}.{name}"


def write_bi_database(store: ParquetStore, path: str | None = None) -> BiDatabase:
    """Write ``<data root>/cx.duckdb`` (or ``path``) with a view per stored dataset; datasets with no file yet
    are listed in ``skipped`` and get their view on the first build after they appear."""
    import duckdb

    if not store.is_local:
        raise ReportInputError(
            f"{store.root}: cx.duckdb needs a local data root (its views read the Parquet files by path); "
            "point DuckDB's httpfs at the same globs instead"
        )
    target = Path(path) if path else Path(store.path(DUCKDB_FILE))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    descriptions = {d.path.rstrip("/"): d.what for d in CATALOG}
    views: list[str] = []
    skipped: dict[str, str] = {}
    con = duckdb.connect(str(tmp))
    try:
        con.execute("CREATE TABLE main.cx_datasets "
                    "(view_name VARCHAR, dataset VARCHAR, parquet_glob VARCHAR, what VARCHAR)")
        for dataset in tabular_datasets():
            if not store.parquet_files(dataset):
                skipped[dataset] = "no Parquet file stored yet"
                continue
            name = view_name(dataset)
            schema = name.split(".", 1)[0]
            glob = f"{Path(store.path(dataset)).resolve()}/**/*.parquet"
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({_sql_str(glob)}, "
                "hive_partitioning = true, union_by_name = true)"
            )
            con.execute(f"COMMENT ON VIEW {name} IS {_sql_str(descriptions.get(dataset, dataset))}")
            con.execute("INSERT INTO main.cx_datasets VALUES (?, ?, ?, ?)",
                        [name, dataset, glob, descriptions.get(dataset, "")])
            views.append(name)
        con.execute("CHECKPOINT")
    except Exception:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, target)
    return BiDatabase(path=str(target), views=views, skipped=skipped)
