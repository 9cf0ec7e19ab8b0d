"""Bytes of a CSV/TSV/XLSX export → a string-typed polars table, robust to what survey tools and Excel emit.

Survey exports reach us through people: re-saved in Excel (cp1252, semicolons in Nordic locales, CRLF),
double-encoded (``Ã¦`` for ``æ``), with NUL bytes or BOMs. Every cell is read as text — typing is the
question registry's job, and a cell like ``=HYPERLINK(...)`` stays inert text, never evaluated.
Reading is columnar (polars' CSV reader) so a million responses take seconds; the ``csv`` module is
only used on small samples (delimiter sniffing) and to pinpoint the row of a malformed file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

import polars as pl

from cx_pipeline.sources.base import LIMITS, CpuBudget, InputTooLarge, ParseError, Reject

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
#: cp1252 renderings of UTF-8 lead bytes followed by a continuation byte: the signature of UTF-8 text
#: that was decoded as cp1252/latin-1 and saved again ("Ã¦" for "æ", "Ã¸" for "ø", "â€“" for "–").
_MOJIBAKE = re.compile(
    "[ÃÂ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]|â€"
)
DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_BYTES = 64_000


@dataclass
class RawTable:
    """All rows of one sheet/file as strings: header rows included, columns ``c0..cN``."""

    rows: pl.DataFrame
    encoding: str
    delimiter: str | None
    sheet: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: records refused while reading (a last record that may have been cut), passed on to the parse result
    rejects: list[Reject] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.rows.width

    def header(self, index: int) -> list[str]:
        """Row ``index`` (0-based) as a list of stripped strings ('' for empty cells)."""
        if index >= self.rows.height:
            return [""] * self.width
        return [("" if v is None else str(v)).strip() for v in self.rows.row(index)]

    def body(self, header_rows: int) -> pl.DataFrame:
        """Data rows after ``header_rows`` with a 1-based ``__row`` (data row number), blank rows dropped."""
        data = self.rows.slice(header_rows).with_row_index("__row", offset=1)
        cols = [c for c in data.columns if c != "__row"]
        if not cols:
            return data
        data = data.with_columns(pl.col("__row").cast(pl.Int64))

        def is_blank(c: str) -> pl.Expr:
            return pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")

        # only rows whose first cell is blank can be blank rows: test the other cells on those alone and
        # leave the table uncopied when there are none (the usual case)
        maybe = data.filter(is_blank(cols[0]))
        if maybe.height == 0:
            return data
        blank_rows = maybe.filter(pl.all_horizontal([is_blank(c) for c in cols]))["__row"]
        if blank_rows.len() == 0:
            return data
        return data.filter(~pl.col("__row").is_in(blank_rows.implode()))


def decode_bytes(data: bytes, location: str) -> tuple[str, str, list[str]]:
    """Text of ``data``, the encoding used, and warnings (NULs removed, mojibake repaired, guessed encoding)."""
    warnings: list[str] = []
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError as exc:
                raise ParseError(
                    location,
                    f"file starts with a {enc} byte-order mark but is not valid {enc} (byte offset {exc.start})",
                ) from exc
            text = text.lstrip("\ufeff")
            return _clean_text(text, enc, warnings, location)
    if b"\x00" in data[:4096] and data[:4096].count(b"\x00") > len(data[:4096]) // 4:
        # UTF-16 without a BOM: every other byte is NUL
        enc = "utf-16-le" if data[1:2] == b"\x00" else "utf-16-be"
        try:
            return _clean_text(data.decode(enc), enc, warnings, location)
        except UnicodeDecodeError:
            pass
    try:
        return _clean_text(data.decode("utf-8"), "utf-8", warnings, location)
    except UnicodeDecodeError:
        pass
    enc = _guess_single_byte(data)
    warnings.append(f"not UTF-8: decoded as {enc} (detected); check æ/ø/å in the output")
    return _clean_text(data.decode(enc, errors="replace"), enc, warnings, location)


def _guess_single_byte(data: bytes) -> str:
    """cp1252 vs latin-1 vs other single-byte code pages, via charset-normalizer restricted to plausible ones."""
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000], cp_isolation=["cp1252", "latin_1", "iso8859_15", "cp850", "mac_roman"]).best()
    enc = best.encoding if best is not None else "cp1252"
    if enc in ("latin_1", "iso8859_15"):
        # Excel on Windows writes cp1252; it only differs from latin-1 in 0x80-0x9f (€, –, ’ …)
        try:
            data.decode("cp1252")
            enc = "cp1252"
        except UnicodeDecodeError:
            pass
    return enc


def _clean_text(text: str, encoding: str, warnings: list[str], location: str) -> tuple[str, str, list[str]]:
    if "\x00" in text:
        count = text.count("\x00")
        text = text.replace("\x00", "")
        warnings.append(f"removed {count} NUL byte(s)")
    if _MOJIBAKE.search(text):
        repaired = repair_mojibake(text)
        if repaired is not None:
            warnings.append("repaired double-encoded UTF-8 (mojibake such as 'Ã¦' → 'æ')")
            text = repaired
        else:
            warnings.append("text looks double-encoded (e.g. 'Ã¦') but cannot be repaired unambiguously; kept as is")
    return text, encoding, warnings


def repair_mojibake(text: str) -> str | None:
    """UTF-8 that was decoded as cp1252 and re-saved, restored; None when the repair is not exact."""
    try:
        fixed = text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return fixed if len(_MOJIBAKE.findall(fixed)) < len(_MOJIBAKE.findall(text)) else None


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits a sample of lines into the most consistent number (>1) of fields."""
    sample = text[:_SAMPLE_BYTES]
    if len(text) > _SAMPLE_BYTES and "\n" in sample:
        sample = sample[: sample.rfind("\n")]
    best, best_score = ",", 0.0
    for delim in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delim) if r]
        except csv.Error:
            continue
        if not rows:
            continue
        widths = [len(r) for r in rows]
        mode = max(set(widths), key=widths.count)
        if mode < 2:
            continue
        score = widths.count(mode) / len(widths) * (1 + min(mode, 50) / 100)
        if score > best_score:
            best, best_score = delim, score
    return best


#: whether a vendor's text exports end with a line break, which decides what an unterminated last record means:
#: "required" — every export of the tool ends with one, so a last record without it was cut (Qualtrics, Typeform);
#: "optional" — the tool's downloads often end without one (Google Sheets/Forms, Excel re-saves), so only a short
#: record or an open quote proves a cut; "unknown" — any producer (plain tables): as "optional", plus a note
FinalNewline = Literal["required", "optional", "unknown"]


def read_table(
    data: bytes, location: str, *, filename: str = "", final_newline: FinalNewline = "optional", sniffing: bool = False
) -> list[RawTable]:
    """Every non-empty sheet of an XLSX, or the single table of a CSV/TSV; ParseError if unreadable.

    InputTooLarge past ``LIMITS`` (bytes, unpacked workbook bytes, columns, rows); ParseError "looks truncated" for a
    text file that ends mid-record. A workbook read while ``sniffing`` is kept for the parse that follows, so one
    file is read once however many formats look at it.
    """
    if len(data) > LIMITS.max_bytes:
        raise InputTooLarge(location, f"{len(data):,} bytes: past the limit of {LIMITS.max_bytes:,} bytes; refused")
    if not data or (not data[:4096].strip(_BLANK_BYTES) and not data.strip(_BLANK_BYTES)):
        raise ParseError(location, "file is empty: expected a survey export with a header row and responses")
    if data.startswith(XLSX_MAGIC):
        return _workbook_once(data, location, sniffing)
    if data.startswith(OLE_MAGIC):
        raise ParseError(location, "legacy binary .xls workbook: expected CSV or .xlsx (re-save as .xlsx)")
    forced_delim, data = _excel_sep_line(data)
    clean = _clean_utf8(data)
    if clean is not None:
        # fast path: polars reads the original bytes (no decode → str → re-encode round trip)
        raw, encoding = clean
        head = _utf8_head(raw)
        delim = forced_delim or ("\t" if filename.lower().endswith(".tsv") else sniff_delimiter(head))
        warnings: list[str] = []
        rejects: list[Reject] = []
        raw = _check_text_table(raw, delim, location, final_newline, warnings, rejects)
        frame = _read_csv_bytes(raw, delim)
        if frame is None:
            frame = _read_csv_lenient(raw.decode("utf-8"), delim, location)
    else:
        text, encoding, warnings = decode_bytes(data, location)
        rejects = []
        delim = forced_delim or ("\t" if filename.lower().endswith(".tsv") else sniff_delimiter(text))
        raw = text.encode("utf-8")
        del text
        raw = _check_text_table(raw, delim, location, final_newline, warnings, rejects)
        frame = _read_csv_bytes(raw, delim)
        if frame is None:  # slow path only for malformed files: locate the problem or read leniently
            frame = _read_csv_lenient(raw.decode("utf-8"), delim, location)
    _check_rows(frame.height, location)
    if forced_delim:
        warnings.append(f"first line 'sep={forced_delim}' (an Excel hint) names the delimiter; skipped")
    elif delim != ",":
        warnings.append(f"delimiter {_delim_name(delim)} detected")
    return [tidy_table(RawTable(frame, encoding, delim, warnings=warnings, rejects=rejects))]


def _excel_sep_line(data: bytes) -> tuple[str | None, bytes]:
    """Excel's ``sep=;`` first line: the delimiter it names, and the bytes without that line."""
    body = data[3:] if data.startswith(_UTF8_BOM) else data
    m = re.match(rb"sep=([,;\t|])\r?\n", body[:12])
    if not m:
        return None, data
    return m.group(1).decode(), body[m.end() :]


#: pandas' names for blank header cells ("Unnamed: 13", "Unnamed: 2_level_1"): a continuation, not a question
_UNNAMED = re.compile(r"^Unnamed: \d+(?:_level_\d+)?$")
_HEADER_ROWS = 3


def tidy_table(table: RawTable) -> RawTable:
    """Undo what Excel and pandas round trips add around a response table, saying what was removed.

    A re-written export gains a leading index column, "Unnamed: N" names for blank header cells, empty
    trailing columns and repeated header rows (concatenated exports); none of them is a question or a response.
    """
    rows = table.rows
    notes: list[str] = []
    if rows.height == 0 or rows.width == 0:
        return table
    # trailing columns with no value at all (Excel's used range, trailing delimiters)
    trailing = 0
    for c in reversed(rows.columns):
        if not (rows[c].null_count() == rows.height or (rows[c].str.strip_chars() == "").all()):
            break
        trailing += 1
    if trailing and trailing < rows.width:
        rows = rows.select(rows.columns[: rows.width - trailing])
        notes.append(f"dropped {trailing} empty trailing column(s)")
    head = min(_HEADER_ROWS, rows.height)
    fixed = {
        c: pl.concat([rows[c].head(head).str.replace(_UNNAMED.pattern, ""), rows[c].slice(head)])
        for c in rows.columns
        if rows[c].head(head).str.contains(_UNNAMED.pattern).any()
    }
    if fixed:
        rows = rows.with_columns(**fixed)
        notes.append(f"{len(fixed)} pandas 'Unnamed: N' header cell(s) read as blank (continuation columns)")
    if rows.width > 1 and _is_index_column(rows["c0"]):
        rows = rows.drop("c0")
        rows = rows.rename({c: f"c{i}" for i, c in enumerate(rows.columns)})
        notes.append("dropped a leading index column (row numbers added by pandas/Excel, no header)")
    first = [("" if v is None else str(v).strip()) for v in rows.row(0)]
    if sum(1 for v in first if v) >= 2 and rows.height > 1:
        same = pl.all_horizontal(
            [pl.col(c).fill_null("").str.strip_chars() == v for c, v in zip(rows.columns, first, strict=True)]
        )
        repeated = rows.with_row_index("__i").filter(same & (pl.col("__i") > 0))["__i"]
        if repeated.len():
            drop = set(repeated.to_list())
            for i in repeated.to_list():  # the header rows that follow a repeated first row (Qualtrics: 3)
                for k in (1, 2):
                    if i + k < rows.height and rows.row(i + k) == rows.row(k) and any(rows.row(k)):
                        drop.add(i + k)
            rows = rows.with_row_index("__i").filter(~pl.col("__i").is_in(sorted(drop))).drop("__i")
            notes.append(f"dropped {len(drop)} repeated header row(s) inside the data (concatenated exports)")
    return RawTable(rows, table.encoding, table.delimiter, sheet=table.sheet, warnings=table.warnings + notes,
                    rejects=table.rejects)


def _is_index_column(col: pl.Series) -> bool:
    """A blank-headed first column of consecutive integers (0.. or 1..): the row index of a pandas/Excel re-save."""
    header = (col[0] or "").strip()
    if header not in ("", "index", "Unnamed: 0") or col.len() < 3:
        return False
    values = col.slice(1).str.strip_chars().replace("", None)
    nums = values.cast(pl.Int64, strict=False)
    if nums.null_count() > values.null_count() or nums.drop_nulls().len() < 2:
        return False  # text in it: a real column
    present = nums.drop_nulls()
    return bool(present.diff().drop_nulls().eq(1).all()) and int(present[0]) in (0, 1, 2)


#: header words of a column that identifies a response or dates it: the mark of a one-response-per-row sheet
_RESPONSE_KEY = re.compile(
    r"respondent|response ?id|^#$|^id$|_id$|\bid\b|record|submission|token|timestamp|tidsstempel|tidstämpel|"
    r"zeitstempel|horodateur|\bdate\b|dato|datum|submitted|\bstart|\bend ?date",
    re.I,
)
_DATE_VALUE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


def response_sheet_reason(table: RawTable) -> tuple[float, str]:
    """How much a sheet looks like one response per row (score) and why, in words for the notes."""
    keys = [h for r in range(min(_HEADER_ROWS, table.rows.height)) for h in table.header(r) if _RESPONSE_KEY.search(h)]
    dated = 0
    for c in table.rows.columns[:40]:
        sample = table.rows[c].slice(1, 50).drop_nulls()
        if sample.len() and sample.str.contains(_DATE_VALUE.pattern).mean() >= 0.8:  # type: ignore[operator]
            dated += 1
    rows = max(table.rows.height - 1, 0)
    score = (2.0 if keys or dated else 0.0) + (1.0 if table.width >= 3 else 0.0) + min(rows, 100_000) / 100_000
    if keys:
        why = f"a respondent id/timestamp column ({keys[0][:40]!r}), {table.width} columns, {rows} data rows"
    elif dated:
        why = f"a column of dates, {table.width} columns, {rows} data rows"
    else:
        why = f"no id or timestamp column ({table.width} columns, {rows} rows: a question list or summary)"
    return score, why


def pick_sheet(
    tables: list[RawTable], location: str, *, sheet: str | None = None, fits: list[bool] | None = None
) -> RawTable:
    """The sheet holding the responses: the forced one (name or 1-based number), else the best by content.

    Workbooks put a question list or summary first and the raw responses on a later sheet; reading the first
    sheet gives 'responses' that are questions. The choice and the reason go into the table's notes.
    ``fits``: per table, whether the calling format recognises its header (preferred when any does).
    """
    names = [t.sheet or f"sheet {i + 1}" for i, t in enumerate(tables)]
    if sheet is not None and len(tables) == 1 and tables[0].sheet is None:
        return _noted(tables[0], f"sheet {sheet!r} ignored: the file is a text table, not a workbook")
    if sheet is not None:
        wanted = sheet.strip()
        for i, t in enumerate(tables):
            if names[i].lower() == wanted.lower() or wanted == str(i + 1):
                return _noted(t, f"read sheet {names[i]!r} (chosen by --sheet / the mapping's 'sheet')")
        raise ParseError(location, f"sheet {sheet!r} not found: the workbook's non-empty sheets are {names}")
    if len(tables) == 1:
        t = tables[0]
        return _noted(t, f"read sheet {t.sheet!r} (the only non-empty sheet)") if t.sheet else t
    pool = [i for i in range(len(tables)) if fits is None or fits[i]] or list(range(len(tables)))
    scored = {i: response_sheet_reason(tables[i]) for i in range(len(tables))}
    best = max(pool, key=lambda i: (scored[i][0], -i))
    skipped = "; ".join(f"{names[i]!r}: {scored[i][1]}" for i in range(len(tables)) if i != best)
    return _noted(tables[best], f"read sheet {names[best]!r} of {len(tables)}: {scored[best][1]}; skipped {skipped}")


def _noted(table: RawTable, note: str) -> RawTable:
    return RawTable(table.rows, table.encoding, table.delimiter, sheet=table.sheet, warnings=[*table.warnings, note])


_BLANK_BYTES = b"\x00 \t\r\n\xef\xbb\xbf"
_UTF8_BOM = b"\xef\xbb\xbf"
#: the UTF-8 bytes every ``_MOJIBAKE`` match starts with: 'Ã'/'Â' (C3 83 / C3 82) or 'â€' (C3 A2 E2 82 AC)
_MOJIBAKE_BYTES = re.compile(b"\xc3(?:[\x82\x83]|\xa2\xe2\x82\xac)")
_CHUNK = 1 << 20


def _clean_utf8(data: bytes) -> tuple[bytes, str] | None:
    """``data`` (leading UTF-8 BOMs removed) and its encoding when it is valid UTF-8 that ``decode_bytes``
    would pass through unchanged (no NULs, nothing that could be mojibake); None → take the text path."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        return None
    if _MOJIBAKE_BYTES.search(data):
        return None
    encoding = "utf-8"
    if data.startswith(_UTF8_BOM):
        encoding = "utf-8-sig"
        while data.startswith(_UTF8_BOM):
            data = data[len(_UTF8_BOM) :]
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:  # validate in chunks (never the whole file as str); pure-ASCII chunks need no decoding
        for start in range(0, len(data), _CHUNK):
            chunk = data[start : start + _CHUNK]
            if not (chunk.isascii() and not decoder.getstate()[0]):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return data, encoding


def _utf8_head(data: bytes) -> str:
    """Enough leading text of valid UTF-8 ``data`` for ``sniff_delimiter`` to see what it sees in the full text."""
    limit = 4 * _SAMPLE_BYTES + 4  # ≥ _SAMPLE_BYTES characters whatever the widths
    if len(data) <= limit:
        return data.decode("utf-8")
    return data[:limit].decode("utf-8", errors="ignore")  # only a cut trailing character can be dropped


def _delim_name(delim: str) -> str:
    return {"\t": "tab", ";": "semicolon", "|": "pipe", ",": "comma"}[delim]


def _check_rows(rows: int, location: str) -> None:
    if rows > LIMITS.max_rows:
        raise InputTooLarge(location, f"{rows:,} rows: past the limit of {LIMITS.max_rows:,} rows; refused")


def _check_columns(columns: int, location: str) -> None:
    if columns > LIMITS.max_columns:
        raise InputTooLarge(
            location, f"{columns} columns: past the limit of {LIMITS.max_columns} columns; refused before reading"
        )


#: how far back from the end the last records are looked for (a longer last record is read by the full reader)
_TAIL_BYTES = 1 << 20


def _check_text_table(raw: bytes, delim: str, location: str, final_newline: FinalNewline, warnings: list[str],
                      rejects: list[Reject]) -> bytes:
    """Refuse, before any per-column work, a table wider than the column budget or cut off mid-record; returns
    the bytes to read (without a last record that may have been cut, which becomes a reject).

    A cut file is a complete-looking table whose last record lost its end: its last value would be stored (a '1'
    cut from '10') under the real answer's id. It shows as an open quote at the end of the file, as a last record
    shorter than the header and than the record before it, or — for tools whose exports always end with a line
    break — as a last record without one.
    """
    first_end = raw.find(b"\n", 0, 16 << 20)
    first = raw[: first_end if first_end >= 0 else min(len(raw), 16 << 20)]
    if first.count(delim.encode()) + 1 > LIMITS.max_columns:  # an upper bound: quoted delimiters count too
        header = next(csv.reader(io.StringIO(first.decode("utf-8", "replace"), newline=""), delimiter=delim), [])
        _check_columns(len(header), location)
    if raw.count(b'"') % 2:
        _open_quote_at_end(raw, delim, location)
    records, complete = _last_records(raw, delim)
    if len(records) < 2:
        return raw
    header_width = len(next(csv.reader(io.StringIO(first.decode("utf-8", "replace"), newline=""), delimiter=delim), []))
    *before, last = records
    if len(last) < header_width and len(last) < len(before[-1]) and any(c.strip() for c in last):
        raise ParseError(
            location,
            f"file looks truncated: its last record has {len(last)} field(s), fewer fields than the header's "
            f"{header_width} and the record before it ({len(before[-1])}); it ends in {_tail(last)} — re-download "
            "or re-export the file",
        )
    ends_mid_value = not complete and bool(last[-1].strip()) and not raw.rstrip(b" \t").endswith(b'"')
    if not complete and final_newline == "required":
        raise ParseError(
            location,
            f"file looks truncated: it ends without a line break inside its last record ({_tail(last)}), and exports "
            "of this tool always end with one — re-download or re-export the file",
        )
    if ends_mid_value and final_newline == "unknown" and not _NUMBER.fullmatch(last[-1].strip()):
        warnings.append(
            f"the file ends without a line break after {_tail(last)}: read as complete (Google Sheets downloads end "
            "so); if the download was cut, that last text may be incomplete"
        )
    elif ends_mid_value and final_newline == "unknown":
        # a plain table's producer is unknown: its last record may be whole (Google Sheets downloads end without a
        # line break) or cut inside its last value ('1' from '10'), and nothing in the bytes tells which. A cut
        # number is another number, stored under the real answer's id: the one record is rejected, with the reason
        # and the remedy, and the rest is read (refusing the file would lose valid exports). A cut text is only
        # shorter, so it is read with the note above.
        kept = _without_last_record(raw)
        line = kept.count(b"\n") + 1
        rejects.append(Reject(
            f"line {line} (the last record)",
            "the file ends without a line break inside this record, so its last value may have been cut short "
            "(a '1' cut from '10'); not stored — if the file is complete, end it with a line break",
            value=delim.join(last)))
        warnings.append(f"last record refused: the file ends without a line break after {_tail(last)} (it may have "
                        "been cut); see the rejects")
        return kept
    return raw


_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def _without_last_record(raw: bytes) -> bytes:
    """``raw`` up to the line break that starts its last record (one outside quotes)."""
    body = raw.rstrip(b"\x00")
    pos = len(body)
    while True:
        nl = body.rfind(b"\n", 0, pos)
        if nl < 0:
            return b""
        if body.count(b'"', nl + 1) % 2 == 0:
            return body[: nl + 1]
        pos = nl


def _tail(record: list[str]) -> str:
    value = record[-1] if record else ""
    return repr(value if len(value) <= 40 else "…" + value[-40:])


def _open_quote_at_end(raw: bytes, delim: str, location: str) -> None:
    """An odd number of quotes: either a stray quote inside an unquoted value (legal, read as text) or a quoted
    value never closed — the end of a cut file. The csv module tells them apart."""
    reader = csv.reader(io.StringIO(raw.decode("utf-8", "replace"), newline=""), delimiter=delim, strict=True)
    count = 0
    try:
        for _ in reader:
            count += 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise ParseError(
                location,
                f"file looks truncated: unbalanced quote — the quoted value opened in record {count + 1} (line "
                f"{reader.line_num}) is unterminated at the end of the file; re-download or re-export the file",
            ) from exc
        # other quoting errors are reported by the reader that reads the table, with their row


def _last_records(raw: bytes, delim: str) -> tuple[list[list[str]], bool]:
    """The last two records of the file (fewer if it has fewer) and whether the file ends with a line break.

    Read from a suffix that starts at a line break outside quotes (an even number of quotes follows it), so a
    multi-line quoted comment in the last record is one record; an empty trailing line is no record."""
    body = raw.rstrip(b"\x00")
    complete = body.endswith((b"\n", b"\r"))
    start = max(0, len(body) - _TAIL_BYTES)
    quotes_after = body.count(b'"', start)
    if start:
        # walk line starts forward from the window start until one lies outside quotes, with 3+ lines after it
        pos = start
        while True:
            nl = body.find(b"\n", pos)
            if nl < 0:
                return [], complete
            quotes_after -= body.count(b'"', pos, nl + 1)
            pos = nl + 1
            if quotes_after % 2 == 0:
                break
        start = pos
    rows = [r for r in csv.reader(io.StringIO(body[start:].decode("utf-8", "replace"), newline=""), delimiter=delim)]
    rows = [r for r in rows if r]
    return rows[-2:], complete


def _read_csv_bytes(raw: bytes, delim: str) -> pl.DataFrame | None:
    """All cells of UTF-8 CSV bytes as strings (columns ``c0..cN``), or None if polars cannot read it."""
    try:
        frame = pl.read_csv(
            raw,
            has_header=False,
            infer_schema=False,
            separator=delim,
            quote_char='"',
            truncate_ragged_lines=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        return None
    return frame.rename({c: f"c{i}" for i, c in enumerate(frame.columns)})


def _read_csv_lenient(text: str, delim: str, location: str) -> pl.DataFrame:
    """The csv module's reading of an irregular file, or ParseError naming the row that breaks it."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    budget = CpuBudget(location)
    try:
        for row in reader:
            rows.append(row)
            if len(rows) % 10_000 == 0:
                budget.check()
                _check_rows(len(rows), location)
    except csv.Error as exc:
        raise ParseError(
            location,
            f"malformed CSV at line {reader.line_num} (record {len(rows) + 1}): {exc}; "
            "expected properly quoted fields (a truncated file or an unterminated quote)",
        ) from exc
    if not rows:
        raise ParseError(location, "file has no rows: expected a header row and responses")
    width = len(rows[0])
    _check_columns(width, location)
    for i, row in enumerate(rows[1:], start=2):
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            raise ParseError(
                location,
                f"record {i} has {len(row)} fields but the header row has {width}: expected "
                f"'{_delim_name(delim)}'-separated fields with quoted text (misaligned row)",
            )
    cols = {f"c{j}": [r[j] if j < len(r) else None for r in rows] for j in range(width)}
    return pl.DataFrame(cols, schema={f"c{j}": pl.String for j in range(width)})


#: the workbook a sniffer read, kept for the parse of the same bytes: (size, digest) → its tables
_SNIFFED: dict[tuple[int, bytes], list[RawTable]] = {}


def _workbook_once(data: bytes, location: str, sniffing: bool) -> list[RawTable]:
    """The tables of a workbook, read once per file: a sniffer's read is kept (one workbook at a time) and handed
    to the parse that follows, which takes it out so its memory goes with the parse."""
    key = (len(data), hashlib.blake2b(data, digest_size=16).digest())
    if sniffing:
        if key not in _SNIFFED:
            _SNIFFED.clear()
            _SNIFFED[key] = read_workbook(data, location)
        return _SNIFFED[key]
    tables = _SNIFFED.pop(key, None)
    return tables if tables is not None else read_workbook(data, location)


#: rows turned into Python values at a time: a million-row sheet never exists as one list of Python objects
_WORKBOOK_CHUNK_ROWS = 50_000
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension ref="[A-Z]+\d+:([A-Z]+)(\d+)"')


def _check_workbook_size(data: bytes, location: str) -> None:
    """Refuse a workbook whose unpacked parts or declared sheet size are past the budgets, before reading cells.

    A few megabytes of .xlsx can unpack to gigabytes (XML compresses ~50×); the zip directory and each sheet's
    ``<dimension>`` say so without reading a cell."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            unpacked = sum(i.file_size for i in infos)
            if unpacked > LIMITS.max_bytes:
                raise InputTooLarge(
                    location,
                    f"workbook unpacks to {unpacked:,} bytes: past the limit of {LIMITS.max_bytes:,} bytes; refused",
                )
            for info in infos:
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    with zf.open(info) as f:
                        head = f.read(4096)
                    m = _DIMENSION.search(head)
                    if m:
                        _check_columns(_column_number(m.group(1).decode()), location)
                        _check_rows(int(m.group(2)), location)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        if isinstance(exc, ParseError):
            raise
        raise ParseError(location, f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def read_workbook(data: bytes, location: str) -> list[RawTable]:
    """Each non-empty sheet of an .xlsx as a RawTable (cells rendered as export-like strings).

    Rows become string columns a chunk at a time, so the Python objects of a big sheet never exist all at once."""
    from python_calamine import CalamineWorkbook

    _check_workbook_size(data, location)
    budget = CpuBudget(location)
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        tables: list[RawTable] = []
        for name in wb.sheet_names:
            sheet = wb.get_sheet_by_name(name)
            _check_columns(sheet.width, location)
            _check_rows(sheet.height, location)
            width = sheet.width
            schema = {f"c{j}": pl.String for j in range(width)}
            chunks: list[pl.DataFrame] = []
            block: list[list[object]] = []
            for row in sheet.iter_rows():
                if any(c not in ("", None) for c in row):
                    block.append(row)
                if len(block) >= _WORKBOOK_CHUNK_ROWS:
                    chunks.append(_rows_frame(block, width, schema))
                    block = []
                    budget.check()
            if block:
                chunks.append(_rows_frame(block, width, schema))
            del sheet
            if not chunks or width == 0:
                continue
            frame = pl.concat(chunks) if len(chunks) > 1 else chunks[0]
            del chunks
            tables.append(tidy_table(RawTable(frame, "xlsx", None, sheet=name)))
    except ParseError:
        raise
    except Exception as exc:  # calamine raises its own error types for corrupt zips/XML
        raise ParseError(location, f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    if not tables:
        raise ParseError(location, "workbook has no non-empty sheet: expected a sheet with a header row and responses")
    return tables


def _rows_frame(rows: list[list[object]], width: int, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    cols = {f"c{j}": [_cell_text(r[j]) if j < len(r) else None for r in rows] for j in range(width)}
    return pl.DataFrame(cols, schema=schema)


def _cell_text(value: object) -> str | None:
    """Typed Excel cell → the text a CSV export would have (integral floats without '.0', ISO datetimes)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # as Excel writes a boolean cell to CSV: never the number 1 in a score column
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def strip_html(text: str) -> str:
    """Question text without markup (Typeform puts <strong> in headers) and with collapsed whitespace."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]{0,200}>", "", text)).strip()
