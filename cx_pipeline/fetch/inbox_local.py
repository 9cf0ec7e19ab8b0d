"""Pure helpers for a survey inbox folder: list new files by content hash, archive, quarantine.

Analysts drop exports into a folder; the pipeline must never lose one. Files are identified by
SHA-256 (a re-dropped file is recognisably the same), archived by copying and verifying the copy
before the original is removed, and unreadable files are quarantined next to a reason file that
says what was wrong and where (row/column) so the analyst can fix and re-drop them.

Any name the OS accepts is handled: a name with bytes that are not UTF-8 (``caf\\xe9_export.csv`` on Linux)
is used as it is for file operations and shown with those bytes escaped (:func:`display_name`) wherever it
is stored or printed; names of archived and quarantined copies start with the content hash and are cut to fit
the file system's 255-byte limit (:func:`stored_name`), so a 250-byte name archives like any other.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cx_pipeline.sources.base import ParseError

#: Files the inbox takes: text tables, Excel workbooks and SPSS ``.sav`` files (read by ``sources/surveys/spss.py``).
SURVEY_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".sav", ".json")  # .json: Google Play / Places review files
_PARTIAL = (".part", ".tmp", ".crdownload", ".download")
MAX_NAME_BYTES = 255  # NAME_MAX of ext4, xfs, btrfs, APFS, NTFS (UTF-16 units there)
_SIDECAR_ROOM = len(".reason.json")  # the longest suffix added to a stored name (.part, .reason.txt are shorter)


def display_name(name: str) -> str:
    """``name`` as valid UTF-8 text: bytes the OS decoded as surrogates (not UTF-8) become ``\\xNN``.

    Why: Python hands such names over with lone surrogates, which any UTF-8 encoder (Parquet, JSON, Dagster
    metadata, logs) refuses; the escaped form is readable and tells which byte it was."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _cut_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max(max_bytes, 0)].decode("utf-8", "ignore")


def stored_name(prefix: str, name: str) -> str:
    """``<prefix>_<name>`` for an archived or quarantined copy, within the OS name limit with room for a sidecar
    suffix: the name's tail is cut (its extension kept), never the content-hash prefix that identifies it."""
    safe = display_name(name).replace("/", "_")
    budget = MAX_NAME_BYTES - _SIDECAR_ROOM - len(prefix.encode("utf-8")) - 1
    if len(safe.encode("utf-8")) <= budget:
        return f"{prefix}_{safe}"
    stem, dot, ext = safe.rpartition(".")
    ext = f".{ext}" if dot and len(ext.encode("utf-8")) <= 16 else ""
    stem = safe[: len(safe) - len(ext)] if ext else safe
    return f"{prefix}_{_cut_utf8(stem, budget - len(ext.encode('utf-8')) - 1)}~{ext}"


def is_waiting_survey_file(name: str, suffixes: tuple[str, ...] = SURVEY_SUFFIXES) -> bool:
    """A finished survey export: not hidden, not an Excel lock file, not a partial download."""
    lower = name.lower()
    return not name.startswith((".", "~$")) and not lower.endswith(_PARTIAL) and lower.endswith(suffixes)


@dataclass(frozen=True)
class InboxFile:
    path: Path
    name: str
    size: int
    sha256: str
    modified_at: datetime  # the later of content change and arrival (a move or copy into the folder)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_inbox(folder: Path, suffixes: tuple[str, ...] = SURVEY_SUFFIXES) -> list[InboxFile]:
    """Survey files waiting in ``folder`` (sorted by name), skipping hidden, partial and Excel lock files."""
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        name = p.name
        if not p.is_file() or not is_waiting_survey_file(name, suffixes):
            continue
        st = p.stat()
        arrived = max(st.st_mtime, st.st_ctime)  # ctime: a file moved in keeps its mtime
        out.append(InboxFile(p, name, st.st_size, file_sha256(p), datetime.fromtimestamp(arrived, tz=UTC)))
    return out


def _copy_verified(src: Path, dest: Path, sha256: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copy2(src, tmp)
    if file_sha256(tmp) != sha256:
        tmp.unlink(missing_ok=True)
        raise OSError(f"copy of {src} to {dest} does not match its SHA-256; original kept")
    tmp.replace(dest)


def archive_file(src: Path, archive_dir: Path, *, now: datetime | None = None, remove_source: bool = True) -> Path:
    """Copy ``src`` to ``archive_dir/YYYY/MM/DD/<sha16>_<name>``, verify, then (optionally) remove the original."""
    now = now or datetime.now(UTC)
    sha = file_sha256(src)
    dest = archive_dir / f"{now:%Y/%m/%d}" / stored_name(sha[:16], src.name)
    if not (dest.exists() and file_sha256(dest) == sha):
        _copy_verified(src, dest, sha)
    if remove_source:
        src.unlink()
    return dest


def quarantine_file(
    src: Path,
    quarantine_dir: Path,
    *,
    reason: str | ParseError,
    now: datetime | None = None,
    remove_source: bool = True,
    name: str | None = None,
) -> Path:
    """Move a bad file aside (copy-verify-remove) with ``<name>.reason.json`` + ``.reason.txt`` saying why/where.

    ``name``: the file's name as the analyst dropped it, when ``src`` is a copy under another name."""
    now = now or datetime.now(UTC)
    sha = file_sha256(src)
    shown = display_name(name or src.name)
    dest = quarantine_dir / stored_name(f"{now:%Y%m%dT%H%M%SZ}_{sha[:12]}", name or src.name)
    _copy_verified(src, dest, sha)
    if isinstance(reason, ParseError):
        info = {
            "file": shown,
            "sha256": sha,
            "location": display_name(reason.location),
            "problem": display_name(reason.reason),
            "quarantined_at": now.isoformat(),
        }
    else:
        info = {
            "file": shown,
            "sha256": sha,
            "location": display_name(str(src)),
            "problem": display_name(reason),
            "quarantined_at": now.isoformat(),
        }
    dest.with_name(dest.name + ".reason.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    dest.with_name(dest.name + ".reason.txt").write_text(
        f"{shown} could not be ingested and was quarantined at {now.isoformat()}.\n\n"
        f"What and where: {info['problem']}\n\nFix the file and drop it into the inbox again.\n",
        encoding="utf-8",
    )
    if remove_source:
        src.unlink()
    return dest
