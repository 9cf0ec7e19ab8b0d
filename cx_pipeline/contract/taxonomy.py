"""The versioned touchpoint taxonomy, read from ``taxonomy.yaml`` next to this file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

TAXONOMY_FILE = Path(__file__).with_name("taxonomy.yaml")


@lru_cache(maxsize=1)
def _load() -> tuple[str, dict[str, str]]:
    data = yaml.safe_load(TAXONOMY_FILE.read_text(encoding="utf-8"))
    return str(data["version"]), dict(data["touchpoints"])


def taxonomy_version() -> str:
    return _load()[0]


def touchpoints() -> tuple[str, ...]:
    return tuple(_load()[1])


def describe(touchpoint: str) -> str:
    return _load()[1][touchpoint]


def check_touchpoint(name: str, *, where: str) -> str:
    """Return ``name`` if it is in the taxonomy, else raise naming ``where`` it came from."""
    if name not in _load()[1]:
        raise ValueError(f"{where}: unknown touchpoint {name!r}; known: {', '.join(touchpoints())}")
    return name
