from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from cx_pipeline.contract import contract_violations
from cx_pipeline.normalize import NormalizeContext, latest_versions, to_events
from cx_pipeline.normalize.redact import redact_text
from cx_pipeline.sources.base import ParseResult, measures_frame

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _result(rows: list[dict]) -> ParseResult:
    return ParseResult("qualtrics", "qualtrics@test", measures_frame(rows), len({r["native_id"] for r in rows}))


def _ctx(keyer, **kw) -> NormalizeContext:
    return NormalizeContext(brand="Nordlys Shop", source_url="file:///inbox/x.csv", raw_key="raw/blobs/ab/abc.gz",
                            ingested_at=T0, keyer=keyer, **kw)


ROWS = [
    {"native_id": "R_1", "position": "row=1", "measure_key": "Q1", "metric": "nps", "touchpoint": "overall",
     "score_raw": 9.0, "scale_min": 0.0, "scale_max": 10.0, "higher_is_better": True,
     "customer_ref": "ann@example.com", "text": "Ring mig på +45 12 34 56 78 eller ann@example.com"},
    {"native_id": "R_1", "position": "row=1", "measure_key": "Q2", "metric": "ces", "touchpoint": None,
     "score_raw": 2.0, "scale_min": 1.0, "scale_max": 5.0, "higher_is_better": False,
     "customer_ref": "ann@example.com"},
]


def test_events_follow_the_contract_and_scales(keyer) -> None:
    events = to_events(_result(ROWS), _ctx(keyer, default_touchpoint="delivery"), source_kind="survey")
    assert contract_violations(events) == []
    nps, ces = events.sort("measure_key").iter_rows(named=True)
    assert nps["score_norm"] == 0.9
    assert ces["score_norm"] == 0.75  # lower is better: (5 - 2) / (5 - 1)
    assert ces["touchpoint"] == "delivery"  # per-source default fills what the parser left open
    assert nps["record_id"] == ces["record_id"] == "qualtrics:R_1"
    assert nps["raw_ref"] == "raw/blobs/ab/abc.gz#row=1"
    assert nps["ingested_at"] == T0


def test_personal_data_never_in_clear(keyer) -> None:
    events = to_events(_result(ROWS), _ctx(keyer), source_kind="survey")
    flat = " ".join(str(v) for row in events.iter_rows() for v in row)
    assert "ann@example.com" not in flat and "12 34 56 78" not in flat
    assert events["text"][0] == "Ring mig på [phone] eller [email]"
    assert events["customer_key"][0] == keyer.key("ann@example.com")


def test_ids_are_deterministic_and_versions_differ_by_content(keyer) -> None:
    a = to_events(_result(ROWS), _ctx(keyer), source_kind="survey")
    b = to_events(_result(ROWS), _ctx(keyer), source_kind="survey")
    assert a["event_id"].to_list() == b["event_id"].to_list()
    assert a["event_id"].n_unique() == 2
    edited = [dict(ROWS[0], text="changed"), ROWS[1]]
    c = to_events(_result(edited), _ctx(keyer), source_kind="survey")
    assert c["event_id"].to_list() == a["event_id"].to_list()
    assert c["content_hash"][0] != a["content_hash"][0] and c["content_hash"][1] == a["content_hash"][1]


def test_latest_versions_keeps_the_newest_edit(keyer) -> None:
    old = to_events(_result(ROWS), _ctx(keyer), source_kind="survey")
    newer_row = dict(ROWS[0], text="edited", updated_at=datetime(2026, 11, 22, tzinfo=UTC))
    new = to_events(_result([newer_row]), _ctx(keyer), source_kind="survey")
    latest = latest_versions(pl.concat([new, old])).collect()
    assert latest.height == 2
    assert latest.filter(pl.col("measure_key") == "Q1")["text"].to_list() == ["edited"]


def test_redaction_keeps_prices_and_years() -> None:
    assert redact_text("Pris 499 kr, 2024, ordre 123456") == "Pris 499 kr, 2024, ordre 123456"
    assert redact_text("mail: a.b@x.no, tlf 004712345678") == "mail: [email], tlf [phone]"
    assert redact_text("fra 192.168.1.20") == "fra [ip]"


def test_vectorized_event_id_equals_the_reference_hash(keyer) -> None:
    from cx_pipeline.contract.identity import event_id

    events = to_events(_result(ROWS), _ctx(keyer), source_kind="survey")
    for row in events.iter_rows(named=True):
        assert row["event_id"] == event_id("qualtrics", row["record_id"], row["measure_key"])
