"""Google Play Console monthly review exports (``reviews_reviews_<package>_<YYYYMM>.csv``).

This is what an app owner downloads from the Play Console (or its Cloud Storage bucket): one CSV per
app and month, **UTF-16LE with a BOM**, one row per rating. It arrives through the file inbox.

* Most rows are **rating-only** (no title, no text): each is still a star event, with no text.
* The export has **no review id column**. ``Review Link`` holds one only for reviews with text, and
  a rating-only review that later gains text would change id. The id is therefore built from what
  never changes for one review: package, submit time in milliseconds and device
  (``<package>:<submit millis>:<device>``), stable across monthly exports of the same review.
* ``Reviewer Language`` is the Play Store's UI language, often not the text's language; it is passed
  on as declared and the scoring's language check overrides it when the text disagrees.
* Old exports fill ``Review Title``; newer ones leave it empty.
* There is no reviewer identity at all: no ``customer_ref``.
* The app version (name and code) has no contract column; it is kept per review in
  ``ParseResult.page.business["app_versions"]`` and in the archived file.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from cx_pipeline.sources.base import CpuBudget, PageInfo, ParseError, ParseResult, Reject, SourceFormat, measures_frame
from cx_pipeline.sources.reviews._review_common import (
    app_stars,
    check_not_all_refused,
    clean_reply,
    clean_text,
    language_code,
    refuse,
    stars,
    utc_from_epoch,
    utc_from_iso,
)

_REQUIRED = ("Package Name", "Star Rating")
_SUBMIT = ("Review Submit Millis Since Epoch", "Review Submit Date and Time")
csv.field_size_limit(16 * 1024 * 1024)


def decode_export(data: bytes, location: str) -> str:
    """The export as text: UTF-16 (with BOM, or BOM-less LE detected by NUL bytes) or UTF-8."""
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        if data.startswith(b"\xef\xbb\xbf"):
            return data[3:].decode("utf-8")
        if len(data) >= 4 and data[1:2] == b"\x00" and data[3:4] == b"\x00":
            return data.decode("utf-16-le")
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(location, f"not UTF-16 or UTF-8 text at byte {exc.start} (a Play Console export is "
                                   "UTF-16LE with a BOM)") from exc


class GooglePlayConsoleFormat(SourceFormat):
    name = "google_play_console"
    kind = "review"
    version = "1.0"
    sniff_priority = 14  # before the generic survey CSV reader, which would take any .csv

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:2_000]
        if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[1:2] == b"\x00":
            try:
                text = head[: len(head) // 2 * 2].decode("utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff")
                                                        else "utf-16-le", "replace")
            except UnicodeDecodeError:  # pragma: no cover - "replace" does not raise
                return False
        else:
            text = head.decode("utf-8", "replace")
        first = text.lstrip("\ufeff").split("\n", 1)[0]
        return "Package Name" in first and "Star Rating" in first and "Review" in first

    def parse(self, data: bytes, *, location: str) -> ParseResult:
        text = decode_export(data, location).lstrip("\ufeff")
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise ParseError(location, f"not a readable CSV ({exc})") from exc
        if not rows:
            raise ParseError(location, "empty file: expected a Play Console review export header")
        header = [h.strip() for h in rows[0]]
        missing = [c for c in _REQUIRED if c not in header]
        if missing or not any(c in header for c in _SUBMIT):
            raise ParseError(location, f"row 1: not a Play Console review export header (missing {missing or _SUBMIT})")
        col = {name: i for i, name in enumerate(header)}
        out: list[dict[str, Any]] = []
        versions: dict[str, str] = {}
        packages: set[str] = set()
        seen: set[str] = set()
        warnings: list[str] = []
        rejects: list[Reject] = []
        budget = CpuBudget(location)
        for n, raw in enumerate(rows[1:], start=2):
            budget.check()
            if not any(cell.strip() for cell in raw):
                continue
            if len(raw) != len(header):
                rejects.append(Reject(f"row {n}", f"row {n}: {len(raw)} fields, the header has {len(header)}"))
                continue
            row = {name: raw[i] for name, i in col.items()}
            try:
                record = self._row(row, n, location)
            except ParseError as exc:  # one bad row is refused; the rest of the export is kept
                refuse(rejects, exc, f"row {n}")
                continue
            rid = record["native_id"]
            if rid in seen:
                warnings.append(f"row {n} repeats review {rid}; kept the first")
                continue
            seen.add(rid)
            packages.add(row["Package Name"].strip())
            version = " ".join(v for v in (clean_text(row.get("App Version Name")),
                                          f"({row['App Version Code'].strip()})" if clean_text(
                                              row.get("App Version Code")) else None) if v)
            if version:
                versions[rid] = version
            out.append(record)
        check_not_all_refused(location, rejects, len(out), "row")
        rating_only = sum(1 for r in out if r["text"] is None and r["title"] is None)
        if rating_only:
            warnings.append(f"{rating_only} rating-only row(s) (no title or text): star events without text")
        page = PageInfo(total_count=len(out), business={"packages": sorted(packages), "app_versions": versions})
        return ParseResult(self.name, self.parser_id, measures_frame(out), len(out), page=page, warnings=warnings,
                           empty_reason=None if out else "the export has a header but no review rows", rejects=rejects)

    def _row(self, row: dict[str, str], n: int, location: str) -> dict[str, Any]:
        where = f"row {n}"
        package = row["Package Name"].strip()
        if not package:
            raise ParseError(location, f"{where}: empty Package Name")
        rating = stars(row["Star Rating"], where=where, location=location)
        submitted = utc_from_epoch(row.get("Review Submit Millis Since Epoch"), field=f"{where} Review Submit Millis",
                                   location=location)
        if submitted is None:
            submitted = utc_from_iso(row.get("Review Submit Date and Time"), field=f"{where} Review Submit Date",
                                     location=location)
        if submitted is None:
            raise ParseError(location, f"{where}: no Review Submit time: the review cannot be identified")
        millis = (row.get("Review Submit Millis Since Epoch") or "").strip() or str(int(submitted.timestamp() * 1000))
        updated = utc_from_epoch(row.get("Review Last Update Millis Since Epoch"),
                                 field=f"{where} Review Last Update Millis", location=location)
        if updated is None:
            updated = utc_from_iso(row.get("Review Last Update Date and Time"), field=f"{where} Review Last Update",
                                   location=location)
        replied = utc_from_epoch(row.get("Developer Reply Millis Since Epoch"),
                                 field=f"{where} Developer Reply Millis", location=location)
        if replied is None:
            replied = utc_from_iso(row.get("Developer Reply Date and Time"), field=f"{where} Developer Reply Date",
                                   location=location)
        return {
            **app_stars(f"{package}:{millis}:{(row.get('Device') or '').strip()}", where, rating),
            "published_at": submitted,
            "updated_at": updated if updated is not None and updated != submitted else None,
            "language": language_code(row.get("Reviewer Language")),
            "title": clean_text(row.get("Review Title")),
            "text": clean_text(row.get("Review Text")),
            "reply_text": clean_reply(row.get("Developer Reply Text")),
            "replied_at": replied,
        }
