"""Reading the datasets the report and the BI database are built from.

Everything goes through :func:`load_dataset`, which scans every Parquet file under a dataset's folder: the
scored datasets may be re-partitioned (by month, by source, …) without the report noticing, so no file name or
partition layout is assumed anywhere in this package.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cx_pipeline.pipeline.dataset_catalog import CATALOG
from cx_pipeline.storage import ParquetStore

# what each section reads; the report cannot be built without these
REQUIRED = (
    "scored/scored_events",
    "scored/cx_metrics",
    "scored/key_drivers",
    "scored/peaks_potholes",
    "scored/alert_tests",
    "scored/cx_alerts",
    "scored/reply_latency",
)
# read when present: a data root without them still gets a report, with the part they feed left out
OPTIONAL = ("scored/touchpoint_mentions", "raw/review_pages", "raw/survey_files")


class ReportInputError(RuntimeError):
    """The data root cannot feed a report; the message names the data root and what is missing or unreadable."""


def load_dataset(store: ParquetStore, dataset: str) -> pl.DataFrame | None:
    """Every Parquet file under ``<root>/<dataset>/`` as one frame, or None when none is stored.

    One scan over all files first; when the files disagree (an old partition written before a column was added
    next to a new one), they are read one by one and stacked by column name, so a schema change upstream does not
    break the report. A file that cannot be read at all is named in the error.
    """
    files = store.parquet_files(dataset)
    if not files:
        return None
    try:
        lf = store.scan(dataset)
        return None if lf is None else lf.collect()
    except (OSError, pl.exceptions.PolarsError):
        pass
    frames = []
    for path in files:
        try:
            with store.fs.open(path, "rb") as fh:
                frames.append(pl.read_parquet(fh))
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise ReportInputError(f"cannot read {path} (dataset {dataset}): {exc}") from exc
    try:
        return pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise ReportInputError(f"the files of {store.url(dataset)} do not stack into one table: {exc}") from exc


@dataclass
class ReportData:
    """The datasets one report build reads, loaded once and shared by every brand's page."""

    root: str
    frames: dict[str, pl.DataFrame]

    def get(self, dataset: str) -> pl.DataFrame | None:
        return self.frames.get(dataset)

    def __getitem__(self, dataset: str) -> pl.DataFrame:
        return self.frames[dataset]

    @property
    def brands(self) -> list[str]:
        brands: set[str] = set()
        for name in ("scored/cx_metrics", "scored/scored_events"):
            frame = self.frames.get(name)
            if frame is not None and "brand" in frame.columns:
                brands.update(b for b in frame["brand"].unique().to_list() if b is not None)
        return sorted(brands)


def load_report_data(store: ParquetStore) -> ReportData:
    """Load what the report needs, or fail with one message naming the data root and every missing dataset."""
    frames: dict[str, pl.DataFrame] = {}
    missing = []
    for dataset in REQUIRED:
        frame = load_dataset(store, dataset)
        if frame is None:
            missing.append(dataset)
        else:
            frames[dataset] = frame
    if missing:
        raise ReportInputError(
            f"{store.root}: no scored outputs for {', '.join(missing)} (looked for Parquet files under "
            + ", ".join(store.url(d) for d in missing)
            + "); run the build_scored job or `cx-pipeline demo` first"
        )
    for dataset in OPTIONAL:
        frame = load_dataset(store, dataset)
        if frame is not None:
            frames[dataset] = frame
    return ReportData(root=store.root, frames=frames)


def tabular_datasets() -> list[str]:
    """Every Parquet dataset of the catalog (the raw blobs are gzip pages, not tables)."""
    return [d.path.rstrip("/") for d in CATALOG if d.path != "raw/blobs/"]
