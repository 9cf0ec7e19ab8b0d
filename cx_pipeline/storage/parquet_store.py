"""Parquet datasets under one data root (a local path or any fsspec URL such as ``s3://bucket/prefix``).

Layout: ``<root>/<dataset>/<key>=<value>/part-0.parquet`` (Hive-style, zstd). Every write replaces a
whole partition, so re-materializing never appends twice, and a crash or ``kill -9`` at any instant
never loses the partition or leaves half of it where readers look:

* local filesystems: a journaled transaction (:class:`_Transactions`). The new files are staged under
  ``<root>/.cx_txn/<id>/`` (a hidden folder whose files do not end in ``.parquet``, so neither a
  root-wide ``**/*.parquet`` glob nor a pyarrow dataset sees them); a ``commit.json`` written atomically
  is the commit point; then each file is renamed over its target (``rename(2)`` replaces a file
  atomically, so a reader sees the old or the new ``part-0.parquet``, never none) and stale files are
  removed. Whoever opens the store next finishes a committed transaction whose writer died, or
  discards an uncommitted one: every interrupted state ends as the old or the new version;
* object stores: each partition is one object, ``part-0.parquet``, and a PUT replaces it atomically.

Every file is written with the same Arrow types (``string``, not ``large_string``/``string_view``), so
readers that merge file schemas (pyarrow datasets, DuckDB) read every dataset.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import time
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
TXN_DIR = ".cx_txn"  # hidden: pyarrow datasets skip it, and nothing in it ends in .parquet
ORPHANS_DIR = ".cx_orphans"  # what an older version left in _staging/, kept (it may be a partition's only copy)
LEGACY_STAGING_DIR = "_staging"

log = logging.getLogger(__name__)


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


def _portable_type(t: pa.DataType) -> pa.DataType:
    """The one Arrow type every file uses for ``t``: plain (32-bit offset) strings, binaries and lists.

    Why: polars hands over ``large_string``, pyarrow builds ``string``; Parquet stores both as UTF-8 but
    keeps the Arrow type in the footer, and readers that merge file schemas (``pyarrow.dataset``) refuse a
    dataset whose files disagree (``Unable to merge: Field source has incompatible types``)."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return pa.list_(_portable_field(t.value_field))
    if pa.types.is_list(t):
        return pa.list_(_portable_field(t.value_field))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(_portable_field(t.value_field), t.list_size)
    if pa.types.is_struct(t):
        return pa.struct([_portable_field(t.field(i)) for i in range(t.num_fields)])
    if pa.types.is_map(t):
        return pa.map_(_portable_type(t.key_type), _portable_field(t.item_field), t.keys_sorted)
    if pa.types.is_dictionary(t):
        return _portable_type(t.value_type)
    return t


def _portable_field(f: pa.Field) -> pa.Field:
    return f.with_type(_portable_type(f.type))


def portable_table(table: pa.Table) -> pa.Table:
    """``table`` with every column in its portable type (see :func:`_portable_type`), metadata kept."""
    schema = pa.schema([_portable_field(f) for f in table.schema], metadata=table.schema.metadata)
    return table if schema == table.schema else table.cast(schema)


def parquet_bytes(table: pa.Table, *, row_group_size: int | None = None) -> bytes:
    buf = io.BytesIO()
    pq.write_table(portable_table(table), buf, compression="zstd", row_group_size=row_group_size)
    return buf.getvalue()


class _Transactions:
    """Journaled replacement of files below a local root that a kill at any instant cannot half-do.

    A transaction holds an exclusive ``flock`` on ``.cx_txn/<id>.lock`` for its whole life (the kernel
    releases it when the process dies, however it dies), stages the new files in ``.cx_txn/<id>/``,
    writes ``commit.json`` (the plan: which staged file goes where, which stale files go) atomically,
    applies the plan with renames, and removes its folder. :meth:`recover` — run when a store is opened
    and before every write — takes over transactions whose lock nobody holds any more: a committed
    one is applied (every step is idempotent), an uncommitted one is discarded.
    """

    COMMIT = "commit.json"

    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = f"{root}/{TXN_DIR}"

    # -- one transaction ------------------------------------------------------------------------
    def run(self, puts: Mapping[str, bytes], removes: Iterable[str], prune: Mapping[str, str]) -> None:
        """Put ``puts`` (root-relative path → bytes), delete ``removes`` (root-relative files), then drop
        folders left empty below ``prune`` (root-relative folder → ``"below"`` or ``"including"``)."""
        self.recover()
        txid = uuid.uuid4().hex
        fd = self._lock(txid)
        try:
            folder = f"{self.dir}/{txid}"
            os.mkdir(folder)
            plan = self._stage(folder, puts, removes, prune)
            self._commit(folder, plan)
            self._apply(plan, folder)
            self._finish(folder)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.dir}/{txid}.lock")
            os.close(fd)

    def _lock(self, txid: str) -> int:
        os.makedirs(self.dir, exist_ok=True)
        tmp = f"{self.dir}/{txid}.lock.new"
        while True:
            fd = os.open(tmp, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                os.replace(tmp, f"{self.dir}/{txid}.lock")  # appears under its real name already locked
                return fd
            except FileNotFoundError:  # recovery removed it between our open and flock (see recover): again
                os.close(fd)

    def _stage(self, folder: str, puts: Mapping[str, bytes], removes: Iterable[str],
               prune: Mapping[str, str]) -> dict[str, Any]:
        staged = []
        for i, (rel, data) in enumerate(puts.items()):
            name = f"{i}.staged"
            with open(f"{folder}/{name}", "wb") as fh:
                fh.write(data)
            staged.append([name, rel])
        return {"put": staged, "remove": sorted(set(removes) - set(puts)), "prune": dict(prune)}

    def _commit(self, folder: str, plan: dict[str, Any]) -> None:
        tmp = f"{folder}/{self.COMMIT}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(plan, fh)
        os.replace(tmp, f"{folder}/{self.COMMIT}")  # the commit point

    def _apply(self, plan: dict[str, Any], folder: str) -> None:
        for name, rel in plan["put"]:
            src, dst = f"{folder}/{name}", f"{self.root}/{rel}"
            if os.path.exists(src):  # absent: already renamed by an earlier (interrupted) apply
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.replace(src, dst)
        for rel in plan["remove"]:
            path = f"{self.root}/{rel}"
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        for rel, how in plan["prune"].items():
            _prune_empty(f"{self.root}/{rel}", including=how == "including")

    def _finish(self, folder: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{folder}/{self.COMMIT}")  # first: a half-removed folder is never taken as committed
        shutil.rmtree(folder, ignore_errors=True)

    # -- recovery ---------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Finish or discard every transaction whose writer is gone; returns what was done, one line each."""
        try:
            entries = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        done = []
        for name in sorted(entries):
            path = f"{self.dir}/{name}"
            if "." not in name and os.path.isdir(path):
                outcome = self._take_over(name)
                if outcome:
                    done.append(f"{name}: {outcome}")
            elif name.endswith(".lock") and name[:-5] not in entries:
                self._drop_stray_lock(path, stale_after=0)
            elif name.endswith(".lock.new"):
                # a writer holds it locked from before it renames it; one that can be locked was left by a kill
                # (or is in the instant before its writer's flock, which then starts over: see _lock)
                self._drop_stray_lock(path, stale_after=0)
        for line in done:
            log.warning("data root %s: interrupted write %s", self.root, line)
        return done

    def _take_over(self, txid: str) -> str | None:
        lock_path = f"{self.dir}/{txid}.lock"
        try:
            fd: int | None = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            fd = None  # the writer removes its lock only after its folder: it is gone
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return None  # its writer is alive and still working
            folder = f"{self.dir}/{txid}"
            try:
                with open(f"{folder}/{self.COMMIT}", encoding="utf-8") as fh:
                    plan = json.load(fh)
            except FileNotFoundError:
                plan = None
            if not os.path.isdir(folder):
                return None  # another process took it over first
            if plan is None:
                shutil.rmtree(folder, ignore_errors=True)
                outcome = "not committed, discarded (the previous version stays)"
            else:
                self._apply(plan, folder)
                self._finish(folder)
                outcome = f"committed, completed ({len(plan['put'])} file(s) put, {len(plan['remove'])} removed)"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
            return outcome
        finally:
            if fd is not None:
                os.close(fd)

    @staticmethod
    def _drop_stray_lock(path: str, *, stale_after: float) -> None:
        try:
            if time.time() - os.stat(path).st_mtime < stale_after:
                return
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        except BlockingIOError:
            pass
        finally:
            os.close(fd)


def _prune_empty(folder: str, *, including: bool) -> None:
    """Remove folders left empty below ``folder`` (and ``folder`` itself with ``including``)."""
    if not os.path.isdir(folder):
        return
    for here, _dirs, _files in os.walk(folder, topdown=False):
        if here == folder and not including:
            continue
        with contextlib.suppress(OSError):
            os.rmdir(here)  # fails (kept) when not empty


class ParquetStore:
    """Reads and writes the project's Parquet datasets and raw blobs below ``root``."""

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root, **self.storage_options)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if not self.is_local:  # fsspec shares one filesystem per process and caches listings for its lifetime:
            self.fs.invalidate_cache()  # a new store must see what other processes wrote since
        self._txns = _Transactions(self._root_path) if self.is_local else None
        if self._txns is not None:
            try:
                self.recover()
            except OSError as exc:  # a read-only opener (an analyst's notebook) still reads; a writer retries it
                log.warning("data root %s: could not finish interrupted writes: %s", self.root, exc)

    def recover(self) -> list[str]:
        """Finish or discard writes a killed process left half-done (local roots; object-store PUTs are atomic).

        Also moves what an older version of this store left in ``_staging/`` (where a root-wide glob sees it)
        to ``.cx_orphans/``: a kill there could leave a partition's only copy, so it is kept, not deleted."""
        if self._txns is None:
            return []
        done = self._txns.recover()
        legacy = self.path(LEGACY_STAGING_DIR)
        if os.path.isdir(legacy):
            with contextlib.suppress(OSError):
                os.rmdir(legacy)  # empty: nothing to keep
            if os.path.isdir(legacy):
                dest = self.path(ORPHANS_DIR, f"staging-{uuid.uuid4().hex}")
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    os.replace(legacy, dest)
                    done.append(f"{legacy} moved to {dest}")
                    log.warning("data root %s: leftovers of an interrupted write moved from %s to %s",
                                self.root, legacy, dest)
        return done

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
        self._replace_dir(rel, {PART_FILE: parquet_bytes(table, row_group_size=row_group_size)})
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
                files[f"{folder}/{PART_FILE}"] = parquet_bytes(arrow)
        self._replace_dir(dataset, files)
        return [self.url(dataset, name) for name in files]

    def delete_partition(self, dataset: str, partition: Mapping[str, str]) -> None:
        """Remove one partition (a month that no longer holds any event); absent is fine."""
        rel = "/".join(p for p in (dataset, _partition_dir(partition)) if p)
        target = self.path(rel)
        if not self.fs.exists(target):
            return
        if self._txns is None:
            self.fs.rm(target, recursive=True)
            return
        self._txns.run({}, self._files_below(rel), {rel: "including"})

    def _files_below(self, rel: str) -> list[str]:
        target = self.path(rel)
        if not os.path.isdir(target):
            return []
        out = []
        for here, _dirs, names in os.walk(target):
            out += [os.path.relpath(f"{here}/{n}", self._root_path) for n in names]
        return out

    def has_files(self, dataset: str) -> bool:
        """Whether a dataset holds any Parquet file, stopping at the first one found.

        Why not ``list_files``: a readiness check runs every build, and a full listing grows with the history.
        """
        base = self.path(dataset)
        if not self.fs.exists(base):
            return False
        return any(f.endswith(".parquet") for _root, _dirs, files in self.fs.walk(base) for f in files)

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
        if self._txns is not None:
            puts = {f"{rel}/{name}": data for name, data in files.items()}
            self._txns.run(puts, self._files_below(rel), {rel: "below"})
            os.makedirs(target, exist_ok=True)  # an empty dataset is an empty folder, as before
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
        if self.store.is_local:  # hidden temporary name: a kill leaves nothing a reader or a key lookup sees
            folder, name = path.rsplit("/", 1)
            tmp = f"{folder}/.{name}.tmp-{uuid.uuid4().hex}"
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
