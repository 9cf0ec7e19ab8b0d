"""Helpers shared by the app-store and Google review formats (no ``SourceFormat`` here).

These sources deliver JSON or CSV written by APIs and scrapers, each with its own idea of a timestamp
(epoch seconds, epoch milliseconds, ``{seconds, nanos}``, ISO with nanoseconds, naive
``YYYY-MM-DD HH:MM:SS`` from a ``json.dumps(default=str)``). Reading them in one place keeps every
parser's dates tz-aware UTC and every failure a ``ParseError`` that names the file and the field.

Also here, for every review format: decoding JSON within the input budgets (``LIMITS.max_nesting``, checked on
the bytes before ``json.loads``), lone UTF-16 surrogates, and turning a refused record into a ``Reject``.

**Invalid Unicode policy.** A JSON string escape that is half of a UTF-16 pair (``"x \\ud800"``) cannot be
stored as UTF-8. It is replaced by U+FFFD before decoding and the page says how many were replaced: the review
keeps its rating and the rest of its text (rejecting it would lose a valid rating over one character).
Invalid UTF-8 bytes are replaced the same way.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np

from cx_pipeline.normalize.redact import redact_name
from cx_pipeline.sources import base as _base
from cx_pipeline.sources.base import InputTooLarge, ParseError, Reject

_FRACTION = re.compile(r"(\.\d{6})\d+")
_NAIVE_SPACE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
#: epoch values beyond this are milliseconds (1e11 s is the year 5138)
_MS_THRESHOLD = 100_000_000_000


#: +1 for an opening bracket, -1 for a closing one, 0 for any other byte
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[[ord("["), ord("{")]] = 1
_BRACKET_STEP[[ord("]"), ord("}")]] = -1
_TOKEN = _BRACKET_STEP != 0
_TOKEN[ord('"')] = True
_NESTING_CHUNK = 8 * 1024 * 1024
#: a \uD8xx escape not followed by a low half, or a \uDCxx escape not preceded by a high half
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")


def json_depth(raw: bytes) -> int:
    """The deepest container nesting of a JSON text, brackets inside strings not counted.

    Vectorized (numpy, in chunks so memory stays bounded): escaped backslashes and escaped quotes are removed
    first, so every remaining quote opens or closes a string and an odd running count of quotes means "inside
    a string". About 1 ms per 200 kB; a hostile text is measured without ever being decoded.
    """
    text = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    depth = deepest = 0
    quotes = 0
    for start in range(0, len(text), _NESTING_CHUNK):
        chunk = np.frombuffer(text, dtype=np.uint8, count=min(_NESTING_CHUNK, len(text) - start), offset=start)
        tokens = chunk[_TOKEN[chunk]]  # quotes and brackets only, in order
        is_quote = tokens == ord('"')
        outside = ((np.cumsum(is_quote, dtype=np.int32) + quotes) & 1) == 0
        levels = np.cumsum(np.where(outside, _BRACKET_STEP[tokens], 0), dtype=np.int32) + depth
        if levels.size:
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
        quotes += int(np.count_nonzero(is_quote))
    return deepest


def check_json_nesting(raw: bytes, location: str, what: str) -> None:
    """InputTooLarge when the JSON text nests deeper than ``LIMITS.max_nesting`` containers.

    Read from the bytes before decoding: ``json.loads`` recurses once per level, and a hostile text would only
    fail there at the interpreter's recursion limit, after the decoder's work.
    """
    limit = _base.LIMITS.max_nesting
    if raw.count(b"[") + raw.count(b"{") <= limit:  # cannot be deeper than it has containers
        return
    depth = json_depth(raw)
    if depth > limit:
        raise InputTooLarge(location, f"{what} nests {depth} levels deep, more than the nesting budget of "
                                      f"{limit} (LIMITS.max_nesting); refused")


def decode_json(raw: bytes, location: str, what: str, warnings: list[str] | None = None, *,
                strict: bool = True) -> Any:
    """``json.loads`` within the budgets, with the invalid-Unicode policy of this module.

    ``strict=False`` lets control characters through inside strings (hand-written JSON-LD has raw newlines).
    """
    check_json_nesting(raw, location, what)
    encoding = json.detect_encoding(raw)  # utf-8, utf-8-sig (BOM) or UTF-16/32, as json.loads(bytes) reads them
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        text = raw.decode(encoding, "replace")
        if warnings is not None:
            warnings.append(f"{what}: invalid UTF-8 byte sequence(s) replaced with U+FFFD")
    if _SURROGATE_HINT.search(raw):
        text, n = _LONE_SURROGATE.subn("\ufffd", text)
        if n and warnings is not None:
            warnings.append(f"{what}: {n} lone surrogate escape(s) (invalid Unicode) replaced with U+FFFD")
    try:
        return json.loads(text, strict=strict)
    except RecursionError as exc:
        raise InputTooLarge(location, f"{what} nests too deeply to decode (nesting budget "
                                      f"{_base.LIMITS.max_nesting}, LIMITS.max_nesting); refused") from exc
    except ValueError as exc:
        raise ParseError(location, f"{what} is not valid JSON ({str(exc)[:120]})") from exc


def load_json(data: bytes, location: str, what: str, warnings: list[str] | None = None) -> Any:
    """The decoded JSON document, or a ParseError saying it is not JSON (with the decoder's reason)."""
    return decode_json(data, location, f"the file ({what})", warnings)


def refuse(rejects: list[Reject], exc: ParseError, position: str, native_id: Any = None) -> None:
    """Record one refused record (the rest of the file goes on); a budget breach still ends the file."""
    if isinstance(exc, InputTooLarge):
        raise exc
    nid = str(native_id).strip() if isinstance(native_id, str | int) and not isinstance(native_id, bool) else None
    rejects.append(Reject(position, exc.reason, exc.field, exc.value, nid or None))


def check_not_all_refused(location: str, rejects: list[Reject], kept: int, what: str = "review") -> None:
    """A file whose every record was refused is unreadable as a whole (a changed layout, a wrong export):
    a ParseError with the first reasons, not an empty success."""
    if kept == 0 and rejects:
        reasons = "; ".join(r.reason for r in rejects[:3])
        raise ParseError(location, f"all {len(rejects)} {what}(s) refused: {reasons}"
                                   f"{' …' if len(rejects) > 3 else ''}")


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
        raise ParseError(location, f"{field}: expected an ISO date string, got {type(value).__name__}", field=field,
                         value=value)
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ParseError(location, f"{field}: not an ISO date: {value[:40]!r}", field=field, value=value) from exc
    try:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00 is past year 9999 in UTC
        raise ParseError(location, f"{field}: date {value[:40]!r} is out of range in UTC", field=field,
                         value=value) from exc


def utc_from_epoch(value: Any, *, field: str, location: str) -> datetime | None:
    """Epoch seconds or milliseconds (told apart by size), as a number or a digit string → UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(location, f"{field}: expected an epoch timestamp, got a boolean")
    if isinstance(value, str):
        s = value.strip()
        if not re.fullmatch(r"-?\d+(\.\d+)?", s):
            raise ParseError(location, f"{field}: not an epoch timestamp: {value[:40]!r}", field=field, value=value)
        value = float(s)
    if not isinstance(value, int | float) or value != value:  # NaN
        raise ParseError(location, f"{field}: expected an epoch timestamp, got {type(value).__name__}")
    seconds = value / 1000 if abs(value) >= _MS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ParseError(location, f"{field}: epoch timestamp {value!r} is out of range", field=field,
                         value=value) from exc


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
        raise ParseError(location, f"{where} has rating {given!r}, expected a whole number 1..5", field="rating",
                         value=given)
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


def clean_reply(value: Any, reviewer: Any = None) -> str | None:
    """A company reply with the reviewer's display name masked ("Hi Kari, …"); e-mail addresses, phone numbers
    and IPs in it are masked by normalize, as in texts and titles."""
    return redact_name(clean_text(value), reviewer if isinstance(reviewer, str) else None)


def clean_own_text(value: Any, reviewer: Any = None) -> str | None:
    """A review's own text or title with the reviewer's full display name masked (a signature)."""
    return redact_name(clean_text(value), reviewer if isinstance(reviewer, str) else None, parts=False)


def language_code(value: Any) -> str | None:
    """``'en-US'`` / ``'nb_NO'`` / ``'no'`` → ISO 639-1 (``en``, ``nb``, ``no``); None when not a code."""
    if not isinstance(value, str):
        return None
    code = re.split(r"[-_]", value.strip(), maxsplit=1)[0].lower()
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None
