"""Dagster resources: thin handles on the storage, configuration, secrets and HTTP of the pure code."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from cx_pipeline.config import SourcesConfig, load_sources
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.storage import ParquetStore, RawArchive

BUNDLED_SOURCES = Path(__file__).resolve().parent.parent / "sample_data" / "sources.yaml"


class DataStore(ConfigurableResource):
    """The data root: a local folder or an fsspec URL (``s3://bucket/prefix``)."""

    data_root: str = "./data"

    def store(self) -> ParquetStore:
        return ParquetStore(self.data_root)

    def archive(self) -> RawArchive:
        return RawArchive(self.store())


class SourcesFile(ConfigurableResource):
    """The YAML file listing brands, review pages and the survey inbox (validated on load)."""

    path: str = str(BUNDLED_SOURCES)

    def load(self) -> SourcesConfig:
        return load_sources(self.path)


class CustomerKeys(ConfigurableResource):
    """Secret for the keyed customer hash; comes from the environment, never from a file in the repo."""

    secret: str

    def keyer(self) -> CustomerKeyer:
        return CustomerKeyer(self.secret)
