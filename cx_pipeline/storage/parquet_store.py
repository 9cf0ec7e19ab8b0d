"""Parquet datasets under one data root (a local path or any fsspec URL such as ``s3://bucket/prefix``).

Layout: ``<root>/<dataset>/<key>=<value>/part-0.parquet`` (Hive-style, zstd). Every write replaces a
whole partition atomically, so re-materializing never appends twice and a crash never leaves a
half-written file where readers look:

* local filesystems: the new partition is written under ``<root>/_staging/`` and renamed into place
  (the old one is renamed away first, then deleted; readers may see the partition missing for the
  instant between the two renames, never half of it);
* object stores: each partition is one object, ``part-0.parquet``, and a PUT replaces it atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import fsspec
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

PART_FILE = "part-0.parquet"
# protocols polars reads itself (object_store); others go through fsspec
_POLARS_NATIVE = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "http", "https", "hf"}
STAGING_DIR = "_staging"


class StoreError(RuntimeError):
    pass


def _partition_dir(partition: Mapping[str, str] | None) -> str:
    if not partition:
        return ""
    parts = []
    for key, value in partition.items():
        value = str(value)
        if not value or "/" in value or value.startswith("."):
            raise StoreError(f"partition value {value!r} for {key!r} cannot be a folder name")
        parts.append(f"{key}={value}")
    return "/".join(parts)


class ParquetStore:
    """Reads and writes the project's Parquet datasets and raw blobs below ``root``."""

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root, **self.storage_options)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if not self.is_local:  # fsspec shares one filesystem per process and caches listings for its lifetime:
            self.fs.invalidate_cache()  # a new store must see what other processes wrote since

    # -- paths -------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        rel = "/".join(p.strip("/") for p in parts if p)
        return f"{self._root_path}/{rel}" if rel else self._root_path

    def url(self, *parts: str) -> str:
        """Path as the user would give it (with the protocol) for readers like polars/duckdb."""
        rel = "/".join(p.strip("/") for p in parts if p)
        return f"{self.root}/{rel}" if rel else self.root

    # -- parquet -----------------------------------------------------------------------------
    def write_partition(
        self,
        dataset: str,
        table: pa.Table | pl.DataFrame,
        partition: Mapping[str, str] | None = None,
        *,
        schema: pa.Schema | None = None,
        row_group_size: int | None = None,
    ) -> str:
        """Replace one partition (or the whole unpartitioned dataset) with ``table``; returns its URL.

        ``row_group_size``: rows per row group, so readers can skip groups by their min/max statistics when
        the table is sorted (time-sorted month partitions).
        """
        if isinstance(table, pl.DataFrame):
            table = table.to_arrow()
        if schema is not None:
            table = table.select(schema.names).cast(schema)
        rel = "/".join(p for p in (dataset, _partition_dir(partition)) if p)
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd", row_group_size=row_group_size)
        self._replace_dir(rel, {PART_FILE: buf.getvalue()})
        return self.url(rel, PART_FILE)

    def write_partitioned(
        self,
        dataset: str,
        table: pa.Table | pl.DataFrame,
        partition_by: list[str],
        *,
        schema: pa.Schema | None = None,
    ) -> list[str]:
        """Replace a whole dataset with ``table`` split into Hive folders by ``partition_by`` columns.

        The partition columns stay inside the files too, so every file carries the full schema.
        """
        df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        files: dict[str, bytes] = {}
        if df.height:
            for key, part in df.group_by(partition_by, maintain_order=True):
                key_tuple = key if isinstance(key, tuple) else (key,)
                folder = _partition_dir(dict(zip(partition_by, [str(k) for k in key_tuple], strict=True)))
                arrow = part.to_arrow()
                if schema is not None:
                    arrow = arrow.select(schema.names).cast(schema)
                buf = io.BytesIO()
                pq.write_table(arrow, buf, compression="zstd")
                files[f"{folder}/{PART_FILE}"] = buf.getvalue()
        self._replace_dir(dataset, files)
        return [self.url(dataset, name) for name in files]

    def delete_partition(self, dataset: str, partition: Mapping[str, str]) -> None:
        """Remove one partition (a month that no longer holds any event); absent is fine."""
        target = self.path(dataset, _partition_dir(partition))
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    def list_files(self, dataset: str) -> dict[str, str]:
        """Every Parquet file of a dataset with a change fingerprint (size and ETag or mtime), from one listing.

        Why: deciding which batch partitions changed since the last build must not cost a request per
        partition on an object store; one recursive listing returns all of it.
        """
        base = self.path(dataset)
        if not self.fs.exists(base):
            return {}
        found = self.fs.find(base, detail=True)
        out = {}
        for path, info in found.items():
            if not path.endswith(".parquet"):
                continue
            stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
            out[path] = f"{info.get('size')}:{stamp}"
        return out

    def _replace_dir(self, rel: str, files: Mapping[str, bytes]) -> None:
        target = self.path(rel)
        if self.is_local:
            staging = self.path(STAGING_DIR, uuid.uuid4().hex)
            for name, data in files.items():
                self.fs.makedirs(f"{staging}/{name}".rsplit("/", 1)[0], exist_ok=True)
                with self.fs.open(f"{staging}/{name}", "wb") as fh:
                    fh.write(data)
            if not files:
                self.fs.makedirs(staging, exist_ok=True)
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            trash = None
            if self.fs.exists(target):
                trash = self.path(STAGING_DIR, f"old-{uuid.uuid4().hex}")
                self.fs.mv(target, trash, recursive=True)
            try:
                self.fs.mv(staging, target, recursive=True)
            except BaseException:
                if trash:  # put the previous version back: never leave the partition missing
                    self.fs.mv(trash, target, recursive=True)
                raise
            if trash:
                self.fs.rm(trash, recursive=True)
            return
        # object store: PUT each object (atomic per object), then drop objects no longer present
        existing = set(self.fs.find(target)) if self.fs.exists(target) else set()
        written = set()
        for name, data in files.items():
            dest = f"{target}/{name}"
            with self.fs.open(dest, "wb") as fh:
                fh.write(data)
            written.add(dest)
        for stale in existing - written:
            self.fs.rm(stale)

    def parquet_files(self, dataset: str, partitions: Iterable[Mapping[str, str]] | None = None) -> list[str]:
        if partitions is not None:
            out = []
            for p in partitions:
                candidate = self.path(dataset, _partition_dir(p), PART_FILE)
                if self.fs.exists(candidate):
                    out.append(candidate)
            return out
        base = self.path(dataset)
        if not self.fs.exists(base):
            return []
        return sorted(f for f in self.fs.find(base) if f.endswith(".parquet"))

    def _for_reader(self, paths: list[str]) -> list[str]:
        if self.is_local:
            return paths
        return [p if "://" in p else f"{self._protocol()}://{p}" for p in paths]

    def _protocol(self) -> str:
        return self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]

    def scan(
        self,
        dataset: str,
        partitions: Iterable[Mapping[str, str]] | None = None,
        *,
        schema: pa.Schema | None = None,
    ) -> pl.LazyFrame | None:
        """Lazy frame over the files of a dataset (or of some partitions); None when nothing is stored.

        With ``schema``, files written before a column was added (an older contract version) read
        with that column null instead of failing the scan.
        """
        return self.scan_files(self.parquet_files(dataset, partitions), schema=schema)

    def scan_files(self, files: list[str], *, schema: pa.Schema | None = None,
                   file_path_column: str | None = None) -> pl.LazyFrame | None:
        """Lazy frame over some Parquet files of the store (paths as ``parquet_files``/``list_files`` give them).

        ``file_path_column``: add each row's file under that name (as given in ``files``), so a caller can find
        which files hold some rows from a narrow first pass and read only those in full."""
        if not files:
            return None
        if file_path_column and not (self.is_local or self._protocol() in _POLARS_NATIVE):
            frames = []
            for f in files:
                with self.fs.open(f, "rb") as fh:
                    frames.append(pl.read_parquet(fh).with_columns(pl.lit(f).alias(file_path_column)))
            return pl.concat(frames, how="diagonal_relaxed").lazy()
        if self.is_local or self._protocol() in _POLARS_NATIVE:
            kwargs: dict[str, Any] = {"hive_partitioning": False}
            if file_path_column:
                kwargs["include_file_paths"] = file_path_column
            if self.storage_options:
                kwargs["storage_options"] = self.storage_options
            if schema is not None:
                target = pl.from_arrow(schema.empty_table())
                assert isinstance(target, pl.DataFrame)
                kwargs.update(schema=target.schema, missing_columns="insert")
            lf = pl.scan_parquet(self._for_reader(files), **kwargs)
        else:  # a filesystem only fsspec knows (memory://, ftp://, …): read through it
            frames = []
            for f in files:
                with self.fs.open(f, "rb") as fh:
                    frames.append(pl.read_parquet(fh))
            lf = pl.concat(frames, how="diagonal_relaxed").lazy()
        if schema is not None:
            lf = lf.select(schema.names)
        return lf

    def read(self, dataset: str, partitions: Iterable[Mapping[str, str]] | None = None) -> pl.DataFrame | None:
        lf = self.scan(dataset, partitions)
        return None if lf is None else lf.collect()

    def partition_values(self, dataset: str, key: str) -> list[str]:
        base = self.path(dataset)
        if not self.fs.exists(base):
            return []
        values = []
        for entry in self.fs.ls(base, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(f"{key}="):
                values.append(name.split("=", 1)[1])
        return sorted(values)


class RawArchive:
    """Raw pages and files exactly as fetched, gzip-compressed, keyed by the SHA-256 of the content.

    Content addressing makes storing the same page twice free and lets every event point at the
    exact bytes it was parsed from (``raw_ref``).
    """

    PREFIX = "raw/blobs"

    def __init__(self, store: ParquetStore) -> None:
        self.store = store

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def key_for(cls, sha256: str) -> str:
        return f"{cls.PREFIX}/{sha256[:2]}/{sha256}.gz"

    def put(self, data: bytes) -> str:
        sha = self.digest(data)
        key = self.key_for(sha)
        path = self.store.path(key)
        fs = self.store.fs
        if fs.exists(path):
            return key
        payload = gzip.compress(data, compresslevel=6, mtime=0)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if self.store.is_local:
            tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            with fs.open(tmp, "wb") as fh:
                fh.write(payload)
            fs.mv(tmp, path)
        else:
            with fs.open(path, "wb") as fh:
                fh.write(payload)
        return key

    def get(self, key: str) -> bytes:
        path = self.store.path(key.split("#", 1)[0])
        try:
            with self.store.fs.open(path, "rb") as fh:
                data = gzip.decompress(fh.read())
        except FileNotFoundError as exc:
            raise StoreError(f"raw archive has no blob {key!r} under {self.store.root}") from exc
        if self.digest(data) != key.rsplit("/", 1)[-1].split(".", 1)[0]:
            raise StoreError(f"raw blob {key!r} is corrupt: content hash does not match its key")
        return data
