"""One response per row (wide) → one measure per mapped answer (long), columnar with polars ``unpivot``.

Every survey format reduces its export to a ``SurveyLayout`` (which column is the response id, the
date, the e-mail, which columns are questions) and this module does the rest identically for all:
ids that stay unique, UTC dates, label→score, no-basis codes → null, comment text attached to the
response's events, and the question registry's verdicts recorded for the analyst.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cx_pipeline.sources.base import MEASURE_SCHEMA, CpuBudget, ParseError, ParseResult, Reject
from cx_pipeline.sources.surveys.dates import month_numbers, parse_dates
from cx_pipeline.sources.surveys.question_registry import (
    QuestionColumn,
    QuestionConfig,
    QuestionSpec,
    infer_questions,
    leading_number,
    normalize_label,
)

#: Excel turned a long id into scientific notation (1.14628E+11): digits are lost, ids collide
SCI_NOTATION = r"^\d(?:[.,]\d+)?[eE][+]\d+$"
#: answers meaning "nothing to say" in free-text fields
_EMPTY_COMMENTS = [
    "na",
    "n/a",
    "n.a.",
    "-",
    "--",
    ".",
    "none",
    "nothing",
    "no",
    "nej",
    "nei",
    "ingen",
    "intet",
    "ingenting",
    "nope",
    "no comment",
    "no comments",
    "ingen kommentar",
    "ingen kommentarer",
    "x",
]
#: measures assembled per slice of this many rows (bounds the string temporaries of a million-response export)
MEASURE_CHUNK_ROWS = 100_000
_LANG = {"nb": "no", "nn": "no", "no": "no", "da": "da", "sv": "sv", "en": "en", "de": "de", "fi": "fi"}


@dataclass
class SurveyLayout:
    """Where a vendor export keeps each thing; columns are names in ``data`` (String columns + ``__row``)."""

    source: str
    parser: str
    data: pl.DataFrame
    questions: list[QuestionColumn]
    id_column: str | None = None
    date_column: str | None = None
    date_timezone: str | None = None
    #: why this column dates the responses (when the reader chose it among candidates), for the notes
    date_reason: str | None = None
    date_tz_note: str | None = None
    prefer_month_first: bool = False
    #: why ``prefer_month_first`` is this export's default (e.g. "from the French header 'Horodateur'")
    date_order_reason: str | None = None
    #: a month or quarter column that decides / cross-checks day-first vs month-first
    month_column: str | None = None
    month_is_quarter: bool = False
    email_column: str | None = None
    external_ref_column: str | None = None
    language_column: str | None = None
    #: survey weight per response (design or post-stratification weight); answers count by it in cx_metrics
    weight_column: str | None = None
    #: stable namespace for row-position ids (e.g. a hash of the header = the survey's identity)
    namespace: str = ""
    #: ids are globally unique (Qualtrics R_…, SurveyMonkey respondent ids): use them bare
    ids_global: bool = True
    nps_groups: dict[str, str] = field(default_factory=dict)  # score column → group column
    warnings: list[str] = field(default_factory=list)
    #: records the reader refused before the layout saw them (e.g. a last record that may have been cut)
    rejects: list[Reject] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)  # header text of c0..cN, for messages

    def label(self, column: str) -> str:
        """Header name of a ``cN`` column (messages must name what the analyst sees)."""
        if column.startswith("c") and column[1:].isdigit() and int(column[1:]) < len(self.headers):
            return self.headers[int(column[1:])] or column
        return column


def header_namespace(*header_rows: list[str]) -> str:
    """Short stable id of a survey from its header (same form → same namespace across re-exports)."""
    joined = "\x1e".join("\x1f".join(r) for r in header_rows)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:10]


def unique_keys(keys: list[str], alternates: list[str | None] | None = None) -> tuple[list[str], list[str]]:
    """Make question keys unique (duplicate export tags / header names); returns keys and warnings."""
    out: list[str] = []
    seen: dict[str, int] = {}
    dupes: set[str] = set()
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    for i, k in enumerate(keys):
        if counts[k] == 1:
            out.append(k)
            continue
        dupes.add(k)
        alt = alternates[i] if alternates else None
        candidate = f"{k}@{alt}" if alt else k
        n = seen.get(candidate, 0) + 1
        seen[candidate] = n
        out.append(candidate if n == 1 and alt else f"{candidate}#{n}")
    warnings = (
        [f"duplicate column code(s) {sorted(dupes)} made unique ({', '.join(o for o in out if '@' in o or '#' in o)})"]
        if dupes
        else []
    )
    return out, warnings


def build_result(layout: SurveyLayout, *, location: str, config: QuestionConfig | None) -> ParseResult:
    """The ParseResult for a laid-out export: measures long frame, warnings, registry facts."""
    warnings = list(layout.warnings)
    data = layout.data
    n = data.height
    specs = infer_questions(data, layout.questions, config, location)
    weights = [s for s in specs if s.metric == "weight"]
    if weights:  # a weight column mapped in the question config (any vendor format): not a question
        if len(weights) > 1:
            warnings.append(f"{len(weights)} columns mapped as weight ({', '.join(s.key for s in weights)}): "
                            f"the first, {weights[0].key!r}, is used")
        layout.weight_column = weights[0].column
        specs = [s for s in specs if s.metric != "weight"]
    mapped = [s for s in specs if s.mapped]
    facts = dict(layout.facts)
    facts.update(
        {
            "kind": "survey_questions",
            "responses": n,
            "mapped_questions": [s.describe() for s in mapped],
            "unmapped_questions": [s.describe() for s in specs if not s.mapped],
        }
    )
    unmapped_keys = [s.key for s in specs if not s.mapped]
    if unmapped_keys:
        warnings.append(
            f"{len(unmapped_keys)} question(s) not mapped to a CX metric (map them in the question "
            f"config: `parse --question-map FILE.yaml` or the inbox's question_map): "
            f"{', '.join(unmapped_keys[:25])}{' …' if len(unmapped_keys) > 25 else ''}"
        )
    for s in mapped:
        if s.reason.startswith("0–10 NPS-widget"):
            warnings.append(f"{s.key} is an NPS-widget question but not about recommending: kept as rating 0–10")
    if n == 0:
        return ParseResult(
            layout.source,
            layout.parser,
            pl.DataFrame(schema=MEASURE_SCHEMA),
            0,
            aggregates=[facts],
            warnings=warnings,
            empty_reason="header only: the export has no responses",
            rejects=list(layout.rejects),
        )

    rejects: list[Reject] = list(layout.rejects)
    base, refused = _response_frame(layout, location, warnings, rejects)
    if refused:  # a response whose date is impossible is refused whole (and said so), the rest of the file kept
        keep = ~pl.col("__row").is_in(refused)
        data = layout.data = data.filter(keep)
        base = base.filter(keep)
    facts.update(
        date_column=layout.label(layout.date_column) if layout.date_column else None,
        date_order=layout.facts.get("date_order"),
        weight_column=layout.label(layout.weight_column) if layout.weight_column else None,
    )
    _validate_nps_groups(layout, specs, warnings)
    scored = [s for s in mapped if s.metric != "comment"]
    comments = [s for s in mapped if s.metric == "comment"]
    base = base.with_columns(text=_comment_text(data, comments))
    # __row, __spec (index into scored), score_raw
    long = _scored_long(data, scored, location, warnings, rejects, layout.label)
    if rejects:
        _attach_ids(rejects, base)
    # the layout is consumed here: its wide cells are the biggest thing a million-response export holds, and
    # nothing below needs them, so they are released before the measures are assembled
    layout.data = data.clear()
    del data
    # measures in (row, key) order: sort small integer codes, then gather the per-response and per-question
    # attributes once (no 3M-row string joins or string sort)
    keyset = sorted({s.key for s in scored} | {"comment"})
    rank = {k: i for i, k in enumerate(keyset)}
    comment_spec = len(scored)
    comment_only = base.filter(pl.col("text").is_not_null() & ~pl.col("__row").is_in(long["__row"].unique().implode()))
    order = pl.concat(
        [
            long.select(
                pl.col("__row"),
                pl.col("__spec"),
                pl.col("score_raw"),
                pl.col("__spec")
                .replace_strict(list(range(len(scored))), [rank[s.key] for s in scored], return_dtype=pl.UInt32)
                .alias("__rank"),
            ),
            comment_only.select(
                pl.col("__row"),
                pl.lit(comment_spec, pl.UInt32).alias("__spec"),
                pl.lit(None, pl.Float64).alias("score_raw"),
                pl.lit(rank["comment"], pl.UInt32).alias("__rank"),
            ),
        ]
    ).sort(pl.col("__row") * len(keyset) + pl.col("__rank"))  # = by (row, key), as one integer
    del long, comment_only
    comment_tp = next((s.touchpoint for s in comments if s.touchpoint), None)
    question = pl.DataFrame(
        {
            "__key": [s.key for s in scored] + ["comment"],
            "metric": [s.metric for s in scored] + ["comment"],
            "touchpoint": [s.touchpoint for s in scored] + [comment_tp],
            "scale_min": [s.scale_min for s in scored] + [None],
            "scale_max": [s.scale_max for s in scored] + [None],
            "higher_is_better": [s.higher_is_better for s in scored] + [None],
        },
        schema={
            "__key": pl.String,
            "metric": pl.String,
            "touchpoint": pl.String,
            "scale_min": pl.Float64,
            "scale_max": pl.Float64,
            "higher_is_better": pl.Boolean,
        },
    )
    if not base["__row"].is_sorted():
        base = base.sort("__row")
    # measures are assembled a slice at a time: the string columns built here (ids, positions, texts) are the
    # biggest temporaries, and each slice is its own buffers, so callers can free them slice by slice
    chunks: list[pl.DataFrame] = []
    used: list[pl.Series] = []
    for start in range(0, order.height, MEASURE_CHUNK_ROWS):
        part = order.slice(start, MEASURE_CHUNK_ROWS)
        pos = base["__row"].search_sorted(part["__row"])
        used.append(pos.unique())
        allm = pl.concat(
            [
                part.select("__row", "score_raw"),
                base.select(pl.all().gather(pos)).drop("__row"),
                question.select(pl.all().gather(part["__spec"])),
            ],
            how="horizontal",
        )
        chunks.append(_measure_columns(allm).cast(MEASURE_SCHEMA))  # type: ignore[arg-type]
        del allm, part
    del order
    out = pl.concat(chunks, rechunk=False) if chunks else pl.DataFrame(schema=MEASURE_SCHEMA)
    # native_id is a function of the response row: count distinct ids over distinct rows, not all measures
    responses = base["native_id"].gather(pl.concat(used).unique()).n_unique() if used else 0
    empty_reason = None
    if out.height == 0:
        empty_reason = (
            f"{n} response(s) but no answer to a mapped question"
            if mapped
            else f"{n} response(s) but no question mapped to a CX metric"
        )
    facts["responses_with_measures"] = responses
    return ParseResult(
        layout.source,
        layout.parser,
        out,
        n,
        aggregates=[facts],
        warnings=warnings,
        empty_reason=empty_reason,
        rejects=rejects,
    )


def _row_of(reject: Reject) -> int:
    """The data row a reject names ("data row 17"); -1 for one refused by the reader (e.g. "line 1204")."""
    position = str(reject.position)
    return int(position.rsplit(" ", 1)[-1]) if position.startswith("data row ") else -1


def _attach_ids(rejects: list[Reject], base: pl.DataFrame) -> None:
    """Rejects in (row, column) order, each with its response's id where the response has one."""
    rows = sorted({_row_of(r) for r in rejects})
    found = base.filter(pl.col("__row").is_in(rows)).select("__row", "native_id")
    ids = dict(zip(found["__row"].to_list(), found["native_id"].to_list(), strict=True))
    rejects[:] = sorted(
        (r if r.native_id else Reject(r.position, r.reason, r.field, r.value, ids.get(_row_of(r))) for r in rejects),
        key=_row_of,
    )


def _measure_columns(allm: pl.DataFrame) -> pl.DataFrame:
    """One slice of measures in MEASURE_SCHEMA column order from the joined response × question columns."""
    return allm.select(
        pl.col("native_id"),
        pl.format("row={};col={}", pl.col("__row"), pl.col("__key")).alias("position"),
        pl.col("__key").alias("measure_key"),
        pl.col("metric"),
        pl.col("touchpoint"),
        pl.col("score_raw"),
        pl.col("scale_min"),
        pl.col("scale_max"),
        pl.col("higher_is_better"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("occurred_at"),
        pl.col("published_at"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("updated_at"),
        pl.col("language"),
        pl.lit(None, pl.String).alias("title"),
        pl.col("text"),
        pl.lit(None, pl.String).alias("reply_text"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("replied_at"),
        pl.lit(None, pl.Boolean).alias("is_verified"),
        pl.lit(None, pl.String).alias("country"),
        pl.lit(None, pl.String).alias("location"),
        pl.col("customer_ref"),
        pl.col("weight"),
    )


def _response_frame(
    layout: SurveyLayout, location: str, warnings: list[str], rejects: list[Reject]
) -> tuple[pl.DataFrame, list[int]]:
    """Per response: row, native_id, published_at, customer_ref, language; and the rows refused for their date
    (each one a reject in ``rejects``)."""
    refused: list[int] = []
    data = layout.data
    ns = layout.namespace
    row_ids = pl.format("{}:row={}", pl.lit(ns), pl.col("__row"))
    cols: list[pl.Expr] = [pl.col("__row")]
    clean_id: pl.Expr | None = None
    if layout.id_column:
        ids = data[layout.id_column].str.strip_chars().replace("", None)
        sci = ids.str.contains(SCI_NOTATION).fill_null(False)
        dup = ids.is_duplicated() & ids.is_not_null()
        missing = ids.is_null()
        bad = sci | dup | missing
        if sci.any():
            warnings.append(
                f"{int(sci.sum())} respondent id(s) in {layout.label(layout.id_column)!r} are in scientific notation "
                f"(e.g. {ids.filter(sci)[0]!r}: Excel re-save lost digits); ids built from the row position "
                "instead and not used as customer reference — re-export without Excel to get stable ids"
            )
        if (dup & ~sci).any():
            warnings.append(
                f"{int((dup & ~sci).sum())} duplicate respondent id(s) in {layout.label(layout.id_column)!r}: those "
                "responses keep separate ids built from the row position"
            )
        if missing.any() and not missing.all():
            warnings.append(f"{int(missing.sum())} response(s) without an id: ids built from the row position")
        data = data.with_columns(__id=ids, __bad=bad)
        native = pl.when(pl.col("__bad")).then(row_ids)
        native = native.otherwise(
            pl.col("__id") if layout.ids_global else pl.format("{}:{}", pl.lit(ns), pl.col("__id"))
        )
        cols.append(native.alias("native_id"))
        clean_id = pl.when(pl.col("__bad")).then(None).otherwise(pl.col("__id"))
    else:
        cols.append(row_ids.alias("native_id"))
        warnings.append(
            "no response id column: ids built from the row position (stable only while the file keeps its row order)"
        )
    if layout.date_column:
        hint = None
        if layout.month_column:
            hint = month_numbers(data[layout.month_column], quarter=layout.month_is_quarter)
            hint = hint.alias("__quarter" if layout.month_is_quarter else "__month")
        res = parse_dates(
            data[layout.date_column],
            column=layout.label(layout.date_column),
            location=location,
            tz=layout.date_timezone,
            prefer_month_first=layout.prefer_month_first,
            default_reason=layout.date_order_reason,
            month_hint=hint,
            month_hint_name=layout.label(layout.month_column) if layout.month_column else "month",
        )
        if res.rejected:
            row_numbers = data["__row"]
            for idx, value, reason in res.rejected:
                row = int(row_numbers[idx])
                refused.append(row)
                rejects.append(Reject(f"data row {row}", reason, layout.label(layout.date_column), value))
            warnings.append(
                f"{len(refused)} response(s) rejected for their date, each with its reason in the rejects: e.g. "
                f"data row {refused[0]}: {res.rejected[0][2]}"
            )
        if res.note:
            warnings.append(res.note)
            layout.facts["date_order"] = res.order
        if layout.date_tz_note:
            warnings.append(layout.date_tz_note)
        if layout.date_reason:
            warnings.append(f"response date from column {layout.label(layout.date_column)!r}: {layout.date_reason}")
        data = data.with_columns(res.values.alias("__date"))
        cols.append(pl.col("__date").alias("published_at"))
    else:
        warnings.append("no date column found: the events have no date, so period metrics cannot use them")
        cols.append(pl.lit(None, pl.Datetime("us", "UTC")).alias("published_at"))
    ref_parts: list[pl.Expr] = []
    if layout.email_column:
        ref_parts.append(pl.col(layout.email_column).str.strip_chars().str.to_lowercase().replace("", None))
    if layout.external_ref_column:
        ref_parts.append(pl.format("ext:{}", pl.col(layout.external_ref_column).str.strip_chars().replace("", None)))
    if clean_id is not None:
        ref_parts.append(pl.format("{}:{}", pl.lit(layout.source), clean_id))
    cols.append(
        pl.coalesce(ref_parts).alias("customer_ref") if ref_parts else pl.lit(None, pl.String).alias("customer_ref")
    )
    if layout.language_column:
        lang = pl.col(layout.language_column).str.strip_chars().str.to_lowercase().str.slice(0, 2)
        cols.append(lang.replace_strict(_LANG, default=None, return_dtype=pl.String).alias("language"))
    else:
        cols.append(pl.lit(None, pl.String).alias("language"))
    if layout.weight_column:
        raw = data[layout.weight_column].str.strip_chars().replace("", None)
        weight = raw.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
        bad = (raw.is_not_null() & (weight.is_null() | (weight <= 0))).fill_null(False)
        if bad.any():
            warnings.append(f"{int(bad.sum())} response(s) with a weight in {layout.label(layout.weight_column)!r} "
                            f"that is not a positive number (e.g. {raw.filter(bad)[0]!r}): counted with weight 1")
        data = data.with_columns(__weight=pl.when(bad).then(None).otherwise(weight))
        cols.append(pl.col("__weight").alias("weight"))
    else:
        cols.append(pl.lit(None, pl.Float64).alias("weight"))
    return data.select(cols), refused


_METRIC_NAMES = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "rating": "rating"}
#: a cell a spreadsheet would run as a formula (OWASP CSV injection: leading = + @, or - before a non-number);
#: in a score column it is refused — ``=10`` is not the answer 10 — and never evaluated anywhere
FORMULA = r"^(?:[=+@]|-[^\d\s\-.,])"


def _scored_long(
    data: pl.DataFrame,
    specs: list[QuestionSpec],
    location: str,
    warnings: list[str],
    rejects: list[Reject] | None = None,
    label: Any = str,
) -> pl.DataFrame:
    """Wide answers → long (row, spec index, key, score): labels mapped, no-basis → null, out-of-scale reported.

    Each column's distinct answers are scored once (labels, no-basis codes, leading numbers, scale checks)
    and joined back to its rows, so per-row work is one hash lookup; rows come out question by question in
    ``specs`` order, each in data order."""
    schema = {"__row": pl.Int64, "__spec": pl.UInt32, "score_raw": pl.Float64}
    if not specs:
        return pl.DataFrame(schema=schema)
    parts: list[pl.DataFrame] = []
    bad: dict[str, list[Any]] = {"__unreadable": [0, None], "__outside": [0, None], "__formula": [0, None]}
    nb = 0
    budget = CpuBudget(location)
    for i, spec in enumerate(specs):
        budget.check()
        answers = _score_answers(data[spec.column], spec)
        flags = [f for f in bad if answers[f].any()]
        if answers["__nobasis"].any():
            flags.append("__nobasis")
        # per row only what is needed: the score, and a flag column where some answer carries it
        rows = data.select(pl.col("__row"), pl.col(spec.column).alias("__raw")).join(
            answers.select("__raw", "score_raw", "__keep", *flags), on="__raw", how="inner", maintain_order="left"
        )
        # flags are per distinct answer: the rows are searched only for the flags some answer carries
        for flag in (f for f in flags if f in bad):
            tally = bad[flag]
            flagged = rows.filter(pl.col(flag)).with_columns(__v=pl.col("__raw").str.strip_chars())
            if flagged.height:
                tally[0] += flagged.height
                if tally[1] is None:
                    tally[1] = (flagged["__row"][0], spec.key, flagged["__v"][0])
                if rejects is not None:
                    field = label(spec.column)
                    for row, value in flagged.select("__row", "__v").iter_rows():
                        rejects.append(Reject(f"data row {row}", _why(flag, value, spec), field, value))
        if "__nobasis" in flags:
            nb += int(rows["__nobasis"].sum())
        parts.append(
            (rows if answers["__keep"].all() else rows.filter(pl.col("__keep"))).select(
                pl.col("__row"),
                pl.lit(i, pl.UInt32).alias("__spec"),
                pl.col("score_raw"),
            )
        )
    for flag, what in (
        ("__unreadable", "is neither a number nor a known answer label"),
        ("__outside", "is outside the question's scale"),
        ("__formula", "looks like a spreadsheet formula (never evaluated)"),
    ):
        count, first = bad[flag]
        if count:
            warnings.append(
                f"{count} answer(s) rejected, each with its reason in the rejects: e.g. data row {first[0]}, "
                f"column {first[1]!r}: {first[2][:60]!r} {what}"
            )
    if nb:
        warnings.append(
            f"{nb} 'no basis for evaluation' answer(s) (negative codes / don't know) kept with a null score"
        )
    return pl.concat(parts).cast(schema)  # type: ignore[arg-type]


def _why(flag: str, value: str, spec: QuestionSpec) -> str:
    """The reason an answer is refused, in the words the analyst sees (the question's metric and scale)."""
    metric = _METRIC_NAMES.get(spec.metric, spec.metric)
    if flag == "__formula":
        return f"{value!r} looks like a spreadsheet formula: never evaluated, and not read as a {metric} answer"
    if flag == "__outside":
        return f"{value} is outside the {metric} scale {spec.scale_min:g}–{spec.scale_max:g}"
    return f"{value!r} is neither a number nor a known answer label of this {metric} question"


def _score_answers(values: pl.Series, spec: QuestionSpec) -> pl.DataFrame:
    """Per distinct raw answer of one question: the stripped answer, its score and what to do with it."""
    labels = pl.DataFrame(
        {"__norm": list(spec.labels), "__lv": [float(v) for v in spec.labels.values()]},
        schema={"__norm": pl.String, "__lv": pl.Float64},
    )
    nobasis = pl.DataFrame({"__norm": list(spec.no_basis)}, schema={"__norm": pl.String}).with_columns(
        __nb=pl.lit(True)
    )
    answers = (
        pl.DataFrame({"__raw": values.unique()})
        .with_columns(__v=pl.col("__raw").str.strip_chars().replace("", None))
        .filter(pl.col("__v").is_not_null())
        .with_columns(
            __norm=pl.col("__v").str.to_lowercase().str.replace_all(r"\s+", " ").str.replace_all("\u2019", "'")
        )
        .join(labels, on="__norm", how="left")
        .join(nobasis, on="__norm", how="left")
        .with_columns(
            __min=pl.lit(spec.scale_min, pl.Float64),
            __max=pl.lit(spec.scale_max, pl.Float64),
            __num=leading_number(pl.col("__v")),
        )
        .with_columns(__score=pl.coalesce(pl.col("__lv"), pl.col("__num")))
        .with_columns(__formula=pl.col("__v").str.contains(FORMULA) & pl.col("__lv").is_null())
        .with_columns(__score=pl.when(pl.col("__formula")).then(None).otherwise(pl.col("__score")))
        .with_columns(
            __nobasis=~pl.col("__formula") & (pl.col("__nb").fill_null(False) | (pl.col("__score") < 0)),
            __unreadable=~pl.col("__formula") & pl.col("__score").is_null() & pl.col("__nb").is_null(),
        )
        .with_columns(
            __outside=~pl.col("__nobasis")
            & ~pl.col("__unreadable")
            & ((pl.col("__score") < pl.col("__min")) | (pl.col("__score") > pl.col("__max")))
        )
    )
    # the filters of a row-wise pass keep only True (null counts as not flagged)
    return answers.select(
        pl.col("__raw"),
        pl.col("__v"),
        pl.when(pl.col("__nobasis")).then(None).otherwise(pl.col("__score")).alias("score_raw"),
        (~pl.col("__unreadable") & ~pl.col("__outside") & ~pl.col("__formula")).fill_null(False).alias("__keep"),
        pl.col("__unreadable").fill_null(False),
        pl.col("__outside").fill_null(False),
        pl.col("__formula").fill_null(False),
        pl.col("__nobasis").fill_null(False),
    )


def _comment_text(data: pl.DataFrame, comments: list[QuestionSpec]) -> pl.Series:
    """Per response: its free-text answers joined (blank / 'NA' placeholders dropped), else null."""
    if not comments:
        return pl.Series("text", [None] * data.height, dtype=pl.String)
    parts = []
    for s in comments:
        c = pl.col(s.column).str.strip_chars()
        placeholder = c.str.to_lowercase().str.strip_chars(".!- ").is_in(_EMPTY_COMMENTS) | (
            c.str.replace_all(r"[\W_]", "") == ""
        )
        parts.append(pl.when(c.is_null() | placeholder).then(None).otherwise(c))
    text = data.select(pl.concat_str(parts, separator="\n\n", ignore_nulls=True).alias("text")).to_series()
    return text.replace("", None)


def _validate_nps_groups(layout: SurveyLayout, specs: list[QuestionSpec], warnings: list[str]) -> None:
    """Qualtrics' NPS_GROUP column must agree with the 0–10 answer; we score the number, the group only checks."""
    by_col = {s.column: s for s in specs}
    for score_col, group_col in layout.nps_groups.items():
        spec = by_col.get(score_col)
        key = spec.key if spec else score_col
        frame = layout.data.select(
            num=leading_number(pl.col(score_col)),
            grp=pl.col(group_col).str.strip_chars().str.to_lowercase(),
            row=pl.col("__row"),
        ).filter(pl.col("num").is_not_null() & pl.col("grp").is_not_null() & (pl.col("grp") != ""))
        expected = (
            pl.when(pl.col("num") >= 9)
            .then(pl.lit("promoter"))
            .when(pl.col("num") >= 7)
            .then(pl.lit("passive"))
            .otherwise(pl.lit("detractor"))
        )
        bad = frame.filter(expected != pl.col("grp"))
        if bad.height:
            r = bad.row(0, named=True)
            warnings.append(
                f"{key}: {bad.height} NPS group label(s) disagree with the 0–10 answer (e.g. data row "
                f"{r['row']}: {r['num']:g} labelled {r['grp']!r}); the numeric answer is used"
            )


def key_from_text(text: str, limit: int = 60) -> str:
    """A readable key from a header text (plain tables, Google Forms grid rows)."""
    t = re.sub(r"\s+", " ", text).strip()
    return t[:limit] if t else "column"


def norm(value: str) -> str:
    return normalize_label(value)


def require_columns(location: str, header: list[str], what: str) -> None:
    if not any(h.strip() for h in header):
        raise ParseError(location, f"row 1 is empty: expected the {what} header row")
