"""The Dagster Definitions: one place where assets, checks, resources and automation meet.

``workspace.yaml``, ``[tool.dagster]`` and ``[tool.dg]`` in pyproject.toml all point here.
Environment-specific values come from environment variables:

* ``CX_PIPELINE_DATA_ROOT``   data root, a folder or fsspec URL (default ``./data``)
* ``CX_PIPELINE_SOURCES``     the sources YAML (default: the bundled demo sources)
* ``CX_PIPELINE_HASH_SECRET`` secret for customer keys (required to run ingestion)
* ``CX_PIPELINE_USER_AGENT``  the crawler's User-Agent with your contact (overrides the sources file)
* ``CX_PIPELINE_HTTP_STATE``  local folder for the crawler's per-host rate-limit state (default: under a local data
  root, else the temp folder)

The Dagster instance is chosen outside the code, by ``DAGSTER_HOME``: unset or a folder without dagster.yaml gives
the local SQLite instance; ``DAGSTER_HOME=deploy`` (or the Helm chart) the production one on Postgres.
An object-store data root or inbox whose filesystem package is missing stops the load with the extra to install.
"""

from __future__ import annotations

import os

from dagster import Definitions, EnvVar, load_assets_from_modules, multiprocess_executor

from cx_pipeline.config.data_root import validate_location
from cx_pipeline.defs.assets import events, raw, report, scored
from cx_pipeline.defs.automation import (
    build_scored_job,
    daily_review_schedule,
    ingest_reviews_job,
    ingest_survey_file_job,
    rebuild_scored_after_ingest,
    reparse_review_archive_job,
    survey_inbox_sensor,
)
from cx_pipeline.defs.io_manager import ParquetIOManager
from cx_pipeline.defs.resources import (
    BUNDLED_SOURCES,
    CustomerKeys,
    DataStore,
    ReviewSiteClient,
    SourcesFile,
    http_state_dir,
)

DATA_ROOT = os.environ.get("CX_PIPELINE_DATA_ROOT", "./data")

#: Each step in its own process (independent steps run in parallel), forked from a server that imported the code once:
#: with the default `spawn` every step re-imports dagster, polars and this package first (~3 s idle, 15-30 s on a
#: busy 2-core machine, for steps that compute for seconds). Runs started with execute_in_process are unaffected.
EXECUTOR = multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["cx_pipeline.definitions"]}}}
)


def build_definitions(data_root: str = DATA_ROOT, sources_path: str | None = None) -> Definitions:
    sources_path = sources_path or os.environ.get("CX_PIPELINE_SOURCES", str(BUNDLED_SOURCES))
    validate_location(data_root, sources_path)  # a bad sources file fails the load, naming the file and the key
    return Definitions(
        executor=EXECUTOR,
        assets=load_assets_from_modules([raw, events, scored, report]),
        jobs=[ingest_reviews_job, reparse_review_archive_job, ingest_survey_file_job, build_scored_job],
        schedules=[daily_review_schedule],
        sensors=[survey_inbox_sensor, rebuild_scored_after_ingest],
        resources={
            "io_manager": ParquetIOManager(data_root=data_root),
            "data_store": DataStore(data_root=data_root),
            "sources": SourcesFile(path=sources_path),
            "customer_keys": CustomerKeys(secret=EnvVar("CX_PIPELINE_HASH_SECRET")),
            "review_site_client": ReviewSiteClient(state_dir=http_state_dir(data_root)),
        },
    )


defs = build_definitions()
