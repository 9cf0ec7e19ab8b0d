"""Language of each text: keep what the source declared, detect the rest with lingua (offline, in the wheel).

The detector is restricted to the configured languages (default da, no, sv, en; Bokmål and Nynorsk both map to
'no'), because an open-set detector confuses short Scandinavian texts with e.g. Faroese. Danish and Norwegian
are often both valid spellings of a short text: when their confidences are within ``tie_margin`` the customer's
country (or the source's market) decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import polars as pl
from lingua import Language, LanguageDetector, LanguageDetectorBuilder

from cx_pipeline.scoring.text.resources import SUPPORTED_LANGUAGES

_LINGUA: dict[str, tuple[Language, ...]] = {
    "da": (Language.DANISH,),
    "no": (Language.BOKMAL, Language.NYNORSK),
    "sv": (Language.SWEDISH,),
    "en": (Language.ENGLISH,),
    "de": (Language.GERMAN,),
    "fi": (Language.FINNISH,),
    "nl": (Language.DUTCH,),
    "fr": (Language.FRENCH,),
    "es": (Language.SPANISH,),
    "it": (Language.ITALIAN,),
}
# Which language a customer's country implies when Danish and Norwegian are tied.
COUNTRY_LANGUAGE: dict[str, str] = {"DK": "da", "GL": "da", "FO": "da", "NO": "no", "SJ": "no"}
DEFAULT_TIE_MARGIN = 0.25

LANGUAGE_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "language": (pl.String(), "ISO 639-1; declared by the source when given, else detected (Bokmål/Nynorsk = 'no')."),
    "language_origin": (pl.String(), "declared, detected or unknown (no usable text)."),
    "language_confidence": (pl.Float64(), "Detector confidence 0..1 of the chosen language; null when declared."),
}


@lru_cache(maxsize=4)
def _detector(languages: tuple[str, ...], low_accuracy: bool) -> LanguageDetector:
    wanted = [lang for code in languages for lang in _LINGUA[code]]
    builder = LanguageDetectorBuilder.from_languages(*wanted)
    return (builder.with_low_accuracy_mode() if low_accuracy else builder).build()


def _iso(lang: Language) -> str:
    for code, langs in _LINGUA.items():
        if lang in langs:
            return code
    raise KeyError(lang)


def detect_languages(
    texts: Sequence[str],
    countries: Sequence[str | None],
    *,
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    tie_margin: float = DEFAULT_TIE_MARGIN,
    low_accuracy: bool = False,
    country_language: Mapping[str, str] = COUNTRY_LANGUAGE,
) -> list[tuple[str, float]]:
    """(language, confidence) per text, using lingua's parallel batch API; da/no ties go by country."""
    detector = _detector(tuple(languages), low_accuracy)
    results: list[tuple[str, float]] = []
    for values, country in zip(detector.compute_language_confidence_values_in_parallel(list(texts)), countries,
                               strict=True):
        conf: dict[str, float] = {}
        for cv in values:
            code = _iso(cv.language)
            conf[code] = conf.get(code, 0.0) + cv.value
        ranked = sorted(conf.items(), key=lambda kv: kv[1], reverse=True)
        best, best_conf = ranked[0]
        if {"da", "no"} <= conf.keys() and best in ("da", "no") and abs(conf["da"] - conf["no"]) < tie_margin:
            preferred = country_language.get((country or "").upper())
            if preferred in ("da", "no"):
                best, best_conf = preferred, conf[preferred]
        results.append((best, best_conf))
    return results


def fill_language(
    frame: pl.DataFrame,
    *,
    text_col: str = "text",
    title_col: str | None = "title",
    lang_col: str = "language",
    country_col: str | None = "country",
    default_market: str | None = None,
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    tie_margin: float = DEFAULT_TIE_MARGIN,
    low_accuracy: bool = False,
) -> pl.DataFrame:
    """Set ``language``, ``language_origin``, ``language_confidence`` (see LANGUAGE_COLUMNS).

    Declared languages are kept (normalised: nb/nn -> no) and never re-detected. Rows without a language are
    detected from title + text; each distinct (text, country) is detected once. ``default_market`` stands in
    for a missing country (e.g. the market of a Danish survey).
    """
    from cx_pipeline.scoring.text.sentiment import _lang_norm_expr

    cols = frame.columns
    text = pl.col(text_col).cast(pl.String) if text_col in cols else pl.lit(None, dtype=pl.String)
    if title_col and title_col in cols:
        text = pl.concat_str([pl.col(title_col).cast(pl.String).fill_null(""), text.fill_null("")], separator="\n")
    country = pl.col(country_col).cast(pl.String) if country_col and country_col in cols else pl.lit(None, pl.String)
    country = country.fill_null(pl.lit(default_market, dtype=pl.String))
    declared = _lang_norm_expr(pl.col(lang_col)) if lang_col in cols else pl.lit(None, dtype=pl.String)
    prior_origin = pl.col("language_origin") if "language_origin" in cols else pl.lit(None, dtype=pl.String)
    work = frame.select(
        _declared=declared,
        _prior=prior_origin,
        _text=text.str.strip_chars(),
        _country=country,
    )
    need = work.filter(pl.col("_declared").is_null() & pl.col("_text").str.contains(r"[^\W\d_]"))
    need = need.select("_text", "_country").unique(maintain_order=True)
    if need.height:
        found = detect_languages(need["_text"].to_list(), need["_country"].to_list(), languages=languages,
                                 tie_margin=tie_margin, low_accuracy=low_accuracy)
        detected = need.with_columns(
            _det=pl.Series([f[0] for f in found], dtype=pl.String),
            _conf=pl.Series([f[1] for f in found], dtype=pl.Float64),
        )
    else:
        detected = need.with_columns(_det=pl.lit(None, pl.String), _conf=pl.lit(None, pl.Float64))
    work = work.join(detected, on=["_text", "_country"], how="left", maintain_order="left", nulls_equal=True)
    is_declared = pl.col("_declared").is_not_null()
    origin = (
        pl.when(is_declared).then(
            pl.when(pl.col("_prior") == "detected").then(pl.lit("detected")).otherwise(pl.lit("declared")))
        .when(pl.col("_det").is_not_null()).then(pl.lit("detected"))
        .otherwise(pl.lit("unknown"))
    )
    added = work.select(
        language=pl.coalesce("_declared", pl.when(~is_declared).then(pl.col("_det"))),
        language_origin=origin,
        language_confidence=pl.when(is_declared).then(None).otherwise(pl.col("_conf")),
    )
    return frame.with_columns(added.get_columns())
