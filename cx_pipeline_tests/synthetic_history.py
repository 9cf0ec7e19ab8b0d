"""Contract-complete synthetic events for the incremental-build tests and bench/bench_daily_cost.py.

Why synthetic: the incremental tests need months of history with edits, late reviews and removals, and the
benchmark needs millions of events; no shared fixture is that long, and nothing from them may be copied here.
Texts are short sentences written for this file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from cx_pipeline.contract import EVENT_POLARS_SCHEMA, conform

TEXTS = (
    "Fast delivery and friendly staff, thank you.",
    "The parcel was late and nobody answered the phone.",
    "Hurtig levering, men kundeservice svarede aldrig.",
    "Varene kom i tide og prisen var god.",
    "Leveransen var sen och supporten var otrevlig.",
    "Great price, but the return took three weeks.",
    "Appen crasher hver gang jeg betaler.",
    "Fin butikk og hyggelig personale.",
)


def day_events(day: datetime, n: int, *, seed: int, start_id: int = 0, brand: str = "Nordlys",
               lateness_days: int = 20, source: str = "trustpilot", raw_day: str | None = None,
               customer_pool: int | None = None, reply_share: float = 0.0) -> pl.DataFrame:
    """``n`` review events ingested on ``day``: one star rating each with a text, experience dates up to
    ``lateness_days`` before publication (so a day's batch reaches one or two months). ``customer_pool``: draw
    customers from that many (returning customers make journeys); ``reply_share``: reviews the company answered."""
    rng = np.random.default_rng(seed)
    ids = np.arange(start_id, start_id + n)
    stars = rng.integers(1, 6, n).astype(float)
    late = rng.integers(0, lateness_days + 1, n)
    published = [day - timedelta(hours=int(h)) for h in rng.integers(1, 20, n)]
    occurred = [p - timedelta(days=int(d)) for p, d in zip(published, late, strict=True)]
    texts = [TEXTS[i % len(TEXTS)] for i in rng.integers(0, len(TEXTS), n)]
    raw = f"raw/blobs/{raw_day or day.strftime('%Y-%m-%d')}"
    # most reviewers write once; one in twenty comes from a pool of 5,000 returning customers
    customers = ([f"c{i}" for i in rng.integers(0, customer_pool, n)] if customer_pool
                 else [f"r{j}" if j >= 0 else f"c{i}"
                       for i, j in zip(ids, np.where(rng.random(n) < 0.05, rng.integers(0, 5000, n), -1),
                                       strict=True)])
    replied = rng.random(n) < reply_share
    reply_at = [p + timedelta(hours=int(h)) if r else None
                for p, h, r in zip(published, rng.integers(1, 200, n), replied, strict=True)]
    frame = pl.DataFrame({
        "event_id": [f"{source}-e{i}" for i in ids],
        "record_id": [f"{source}:r{i}" for i in ids],
        "measure_key": "stars",
        "content_hash": [f"h{i}-{s}-{t[:8]}" for i, s, t in zip(ids, stars, texts, strict=True)],
        "source": source,
        "source_kind": "review",
        "brand": brand,
        "touchpoint": "overall",
        "taxonomy_version": "1.0.0",
        "metric": "star_rating",
        "score_raw": stars,
        "scale_min": 1.0,
        "scale_max": 5.0,
        "higher_is_better": True,
        "score_norm": (stars - 1) / 4,
        "occurred_at": occurred,
        "published_at": published,
        "updated_at": None,
        "ingested_at": day,
        "language": "en",
        "language_origin": "declared",
        "title": None,
        "text": texts,
        "reply_text": ["Thank you for your review." if r else None for r in replied],
        "replied_at": reply_at,
        "is_verified": True,
        "country": "DK",
        "location": None,
        "customer_key": customers,
        "weight": None,
        "is_removed": False,
        "source_url": "https://reviews.example/nordlys",
        "raw_ref": [f"{raw}/page{i % 5}.gz" for i in ids],
        "parser": "synthetic",
        "schema_version": "1.2",
    }, schema_overrides={k: v for k, v in EVENT_POLARS_SCHEMA.items()})
    return conform(frame)


def start_of(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, 6, tzinfo=UTC)
