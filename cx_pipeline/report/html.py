"""Small HTML helpers: escaping, number formats and tables, shared by every section.

Every number cell carries ``data-*`` attributes naming the dataset row and column it shows, so a test (or an
analyst with the browser's inspector) can trace a figure on the page back to the Parquet row it came from.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--warn:#b45309;--bad:#b91c1c;--good:#15803d}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0;background:#f9fafb}
header{background:#111827;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#d1d5db}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0}
nav a{margin-right:14px;color:#1d4ed8;text-decoration:none}
main{max-width:1180px;margin:0 auto;padding:12px 28px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:18px 0}
section h2{margin:0 0 4px;font-size:18px}
.question{color:var(--muted);margin:0 0 10px}
figure{margin:8px 0 12px}
svg.chart{max-width:100%;height:auto}
figcaption{color:var(--muted);font-size:12px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.lown{color:var(--warn);font-weight:600}
.flag{color:var(--bad);font-weight:600}
.ok{color:var(--good)}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 10px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:170px}
.card .big{font-size:22px;font-weight:700}
.card .sub{color:var(--muted);font-size:12px}
.examples{margin:0;padding-left:16px;max-width:420px}
.examples li{margin-bottom:2px}
.src{color:var(--muted);font-size:11px}
details{margin:6px 0}
.note{color:var(--muted);font-size:12px}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: float | int | None, digits: int = 1, signed: bool = False) -> str:
    """One number format for the whole report; the browser test formats cx_metrics the same way."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ") if abs(value) >= 10000 else str(value)
    if value != value:  # NaN
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def pct(value: float | None, digits: int = 1) -> str:
    """A 0..1 share as a percentage."""
    return "–" if value is None else fmt(100 * value, digits)


def interval(low: float | None, high: float | None, digits: int = 1, scale: float = 1.0) -> str:
    if low is None or high is None:
        return "–"
    return f"[{fmt(low * scale, digits)}, {fmt(high * scale, digits)}]"


def attrs(data: Mapping[str, Any] | None) -> str:
    if not data:
        return ""
    return "".join(f' data-{k}="{esc(v)}"' for k, v in data.items() if v is not None)


class Cell:
    """A table cell: text (escaped unless ``raw``), numeric alignment and traceability attributes."""

    def __init__(self, text: Any, *, num: bool = False, cls: str = "", data: Mapping[str, Any] | None = None,
                 raw: bool = False, title: str | None = None) -> None:
        self.text, self.num, self.cls, self.data, self.raw, self.title = text, num, cls, data, raw, title

    def render(self) -> str:
        classes = " ".join(c for c in ("num" if self.num else "", self.cls) if c)
        cls = f' class="{classes}"' if classes else ""
        title = f' title="{esc(self.title)}"' if self.title else ""
        body = self.text if self.raw else esc(self.text)
        return f"<td{cls}{attrs(self.data)}{title}>{body}</td>"


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell | Any]], *, cls: str = "",
          row_data: Sequence[Mapping[str, Any] | None] | None = None, caption: str | None = None) -> str:
    if not rows:
        return '<p class="note">No rows.</p>'
    out = [f'<table class="{esc(cls)}">' if cls else "<table>"]
    if caption:
        out.append(f"<caption class=\"note\">{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        data = row_data[i] if row_data else None
        cells = "".join(c.render() if isinstance(c, Cell) else Cell(c).render() for c in row)
        out.append(f"<tr{attrs(data)}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def section(sid: str, title: str, question: str, chart_svg: str, caption: str, body: str) -> str:
    return (
        f'<section id="{esc(sid)}" data-section="{esc(sid)}"><h2>{esc(title)}</h2>'
        f'<p class="question">{esc(question)}</p>'
        f'<figure data-chart="{esc(sid)}">{chart_svg}<figcaption>{esc(caption)}</figcaption></figure>'
        f"{body}</section>"
    )


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="{esc(href)}">{esc(text)}</a>' for href, text in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # nothing on the page may reach the network: the policy makes any attempt fail loudly in the console
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{links}</nav><main>{body}</main></body></html>\n"
    )
