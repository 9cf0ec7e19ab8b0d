"""Touchpoint tagging with term lists v2: whole-word and inflection-aware terms, negated complaints, waiting time
and cleanliness, the 2.1 vocabulary per domain, staff on site vs. customer service, a term inside a longer term of
another touchpoint, brand extension files with the new syntax, and properties that hold for any text."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cx_pipeline.contract.taxonomy import touchpoints as taxonomy_touchpoints
from cx_pipeline.scoring.text import tag_touchpoints
from cx_pipeline.scoring.text.resources import term_patterns, touchpoint_terms, word_forms
from cx_pipeline.scoring.text.touchpoints import touchpoint_terms_version


def _tag(rows: list[tuple[str, str]], **kwargs: object) -> pl.DataFrame:
    df = pl.DataFrame({"text": [t for t, _ in rows], "language": [lang for _, lang in rows]})
    out = tag_touchpoints(df, **kwargs)  # type: ignore[arg-type]
    assert isinstance(out, pl.DataFrame)
    return out


def _tps(text: str, lang: str, **kwargs: object) -> list[str]:
    return _tag([(text, lang)], **kwargs)["text_touchpoints"][0].to_list()


# --- whole words and inflections -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "lang"), [
    ("Vi hadde en lang diskusjon om været", "no"),  # "disk*" used to tag store
    ("Vi hade en diskussion om vädret", "sv"),
    ("Mads og jeg kørte en tur", "da"),  # "mad~" would have matched the name Mads; "kø" is not a word of "kørte"
    ("Matematikk er vanskelig", "no"),  # "mat*" used to tag product
    ("Produktionen er flyttet til Kina", "da"),  # "produkt*" matched production
    ("Jeg var kortvarigt i tvivl", "da"),  # "kort*" (the card) matched "short"
    ("Vi drak Chateau Margaux", "da"),  # "chat*" would have matched Chateau (and "vin" is a product since 2.1)
])
def test_prefixes_no_longer_overreach(text: str, lang: str) -> None:
    assert _tps(text, lang) == []


@pytest.mark.parametrize(("text", "lang", "touchpoint"), [
    ("Leveringen var sen", "da", "delivery"),
    ("To leveringer kom for sent", "da", "delivery"),
    ("Pakkerne var våde", "da", "delivery"),
    ("Leveringstiden var lang", "da", "delivery"),  # explicit compound prefix leverings*
    ("Butikken var stor", "da", "store"),  # doubled consonant listed as its own stem (butikk~)
    ("Toiletterne var ulækre", "da", "store"),
    ("Kassörskan var trevlig", "sv", "store"),  # final -a merges: kassörska~ + n
    ("Hamburgaren var torr", "sv", "product"),
    ("Paketen kom fram", "sv", "delivery"),
    ("The parcels were late", "en", "delivery"),
    ("They refunded me quickly", "en", "returns"),
])
def test_inflected_forms_match(text: str, lang: str, touchpoint: str) -> None:
    assert touchpoint in _tps(text, lang)


def test_evidence_names_the_term_as_written() -> None:
    out = _tag([("Leveringen og leveringstiden var fine", "da")])
    assert out["touchpoint_evidence"][0].to_list() == ["delivery:levering~", "delivery:leverings*"]


# --- negated complaints and other masked phrases -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "lang"), [
    ("Der var intet at klage over", "da"),
    ("Ingen klager herfra", "da"),
    ("Det er ikke noe å klage på", "no"),
    ("Det finns inget att klaga på", "sv"),
    ("Honestly nothing to complain about", "en"),
    ("No complaints at all", "en"),
    ("Kan ikke klage, alt var fint", "da"),
])
def test_negated_complaints_are_not_returns(text: str, lang: str) -> None:
    assert "returns" not in _tps(text, lang)


def test_complaints_still_tag_returns_next_to_a_masked_phrase() -> None:
    out = _tag([("Jeg vil klage over leveringen", "da"), ("Intet at klage over. Men jeg har sendt en klage", "da"),
                ("Ingen klager ingen klager", "da"), ("I complained twice", "en")])
    assert out["text_touchpoints"].to_list() == [["delivery", "returns"], ["returns"], [], ["returns"]]


def test_a_masked_phrase_is_a_barrier_for_multi_word_terms() -> None:
    # "svarer til" (= corresponds to) is masked, and no term may bridge the gap it leaves
    assert _tps("Produktet svarer til beskrivelsen", "da") == ["product"]
    assert _tps("Det var rent faktisk fint", "da") == []


# --- waiting time and cleanliness ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "lang", "expected"), [
    ("Ventede 40 minutter i telefonkø", "da", ["customer_service"]),
    ("Lang ventetid i telefonen", "da", ["customer_service"]),
    ("Lang kø ved kassen", "da", ["store"]),
    ("Vi stod i kø i en halv time", "da", ["store"]),
    ("Telefonkøen var endeløs", "no", ["customer_service"]),
    ("Lång kö vid kassan", "sv", ["store"]),
    ("Telefonkön var lång", "sv", ["customer_service"]),
    ("Forty minutes hold time", "en", ["customer_service"]),
    ("Long queue at the till", "en", ["store"]),
    ("Waited forever in a long queue", "en", ["store"]),
])
def test_waiting_time(text: str, lang: str, expected: list[str]) -> None:
    assert _tps(text, lang) == expected


def test_waiting_for_food_is_store() -> None:
    # "food" lies inside the longer store term "waited for our food": only the store counts
    assert _tps("We waited for our food for ages", "en") == ["store"]
    assert _tps("Vi ventede længe på maden", "da") == ["store"]
    assert _tps("We waited for our food, and the food was cold", "en") == ["product", "store"]


@pytest.mark.parametrize(("text", "lang", "expected"), [
    ("Fik hår i maden og der var beskidt", "da", ["product", "store"]),
    ("Der var rent og pænt", "da", ["store"]),
    ("Toalettet var skittent", "no", ["store"]),
    ("Det var smutsigt och ostädat", "sv", ["store"]),
    ("The toilets were filthy and the tables sticky", "en", ["store"]),
    ("Cleanliness could be better", "en", ["store"]),
])
def test_cleanliness_is_store(text: str, lang: str, expected: list[str]) -> None:
    assert _tps(text, lang) == expected


def test_ambiguous_words_only_count_in_phrases() -> None:
    assert _tps("Kassen var mast", "da") == []  # the box, not the till
    assert _tps("Kundeservice har en ren og klar tone", "da") == ["customer_service"]
    assert _tps("The rent is due", "en") == []
    assert _tps("Ventetiden var lang", "da") == []  # phone, store or delivery: not decidable


# --- 2.1 vocabulary: product nouns per domain, premises, channels -------------------------------------------------


@pytest.mark.parametrize(("text", "lang", "expected"), [
    # food and drink
    ("Kaffen var lunken og kagen tør", "da", ["product"]),
    ("Kanelbollene er byens beste", "no", ["product"]),
    ("Pizzan var kall och salladen slapp", "sv", ["product"]),
    ("My chips were soggy and the flat white was bitter", "en", ["product"]),
    # furniture, clothing, electronics
    ("Sofaen er flot, men reolen er skæv", "da", ["product"]),
    ("Spisebordet er solid", "no", ["product"]),
    ("Klänningen satt perfekt", "sv", ["product"]),
    ("The jeans fit perfectly", "en", ["product"]),
    ("Routeren og opladeren virker fint", "da", ["product"]),
    # bank, telecom, travel
    ("Lånet blev bevilget, og billånet var nemt", "da", ["product"]),
    ("Dekningen er god over hele landet", "no", ["product"]),
    ("Mobiltäckningen är usel och bredbandet segt", "sv", ["product"]),
    ("The flight was late and the seats were cramped", "en", ["product"]),
    ("Beinplassen var elendig", "no", ["product"]),
    # premises and staff on site
    ("Pent og ryddig lokale? Lokalet er trangt", "no", ["store"]),
    ("Fina lokaler och trevlig stämning", "sv", ["store"]),
    ("Ingen ledige borde og alt for meget larm", "da", ["store"]),
    ("Nice surroundings, but you never get a seat", "en", ["store"]),
    ("Servitøren var sur", "da", ["store"]),
    ("Staff were chatting among themselves", "en", ["store"]),  # "chatting" is not the support chat
    ("Åbningstiderne er for korte", "da", ["store"]),
    # channels, returns, price
    ("Netbanken er fin", "da", ["website"]),  # online banking in a browser is the website
    ("Mobilbanken går ned", "da", ["app"]),
    ("The app's loyalty points are nice", "en", ["app"]),
    ("Webbshoppen är enkel", "sv", ["website"]),
    ("Fick tillbaka pengarna efter två dagar", "sv", ["returns"]),
    ("Returfristen er for kort", "no", ["returns"]),
    ("Overtræksgebyret kom bag på mig", "da", ["price"]),
    ("Regningen blir høyere hver måned", "no", ["price"]),
    ("Chaufføren bar alt op", "da", ["delivery"]),
    ("My replacement card never turned up", "en", ["delivery"]),  # a bank card, not a returned item
])
def test_domain_vocabulary(text: str, lang: str, expected: list[str]) -> None:
    assert _tps(text, lang) == expected


@pytest.mark.parametrize(("text", "lang"), [
    ("Det koster skjorta", "no"),  # = costs a fortune: "skjorta" (the shirt) is not listed
    ("Jag fruktar det värsta", "sv"),  # "fruktar" = fears, not fruit
    ("Det var mycket buller", "sv"),  # "buller" = noise, not buns
    ("Man kan ikke stole på dem", "da"),  # "stole på" = rely on, not chairs
    ("Jeg er skuffet", "da"),  # "skuffe~" would have matched disappointed
    ("I forbindelse med flytningen", "da"),  # only "forbindelsen" (the connection) is a product
    ("The exchange rate was poor", "en"),  # masked: not an exchange of goods
    ("Very helpful and friendly", "en"),  # praise words name no touchpoint
    ("Lokale varer er det bedste", "da"),  # "lokale" = local; only lokalet/lokalerne are premises
])
def test_ambiguous_words_are_not_evidence(text: str, lang: str) -> None:
    assert _tps(text, lang) in ([], ["price"]) and "product" not in _tps(text, lang)


def test_pay_by_card_is_a_price_not_a_product() -> None:
    assert _tps("£8 just to pay by card?", "en") == ["price"]
    assert _tps("Hemsidan krånglade när jag skulle betala", "sv") == ["website"]  # paying is not the price


# --- staff on site vs. customer service ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "lang", "expected", "evidence"), [
    # a people/service word counts for store when the text names the store ...
    ("Rådgiveren i filialen var dygtig", "da", ["store"], ["store:rådgiver~", "store:filial~"]),
    ("Rådgiveren på banken i Bergen tok seg god tid", "no", ["store"],
     ["store:rådgiver~", "store:på banken", "store:banken i"]),
    ("Fantastisk service i butikken", "da", ["store"], ["store:service", "store:i butikken", "store:butikk~"]),
    ("Bemötandet i butiken var bra", "sv", ["store"], ["store:bemötande~", "store:i butiken", "store:butik~"]),
    # ... else for customer service
    ("Rådgiveren var kunnskapsrik", "no", ["customer_service"], ["customer_service:rådgiver~"]),
    ("Medarbejderen i telefonen var sød", "da", ["customer_service"],
     ["customer_service:medarbejder~", "customer_service:telefon~"]),
    ("God service", "da", ["customer_service"], ["customer_service:service"]),
    # words for staff on site are store terms only
    ("Personalet var søde", "da", ["store"], ["store:personale~"]),
    ("De ansatte i butikken var hyggelige", "no", ["store"], ["store:ansatte", "store:butikk*", "store:i butikken"]),
    ("Tre anställda stod bakom disken", "sv", ["store"], ["store:anställd~", "store:disken"]),
    ("Staff were very helpful", "en", ["store"], ["store:staff"]),
    # ... unless a customer-service term around them says where they work
    ("Customer service staff were helpful", "en", ["customer_service"],
     ["customer_service:customer service", "customer_service:service", "customer_service:customer service staff"]),
    ("Personalet i kundeservice var flinke", "da", ["customer_service"],
     ["customer_service:personale~ i kundeservice*", "customer_service:kundeservice*"]),
])
def test_staff_on_site_is_store_people_on_the_phone_customer_service(
        text: str, lang: str, expected: list[str], evidence: list[str]) -> None:
    out = _tag([(text, lang)])
    assert out["text_touchpoints"][0].to_list() == expected
    assert out["touchpoint_evidence"][0].to_list() == evidence


def test_staff_words_are_read_from_the_term_files(tmp_path: Path) -> None:
    # a brand that lists its own title under both touchpoints gets the same resolution as the built-in words
    ext = tmp_path / "brand.yaml"
    ext.write_text('version: "b"\nterms:\n  da:\n    customer_service: [kundevært~]\n    store: [kundevært~]\n',
                   encoding="utf-8")
    rows = [("Kundeværten var sød", "da"), ("Kundeværten i butikken var sød", "da"),
            ("Kundeværten i telefonen var sød", "da")]
    assert _tag(rows)["text_touchpoints"].to_list() == [[], ["store"], ["customer_service"]]
    assert _tag(rows, extra_term_files=[ext])["text_touchpoints"].to_list() == [
        ["customer_service"], ["store"], ["customer_service"]]


# --- a term inside a longer term of another touchpoint ------------------------------------------------------------


@pytest.mark.parametrize(("text", "lang", "expected"), [
    ("Their online store is easy to use", "en", ["website"]),
    ("The web shop was down", "en", ["website"]),
    ("Found it in the app store", "en", ["app"]),
    ("Ordered from the online shop, collected in the store", "en", ["website", "store"]),  # "store" on its own too
    ("Called customer services about my bill", "en", ["customer_service", "price"]),
])
def test_an_inner_term_counts_only_for_the_longer_term(text: str, lang: str, expected: list[str]) -> None:
    assert _tps(text, lang) == expected


# --- term syntax and files -------------------------------------------------------------------------------------


def test_word_forms_merge_a_final_vowel_into_a_vowel_suffix() -> None:
    assert word_forms("pakke", ("en", "r", "s")) == ("pakke", "pakkeen", "pakken", "pakker", "pakkes")
    assert "kassor" in word_forms("kassa", ("or",))
    assert word_forms("kø", ("en",)) == ("kø", "køen")  # two-letter words keep their vowel


def test_term_patterns_syntax() -> None:
    assert term_patterns("levering") == (" levering ",)
    assert term_patterns("leverings*") == (" leverings",)
    assert term_patterns("Kø~ ved kassen", ("en",)) == (" kø ved kassen ", " køen ved kassen ")
    assert term_patterns("e-mail~", ("s",)) == (" e mail ", " e mails ")
    with pytest.raises(ValueError, match="no suffixes"):
        term_patterns("levering~")
    with pytest.raises(ValueError, match="both"):
        term_patterns("levering~*", ("en",))
    with pytest.raises(ValueError, match="only allowed at the end"):
        term_patterns("lever*ing")


def test_builtin_file_is_v2_and_versioned() -> None:
    terms = touchpoint_terms()
    assert terms.version == "2.1.0"
    assert set(terms.suffixes) == {"da", "no", "sv", "en"} and set(terms.exclude) == {"da", "no", "sv", "en"}
    assert touchpoint_terms_version().startswith("terms@2.1.0 sha256:")
    for lang, entries in terms.by_language.items():
        prefixes = [term for _, term, _ in entries if term.endswith("*")]
        assert all(len(t.rstrip("*").split()[-1]) >= 5 for t in prefixes), (lang, prefixes)


def test_brand_extension_with_the_new_syntax(tmp_path: Path) -> None:
    ext = tmp_path / "brand.yaml"
    ext.write_text(
        'version: "brand-2"\n'
        "suffixes:\n  de: [en, e, s]\n"
        "exclude:\n  da: [\"ingen whopper\"]\n  de: [\"keine beschwerden\"]\n"
        "terms:\n"
        "  da:\n    product: [\"whopper~\"]\n    store: [\"drive in\", \"drive-in~\"]\n"
        "  de:\n    returns: [\"beschwerde~\"]\n    store: [\"filiale~\"]\n",
        encoding="utf-8")
    rows = [("Whopperen var kold i drive in", "da"), ("Der var ingen whopper", "da"),
            ("Zwei Beschwerden und keine Beschwerden", "de"), ("Die Filialen sind sauber", "de")]
    base = _tag(rows)
    extended = _tag(rows, extra_term_files=[ext])
    assert base["text_touchpoints"].to_list() == [["store"], [], None, None]  # no German terms built in
    assert extended["text_touchpoints"].to_list() == [["product", "store"], [], ["returns"], ["store"]]
    assert extended["touchpoint_evidence"][0].to_list() == ["product:whopper~", "store:drive in"]
    assert touchpoint_terms_version([ext]).startswith("terms@2.1.0+brand-2 sha256:")
    assert touchpoint_terms_version([ext]) != touchpoint_terms_version()


def test_old_style_extension_files_keep_working(tmp_path: Path) -> None:
    ext = tmp_path / "v1.yaml"
    ext.write_text('version: "brand-1"\nterms:\n  da:\n    product: ["whopper*"]\n', encoding="utf-8")
    out = _tag([("Whopperen var kold", "da")], extra_term_files=[ext])
    assert out["touchpoint_evidence"][0].to_list() == ["product:whopper*"]


@pytest.mark.parametrize(("content", "message"), [
    ("terms:\n  da:\n    parking: [p-plads]\n", "unknown touchpoint 'parking'"),
    ("terms:\n  fi:\n    store: [kauppa~]\n", "uses '~' but the language has no suffixes"),
    ("exclude:\n  da: [\"ingen klage*\"]\n", "'\\*' is not allowed in exclusions"),
    ("suffixes: [en, er]\n", "suffixes must map a language to a list"),
])
def test_bad_extension_files_raise_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad_brand.yaml"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        _tag([("Pakken kom", "da")], extra_term_files=[bad])
    assert "bad_brand.yaml" in str(err.value)


# --- properties ------------------------------------------------------------------------------------------------

_WORDS = ["levering", "leveringen", "pakkerne", "kø", "ved", "kassen", "intet", "at", "klage", "over", "ingen",
          "klager", "rent", "faktisk", "beskidt", "telefonkø", "diskusjon", "ikke", "noe", "å", "på", "the", "no",
          "complaints", "queue", "toilets", "refund", "butikken", "app'en", "e-mail", "drive-in", "kö", "vid",
          "kassan", "smutsigt", "ær", "|", "~", "*"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.one_of(st.none(), st.lists(st.one_of(st.sampled_from(_WORDS), st.sampled_from(list(" ,.!?;:'-")),
                                            st.text(max_size=6)), max_size=14).map(" ".join)),
    st.sampled_from(["da", "no", "sv", "en", "de", None, "nb", "EN"]),
), min_size=1, max_size=8))
def test_tagging_never_raises_and_evidence_supports_the_tags(rows: list[tuple[str | None, str | None]]) -> None:
    df = pl.DataFrame({"text": [t for t, _ in rows], "language": [lang for _, lang in rows]},
                      schema={"text": pl.String, "language": pl.String})
    out = tag_touchpoints(df)
    assert isinstance(out, pl.DataFrame) and out.height == df.height
    order = list(taxonomy_touchpoints())
    for text, tps, evidence in zip(df["text"].to_list(), out["text_touchpoints"].to_list(),
                                   out["touchpoint_evidence"].to_list(), strict=True):
        if text is None:
            assert tps is None and evidence is None
            continue
        if tps is None:  # a language without a term list
            assert evidence is None
            continue
        assert tps == sorted(set(tps), key=order.index)
        assert {e.split(":", 1)[0] for e in evidence} == set(tps)
        assert len(evidence) == len(set(evidence))
