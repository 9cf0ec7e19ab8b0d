"""Finds every format module under ``reviews/`` and ``surveys/`` so adding a source needs no edit here."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from cx_pipeline.sources import reviews as _reviews_pkg
from cx_pipeline.sources import surveys as _surveys_pkg
from cx_pipeline.sources.base import SourceFormat


@lru_cache(maxsize=1)
def all_formats() -> dict[str, SourceFormat]:
    found: dict[str, SourceFormat] = {}
    modules = [
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
        for pkg in (_reviews_pkg, _surveys_pkg)
        for mod in pkgutil.iter_modules(pkg.__path__)
    ]
    for module in modules:
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, SourceFormat)
                and obj is not SourceFormat
                and obj.__module__ == module.__name__
                and getattr(obj, "name", None)
            ):
                found[obj.name] = obj()
    return dict(sorted(found.items(), key=lambda kv: (kv[1].sniff_priority, kv[0])))


def get_format(name: str) -> SourceFormat:
    formats = all_formats()
    if name not in formats:
        raise KeyError(f"unknown source format {name!r}; known: {', '.join(formats)}")
    return formats[name]


def detect_format(data: bytes, filename: str) -> SourceFormat | None:
    """The first format (by priority) whose sniff accepts the content, or None."""
    for fmt in all_formats().values():
        if fmt.sniff(data, filename):
            return fmt
    return None
