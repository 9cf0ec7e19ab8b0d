"""Text scoring (cx_pipeline.scoring.text): sentiment rules per language, language id, touchpoint tagging."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from cx_pipeline.scoring.text import (
    SCORED_TEXT_COLUMNS,
    fill_language,
    score_sentiment,
    score_text,
    score_text_rowwise,
    tag_touchpoints,
)
from cx_pipeline.scoring.text.resources import DATA_DIR, sha256_file


def _score(texts: list[tuple[str, str]]) -> pl.DataFrame:
    df = pl.DataFrame({"text": [t for t, _ in texts], "language": [lang for _, lang in texts]})
    out = score_sentiment(df)
    assert isinstance(out, pl.DataFrame)
    return out


def _one(text: str, lang: str) -> tuple[float, str]:
    row = _score([(text, lang)]).row(0, named=True)
    return row["sentiment"], row["sentiment_label"]


@pytest.mark.parametrize(
    ("text", "lang", "label"),
    [
        # negation flips and damps
        ("Det var god service", "da", "positive"),
        ("Det var ikke god service", "da", "negative"),
        ("Maden var ikke dårlig", "da", "positive"),
        ("Maten var ikke bra", "no", "negative"),
        ("Det var inte bra", "sv", "negative"),
        ("Inte dåligt alls", "sv", "positive"),
        ("Not bad at all", "en", "positive"),
        ("The staff were not helpful", "en", "negative"),
        # CX phrases the lexicons miss
        ("Pakken kom aldrig frem", "da", "negative"),
        ("Jeg venter stadig på pengene", "da", "negative"),
        ("Ingen svar på tre mails", "da", "negative"),
        ("Jeg fik pengene tilbage", "da", "positive"),
        ("Pakken kom aldri frem", "no", "negative"),
        ("Venter fortsatt på refusjon", "no", "negative"),
        ("Väntar fortfarande på paketet", "sv", "negative"),
        ("Paketet kom aldrig fram", "sv", "negative"),
        ("The parcel never arrived", "en", "negative"),
        ("Still waiting for my refund", "en", "negative"),
        # contrast: the clause after "men"/"but" weighs more
        ("Fin pris, men leveringen var elendig", "da", "negative"),
        ("Leveringen var langsom, men varen er fantastisk", "da", "positive"),
        ("Bra pris, men maten var kald og dårlig", "no", "negative"),
        ("Långsam leverans men bra kvalitet", "sv", "positive"),
        ("Great price but the delivery was terrible", "en", "negative"),
        # no sentiment at all
        ("Jeg bestilte en jakke i tirsdags", "da", "neutral"),
    ],
)
def test_sentiment_labels_per_language(text: str, lang: str, label: str) -> None:
    score, got = _one(text, lang)
    assert got == label, (text, score)
    assert -1.0 <= score <= 1.0


def test_negation_window_is_limited_and_stops_at_punctuation() -> None:
    near, _ = _one("ikke god", "da")
    far, _ = _one("ikke noget af det der var god", "da")  # negator 6 tokens back: outside the window of 3
    assert near < 0 < far
    comma, _ = _one("ikke noget, god", "da")  # the comma ends the negation scope
    assert comma > 0


def test_intensifiers_scale_and_dampen() -> None:
    for plain, strong, lang in (("god levering", "meget god levering", "da"),
                                ("bra levering", "veldig bra levering", "no"),
                                ("bra leverans", "mycket bra leverans", "sv"),
                                ("good delivery", "very good delivery", "en")):
        assert _one(strong, lang)[0] > _one(plain, lang)[0] > 0
    assert 0 < _one("lidt god", "da")[0] < _one("god", "da")[0]


def test_mixed_label_when_both_polarities_are_strong() -> None:
    assert _one("Fantastisk service. Elendig levering.", "da")[1] == "mixed"


def test_unsupported_language_and_missing_text_give_nulls() -> None:
    out = _score([("Sehr gut", "de"), (None, "da")])  # type: ignore[list-item]
    assert out["sentiment"].to_list() == [None, None]
    assert out["sentiment_label"].to_list() == [None, None]
    assert out["sentiment_method"].to_list() == [None, None]


def test_method_records_version_and_lexicon_sha256() -> None:
    method = _score([("god", "da")])["sentiment_method"][0]
    sha = sha256_file(DATA_DIR / "lexicons" / "AFINN-da-32.txt")
    assert method.startswith("cx-lexicon@") and f"sha256:{sha}" in method and "lang=da" in method


def test_vectorized_scorer_equals_rowwise_baseline() -> None:
    texts = [
        ("Fin pris, men leveringen var elendig. Kundeservice svarede aldrig!", "da"),
        ("Ikke dårlig, men ikke god heller. Jeg venter stadig på pengene", "da"),
        ("Veldig fornøyd; rask levering og hyggelige ansatte. Men appen er treg", "no"),
        ("Inte bra alls, kom aldrig fram. Men kundtjänst var trevliga", "sv"),
        ("Not bad, but it never arrived and I'm still waiting. Very very good staff though!", "en"),
        ("Tilfredse kunder kommer igen, forfærdeligt dårlige priser", "da"),
        ("", "en"),
        ("!!!", "da"),
    ]
    vec = _score(texts)
    for (text, lang), s, label in zip(texts, vec["sentiment"], vec["sentiment_label"], strict=True):
        s_row, label_row = score_text_rowwise(text, lang)
        assert s_row is not None and math.isclose(s, s_row, abs_tol=1e-12), text
        assert label == label_row, text


def test_lazyframe_in_lazyframe_out_and_title() -> None:
    lf = pl.LazyFrame({"text": ["helt ok"], "title": ["Elendig service"], "language": ["da"]})
    out = score_sentiment(lf, title_col="title")
    assert isinstance(out, pl.LazyFrame)
    assert out.collect()["sentiment_label"][0] == "negative"


# --- language -----------------------------------------------------------------------------------------------


def test_declared_language_is_kept_and_missing_is_detected() -> None:
    df = pl.DataFrame({
        "text": ["Jag är mycket nöjd med paketet och leveransen", "The delivery was quick and the staff helpful",
                 "Tak for hurtig levering", None],
        "title": [None, None, None, None],
        "language": [None, None, "nb", None],
        "country": ["SE", "GB", "DK", None],
    })
    out = fill_language(df)
    assert out["language"].to_list() == ["sv", "en", "no", None]  # declared 'nb' kept (normalised): da/no gap small
    assert out["language_origin"].to_list() == ["detected", "detected", "declared", "unknown"]
    conf = out["language_confidence"].to_list()
    # declared rows are now verified, so their confidence is recorded (was None while declared was never detected)
    assert conf[0] > 0.5 and conf[1] > 0.5 and 0.3 < conf[2] < 0.7 and conf[3] is None


def test_danish_norwegian_tie_is_resolved_by_country() -> None:
    text = "Jeg er meget glad for pakken"  # valid in both; lingua: da 0.53 vs no 0.43
    df = pl.DataFrame({"text": [text, text, text], "title": [None] * 3, "language": [None] * 3,
                       "country": ["DK", "NO", None]})
    out = fill_language(df)
    assert out["language"].to_list() == ["da", "no", "da"]
    clear = fill_language(pl.DataFrame({"text": ["Jeg er veldig fornøyd med pakken"], "language": [None],
                                        "country": ["DK"]}))
    assert clear["language"][0] == "no"  # not a tie: country does not override clear evidence


# --- touchpoints -------------------------------------------------------------------------------------------


def test_touchpoint_tags_and_evidence() -> None:
    df = pl.DataFrame({
        "text": ["Leveringstiden var lang og kundeservice svarede aldrig", "Jeg bestilte for to uger siden",
                 "Hjemmesiden er svær at bruge", "Appen krasjer og frakten er dyr", "Returen var enkel",
                 "The courier lost my parcel"],
        "language": ["da", "da", "da", "no", "sv", "en"],
    })
    out = tag_touchpoints(df)
    assert isinstance(out, pl.DataFrame)
    assert out["text_touchpoints"].to_list() == [
        ["delivery", "customer_service"], [], ["website"], ["delivery", "price", "app"], ["returns"], ["delivery"],
    ]
    assert out["touchpoint_evidence"][0].to_list() == [
        "delivery:leverings*", "customer_service:kundeservice*", "customer_service:svarede"]
    assert "website:hjemmeside~" in out["touchpoint_evidence"][2].to_list()


def test_brand_extension_file_adds_terms(tmp_path: Path) -> None:
    ext = tmp_path / "brand.yaml"
    ext.write_text('version: "brand-1"\nterms:\n  da:\n    product: ["whopper*"]\n    store: ["drive in"]\n',
                   encoding="utf-8")
    df = pl.DataFrame({"text": ["Whopperen var kold i drive in"], "language": ["da"]})
    base = tag_touchpoints(df)
    extended = tag_touchpoints(df, extra_term_files=[ext])
    assert isinstance(base, pl.DataFrame) and isinstance(extended, pl.DataFrame)
    assert "product:whopper*" not in base["touchpoint_evidence"][0].to_list()
    assert extended["text_touchpoints"][0].to_list() == ["product", "store"]
    assert "product:whopper*" in extended["touchpoint_evidence"][0].to_list()
    bad = tmp_path / "bad.yaml"
    bad.write_text("terms:\n  da:\n    parking: [p-plads]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown touchpoint 'parking'"):
        tag_touchpoints(df, extra_term_files=[bad])


# --- combined ----------------------------------------------------------------------------------------------


def test_score_text_adds_documented_columns_and_keeps_touchpoint() -> None:
    events = pl.DataFrame({
        "event_id": ["a", "b", "c"],
        "touchpoint": ["overall", "delivery", "overall"],
        "title": ["Elendig", None, None],
        "text": ["Pakken kom aldrig frem og kundeservice svarer ikke", "Veldig fornøyd med rask levering", None],
        "language": ["da", None, None],
        "language_origin": ["declared", "unknown", "unknown"],
        "country": ["DK", "NO", None],
    })
    out = score_text(events)
    assert isinstance(out, pl.DataFrame)
    for name, (dtype, _) in SCORED_TEXT_COLUMNS.items():
        assert out.schema[name] == dtype, name
    assert out["touchpoint"].to_list() == ["overall", "delivery", "overall"]
    assert out["language"].to_list() == ["da", "no", None]
    assert out["language_origin"].to_list() == ["declared", "detected", "unknown"]
    assert out["sentiment_label"].to_list() == ["negative", "positive", None]
    assert out["text_touchpoints"][0].to_list() == ["delivery", "customer_service"]
    assert out["text_method_version"][0].startswith("cx_text@") and out["text_method_version"][2] is None


def test_every_data_file_is_recorded_in_sources_with_its_sha256() -> None:
    sources = (DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    files = sorted(p for p in DATA_DIR.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    assert files
    for path in files:
        rel = path.relative_to(DATA_DIR).as_posix()
        line = next((ln for ln in sources.splitlines() if ln.startswith(f"| `{rel}` |")), None)
        assert line is not None, f"{rel} missing from SOURCES.md"
        assert f"`{sha256_file(path)}`" in line, f"{rel}: sha256 in SOURCES.md is stale"
