"""The CX report: built by the pipeline from the sample data, opened in a real headless browser with the network
blocked, and checked number by number against scored/cx_metrics."""

from __future__ import annotations

import html
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from cx_pipeline.cli import main
from cx_pipeline.report import ReportInputError, build_report, load_dataset
from cx_pipeline.report.build import MAX_BYTES
from cx_pipeline.report.html import fmt, interval
from cx_pipeline.report.sections import digits
from cx_pipeline.storage import ParquetStore

pytestmark = pytest.mark.e2e
SECTIONS = ("headline", "drivers", "peaks", "changes", "replies", "coverage")
CHROMIUM = Path("/usr/bin/chromium")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pipeline_root(pipeline_run: dict[str, Any]) -> dict[str, Any]:
    """The build_scored job as the demo runs it (the session's end-to-end run), so the report under test is the one
    the asset wrote."""
    return {"root": pipeline_run["root"], "runs": pipeline_run["first"], "instance": pipeline_run["instance"]}


def _metrics(root: Path) -> pl.DataFrame:
    frame = load_dataset(ParquetStore(str(root)), "scored/cx_metrics")
    assert frame is not None
    return frame


def headline_cells(page_html: str) -> list[tuple[dict[str, str], dict[str, str]]]:
    """(row attributes, {column: shown text}) of every headline table row, parsed from the page source."""
    out = []
    for attrs, body in re.findall(r'<tr ([^>]*data-metric="[^"]*"[^>]*)>(.*?)</tr>', page_html):
        row = dict(re.findall(r'data-([\w-]+)="([^"]*)"', attrs))
        cells = {k: html.unescape(v) for k, v in re.findall(r'<td[^>]*data-col="(\w+)"[^>]*>([^<]*)</td>', body)}
        out.append(({k: html.unescape(v) for k, v in row.items()}, cells))
    return out


def expected_cells(metrics: pl.DataFrame, brand: str, row: dict[str, str]) -> dict[str, str]:
    """What the page must show for a row, formatted the way the report formats cx_metrics."""
    match = metrics.filter(
        (pl.col("brand") == brand) & (pl.col("metric") == row["metric"]) & (pl.col("touchpoint") == row["touchpoint"])
        & (pl.col("source") == row["source"]) & (pl.col("grain") == row["grain"]) & (pl.col("period") == row["period"])
    )
    assert match.height == 1, row
    r = match.row(0, named=True)
    d = digits(row["metric"])
    return {"value": fmt(r["value"], d), "ci": interval(r["ci_low"], r["ci_high"], d), "n": fmt(r["n"]),
            "n_respondents": fmt(r["n_respondents"])}


def test_the_build_scored_job_writes_the_report_and_the_duckdb_file(pipeline_root) -> None:
    root = pipeline_root["root"]
    assert [r.name for r in pipeline_root["runs"] if not r.success] == []
    assert (root / "reports" / "index.html").is_file()
    assert {p.name for p in (root / "reports").glob("*.html")} == {"index.html", "fjord-sko.html", "nordlys-shop.html"}
    assert (root / "cx.duckdb").is_file()
    instance: DagsterInstance = pipeline_root["instance"]
    report = instance.get_latest_materialization_event(AssetKey(["scored", "cx_report"]))
    meta = report.asset_materialization.metadata
    assert isinstance(meta["Nordlys Shop / nps_latest"].value, float)  # numeric: the UI plots it over runs
    assert meta["report"].value == str(root / "reports" / "index.html")
    # the row-count badge counts the stored rows, not the preview frame's
    metrics = instance.get_latest_materialization_event(AssetKey(["scored", "cx_metrics"]))
    assert metrics.asset_materialization.metadata["dagster/row_count"].value == _metrics(root).height


def test_pages_are_self_contained_small_and_free_of_personal_data(pipeline_root) -> None:
    for page in (pipeline_root["root"] / "reports").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert page.stat().st_size < MAX_BYTES, page
        assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', text), f"{page} links outside the file"
        assert "url(http" not in text and "@import" not in text, page
        assert "<script" not in text, page  # nothing to run, so nothing can fail offline
        assert "Sample Customer" not in text and "@example.com" not in text and "192.0.2." not in text, page
        customer_keys = load_dataset(ParquetStore(str(pipeline_root["root"])), "scored/scored_events")
        assert customer_keys is not None
        for key in customer_keys["customer_key"].drop_nulls().unique().head(50):
            assert key not in text, page


def test_every_section_has_a_chart_and_a_question(pipeline_root) -> None:
    for page in ("nordlys-shop.html", "fjord-sko.html"):
        text = (pipeline_root["root"] / "reports" / page).read_text(encoding="utf-8")
        for sid in SECTIONS:
            block = re.search(rf'<section id="{sid}".*?</section>', text, re.S)
            assert block, f"{page}: no section {sid}"
            assert '<svg role="img"' in block.group(0), f"{page}: section {sid} has no chart"


def test_headline_numbers_equal_cx_metrics_in_the_page_source(pipeline_root) -> None:
    root = pipeline_root["root"]
    metrics = _metrics(root)
    text = (root / "reports" / "nordlys-shop.html").read_text(encoding="utf-8")
    rows = headline_cells(text)
    assert {r["metric"] for r, _ in rows} == {"nps", "csat", "ces", "star_rating"}
    for row, cells in rows:
        assert cells == expected_cells(metrics, "Nordlys Shop", row), row
    # every month of the shown series is on the page, none left out
    for metric, touchpoint in {(r["metric"], r["touchpoint"]) for r, _ in rows}:
        months = metrics.filter((pl.col("brand") == "Nordlys Shop") & (pl.col("metric") == metric)
                                & (pl.col("touchpoint") == touchpoint) & (pl.col("source") == "all")
                                & (pl.col("grain") == "month"))
        shown = [r["period"] for r, _ in rows if r["metric"] == metric]
        assert sorted(shown) == sorted(months["period"].to_list())
    assert 'class="lown">low n' in text  # the sample's small months are marked


def test_the_march_to_april_drop_and_the_skipped_tests_are_in_the_report(pipeline_root) -> None:
    text = (pipeline_root["root"] / "reports" / "nordlys-shop.html").read_text(encoding="utf-8")
    changes = re.search(r'<section id="changes".*?</section>', text, re.S).group(0)
    assert "nps fell from 31.03 in 2025-03 to -13.33 in 2025-04" in html.unescape(changes)
    assert "fewer than 20 respondents" in changes and "first period of the series" in changes


def test_the_report_reads_any_partition_layout(pipeline_root, tmp_path: Path) -> None:
    """The scored datasets may be re-partitioned (by month, by source): the loader scans every file under a
    dataset's folder, so the same numbers come out of a different layout."""
    root = pipeline_root["root"]
    copy = tmp_path / "data"
    shutil.copytree(root / "scored", copy / "scored")
    metrics = _metrics(root)
    shutil.rmtree(copy / "scored" / "cx_metrics")
    for (month,), part in metrics.with_columns(pl.col("period").str.slice(0, 7).alias("m")).group_by("m"):
        folder = copy / "scored" / "cx_metrics" / f"month={month}" / "source=x"
        folder.mkdir(parents=True)
        part.drop("m").write_parquet(folder / "data-0.parquet")
    before = build_report(ParquetStore(str(root)), str(tmp_path / "a"), now=NOW)
    after = build_report(ParquetStore(str(copy)), str(tmp_path / "b"), now=NOW)
    for name in ("nordlys-shop.html", "fjord-sko.html"):
        a = (tmp_path / "a" / name).read_text(encoding="utf-8")
        b = (tmp_path / "b" / name).read_text(encoding="utf-8")
        section = re.compile(r'<section id="headline".*?</section>', re.S)
        assert section.search(a).group(0) == section.search(b).group(0)
    assert [b.headline for b in before.brands] == [b.headline for b in after.brands]


def test_a_data_root_without_scored_outputs_names_what_is_missing(tmp_path: Path, capsys) -> None:
    with pytest.raises(ReportInputError, match=r"no scored outputs for scored/scored_events, scored/cx_metrics"):
        build_report(ParquetStore(str(tmp_path)), str(tmp_path / "out"))
    assert main(["report", "--data-root", str(tmp_path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "scored/reply_latency" in err


def test_an_unreadable_dataset_file_is_named(pipeline_root, tmp_path: Path) -> None:
    copy = tmp_path / "data"
    shutil.copytree(pipeline_root["root"] / "scored", copy / "scored")
    bad = copy / "scored" / "key_drivers" / "part-0.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ReportInputError, match=re.escape(str(bad))):
        build_report(ParquetStore(str(copy)), str(tmp_path / "out"))


def test_cli_report_writes_the_same_report_and_prints_the_index(pipeline_root, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["report", "--data-root", str(pipeline_root["root"]), "-o", str(out), "--no-duckdb"]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out / "index.html")
    assert "nordlys-shop.html" in printed.err
    assert (out / "nordlys-shop.html").stat().st_size > 10_000


# -- the browser ---------------------------------------------------------------------------------------------------
def test_the_report_renders_in_headless_chromium_offline(pipeline_root, tmp_path: Path) -> None:
    """Chromium from the OS packages (CI installs it in .ci/run), every non-file request aborted and recorded."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium (CI's .ci/run does)")
    root = pipeline_root["root"]
    metrics = _metrics(root)
    attempted: list[str] = []
    errors: list[str] = []
    started = time.perf_counter()

    def block(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # empty profile: no extensions, no state from an earlier run
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run"],
        )
        try:
            context.route("**/*", block)
            page = context.new_page()
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("request", lambda r: None if r.url.startswith("file://") else attempted.append(r.url))
            # the blocker itself works: a page that does reach out is caught (else "nothing attempted" proves nothing)
            page.set_content('<img src="http://192.0.2.1/probe.png">')
            page.wait_for_timeout(200)
            assert any("192.0.2.1" in url for url in attempted)
            attempted.clear()
            errors.clear()
            page.goto((root / "reports" / "index.html").as_uri())
            links = page.eval_on_selector_all("#brands a", "els => els.map(e => e.getAttribute('href'))")
            assert sorted(links) == ["fjord-sko.html", "nordlys-shop.html"]
            for link in links:
                page.goto((root / "reports" / link).as_uri())
                for sid in SECTIONS:
                    chart = page.locator(f'section[data-section="{sid}"] figure svg.chart').first
                    box = chart.bounding_box()
                    assert box and box["width"] > 200 and box["height"] > 60, f"{link}: {sid} chart not drawn"
                    drawn = chart.evaluate("svg => svg.querySelectorAll('path, rect, use, text').length")
                    assert drawn > 5, f"{link}: {sid} chart is empty"
                rows = page.eval_on_selector_all(
                    "table.headline tbody tr",
                    """trs => trs.map(tr => [Object.assign({}, tr.dataset),
                        Object.fromEntries([...tr.querySelectorAll('td[data-col]')]
                                           .map(td => [td.dataset.col, td.innerText.trim()]))])""",
                )
                brand = "Nordlys Shop" if link == "nordlys-shop.html" else "Fjord Sko"
                assert rows, f"{link}: no headline numbers shown"
                for row, cells in rows:
                    assert cells == expected_cells(metrics, brand, row), (link, row)
        finally:
            context.close()
    assert attempted == [], f"the report tried to reach the network: {attempted}"
    assert errors == []
    print(f"browser check took {time.perf_counter() - started:.1f}s")


def test_the_loader_stacks_files_written_before_and_after_a_new_column(tmp_path: Path) -> None:
    store = ParquetStore(str(tmp_path / "data"))
    old = pl.DataFrame({"brand": ["A"], "period": ["2025-03"], "value": [1.0]})
    new = pl.DataFrame({"brand": ["A"], "period": ["2025-04"], "value": [2.0], "n_effective": [10.0]})
    store.write_partition("scored/cx_metrics", old, {"month": "2025-03"})
    store.write_partition("scored/cx_metrics", new, {"month": "2025-04"})
    frame = load_dataset(store, "scored/cx_metrics")
    assert frame is not None
    assert frame.sort("period")["n_effective"].to_list() == [None, 10.0]
    assert load_dataset(store, "scored/key_drivers") is None
