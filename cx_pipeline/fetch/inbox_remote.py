"""The survey inbox on object storage (any fsspec URL: s3://, gs://, az://, memory://, …).

Same rules as the local inbox (``inbox_local``): files are identified by SHA-256, archived to ``processed/`` by
copying and verifying the copy before the original is removed, and unreadable files are moved to
``quarantine/`` next to a reason file. Object stores have no rename, so "move" is copy-verify-delete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import fsspec

from cx_pipeline.fetch.inbox_local import SURVEY_SUFFIXES, display_name, is_waiting_survey_file, stored_name
from cx_pipeline.sources.base import ParseError


@dataclass(frozen=True)
class RemoteFile:
    url: str
    name: str
    size: int
    sha256: str
    modified_at: datetime | None = None  # when the store says the object was written, if it says


def _modified(info: dict) -> datetime | None:
    for key in ("LastModified", "last_modified", "mtime", "updated", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(url)
    # the sensor lists the inbox from a long-lived process, and fsspec caches listings for the process's lifetime:
    # without this a file dropped after the first listing is never seen
    fs.invalidate_cache(root.rstrip("/"))
    return fs, root.rstrip("/")


def _url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{protocol}://{path.lstrip('/')}" if protocol != "file" else path


def list_remote(folder_url: str, suffixes: tuple[str, ...] = SURVEY_SUFFIXES) -> list[RemoteFile]:
    """Survey files directly in the folder (not processed/ or quarantine/), sorted by name."""
    fs, root = _fs(folder_url)
    if not fs.exists(root):
        return []
    out = []
    for info in sorted(fs.ls(root, detail=True), key=lambda i: i["name"]):
        if info.get("type") != "file":
            continue
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        if not is_waiting_survey_file(name, suffixes):
            continue
        data = fs.cat_file(info["name"])
        out.append(RemoteFile(_url(fs, info["name"]), name, len(data), hashlib.sha256(data).hexdigest(),
                              _modified(info)))
    return out


def read(url: str) -> bytes:
    fs, path = _fs(url)
    return fs.cat_file(path)


def _copy_verified(data: bytes, dest_url: str) -> None:
    fs, dest = _fs(dest_url)
    fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(dest, data)
    if hashlib.sha256(fs.cat_file(dest)).hexdigest() != hashlib.sha256(data).hexdigest():
        raise OSError(f"copy to {dest_url} does not match its SHA-256; original kept")


def archive_remote(src_url: str, archive_url: str, *, data: bytes | None = None, now: datetime | None = None) -> str:
    """Copy to ``archive_url/YYYY/MM/DD/<sha16>_<name>`` (cut to fit: ``stored_name``), verify, then delete the
    original; returns the copy.

    ``data``: the file's bytes when the caller already read them (saves a second download).
    """
    now = now or datetime.now(UTC)
    data = read(src_url) if data is None else data
    sha = hashlib.sha256(data).hexdigest()
    name = src_url.rstrip("/").rsplit("/", 1)[-1]
    dest = f"{archive_url.rstrip('/')}/{now:%Y/%m/%d}/{stored_name(sha[:16], name)}"
    _copy_verified(data, dest)
    fs, src = _fs(src_url)
    fs.rm_file(src)
    return dest


def quarantine_remote(
    data: bytes, name: str, quarantine_url: str, *, reason: str | ParseError, now: datetime | None = None
) -> str:
    """Write a bad file's bytes under quarantine/ with ``.reason.json`` and ``.reason.txt`` beside it."""
    now = now or datetime.now(UTC)
    sha = hashlib.sha256(data).hexdigest()
    dest = f"{quarantine_url.rstrip('/')}/{stored_name(f'{now:%Y%m%dT%H%M%SZ}_{sha[:12]}', name)}"
    _copy_verified(data, dest)
    shown = display_name(name)
    info = {
        "file": shown,
        "sha256": sha,
        "location": display_name(reason.location) if isinstance(reason, ParseError) else shown,
        "problem": display_name(reason.reason if isinstance(reason, ParseError) else str(reason)),
        "quarantined_at": now.isoformat(),
    }
    fs, path = _fs(dest)
    fs.pipe_file(f"{path}.reason.json", json.dumps(info, ensure_ascii=False, indent=2).encode("utf-8"))
    fs.pipe_file(f"{path}.reason.txt", f"{shown}: {info['problem']}\n".encode())
    return dest
