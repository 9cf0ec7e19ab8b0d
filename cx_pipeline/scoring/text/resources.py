"""Data files of the text scorers (lexicons, rules, phrase and term lists): loading, merging and hashing.

Everything the scorers know about a language lives in files under ``data/`` so it can be versioned, audited
(sha256 recorded per scored row) and extended without code changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from cx_pipeline.contract.taxonomy import check_touchpoint

DATA_DIR = Path(__file__).with_name("data")
SENTIMENT_DIR = DATA_DIR / "sentiment"
TOUCHPOINT_TERMS_FILE = DATA_DIR / "touchpoint_terms.yaml"
SUPPORTED_LANGUAGES: tuple[str, ...] = ("da", "no", "sv", "en")

# One token = a run of letters/digits (apostrophe-joined, "don't") or one punctuation mark. The same pattern runs in
# polars (Rust regex) and in Python ``re``, so the vectorized scorer and the per-row baseline see identical tokens.
TOKEN_PATTERN = r"[^\W_]+(?:'[^\W_]+)*|[.!?;,:]"
CLAUSE_PUNCT: frozenset[str] = frozenset(".!?;,:")
SENTENCE_PUNCT: frozenset[str] = frozenset(".!?;")
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def tokenize(text: str) -> list[str]:
    """Python twin of the polars tokenizer (lower-cased, curly apostrophes folded)."""
    return _TOKEN_RE.findall(text.lower().replace("\u2019", "'"))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def normalize_language(code: str | None) -> str | None:
    """ISO 639-1, with Norwegian Bokmål/Nynorsk folded into 'no' (the contract's code for Norwegian)."""
    if code is None:
        return None
    code = code.strip().lower().replace("_", "-").split("-")[0]
    return {"nb": "no", "nn": "no", "nob": "no", "nno": "no"}.get(code, code) or None


@dataclass(frozen=True)
class SentimentRules:
    version: str
    negation_scalar: float
    contrast_before: float
    contrast_after: float
    normalization_alpha: float
    neutral_threshold: float
    mixed_min_mass: float
    mixed_min_ratio: float
    min_stem_length: int
    sha256: str


@dataclass(frozen=True)
class LanguageResources:
    """Everything the sentiment scorer needs for one language, merged and ready for dict/polars lookups."""

    language: str
    lexicon: dict[str, float]  # general lexicon (scaled to -4..4) overridden by the CX word list
    negators: frozenset[str]
    negation_window: int
    intensifiers: dict[str, float]
    contrast: frozenset[str]
    phrases: dict[tuple[str, ...], float]
    stem_regex: str  # strips one inflection suffix, anchored at the end
    stem_lexicon: dict[str, float]  # stem -> mean lexicon value of the words with that stem (inflection fallback)
    lexicon_file: str
    lexicon_sha256: str
    rules_sha256: str  # sha256 of the language's YAML (CX words, phrases, negators...)


@lru_cache(maxsize=1)
def sentiment_rules() -> SentimentRules:
    path = SENTIMENT_DIR / "rules.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return SentimentRules(
        version=str(data["version"]),
        negation_scalar=float(data["negation_scalar"]),
        contrast_before=float(data["contrast_before"]),
        contrast_after=float(data["contrast_after"]),
        normalization_alpha=float(data["normalization_alpha"]),
        neutral_threshold=float(data["neutral_threshold"]),
        mixed_min_mass=float(data["mixed_min_mass"]),
        mixed_min_ratio=float(data["mixed_min_ratio"]),
        min_stem_length=int(data["min_stem_length"]),
        sha256=sha256_file(path),
    )


def _read_lexicon(path: Path, fmt: str, scale: float) -> dict[str, float]:
    """AFINN ('word<TAB>int') or VADER ('word<TAB>mean<TAB>sd<TAB>ratings') files; single words only.

    Multi-word entries ("god morgen") are skipped: the token join works on single words, and CX phrases are
    handled by our own phrase list.
    """
    out: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or fmt not in ("afinn", "vader"):
            continue
        word = parts[0].strip().lower()
        if not word or " " in word or len(tokenize(word)) != 1:
            continue
        out[word] = float(parts[1]) * scale
    return out


@lru_cache(maxsize=8)
def language_resources(language: str) -> LanguageResources:
    path = SENTIMENT_DIR / f"{language}.yaml"
    if not path.is_file():
        raise KeyError(f"no sentiment resources for language {language!r}")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    lex_cfg = cfg["lexicon"]
    lex_path = DATA_DIR / lex_cfg["file"]
    lexicon = _read_lexicon(lex_path, lex_cfg["format"], float(lex_cfg["scale"]))
    lexicon.update({str(k).lower(): float(v) for k, v in (cfg.get("words") or {}).items()})
    phrases: dict[tuple[str, ...], float] = {}
    for phrase, value in (cfg.get("phrases") or {}).items():
        toks = tuple(tokenize(str(phrase)))
        if not 2 <= len(toks) <= 4:
            raise ValueError(f"{path.name}: phrase {phrase!r} must have 2-4 words")
        phrases[toks] = float(value)
    suffixes = sorted((str(s) for s in cfg.get("inflection_suffixes") or []), key=len, reverse=True)
    stem_regex = "(?:" + "|".join(re.escape(s) for s in suffixes) + ")$" if suffixes else "(?!)$"
    min_len = sentiment_rules().min_stem_length
    grouped: dict[str, list[float]] = {}
    for word, value in lexicon.items():
        stem = re.sub(stem_regex, "", word, count=1)
        if len(stem) >= min_len:
            grouped.setdefault(stem, []).append(value)
    return LanguageResources(
        language=language,
        lexicon=lexicon,
        negators=frozenset(str(w).lower() for w in cfg["negators"]),
        negation_window=int(cfg["negation_window"]),
        intensifiers={str(k).lower(): float(v) for k, v in (cfg.get("intensifiers") or {}).items()},
        contrast=frozenset(str(w).lower() for w in cfg.get("contrast") or []),
        phrases=phrases,
        stem_regex=stem_regex,
        stem_lexicon={k: sum(v) / len(v) for k, v in grouped.items()},
        lexicon_file=lex_cfg["file"],
        lexicon_sha256=sha256_file(lex_path),
        rules_sha256=sha256_file(path),
    )


def sentiment_method(language: str) -> str:
    """The per-row method string: name, version, lexicon file + full sha256, and the CX rule files' sha256."""
    res = language_resources(language)
    rules = sentiment_rules()
    return (
        f"cx-lexicon@{rules.version} lang={language} lexicon={Path(res.lexicon_file).name}"
        f" sha256:{res.lexicon_sha256} cx={res.rules_sha256[:16]} rules={rules.sha256[:16]}"
    )


# --- touchpoint terms -----------------------------------------------------------------------------------------

#: Letters a suffix may start with for a term's final -e/-a to merge into it (pakke~ + en -> pakken).
_VOWELS = frozenset("aeiouyæøåäöé")
_MERGING_FINALS = frozenset("ea")
#: A term whose ~ words multiply out to more patterns than this is a typo, not a term.
_MAX_PATTERNS_PER_TERM = 2000


@dataclass(frozen=True)
class TouchpointTerms:
    """Merged term lists, expanded to Aho-Corasick patterns on ' '-padded token text.

    ``by_language``: language -> (touchpoint, term as written, pattern), one entry per pattern a term expands to
    (``levering~`` gives ' levering ', ' leveringen ', ...), so the matched pattern maps back to the written term.
    ``exclude``: language -> padded phrase patterns masked out of the text before matching, longest first.
    """

    by_language: dict[str, tuple[tuple[str, str, str], ...]]
    version: str
    sha256: str  # of the built-in file plus every extension file, in order
    exclude: dict[str, tuple[str, ...]] = field(default_factory=dict)
    suffixes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def word_forms(word: str, suffixes: Sequence[str]) -> tuple[str, ...]:
    """The word and word+suffix for each suffix; a final -e/-a also merges into a vowel-initial suffix.

    Both spellings are kept (pakke+en gives 'pakkeen' and 'pakken'): the unmerged one is not a word in any of our
    languages, and keeping it avoids per-language rules on which endings merge (no: 'pizzaen', sv: 'kassor').
    """
    forms = [word]
    for suffix in suffixes:
        forms.append(word + suffix)
        if len(word) > 2 and word[-1] in _MERGING_FINALS and suffix[:1] in _VOWELS:
            forms.append(word[:-1] + suffix)
    return tuple(dict.fromkeys(forms))


def term_patterns(term: str, suffixes: Sequence[str] = ()) -> tuple[str, ...]:
    """Aho-Corasick patterns of one term (syntax: top of ``data/touchpoint_terms.yaml``) on ' '-padded text.

    Exact words give ' a b ' (the padding makes them whole words); a trailing '*' drops the final space so the last
    word matches as a prefix; 'word~' multiplies out to one exact pattern per inflected form.
    """
    text = term.strip().lower()
    prefix = text.endswith("*")
    if prefix:
        text = text[:-1]
    if "*" in text:
        raise ValueError(f"touchpoint term {term!r}: '*' is only allowed at the end")
    alternatives: list[tuple[str, ...]] = []
    words = text.split()
    for i, raw in enumerate(words):
        stem = raw[:-1] if raw.endswith("~") else raw
        if "~" in stem:
            raise ValueError(f"touchpoint term {term!r}: '~' is only allowed at the end of a word")
        toks = [t for t in tokenize(stem) if t not in CLAUSE_PUNCT]
        if not toks:
            continue
        alternatives.extend((t,) for t in toks[:-1])
        if raw.endswith("~"):
            if not suffixes:
                raise ValueError(f"touchpoint term {term!r} uses '~' but the language has no suffixes")
            if prefix and i == len(words) - 1:
                raise ValueError(f"touchpoint term {term!r}: a word cannot be both '~' and '*'")
            alternatives.append(word_forms(toks[-1], suffixes))
        else:
            alternatives.append((toks[-1],))
    if not alternatives:
        raise ValueError(f"touchpoint term {term!r} has no words")
    patterns = [""]
    for forms in alternatives:
        patterns = [f"{p} {f}" for p in patterns for f in forms]
        if len(patterns) > _MAX_PATTERNS_PER_TERM:
            raise ValueError(f"touchpoint term {term!r} expands to more than {_MAX_PATTERNS_PER_TERM} patterns")
    return tuple(p + ("" if prefix else " ") for p in patterns)


def _language_map(data: dict, key: str, path: Path) -> dict[str, list[str]]:
    """``key``: {language: [str, ...]} with languages normalised, or a clear error naming the file."""
    raw = data.get(key) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: {key} must map a language to a list")
    out: dict[str, list[str]] = {}
    for lang, items in raw.items():
        code = normalize_language(str(lang))
        if code is None or not isinstance(items, list | None):
            raise ValueError(f"{path}: {key}.{lang} must be a list")
        out.setdefault(code, []).extend(str(i).lower() for i in items or [])
    return out


def _merge_terms(files: Sequence[Path]) -> TouchpointTerms:
    """Suffixes and exclusions of all files are merged first, so an extension's '~' terms use the built-in suffixes
    and an extension's suffixes also inflect the built-in terms of that language (files only ever add)."""
    digest = hashlib.sha256()
    versions: list[str] = []
    loaded: list[tuple[Path, dict]] = []
    suffixes: dict[str, list[str]] = {}
    for path in files:
        raw = path.read_bytes()
        digest.update(raw)
        data = yaml.safe_load(raw.decode("utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping with 'version' and 'terms'")
        versions.append(str(data.get("version", "?")))
        loaded.append((path, data))
        for lang, items in _language_map(data, "suffixes", path).items():
            bucket = suffixes.setdefault(lang, [])
            bucket.extend(s for s in items if s and s not in bucket)
    merged: dict[str, list[tuple[str, str, str]]] = {}
    seen: dict[str, set[tuple[str, str]]] = {}
    exclude: dict[str, list[str]] = {}
    for path, data in loaded:
        for lang, phrases in _language_map(data, "exclude", path).items():
            for phrase in phrases:
                if phrase.rstrip().endswith("*"):
                    raise ValueError(f"{path}: exclude.{lang}: {phrase!r}: '*' is not allowed in exclusions")
                try:
                    pats = term_patterns(phrase, suffixes.get(lang, ()))
                except ValueError as err:
                    raise ValueError(f"{path}: exclude.{lang}: {err}") from None
                bucket = exclude.setdefault(lang, [])
                bucket.extend(p for p in pats if p not in bucket)
        for lang, per_tp in (data.get("terms") or {}).items():
            lang_code = normalize_language(str(lang))
            if lang_code is None or not isinstance(per_tp, dict | None):
                raise ValueError(f"{path}: terms.{lang} must map touchpoints to lists of terms")
            for touchpoint, terms in (per_tp or {}).items():
                check_touchpoint(str(touchpoint), where=f"{path}: terms.{lang}")
                for term in terms or []:
                    written = str(term).strip().lower()
                    try:
                        pats = term_patterns(written, suffixes.get(lang_code, ()))
                    except ValueError as err:
                        raise ValueError(f"{path}: terms.{lang}.{touchpoint}: {err}") from None
                    for pattern in pats:  # first term wins a (touchpoint, pattern): one evidence entry per match
                        if (str(touchpoint), pattern) not in seen.setdefault(lang_code, set()):
                            seen[lang_code].add((str(touchpoint), pattern))
                            merged.setdefault(lang_code, []).append((str(touchpoint), written, pattern))
    return TouchpointTerms(
        by_language={k: tuple(v) for k, v in merged.items()},
        version="+".join(versions),
        sha256=digest.hexdigest(),
        exclude={k: tuple(sorted(v, key=len, reverse=True)) for k, v in exclude.items()},
        suffixes={k: tuple(v) for k, v in suffixes.items()},
    )


@lru_cache(maxsize=16)
def _cached_terms(files: tuple[Path, ...], stamps: tuple[float, ...]) -> TouchpointTerms:
    del stamps  # part of the cache key only: an edited extension file is re-read
    return _merge_terms(files)


def touchpoint_terms(extra_files: Iterable[str | Path] = ()) -> TouchpointTerms:
    """Built-in terms merged with brand extension files (same YAML shape; terms are added, never removed)."""
    files = (TOUCHPOINT_TERMS_FILE, *(Path(p) for p in extra_files))
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"touchpoint term file not found: {f}")
    return _cached_terms(files, tuple(f.stat().st_mtime for f in files))
