"""Re-parse throughput of archived review pages: our parsers vs the naive BeautifulSoup baseline.

Rebuilding events from the raw archive (new parser version, fixed bug) re-parses every stored page,
so pages/s per core decides how long a rebuild takes. Both sides run in this process, on the same
pages, interleaved, single-threaded (= per core):

* baseline: ``BeautifulSoup(page, "html.parser")`` + find the ``__NEXT_DATA__`` script + ``json.loads``
  (it does not even build measures: the real cost of a naive parser is higher);
* ours: ``TrustpilotFormat.parse`` (regex slice + json.loads + measures frame + aggregates).

Also reports the schema.org (jsonld / microdata) parsers' pages/s on their fixtures.
Usage: ``.venv/bin/python bench/bench_reparse.py [--repeat 20] [--out bench/results/reparse.md]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bs4 import BeautifulSoup

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cx_pipeline.sources.registry import get_format  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures"


def baseline(page: bytes) -> dict:
    soup = BeautifulSoup(page, "html.parser")
    script = soup.find("script", id="__NEXT_DATA__")
    assert script is not None
    return json.loads(script.string)


def _time_pages(fn: Callable[[bytes], object], pages: list[bytes], repeat: int) -> list[float]:
    """Seconds per pass over all pages, one entry per repeat."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        for p in pages:
            fn(p)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="passes over the page set for our parsers")
    ap.add_argument("--baseline-repeat", type=int, default=3, help="passes for the (slow) baseline")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "reparse.md")
    args = ap.parse_args()

    tp_dir = FIXTURES / "trustpilot_html"
    if not tp_dir.is_dir():
        sys.exit(f"fixtures absent: {tp_dir}")
    tp_pages = [p.read_bytes() for p in sorted(tp_dir.glob("*.html"))]
    trustpilot = get_format("trustpilot")

    def ours(page: bytes) -> object:
        return trustpilot.parse(page, location="https://www.trustpilot.com/review/bench")

    # warm up (imports, regex compile, polars init) and check both read the same number of reviews
    for p in tp_pages:
        assert len(baseline(p)["props"]["pageProps"]["reviews"]) == ours(p).record_count  # type: ignore[attr-defined]

    # interleave: baseline, ours, baseline, … so machine noise hits both alike
    base_t: list[float] = []
    ours_t: list[float] = []
    rounds = max(args.baseline_repeat, 1)
    for r in range(rounds):
        base_t += _time_pages(baseline, tp_pages, 1)
        ours_t += _time_pages(ours, tp_pages, args.repeat // rounds + (r < args.repeat % rounds))
    n = len(tp_pages)
    base_pps = n / statistics.median(base_t)
    ours_pps = n / statistics.median(ours_t)
    ratio = ours_pps / base_pps
    mb = sum(map(len, tp_pages)) / 1e6

    schema_rows = []
    so_dir = FIXTURES / "schema_org_html"
    for fmt_name in ("jsonld", "microdata"):
        pages = [p.read_bytes() for p in sorted(so_dir.glob(f"{fmt_name}_*.html"))]
        if not pages:
            continue
        fmt = get_format(fmt_name)
        t = _time_pages(lambda p, f=fmt: f.parse(p, location="https://example.test/bench"), pages, args.repeat)
        schema_rows.append((fmt_name, len(pages), sum(map(len, pages)) / 1e6, len(pages) / statistics.median(t)))

    lines = [
        "# Re-parse throughput (bench/bench_reparse.py)",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPU(s), single thread "
        "(= per core). Median pass over the page set; baseline and ours interleaved in the same run.",
        "",
        f"## Trustpilot HTML pages ({n} pages, {mb:.1f} MB; ours {len(ours_t)} passes, baseline {len(base_t)})",
        "",
        "| parser | pages/s per core | ms/page |",
        "|---|---:|---:|",
        f"| baseline: BeautifulSoup html.parser + find __NEXT_DATA__ + json.loads | {base_pps:,.1f} | "
        f"{1000 / base_pps:.2f} |",
        f"| ours: TrustpilotFormat.parse (regex slice + json.loads + measures + aggregates) | {ours_pps:,.1f} | "
        f"{1000 / ours_pps:.2f} |",
        "",
        f"**Speed-up: {ratio:.1f}×** (target ≥ 10×: {'met' if ratio >= 10 else 'NOT met'}).",
        "",
        "## schema.org parsers (their fixtures)",
        "",
        "| format | pages | MB | pages/s per core |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {cnt} | {size:.2f} | {pps:,.1f} |" for name, cnt, size, pps in schema_rows],
        "",
    ]
    report = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
