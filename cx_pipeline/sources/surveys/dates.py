"""Survey date columns → UTC, vectorized, with day-first vs month-first decided per file from the data.

Exports carry dates as ISO (Qualtrics, Typeform), US ``M/D/YY H:MM`` (SurveyMonkey re-saved in Excel,
Google Forms in US locales) or day-first ``D.M.YYYY``/``D/M/YYYY`` (Nordic locales). Guessing per value
mixes orders inside one file; instead one order is chosen per file from values that prove it (a first
part > 12 ⇒ day-first) and the choice is reported so an analyst can see it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from cx_pipeline.sources.base import ParseError

UTC_DT = pl.Datetime("us", "UTC")
_SLASH = (
    r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})"
    r"(?:[ T,]+(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:\.\d+)?)?\s*([AaPp]\.?[Mm]\.?)?)?$"
)
_ISO = (
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|[+\-]\d{2}:?\d{2}|UTC)?$"
)


#: the years a survey response can carry; outside them a date is a typo or a placeholder (0001-01-01, 9999-12-31),
#: and such values would also overflow Python's datetime downstream, so the response is rejected with the reason
FIRST_YEAR, LAST_YEAR = 1900, 2099


@dataclass(frozen=True)
class DateResult:
    values: pl.Series  # Datetime(us, UTC); null where the value was rejected
    order: str  # "iso", "day_first", "month_first", "empty"
    note: str | None  # what was decided and why, for ParseResult.warnings
    #: values refused one by one: (index into ``values``, the raw value, why)
    rejected: tuple[tuple[int, str, str], ...] = ()


def check_timezone(tz: str | None, location: str) -> str | None:
    if tz is None:
        return None
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ParseError(location, f"unknown time zone {tz!r} in the export header") from exc
    return tz


def parse_dates(
    values: pl.Series,
    *,
    column: str,
    location: str,
    tz: str | None = None,
    prefer_month_first: bool = False,
    default_reason: str | None = None,
    month_hint: pl.Series | None = None,
    month_hint_name: str = "month",
) -> DateResult:
    """UTC datetimes for one column; ``tz`` is the zone naive values are in (None = UTC).

    ``month_hint``: a month or quarter column of the same rows; when the values leave day-first vs month-first
    open it decides, and when they prove one it is cross-checked. ``default_reason`` says why
    ``prefer_month_first`` is the default for this export (shown in the note when nothing else decides).
    A value that is not a date, not a valid date/time, or outside FIRST_YEAR..LAST_YEAR is rejected on its own
    (``rejected``, value null); ParseError (naming the first one) only when most values fit no supported layout — then
    the column is not a date column in a layout we read — or when the file mixes day-first and month-first values.
    """
    tz = check_timezone(tz, location)
    s = values.cast(pl.String).str.strip_chars()
    s = pl.Series(values.name, s).replace("", None)
    n = s.drop_nulls().len()
    if n == 0:
        return DateResult(pl.Series(values.name, [None] * len(values), dtype=UTC_DT), "empty", None)
    fast = _plain_iso(s, values.name, n, tz)
    if fast is not None:
        return _in_range(DateResult(fast, "iso", None), s)
    frame = pl.DataFrame({"s": s})
    iso = frame.select(pl.col("s").str.extract_groups(_ISO)).unnest("s")
    iso.columns = ["y", "m", "d", "H", "M", "S", "f", "off"]
    is_iso = iso["y"].is_not_null()
    slash = frame.select(pl.col("s").str.extract_groups(_SLASH)).unnest("s")
    slash.columns = ["a", "b", "y", "H", "M", "S", "ampm"]
    is_slash = slash["a"].is_not_null()
    bad = s.is_not_null() & ~is_iso & ~is_slash
    rejected: dict[int, str] = {}
    if bad.any():
        idx = int(bad.arg_true()[0])
        if int(bad.sum()) * 2 > n:
            raise ParseError(
                location,
                f"column {column!r}, data row {idx + 1}: date {s[idx]!r} is not a recognised "
                f"date ({_LAYOUTS}); {int(bad.sum())} of {n} values are not",
            )
        rejected.update((int(i), f"{s[int(i)]!r} is not a recognised date ({_LAYOUTS})") for i in bad.arg_true())
    note = None
    order = "iso"
    if is_slash.any():
        a = slash["a"].cast(pl.Int32)
        b = slash["b"].cast(pl.Int32)
        both = ((a > 12) & (b > 12)).fill_null(False)
        rejected.update((int(i), f"{s[int(i)]!r} is not a valid date") for i in both.arg_true())
        a = a.zip_with(~both, pl.Series([None] * len(a), dtype=pl.Int32))
        b = b.zip_with(~both, pl.Series([None] * len(b), dtype=pl.Int32))
        day_first_proof = bool((a > 12).any())
        month_first_proof = bool((b > 12).any())
        if day_first_proof and month_first_proof:
            idx_d = int((a > 12).arg_true()[0])
            idx_m = int((b > 12).arg_true()[0])
            raise ParseError(
                location,
                f"column {column!r}: mixed date orders — data row {idx_d + 1} ({s[idx_d]!r}) "
                f"is day-first but data row {idx_m + 1} ({s[idx_m]!r}) is month-first",
            )
        hint = _agreement(a, b, month_hint) if month_hint is not None else None
        if day_first_proof:
            order, why = "day_first", "a first part > 12 proves day-first"
        elif month_first_proof:
            order, why = "month_first", "a second part > 12 proves month-first"
        elif hint is not None and hint[0] != hint[1]:
            order = "day_first" if hint[1] > hint[0] else "month_first"
            why = (
                f"no value > 12 in either part; column {month_hint_name!r} agrees with "
                f"{order.replace('_', '-')} on {max(hint[:2])} of {hint[2]} rows (the other order: {min(hint[:2])})"
            )
        else:
            order = "month_first" if prefer_month_first else "day_first"
            why = (
                f"no value > 12 in either part: ambiguous, assumed {order.replace('_', '-')} "
                f"{default_reason or 'for this export type'}"
            )
        if hint is not None and (day_first_proof or month_first_proof) and hint[2]:
            agree = hint[1] if order == "day_first" else hint[0]
            why += f"; column {month_hint_name!r} agrees on {agree} of {hint[2]} rows"
        note = f"dates in {column!r} read as {order.replace('_', '-')} ({why})"
        month, day = (b, a) if order == "day_first" else (a, b)
        year = slash["y"].cast(pl.Int32)
        year = pl.Series(year).zip_with(year >= 100, year + 2000)  # 2-digit years are 20YY in survey exports
        hour = slash["H"].cast(pl.Int32).fill_null(0)
        ampm = slash["ampm"].str.to_lowercase().str.slice(0, 1)
        hour = (
            pl.DataFrame({"h": hour, "p": ampm})
            .select(
                pl.when(pl.col("p") == "p")
                .then(pl.col("h") % 12 + 12)
                .when(pl.col("p") == "a")
                .then(pl.col("h") % 12)
                .otherwise(pl.col("h"))
            )
            .to_series()
        )
        parts_slash = pl.DataFrame(
            {
                "y": year,
                "m": month,
                "d": day,
                "H": hour,
                "M": slash["M"].cast(pl.Int32).fill_null(0),
                "S": slash["S"].cast(pl.Int32).fill_null(0),
                "us": pl.Series([0] * len(s), dtype=pl.Int32),
                "off": pl.Series([None] * len(s), dtype=pl.String),
            }
        )
    else:
        parts_slash = None
    parts_iso = pl.DataFrame(
        {
            "y": iso["y"].cast(pl.Int32),
            "m": iso["m"].cast(pl.Int32),
            "d": iso["d"].cast(pl.Int32),
            "H": iso["H"].cast(pl.Int32).fill_null(0),
            "M": iso["M"].cast(pl.Int32).fill_null(0),
            "S": iso["S"].cast(pl.Int32).fill_null(0),
            "us": iso["f"].str.pad_end(6, "0").cast(pl.Int32).fill_null(0),
            "off": iso["off"],
        }
    )
    parts = (
        parts_iso
        if parts_slash is None
        else parts_iso.select(
            [pl.when(pl.Series(is_iso)).then(pl.col(c)).otherwise(parts_slash[c]).alias(c) for c in parts_iso.columns]
        )
    )
    parts = parts.with_row_index("__i")
    skip = _at(len(s), rejected)
    invalid = parts.filter(
        pl.Series(s.is_not_null())
        & ~skip
        & ~(
            pl.col("m").is_between(1, 12)
            & pl.col("d").is_between(1, 31)
            & pl.col("H").is_between(0, 23)
            & pl.col("M").is_between(0, 59)
            & pl.col("S").is_between(0, 60)
            & (pl.col("d") <= pl.date(pl.col("y"), pl.col("m").clip(1, 12), 1).dt.month_end().dt.day())
        )
    )
    rejected.update((int(i), f"{s[int(i)]!r} is not a valid date/time") for i in invalid["__i"])
    if rejected:  # rejected values must not reach pl.datetime (an invalid day would raise there)
        keep = ~_at(len(s), rejected)
        parts = parts.with_columns(pl.when(keep).then(pl.col(c)).otherwise(None).alias(c) for c in "ymdHMS")
    naive = parts.select(
        pl.datetime(
            pl.col("y"), pl.col("m"), pl.col("d"), pl.col("H"), pl.col("M"), pl.col("S").clip(0, 59), pl.col("us")
        ).alias("dt"),
        pl.col("off"),
    )
    off = naive["off"].str.replace("UTC", "Z").str.replace("Z", "+00:00").str.replace(r"^([+\-]\d{2})(\d{2})$", "$1:$2")
    offset_min = off.str.slice(0, 1).replace({"+": "1", "-": "-1"}).cast(pl.Int32) * (
        off.str.slice(1, 2).cast(pl.Int32) * 60 + off.str.slice(4, 2).cast(pl.Int32)
    )
    has_off = offset_min.is_not_null()
    local = naive["dt"]
    if tz:
        zoned = local.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    else:
        zoned = local.dt.replace_time_zone("UTC")
    explicit = local.dt.replace_time_zone("UTC")
    explicit = (
        pl.DataFrame({"e": explicit, "o": offset_min})
        .select(pl.col("e") - pl.duration(minutes=pl.col("o").fill_null(0)))
        .to_series()
    )
    out = (
        pl.DataFrame({"z": zoned, "e": explicit, "h": has_off})
        .select(pl.when(pl.col("h")).then(pl.col("e")).otherwise(pl.col("z")).alias(values.name or "date"))
        .to_series()
    )
    result = DateResult(out.cast(UTC_DT), order, note, tuple((i, str(s[i]), r) for i, r in sorted(rejected.items())))
    return _in_range(result, s)


def _at(n: int, indices: dict[int, str]) -> pl.Series:
    """A boolean mask of length ``n``, True at ``indices``."""
    return pl.int_range(0, n, eager=True).is_in(list(indices))


_LAYOUTS = "expected YYYY-MM-DD[ HH:MM[:SS]], M/D/YY[YY] or D/M/YY[YY] with optional time"


def _in_range(result: DateResult, raw: pl.Series) -> DateResult:
    """``result`` with the dates outside FIRST_YEAR..LAST_YEAR (in UTC) rejected and nulled."""
    year = result.values.dt.year()
    outside = ((year < FIRST_YEAR) | (year > LAST_YEAR)).fill_null(False)
    if not outside.any():
        return result
    extra = tuple(
        (int(i), str(raw[int(i)]), f"date {raw[int(i)]!r} is outside the years {FIRST_YEAR}–{LAST_YEAR} a response "
         "can carry (a placeholder or typo)")
        for i in outside.arg_true()
    )
    values = result.values.zip_with(~outside, pl.Series([None] * len(outside), dtype=UTC_DT))
    return DateResult(values, result.order, result.note, tuple(sorted(result.rejected + extra)))


_MONTH_NAMES = {
    name: i + 1
    for names in (
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
        ("jan", "feb", "mar", "apr", "mai", "jun", "jul", "aug", "sep", "okt", "nov", "des"),
        ("jan", "feb", "mär", "apr", "mai", "jun", "jul", "aug", "sep", "okt", "nov", "dez"),
        ("jan", "fév", "mar", "avr", "mai", "jui", "jul", "aoû", "sep", "oct", "nov", "déc"),
    )
    for i, name in enumerate(names)
}
#: header names of a month or quarter column that can confirm the date order
MONTH_HEADERS = ("month", "måned", "maaned", "månad", "monat", "mois", "maand", "survey_month", "response_month")
QUARTER_HEADERS = ("quarter", "kvartal", "quartal", "trimestre", "qtr")


def month_numbers(values: pl.Series, *, quarter: bool = False) -> pl.Series:
    """Month (or quarter) number per row from '9', '09', 'Sep', 'september', '2021-09', '09/2021', 'Q3', '2021Q3'."""
    s = values.cast(pl.String).str.strip_chars().str.to_lowercase()
    if quarter:
        return s.str.extract(r"(?:^|q)([1-4])$", 1).cast(pl.Int32, strict=False)
    frame = pl.DataFrame({"s": s})
    num = frame.select(
        pl.coalesce(
            pl.col("s").str.extract(r"^(\d{1,2})$", 1),
            pl.col("s").str.extract(r"^\d{4}[-/.](\d{1,2})$", 1),
            pl.col("s").str.extract(r"^(\d{1,2})[-/.]\d{4}$", 1),
        ).cast(pl.Int32, strict=False)
    ).to_series()
    named = s.str.slice(0, 3).replace_strict(_MONTH_NAMES, default=None, return_dtype=pl.Int32)
    out = pl.DataFrame({"n": num, "m": named}).select(pl.coalesce("n", "m")).to_series()
    return out.zip_with(out.is_between(1, 12).fill_null(False), pl.Series([None] * len(out), dtype=pl.Int32))


def _agreement(a: pl.Series, b: pl.Series, hint: pl.Series) -> tuple[int, int, int]:
    """Rows whose month-first month (a) / day-first month (b) matches the hint, and the rows compared."""
    frame = pl.DataFrame({"a": a, "b": b, "h": hint}).drop_nulls()
    if frame.height == 0:
        return 0, 0, 0
    if hint.name == "__quarter":
        frame = frame.with_columns((pl.col("a") - 1) // 3 + 1, (pl.col("b") - 1) // 3 + 1)
    return int((frame["a"] == frame["h"]).sum()), int((frame["b"] == frame["h"]).sum()), frame.height


_DATE_HEADER = re.compile(
    r"date|dato|datum|timestamp|tidsstempel|tidstämpel|tidsstämpel|zeitstempel|horodateur|submitted|"
    r"created|recorded|completed|answered|responded|\btime\b|tidspunkt|\bwhen\b|_at$",
    re.I,
)
_DATE_PRIORITY = (
    (re.compile(r"submit|recorded|completed|end|answered|responded|svar", re.I), 0),
    (re.compile(r"date|dato|datum|timestamp|stempel|stämpel|horodateur", re.I), 1),
    (re.compile(r"start|created", re.I), 2),
)


def date_candidates(data: pl.DataFrame, headers: dict[str, str]) -> list[tuple[str, str]]:
    """Every column that looks like a response date, best first, with why: (column, reason).

    A column counts when its header names a date or when its values are dates; among several, a submit/end
    date beats a generic date, which beats a start/created date, and a named column beats an unnamed one.
    """
    found: list[tuple[int, int, str, str]] = []
    for i, (col, header) in enumerate(headers.items()):
        sample = data[col].head(500).cast(pl.String).str.strip_chars().replace("", None).drop_nulls()
        if sample.len() == 0:
            continue
        shaped = float(sample.str.contains(f"^(?:{_ISO[1:-1]})$|^(?:{_SLASH[1:-1]})$").mean() or 0.0)
        named = bool(_DATE_HEADER.search(header))
        if shaped < 0.8:
            continue
        rank = next((r for pattern, r in _DATE_PRIORITY if pattern.search(header)), 3 if named else 4)
        why = "header names a date" if named else "values are dates"
        found.append((rank, i, col, f"{why}, {shaped:.0%} of sampled values are dates"))
    return [(col, why) for _, _, col, why in sorted(found)]


#: the layout nearly every export uses; always a valid date for the general path when strptime accepts it
_PLAIN_ISO = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:[0-5]\d$"


def _plain_iso(s: pl.Series, name: str | None, n: int, tz: str | None) -> pl.Series | None:
    """Fast path for a column of only ``YYYY-MM-DD HH:MM:SS`` values (one strptime instead of regex groups);
    None when any value needs the general path (other layouts, offsets, invalid dates → its errors)."""
    if not s.str.contains(_PLAIN_ISO).fill_null(True).all():
        return None
    local = s.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    if local.null_count() != len(s) - n:
        return None
    if tz:
        zoned = local.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    else:
        zoned = local.dt.replace_time_zone("UTC")
    return zoned.alias(name or "date").cast(UTC_DT)
