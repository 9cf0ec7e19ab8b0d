"""Helpers shared by the app-store and Google review formats (no ``SourceFormat`` here).

These sources deliver JSON or CSV written by APIs and scrapers, each with its own idea of a timestamp
(epoch seconds, epoch milliseconds, ``{seconds, nanos}``, ISO with nanoseconds, naive
``YYYY-MM-DD HH:MM:SS`` from a ``json.dumps(default=str)``). Reading them in one place keeps every
parser's dates tz-aware UTC and every failure a ``ParseError`` that names the file and the field.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from cx_pipeline.normalize.redact import redact_text
from cx_pipeline.sources.base import ParseError

_FRACTION = re.compile(r"(\.\d{6})\d+")
_NAIVE_SPACE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
#: epoch values beyond this are milliseconds (1e11 s is the year 5138)
_MS_THRESHOLD = 100_000_000_000


def load_json(data: bytes, location: str, what: str) -> Any:
    """The decoded JSON document, or a ParseError saying it is not JSON (with the decoder's reason)."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ParseError(location, f"not valid JSON for {what} ({str(exc)[:120]})") from exc


def get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def utc_from_iso(value: Any, *, field: str, location: str) -> datetime | None:
    """ISO-8601 (nanoseconds allowed: Python keeps microseconds) → tz-aware UTC; naive means UTC.

    Naive values come from exports that write UTC without a zone (scrapers dumping ``datetime`` with
    ``default=str``, Play Console's ``...Z`` columns are already zoned).
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(location, f"{field}: expected an ISO date string, got {type(value).__name__}")
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ParseError(location, f"{field}: not an ISO date: {value[:40]!r}") from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def utc_from_epoch(value: Any, *, field: str, location: str) -> datetime | None:
    """Epoch seconds or milliseconds (told apart by size), as a number or a digit string → UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(location, f"{field}: expected an epoch timestamp, got a boolean")
    if isinstance(value, str):
        s = value.strip()
        if not re.fullmatch(r"-?\d+(\.\d+)?", s):
            raise ParseError(location, f"{field}: not an epoch timestamp: {value[:40]!r}")
        value = float(s)
    if not isinstance(value, int | float) or value != value:  # NaN
        raise ParseError(location, f"{field}: expected an epoch timestamp, got {type(value).__name__}")
    seconds = value / 1000 if abs(value) >= _MS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ParseError(location, f"{field}: epoch timestamp {value!r} is out of range") from exc


def utc_from_seconds_nanos(value: Any, *, field: str, location: str) -> datetime | None:
    """Google's protobuf Timestamp as JSON: ``{"seconds": "1747897303", "nanos": 139000000}``."""
    if value is None:
        return None
    if isinstance(value, str):  # some clients render Timestamps as RFC 3339 strings
        return utc_from_iso(value, field=field, location=location)
    if not isinstance(value, dict):
        raise ParseError(location, f"{field}: expected {{seconds, nanos}}, got {type(value).__name__}")
    base = utc_from_epoch(value.get("seconds"), field=f"{field}.seconds", location=location)
    if base is None:
        return None
    nanos = value.get("nanos") or 0
    if isinstance(nanos, bool) or not isinstance(nanos, int) or not 0 <= nanos < 1_000_000_000:
        raise ParseError(location, f"{field}.nanos: expected 0..999999999, got {nanos!r}")
    return base.replace(microsecond=nanos // 1000)


def utc_from_naive_or_iso(value: Any, *, field: str, location: str) -> datetime | None:
    """Scraper dates: ISO strings, ``'YYYY-MM-DD HH:MM:SS'`` (UTC by the scraper), or epoch numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return utc_from_epoch(value, field=field, location=location)
    if isinstance(value, str) and _NAIVE_SPACE.match(value.strip()):
        return utc_from_iso(value.strip().replace(" ", "T"), field=field, location=location)
    return utc_from_iso(value, field=field, location=location)


def stars(value: Any, *, where: str, location: str) -> float:
    """A 1..5 star rating given as a number or a digit string; anything else is a ParseError."""
    given = value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 5 or value != int(value):
        raise ParseError(location, f"{where} has rating {given!r}, expected a whole number 1..5")
    return float(value)


def app_stars(native_id: str, where: str, rating: float) -> dict[str, Any]:
    """The measure fields every app-store review shares: one 1..5 star rating of the app touchpoint."""
    return {
        "native_id": native_id,
        "position": where,
        "measure_key": "stars",
        "metric": "star_rating",
        "touchpoint": "app",
        "score_raw": rating,
        "scale_min": 1.0,
        "scale_max": 5.0,
        "higher_is_better": True,
    }


def clean_text(value: Any) -> str | None:
    """Text as given (newlines kept), or None when absent/blank: a rating-only review has no text."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped if stripped else None


def clean_reply(value: Any) -> str | None:
    """A company reply with e-mail addresses and phone numbers masked.

    Replies are written by support staff and routinely carry a support address or hotline; normalize
    masks them in texts and titles, and replies are masked here so every app/Google source is safe
    whatever the normalize step does with replies.
    """
    return redact_text(clean_text(value))


def language_code(value: Any) -> str | None:
    """``'en-US'`` / ``'nb_NO'`` / ``'no'`` → ISO 639-1 (``en``, ``nb``, ``no``); None when not a code."""
    if not isinstance(value, str):
        return None
    code = re.split(r"[-_]", value.strip(), maxsplit=1)[0].lower()
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None
