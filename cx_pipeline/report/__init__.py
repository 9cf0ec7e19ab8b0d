"""The CX report (a self-contained HTML page per brand) and the BI database (``cx.duckdb``), from stored outputs.

Pure code, no Dagster: the ``scored/cx_report`` asset, ``cx-pipeline report`` and the tests call the same
functions.
"""

from cx_pipeline.report.bi import DUCKDB_FILE, BiDatabase, write_bi_database
from cx_pipeline.report.build import REPORTS_DIR, BrandReport, ReportResult, build_report
from cx_pipeline.report.data import ReportInputError, load_dataset, load_report_data

__all__ = [
    "DUCKDB_FILE",
    "REPORTS_DIR",
    "BiDatabase",
    "BrandReport",
    "ReportInputError",
    "ReportResult",
    "build_report",
    "load_dataset",
    "load_report_data",
    "write_bi_database",
]
