"""Build the report: one self-contained HTML page per brand plus an index, from a data root's stored datasets.

The same function serves the ``scored/cx_report`` asset and ``cx-pipeline report``, so the file an analyst gets
from the command line is the one the pipeline writes.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import fsspec
from fsspec.implementations.local import LocalFileSystem

from cx_pipeline.report import sections
from cx_pipeline.report.data import ReportData, ReportInputError, load_report_data
from cx_pipeline.report.html import Cell, esc, fmt, page, table
from cx_pipeline.storage import ParquetStore

REPORTS_DIR = "reports"
INDEX = "index.html"
MAX_BYTES = 5 * 1024 * 1024


@dataclass
class BrandReport:
    brand: str
    file: str
    bytes: int
    headline: dict[str, float] = field(default_factory=dict)


@dataclass
class ReportResult:
    index: str  # path or URL of the index page
    brands: list[BrandReport]
    seconds: float


def slug(brand: str) -> str:
    """A file name for a brand that is safe on every filesystem and in a URL."""
    ascii_name = unicodedata.normalize("NFKD", brand).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "brand"


def render_brand(data: ReportData, brand: str, now: datetime) -> tuple[str, dict[str, float]]:
    head, numbers = sections.headline(data, brand)
    body = "".join([
        head,
        sections.drivers(data, brand),
        sections.peaks(data, brand),
        sections.changes(data, brand),
        sections.replies(data, brand),
        sections.coverage(data, brand, now),
    ])
    nav = [("index.html", "← all brands"), ("#headline", "Headline"), ("#drivers", "What matters"),
           ("#peaks", "Peaks & potholes"), ("#changes", "What changed"), ("#replies", "Replies"),
           ("#coverage", "Coverage & trust")]
    subtitle = f"CX report · built {now:%Y-%m-%d %H:%M} UTC from {data.root}"
    return page(f"{brand} — customer experience", subtitle, nav, body), numbers


def render_index(data: ReportData, reports: list[BrandReport], now: datetime) -> str:
    rows = []
    for r in reports:
        h = r.headline
        rows.append([
            Cell(f'<a href="{esc(r.file)}">{esc(r.brand)}</a>', raw=True),
            Cell(fmt(h.get("nps_latest")), num=True), Cell(fmt(h.get("csat_latest")), num=True),
            Cell(fmt(h.get("ces_latest")), num=True), Cell(fmt(h.get("star_rating_latest"), 2), num=True),
            Cell(fmt(int(h.get("alerts", 0))), num=True, cls="flag" if h.get("alerts") else ""),
            Cell(f"{r.bytes / 1024:.0f} kB", num=True),
        ])
    body = (
        '<section id="brands"><h2>Brands</h2><p class="question">Latest month of each headline metric (each '
        "brand's page has the trend, intervals, n and respondents), and the significant drops of the last run.</p>"
        + table(["brand", "NPS", "CSAT %", "CES % easy", "stars", "alerts", "page size"], rows)
        + "</section>"
        '<section id="bi"><h2>Query the data yourself</h2><p>Every dataset is a view in <code>cx.duckdb</code> at the '
        "data root (open it in DuckDB, DBeaver, Metabase or Superset); the Parquet files are under the same root.</p>"
        "</section>"
    )
    return page("Customer experience reports", f"built {now:%Y-%m-%d %H:%M} UTC from {data.root}", [], body)


def _writer(out_dir: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(out_dir)
    return fs, path.rstrip("/")


def _write(fs: fsspec.AbstractFileSystem, path: str, text: str) -> None:
    """Local files are written beside and renamed, so a browser never opens half a page."""
    data = text.encode("utf-8")
    if isinstance(fs, LocalFileSystem):
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with fs.open(tmp, "wb") as fh:
            fh.write(data)
        fs.mv(tmp, path)
    else:
        with fs.open(path, "wb") as fh:
            fh.write(data)


def build_report(store: ParquetStore, out_dir: str | None = None, *, now: datetime | None = None) -> ReportResult:
    """Write ``<out_dir>/index.html`` and ``<out_dir>/<brand>.html`` (default ``<data root>/reports``).

    Raises ReportInputError naming the data root and the missing datasets when the scored outputs are absent,
    and when a brand's page would exceed 5 MB (it would no longer open comfortably from a mail or a share).
    """
    started = time.perf_counter()
    now = now or sections.built_at()
    data = load_report_data(store)
    brands = data.brands
    if not brands:
        raise ReportInputError(f"{store.root}: the scored datasets hold no brand (no rows in scored/cx_metrics "
                               "or scored/scored_events)")
    target = out_dir or store.url(REPORTS_DIR)
    fs, base = _writer(target)
    fs.makedirs(base, exist_ok=True)
    reports: list[BrandReport] = []
    used: set[str] = set()
    alerts = data["scored/cx_alerts"]
    for brand in brands:
        name = slug(brand)
        while f"{name}.html" in used or f"{name}.html" == INDEX:
            name += "-1"
        used.add(f"{name}.html")
        html, numbers = render_brand(data, brand, now)
        numbers["alerts"] = float(alerts.filter(alerts["brand"] == brand).height)
        size = len(html.encode("utf-8"))
        if size > MAX_BYTES:
            raise ReportInputError(f"{base}/{name}.html: the report of {brand!r} would be {size / 1e6:.1f} MB, "
                                   f"over the {MAX_BYTES / 1e6:.0f} MB limit")
        _write(fs, f"{base}/{name}.html", html)
        reports.append(BrandReport(brand, f"{name}.html", size, numbers))
    _write(fs, f"{base}/{INDEX}", render_index(data, reports, now))
    index = f"{base}/{INDEX}" if isinstance(fs, LocalFileSystem) else f"{target.rstrip('/')}/{INDEX}"
    return ReportResult(index=index, brands=reports, seconds=time.perf_counter() - started)
