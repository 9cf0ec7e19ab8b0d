"""The data root as an operator sees it: can it be opened, can it be reached, does it hold anything yet.

Why here and not deep in a step: an unreachable or empty root otherwise surfaces late and obscurely (a
0-row table that passes its checks, then "events need occurred_at or published_at" three assets later, or
a retried ImportError). These checks turn each case into one sentence naming the root and what to do, and
are plain functions so the CLI, the code-location load and the assets share them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import fsspec

from cx_pipeline.pipeline.events_table import BATCH_DATASETS, EVENTS_DATASET
from cx_pipeline.storage import ParquetStore

#: object stores whose URL's host part is a bucket that must exist before anything is written under it
BUCKET_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "r2"}


class DataRootError(ValueError):
    """The data root cannot serve the request; the message names the root, the cause and the remedy."""


def is_url(root: str) -> bool:
    """A data root with a protocol (s3://, gs://, memory://…) is never a local path."""
    return "://" in root


#: fsspec protocols whose filesystem package comes with an extra of this project, else the package to install
STORAGE_EXTRAS = {"s3": "pip install 'cx-pipeline[s3]'", "s3a": "pip install 'cx-pipeline[s3]'",
                  "gs": "pip install gcsfs", "gcs": "pip install gcsfs", "az": "pip install adlfs",
                  "abfs": "pip install adlfs", "abfss": "pip install adlfs"}


def check_protocol(location: str, what: str = "data root") -> None:
    """``location``'s filesystem package is installed (no network): one sentence naming the extra otherwise.

    Why at load: without it fsspec raises inside the first run that touches storage (a traceback per run, after
    the daemon has already queued work); checked when the definitions load, the code location shows the fix."""
    if not is_url(location) or location.startswith("file://"):
        return
    protocol = location.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError:
        fix = STORAGE_EXTRAS.get(protocol, f"install the fsspec filesystem package for {protocol}://")
        raise DataRootError(f"{what} {location} is on {protocol}://, whose filesystem package is not installed: "
                            f"{fix}") from None
    except ValueError:
        raise DataRootError(f"{what} {location}: {protocol}:// is not a storage protocol fsspec knows (give a "
                            "folder or an fsspec URL such as s3://bucket/prefix)") from None


def open_store(root: str) -> ParquetStore:
    """The store for ``root``, without touching the network: a URL whose filesystem package is not installed
    or an unknown protocol fails here, naming the root, instead of inside a (retried) step."""
    check_protocol(root)
    try:
        return ParquetStore(root)
    except (ImportError, ValueError) as exc:
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
    if any(store.has_files(ds) for ds in BATCH_DATASETS):
        return
    drop = f"drop a survey file into {inbox}" if inbox else "configure a survey_inbox and drop a survey file into it"
    raise DataRootError(f"data root {store.root} holds no ingested review pages or survey files; "
                        f"run ingest_reviews or {drop}")


def require_touchpoint_events(store: ParquetStore, inbox: str | None) -> None:
    """Fail with the remedy when the analyst table holds no event (scoring would make empty datasets that pass
    their checks and break the metrics later)."""
    require_ingested(store, inbox)
    if not store.has_files(EVENTS_DATASET):
        raise DataRootError(f"data root {store.root} holds no touchpoint events: the ingested batches held none, "
                            "or events/touchpoint_events has not been materialized yet (run build_scored)")


def validate_location(data_root: str, sources_path: str) -> None:
    """What the code location checks when it loads, so ``dagster definitions validate`` (and the UI's reload)
    names a bad sources file or an unusable data root before any run: the sources file parses and validates,
    and the data root's protocol is usable here. Reachability is left to the runs (no network at load)."""
    from cx_pipeline.config.sources_config import load_sources

    sources = load_sources(sources_path)
    open_store(data_root)
    if sources.survey_inbox is not None:
        check_protocol(sources.survey_inbox.path, "survey inbox")
