"""Pure helpers for a survey inbox folder: list new files by content hash, archive, quarantine.

Analysts drop exports into a folder; the pipeline must never lose one. Files are identified by
SHA-256 (a re-dropped file is recognisably the same), archived by copying and verifying the copy
before the original is removed, and unreadable files are quarantined next to a reason file that
says what was wrong and where (row/column) so the analyst can fix and re-drop them.
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
    modified_at: datetime


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
        out.append(InboxFile(p, name, st.st_size, file_sha256(p), datetime.fromtimestamp(st.st_mtime, tz=UTC)))
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
    """Copy ``src`` to ``archive_dir/YYYY/MM/DD/<sha12>_<name>``, verify, then (optionally) remove the original."""
    now = now or datetime.now(UTC)
    sha = file_sha256(src)
    dest = archive_dir / f"{now:%Y/%m/%d}" / f"{sha[:12]}_{src.name}"
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
) -> Path:
    """Move a bad file aside (copy-verify-remove) with ``<name>.reason.json`` + ``.reason.txt`` saying why/where."""
    now = now or datetime.now(UTC)
    sha = file_sha256(src)
    dest = quarantine_dir / f"{now:%Y%m%dT%H%M%SZ}_{sha[:12]}_{src.name}"
    _copy_verified(src, dest, sha)
    if isinstance(reason, ParseError):
        info = {
            "file": src.name,
            "sha256": sha,
            "location": reason.location,
            "problem": reason.reason,
            "quarantined_at": now.isoformat(),
        }
    else:
        info = {
            "file": src.name,
            "sha256": sha,
            "location": str(src),
            "problem": reason,
            "quarantined_at": now.isoformat(),
        }
    dest.with_name(dest.name + ".reason.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    dest.with_name(dest.name + ".reason.txt").write_text(
        f"{src.name} could not be ingested and was quarantined at {now.isoformat()}.\n\n"
        f"What and where: {info['problem']}\n\nFix the file and drop it into the inbox again.\n",
        encoding="utf-8",
    )
    if remove_source:
        src.unlink()
    return dest
