"""SPSS ``.sav`` survey exports (EPSI and most Nordic market-research vendors deliver these).

A .sav file says more about its questions than a CSV: value labels ("1 Svært lite fornøyd" … "10 Svært godt
fornøyd", "Vet ikke" = 11), declared missing codes (98 = don't know) and often a weight variable. Those are
turned into what the shared machinery understands: a scale point is its number, a declared missing code or a
"don't know" label is an answer without a score, a categorical code is its label text, and the endpoint labels
become the question text the registry reads (variable labels are often just the variable name). Reading is
pyreadstat (ReadStat), so the binary format, its encodings and compression are not ours to maintain — but on a
damaged file it can crash the whole process (a segmentation fault, seen on mutated files), so it runs in a child
process and a crash becomes a ParseError naming the file, not a dead run worker.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

from cx_pipeline.sources.base import ParseError, ParseResult, SourceFormat
from cx_pipeline.sources.surveys.dates import date_candidates
from cx_pipeline.sources.surveys.question_registry import (
    _NO_BASIS,
    MISSING_CODE,
    QuestionColumn,
    QuestionConfig,
    normalize_label,
)
from cx_pipeline.sources.surveys.responses import SurveyLayout, build_result, header_namespace

SAV_MAGIC = (b"$FL2", b"$FL3")
#: variable names of a survey weight (da/no/sv/de/fr/en); a variable label saying "weight" counts too
WEIGHT_NAMES = ("w", "wt", "wgt", "weight", "weights", "vekt", "vikt", "vægt", "vaegt", "gewicht", "poids", "vekting")
_WEIGHT_LABEL = re.compile(r"\bweight|\bvekt|\bvikt|\bvægt|gewicht|\bpoids", re.I)
ID_NAMES = ("respid", "resp_id", "respondent", "respondentid", "respondent_id", "id", "responseid", "response_id",
            "serial", "lopenr", "løpenr", "intnr", "record", "caseid", "case_id")
#: codes at or above this, outside a labelled 0/1…10/11 scale, are the vendors' don't-know / refused codes
_DK_CODE = 97.0
_LEADING_NUMBER = re.compile(r"^\s*-?\d+(?:[.,]\d+)?\s*[-–:.)]?\s*")


class SpssFormat(SourceFormat):
    name = "spss"
    kind = "survey"
    version = "1.0"
    sniff_priority = 20

    def __init__(self, questions: QuestionConfig | None = None) -> None:
        self.questions = questions

    def sniff(self, data: bytes, filename: str) -> bool:
        return data[:4] in SAV_MAGIC

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        if data[:4] not in SAV_MAGIC:
            raise ParseError(location, "not an SPSS .sav file: expected the '$FL2' file signature")
        frame, meta = read_sav_isolated(data, location)
        return build_result(self.layout(frame, meta, location), location=location, config=self.questions)

    def layout(self, frame: pl.DataFrame, meta: Any, location: str) -> SurveyLayout:
        names: list[str] = list(frame.columns)
        labels_of: dict[str, dict[float, str]] = meta.variable_value_labels or {}
        var_labels: dict[str, str | None] = meta.column_names_to_labels or {}
        warnings: list[str] = []
        cols: dict[str, pl.Series] = {}
        questions: list[QuestionColumn] = []
        headers: list[str] = []
        weight_col = id_col = None
        missing_total = dk_total = 0
        dk_columns: list[str] = []
        codes: set[str] = set()
        for i, name in enumerate(names):
            col = f"c{i}"
            headers.append(name)
            series = frame[name]
            value_labels = {float(k): _clean(str(v)) for k, v in labels_of.get(name, {}).items()}
            missing = _missing_codes(meta, name)
            codes.update(f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}" for lo, hi in missing)
            text, scale, numeric_scale = _describe(name, var_labels.get(name), value_labels)
            rendered, n_missing, n_dk = _render(series, value_labels, missing, scale, numeric_scale)
            cols[col] = rendered
            missing_total += n_missing
            if n_dk:
                dk_total += n_dk
                dk_columns.append(name)
            lname = name.lower()
            named_weight = lname in WEIGHT_NAMES or _WEIGHT_LABEL.search(var_labels.get(name) or "")
            if weight_col is None and named_weight and series.dtype.is_numeric():
                weight_col = col
                continue
            if id_col is None and lname in ID_NAMES:
                id_col = col
                continue
            questions.append(QuestionColumn(column=col, key=name, text=text, declared_scale=scale))
        data = pl.DataFrame(cols).with_row_index("__row", offset=1).with_columns(pl.col("__row").cast(pl.Int64))
        candidates = date_candidates(data, {q.column: q.key for q in questions})
        date_col, date_reason = candidates[0] if candidates else (None, None)
        if date_col is not None:
            questions = [q for q in questions if q.column != date_col]
        labelled = sum(1 for n in names if labels_of.get(n))
        warnings.append(
            f"SPSS file: {len(names)} variables, {labelled} with value labels, encoding {meta.file_encoding or '?'}; "
            "scale points read as numbers, categorical codes as their labels"
        )
        if missing_total:
            warnings.append(
                f"{missing_total} answer(s) with a declared missing code ({', '.join(sorted(codes))}): "
                "kept without a score"
            )
        if dk_total:
            warnings.append(
                f"{dk_total} answer(s) coded ≥ 97 outside the labelled scale in {', '.join(dk_columns[:10])} "
                "(no missing code declared): read as don't-know codes, kept without a score"
            )
        if weight_col is not None:
            warnings.append(f"survey weights from variable {headers[int(weight_col[1:])]!r}")
        else:
            warnings.append("no weight variable (w, weight, vekt, …): every response counts once")
        return SurveyLayout(
            headers=headers,
            source=self.name,
            parser=self.parser_id,
            data=data,
            questions=questions,
            id_column=id_col,
            date_column=date_col,
            date_reason=date_reason,
            date_tz_note="SPSS dates carry no time zone: assumed UTC" if date_col else None,
            prefer_month_first=False,
            date_order_reason="(a text date in an SPSS file carries no locale)",
            weight_column=weight_col,
            namespace=header_namespace(headers),
            ids_global=False,
            warnings=warnings,
            facts={"encoding": meta.file_encoding, "variables": len(names), "value_labelled": labelled},
        )


#: seconds a child process may take to read one .sav file
READ_TIMEOUT_S = 600


def read_sav_isolated(data: bytes, location: str) -> tuple[pl.DataFrame, Any]:
    """The file's data and metadata, read by pyreadstat in a child process (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="cx_sav_") as tmp:
        src, out = Path(tmp) / "in.sav", Path(tmp) / "out"
        src.write_bytes(data)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", __name__, str(src), str(out)],
                capture_output=True,
                timeout=READ_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ParseError(location, f"not a readable SPSS .sav file: reading took over {READ_TIMEOUT_S} s") from exc
        if proc.returncode < 0:
            raise ParseError(
                location,
                f"not a readable SPSS .sav file: the SPSS reader crashed on it (signal {-proc.returncode}); "
                "the file is damaged or truncated — export it again",
            )
        if proc.returncode != 0:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ParseError(location, f"not a readable SPSS .sav file ({lines[-1] if lines else 'reader failed'})")
        frame = pl.read_ipc(io.BytesIO(out.with_suffix(".arrow").read_bytes()))  # in memory: the folder goes
        meta = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    labels = {name: {float(k): v for k, v in pairs} for name, pairs in meta["value_labels"].items()}
    return frame, SimpleNamespace(
        variable_value_labels=labels,
        column_names_to_labels=meta["column_labels"],
        missing_ranges=meta["missing_ranges"],
        missing_user_values=meta["missing_user_values"],
        file_encoding=meta["file_encoding"],
    )


def _read_in_child(src: str, out: str) -> None:
    """Child side of ``read_sav_isolated``: pyreadstat → Arrow IPC + JSON metadata; errors → stderr, exit 2."""
    import pyreadstat

    try:
        frame, meta = pyreadstat.read_sav(src, output_format="polars", user_missing=True)
    except Exception as exc:  # ReadStat raises its own error types for truncated or corrupt files
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    frame.write_ipc(Path(out).with_suffix(".arrow"))
    info = {
        # codes of numeric variables only: labels on text variables say nothing about a scale
        "value_labels": {
            n: [[float(k), str(v)] for k, v in lab.items() if isinstance(k, int | float)]
            for n, lab in (meta.variable_value_labels or {}).items()
        },
        "column_labels": meta.column_names_to_labels or {},
        "missing_ranges": meta.missing_ranges or {},
        "missing_user_values": meta.missing_user_values or {},
        "file_encoding": meta.file_encoding,
    }
    Path(out).with_suffix(".json").write_text(json.dumps(info, default=str), encoding="utf-8")


def _clean(label: str) -> str:
    return re.sub(r"\s+", " ", label.replace("\xa0", " ")).strip()


def _missing_codes(meta: Any, name: str) -> list[tuple[float, float]]:
    """Declared user-missing codes of a numeric variable as closed ranges."""
    out: list[tuple[float, float]] = []
    for r in (meta.missing_ranges or {}).get(name, []):
        try:
            out.append((float(r["lo"]), float(r["hi"])))
        except (TypeError, ValueError, KeyError):
            continue
    for v in (meta.missing_user_values or {}).get(name, []):
        try:
            out.append((float(v), float(v)))
        except (TypeError, ValueError):
            continue
    return out


def _describe(
    name: str, var_label: str | None, value_labels: dict[float, str]
) -> tuple[str, tuple[float, float] | None, bool]:
    """Question text for the registry (variable label + endpoint labels), the labelled scale, and whether the
    codes are scale points (labels are numbers or start with their number) rather than categories."""
    label = _clean(var_label) if var_label and var_label.strip() and var_label.strip() != name else ""
    answers = {k: v for k, v in value_labels.items() if normalize_label(v) not in _NO_BASIS}
    if not answers:
        return label or name, None, False
    lo, hi = min(answers), max(answers)
    ends = f"{_LEADING_NUMBER.sub('', answers[lo]) or f'{lo:g}'} … {_LEADING_NUMBER.sub('', answers[hi]) or f'{hi:g}'}"
    text = f"{label or name} [{ends}]"
    # ordered codes (a labelled scale, or labelled endpoints of one): the code is the answer, the labels only
    # describe it; two codes close together (Ja/Nei) are categories, shown to the registry by their labels
    integral = all(float(k).is_integer() for k in answers)
    if integral and hi - lo <= 11 and (len(answers) >= 3 or hi - lo >= 3):
        return text, (lo, hi), True
    return text, None, False


def _render(
    series: pl.Series,
    value_labels: dict[float, str],
    missing: list[tuple[float, float]],
    scale: tuple[float, float] | None,
    numeric_scale: bool,
) -> tuple[pl.Series, int, int]:
    """A variable as the strings the registry and scorer read, with counts of missing-coded and don't-know answers."""
    if series.dtype == pl.String:
        return series.str.strip_chars().replace("", None), 0, 0
    if series.dtype.is_temporal():
        return series.cast(pl.String), 0, 0
    values = series.cast(pl.Float64)
    is_missing = pl.Series([False] * len(values))
    for lo, hi in missing:
        is_missing = is_missing | values.is_between(lo, hi).fill_null(False)
    is_dk = pl.Series([False] * len(values))
    if scale is not None and scale[1] <= 11:
        unlabelled = ~values.is_in(list(value_labels)).fill_null(False)
        is_dk = (values >= _DK_CODE).fill_null(False) & unlabelled & ~is_missing
    as_number = (
        pl.when(values == values.round(0)).then(values.cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(values.cast(pl.String))
    )
    frame = pl.DataFrame({"v": values, "m": is_missing, "d": is_dk})
    no_basis = {k: v for k, v in value_labels.items() if normalize_label(v) in _NO_BASIS}
    text = as_number
    if value_labels and not numeric_scale:
        text = pl.col("v").replace_strict(
            list(value_labels), list(value_labels.values()), default=as_number, return_dtype=pl.String
        )
    elif no_basis:
        text = pl.col("v").replace_strict(
            list(no_basis), list(no_basis.values()), default=as_number, return_dtype=pl.String
        )
    out = frame.select(
        pl.when(pl.col("m") | pl.col("d")).then(pl.lit(MISSING_CODE)).otherwise(text).alias(series.name)
    ).to_series()
    return out, int(is_missing.sum()), int(is_dk.sum())


if __name__ == "__main__":
    _read_in_child(sys.argv[1], sys.argv[2])
