"""The day-partitioned analyst table built day by day equals one full build over every batch (issue 11).

History: 40 crawl days across January and February with a late edit that moves a review to another month, a
complete crawl that no longer lists older reviews (they are marked removed), a re-seen review, and a survey file.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from cx_pipeline.contract import EVENT_SCHEMA
from cx_pipeline.pipeline import time_layout
from cx_pipeline.pipeline.events_table import (
    EVENTS_DATASET,
    build_touchpoint_events,
    update_touchpoint_events,
)
from cx_pipeline.storage import ParquetStore
from cx_pipeline_tests.synthetic_history import day_events, start_of

DAYS = 40
PER_DAY = 25
COMPLETE_DAY = 36  # this day's crawl pages to the last page and lists only reviews of days ≥ 30


def _pages(day: str, complete: bool, started) -> pl.DataFrame:
    return pl.DataFrame({
        "source_id": "tp-nordlys", "raw_key": [f"raw/blobs/{day}/page{k}.gz" for k in range(5)],
        "fetched_at": started, "stop_reason": "last_page" if complete else "known_reviews",
        "crawl_started_at": started, "outcome": "ok",
    })


def _batch(i: int) -> tuple[str, pl.DataFrame, pl.DataFrame]:
    day = start_of(2026, 1, 5) + timedelta(days=i)
    key = day.strftime("%Y-%m-%d")
    ev = day_events(day, PER_DAY, seed=i, start_id=i * PER_DAY)
    if i == 33:  # an edit of a day-2 review: new text and an experience date in December → moves month
        old = day_events(start_of(2026, 1, 5) + timedelta(days=2), PER_DAY, seed=2, start_id=2 * PER_DAY).head(1)
        edited = old.with_columns(content_hash=pl.lit("edited"), text=pl.lit("Edited: it did arrive after all."),
                                  updated_at=pl.lit(day), ingested_at=pl.lit(day),
                                  occurred_at=pl.lit(start_of(2025, 12, 20)),
                                  raw_ref=pl.lit(f"raw/blobs/{key}/page0.gz"))
        ev = pl.concat([ev, edited])
    if i == COMPLETE_DAY:  # the complete crawl lists the reviews of days 30.. again (same content, seen today)
        seen = pl.concat([day_events(start_of(2026, 1, 5) + timedelta(days=j), PER_DAY, seed=j, start_id=j * PER_DAY)
                          for j in range(30, COMPLETE_DAY)])
        ev = pl.concat([ev, seen.with_columns(ingested_at=pl.lit(day),
                                              raw_ref=pl.lit(f"raw/blobs/{key}/page1.gz"))])
    return key, ev, _pages(key, i == COMPLETE_DAY, day)


def _survey() -> pl.DataFrame:
    ev = day_events(start_of(2026, 2, 2), 6, seed=99, start_id=10_000, source="qualtrics")
    return ev.with_columns(source_kind=pl.lit("survey"), raw_ref=pl.lit("raw/blobs/survey.csv"))


def _write_day(store: ParquetStore, i: int) -> None:
    key, ev, pages = _batch(i)
    store.write_partition("events/review_events", ev, {"day": key}, schema=EVENT_SCHEMA)
    store.write_partition("raw/review_pages", pages, {"day": key})


def _table(store: ParquetStore) -> pl.DataFrame:
    lf = store.scan(EVENTS_DATASET, schema=EVENT_SCHEMA)
    assert lf is not None
    return lf.collect().sort("event_id")


def _full(store: ParquetStore) -> pl.DataFrame:
    batches = store.scan("events/review_events", schema=EVENT_SCHEMA)
    surveys = store.scan("events/survey_events", schema=EVENT_SCHEMA)
    pages = store.scan("raw/review_pages")
    return build_touchpoint_events([batches, surveys], pages).sort("event_id")


def test_day_by_day_equals_full_build_with_edits_moves_and_removals(tmp_path) -> None:
    store = ParquetStore(str(tmp_path))
    runs = []
    for i in range(DAYS):
        _write_day(store, i)
        if i == 20:
            store.write_partition("events/survey_events", _survey(), {"file": "abc"}, schema=EVENT_SCHEMA)
        runs.append(update_touchpoint_events(store))
    incremental = _table(store)
    full = _full(store)
    assert incremental.height == full.height == DAYS * PER_DAY + 6
    assert incremental.equals(full)
    # the edit moved its review to December: one event there, none left behind in January under its id
    moved = incremental.filter(pl.col("content_hash") == "edited")
    assert moved.height == 1 and moved["occurred_at"][0].month == 12
    assert "2025-12-20" in time_layout.stored_days(store, EVENTS_DATASET)
    # removals: what the complete crawl of day 36 did not list and nothing saw since (days < 30, and the edit of
    # day 33, whose review the crawl no longer listed) — reviews re-listed or published after it stay
    complete_at = start_of(2026, 1, 5) + timedelta(days=COMPLETE_DAY)
    removed = incremental.filter(pl.col("is_removed"))
    assert removed.height == 30 * PER_DAY  # the edited review is one of them
    assert removed.filter(pl.col("ingested_at") >= complete_at).height == 0
    assert incremental.filter(~pl.col("is_removed") & (pl.col("ingested_at") < complete_at)).height == 6  # surveys
    # a daily run rewrote the days its reviews' experiences fell on (up to 20 days back), nothing older
    ordinary = [r for i, r in enumerate(runs) if i not in (0, 33, COMPLETE_DAY)]
    assert max(len(r.days_written) for r in ordinary) <= 21
    assert all(r.batches_read == 1 for r in ordinary if r is not runs[20]) and runs[20].batches_read == 2


def test_a_second_build_adds_nothing_and_a_full_rebuild_in_chunks_gives_the_same_table(tmp_path) -> None:
    store = ParquetStore(str(tmp_path))
    for i in range(12):
        _write_day(store, i)
    update_touchpoint_events(store)
    first = _table(store)
    again = update_touchpoint_events(store)
    assert (again.batches_read, again.days_written, again.full) == (0, {}, False)
    rebuilt = update_touchpoint_events(store, full=True, batches_per_chunk=5)
    assert rebuilt.full and rebuilt.batches_read == 12
    assert _table(store).equals(first)


def test_files_are_time_sorted_day_partitions_in_month_folders_with_a_manifest(tmp_path) -> None:
    store = ParquetStore(str(tmp_path))
    for i in range(3):
        _write_day(store, i)
    update_touchpoint_events(store)
    days = time_layout.stored_days(store, EVENTS_DATASET)
    assert days == sorted(time_layout.manifest(store, EVENTS_DATASET)["day"].to_list())
    assert (tmp_path / "events" / "touchpoint_events" / f"month={days[0][:7]}" / f"day={days[0]}").is_dir()
    for d in days:
        part = time_layout.read_days(store, EVENTS_DATASET, [d])
        assert part is not None
        t = part.select(pl.coalesce("occurred_at", "published_at"))
        assert t.to_series().is_sorted()
        assert t.to_series().dt.strftime("%Y-%m-%d").unique().to_list() == [d]
    # one scan over the folder reads each event once
    lf = pl.scan_parquet(str(tmp_path / "events" / "touchpoint_events" / "**" / "*.parquet"), hive_partitioning=False)
    assert lf.select(pl.len()).collect().item() == 3 * PER_DAY


def test_a_removed_batch_file_triggers_a_full_rebuild(tmp_path) -> None:
    store = ParquetStore(str(tmp_path))
    for i in range(3):
        _write_day(store, i)
    update_touchpoint_events(store)
    store.delete_partition("events/review_events", {"day": _batch(1)[0]})
    run = update_touchpoint_events(store)
    assert run.full and "removed" in run.reason
    assert _table(store).height == 2 * PER_DAY


@pytest.mark.parametrize("day,expected", [("2026-01-01", {"2025-12-31", "2026-01-01", "2026-01-02"}),
                                          ("2024-02-28", {"2024-02-27", "2024-02-28", "2024-02-29"})])
def test_neighbour_days(day: str, expected: set[str]) -> None:
    assert time_layout.neighbours([day]) == expected


def test_scoring_only_changed_days_and_a_method_change_is_an_explicit_backfill(tmp_path) -> None:
    from cx_pipeline.pipeline.text_scoring_state import SCORED_DATASET, MethodChanged, update_scored_days

    store = ParquetStore(str(tmp_path))
    for i in range(3):
        _write_day(store, i)
    update_touchpoint_events(store)
    first = update_scored_days(store)
    assert first.rescored_records == 3 * PER_DAY and first.reason == "first run"
    assert update_scored_days(store).days == {}  # nothing new: nothing read or written
    _write_day(store, 3)
    update_touchpoint_events(store)
    daily = update_scored_days(store)
    assert daily.rescored_records == PER_DAY  # only the new reviews, on the days they reached
    with pytest.raises(MethodChanged, match=r"rescore_all: true.*") as err:
        update_scored_days(store, sentiment_method="lexicon")
    assert f"{4 * PER_DAY:,} stored events" in str(err.value)
    backfill = update_scored_days(store, sentiment_method="lexicon", rescore_all=True)
    assert backfill.rescored_records == 4 * PER_DAY
    scored = time_layout.scan_all(store, SCORED_DATASET)
    assert scored is not None
    assert scored.select(pl.col("text_method_version").str.contains("lexicon").all()).collect().item()


def test_a_moved_data_root_is_not_new_data(tmp_path) -> None:
    import shutil

    store = ParquetStore(str(tmp_path / "a"))
    for i in range(3):
        _write_day(store, i)
    update_touchpoint_events(store)
    shutil.copytree(tmp_path / "a", tmp_path / "b", copy_function=shutil.copy2)  # keeps modification times
    moved = update_touchpoint_events(ParquetStore(str(tmp_path / "b")))
    assert (moved.batches_read, moved.full) == (0, False)
