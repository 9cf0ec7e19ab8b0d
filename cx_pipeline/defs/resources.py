"""Dagster resources: thin handles on the storage, configuration, secrets and HTTP of the pure code."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dagster import ConfigurableResource, Failure

from cx_pipeline.config import ConfigError, SourcesConfig, load_sources
from cx_pipeline.config.data_root import DataRootError, is_url, open_store
from cx_pipeline.contract.identity import CustomerKeyer
from cx_pipeline.fetch import ClientConfig, HttpClient, LocalPagesClient, PoliteHttpClient
from cx_pipeline.fetch.places_client import with_places_key
from cx_pipeline.storage import ParquetStore, RawArchive

BUNDLED_SOURCES = Path(__file__).resolve().parent.parent / "sample_data" / "sources.yaml"


def http_state_dir(data_root: str) -> str:
    """Where the HTTP client keeps its per-host rate-limit state (a file lock, so it must be a local folder).

    A local data root keeps it under ``_state/http`` so every process on the machine shares it. On an object store
    a lock cannot live with the data: ``CX_PIPELINE_HTTP_STATE`` or the temp folder of the machine; across machines
    the ``review_sites`` concurrency pool (limit 1 in deploy/dagster.yaml) lets one crawl talk to the sites at a time.
    """
    if os.environ.get("CX_PIPELINE_HTTP_STATE"):
        return os.environ["CX_PIPELINE_HTTP_STATE"]
    if is_url(data_root) and not data_root.startswith("file://"):
        return os.path.join(tempfile.gettempdir(), "cx_pipeline_http_state")
    root = data_root.removeprefix("file://")
    return os.path.join(root, "_state", "http")


class DataStore(ConfigurableResource):
    """The data root: a local folder or an fsspec URL (``s3://bucket/prefix``)."""

    data_root: str = "./data"

    def store(self) -> ParquetStore:
        try:
            return open_store(self.data_root)
        except DataRootError as exc:  # configuration, not a transient fault: never retried
            raise Failure(str(exc), allow_retries=False) from None

    def archive(self) -> RawArchive:
        return RawArchive(self.store())


class SourcesFile(ConfigurableResource):
    """The YAML file listing brands, review pages and the survey inbox (validated on load)."""

    path: str = str(BUNDLED_SOURCES)

    def load(self) -> SourcesConfig:
        try:
            return load_sources(self.path)
        except ConfigError as exc:  # a retry cannot fix the file: fail at once with the file and entry named
            raise Failure(str(exc), allow_retries=False) from None


class CustomerKeys(ConfigurableResource):
    """Secret for the keyed customer hash; comes from the environment, never from a file in the repo."""

    secret: str

    def keyer(self) -> CustomerKeyer:
        return CustomerKeyer(self.secret)


class ReviewSiteClient(ConfigurableResource):
    """The polite HTTP client for review sites (robots.txt, per-host rate limit, retries, block detection).

    Only hosts named in the sources file may be fetched or redirected to. ``state_dir`` holds the
    per-host rate-limit state shared by every process of a run (a local folder: see ``http_state_dir``).
    """

    user_agent: str | None = None  # default: the sources file's user_agent / CX_PIPELINE_USER_AGENT
    min_interval_seconds: float = 1.0
    max_attempts: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_bytes: int = 15 * 1024 * 1024
    state_dir: str = os.path.join(tempfile.gettempdir(), "cx_pipeline_http_state")
    #: Places API (New) key for google_places sources; default: CX_PIPELINE_PLACES_API_KEY (sent as a header only)
    places_api_key: str | None = None

    def client(self, sources: SourcesConfig) -> HttpClient:
        return with_places_key(PoliteHttpClient(  # type: ignore[return-value]
            ClientConfig(
                user_agent=self.user_agent or sources.user_agent,
                allowed_hosts=tuple(sorted(sources.allowed_hosts)),
                state_dir=self.state_dir,
                min_interval=self.min_interval_seconds,
                max_attempts=self.max_attempts,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                max_bytes=self.max_bytes,
            )
        ), self.places_api_key)


class LocalReviewSiteClient(ReviewSiteClient):
    """Offline stand-in: serves saved pages from a folder as if they were at ``base_url`` (tests, replays)."""

    folder: str
    base_url: str

    def client(self, sources: SourcesConfig) -> HttpClient:
        return LocalPagesClient.from_folder(self.folder, self.base_url)
