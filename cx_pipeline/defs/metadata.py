"""Materialization metadata helpers: counts and a small markdown preview for the Dagster UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
from dagster import MetadataValue


def _cell(value: Any, width: int = 60) -> str:
    if isinstance(value, float):  # previews are for reading: full float precision only hides the number
        value = f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_table(df: pl.DataFrame, columns: Sequence[str] | None = None, n: int = 10) -> str:
    cols = [c for c in (columns or df.columns) if c in df.columns]
    if not cols:
        return "_no columns_"
    head = df.select(cols).head(n)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()]
    if df.height > n:
        lines.append(f"\n_{n} of {df.height} rows_")
    return "\n".join(lines)


def counts_by(df: pl.DataFrame, column: str) -> dict[str, int]:
    if df.height == 0 or column not in df.columns:
        return {}
    return {str(k): int(v) for k, v in df.group_by(column).len().sort(column).iter_rows()}


def frame_metadata(df: pl.DataFrame, preview: Sequence[str] | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"dagster/row_count": df.height, "preview": MetadataValue.md(markdown_table(df, preview))}
    meta.update(extra)
    return meta
