"""The data root as an operator sees it: can it be opened, can it be reached, does it hold anything yet.

Why here and not deep in a step: an unreachable or empty root otherwise surfaces late and obscurely (a
0-row table that passes its checks, then "events need occurred_at or published_at" three assets later, or
a retried ImportError). These checks turn each case into one sentence naming the root and what to do, and
are plain functions so the CLI, the code-location load and the assets share them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cx_pipeline.pipeline.events_table import BATCH_DATASETS, EVENTS_DATASET
from cx_pipeline.storage import ParquetStore

#: object stores whose URL's host part is a bucket that must exist before anything is written under it
BUCKET_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "r2"}


class DataRootError(ValueError):
    """The data root cannot serve the request; the message names the root, the cause and the remedy."""


def is_url(root: str) -> bool:
    """A data root with a protocol (s3://, gs://, memory://…) is never a local path."""
    return "://" in root


def open_store(root: str) -> ParquetStore:
    """The store for ``root``, without touching the network: a URL whose filesystem package is not installed
    or an unknown protocol fails here, naming the root, instead of inside a (retried) step."""
    try:
        return ParquetStore(root)
    except ImportError as exc:
        protocol = root.split("://", 1)[0]
        hint = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
                "abfss": "adlfs"}.get(protocol)
        install = f"; install it with pip install {hint}" if hint else ""
        raise DataRootError(f"data root {root}: {protocol}:// needs a package that is not installed ({exc}){install}"
                            ) from None
    except ValueError as exc:
        raise DataRootError(f"data root {root}: {exc} (give a folder or an fsspec URL such as s3://bucket/prefix)"
                            ) from None


def check_reachable(store: ParquetStore) -> None:
    """List the root once: a missing bucket, missing credentials, a refused permission or a wrong endpoint fail
    now with the cause, not as a late storage error. A root folder that does not exist yet is fine (empty)."""
    root, path = store.root, store.path()
    try:
        if store.fs.exists(path):
            if not store.fs.isdir(path):
                raise DataRootError(f"data root {root} is a file, not a folder")
            store.fs.ls(path, detail=False)
            return
        parts = urlsplit(root)
        if parts.scheme in BUCKET_PROTOCOLS:  # the prefix may not exist yet; its bucket must
            bucket = parts.netloc
            if bucket and parts.path.strip("/") and not store.fs.exists(bucket):
                raise DataRootError(f"data root {root} is unreachable: bucket {bucket!r} does not exist "
                                    "(or these credentials cannot see it)")
    except DataRootError:
        raise
    except Exception as exc:  # any failure to list is reported with its cause
        raise DataRootError(f"data root {root} is unreachable: {type(exc).__name__}: {exc}") from None


def require_ingested(store: ParquetStore, inbox: str | None) -> None:
    """Fail with the remedy when nothing was ever ingested into ``store``."""
    if any(store.list_files(ds) for ds in BATCH_DATASETS):
        return
    drop = f"drop a survey file into {inbox}" if inbox else "configure a survey_inbox and drop a survey file into it"
    raise DataRootError(f"data root {store.root} holds no ingested review pages or survey files; "
                        f"run ingest_reviews or {drop}")


def require_touchpoint_events(store: ParquetStore, inbox: str | None) -> None:
    """Fail with the remedy when the analyst table holds no event (scoring would make empty datasets that pass
    their checks and break the metrics later)."""
    require_ingested(store, inbox)
    if not store.list_files(EVENTS_DATASET):
        raise DataRootError(f"data root {store.root} holds no touchpoint events: the ingested batches held none, "
                            "or events/touchpoint_events has not been materialized yet (run build_scored)")


def validate_location(data_root: str, sources_path: str) -> None:
    """What the code location checks when it loads, so ``dagster definitions validate`` (and the UI's reload)
    names a bad sources file or an unusable data root before any run: the sources file parses and validates,
    and the data root's protocol is usable here. Reachability is left to the runs (no network at load)."""
    from cx_pipeline.config.sources_config import load_sources

    load_sources(sources_path)
    open_store(data_root)
