"""What each column of the scored datasets means, with its unit: the text analysts read in docs/datasets.md and
in the Parquet footer of every file (``field.metadata["description"]``), so a BI tool or DuckDB shows it too.

Kept next to the catalog rather than inside the scoring modules so the schemas stay short; a test fails when a
column of a scored dataset has no description here.
"""

from __future__ import annotations

AGGREGATE_DOCS: dict[str, str] = {
    "brand": "Brand.",
    "touchpoint": "A taxonomy touchpoint, or all (pooled touchpoints; CSAT/CES/rating only).",
    "source": "A source format, or all (every source of the brand pooled).",
    "grain": "day, week (ISO, Monday start), month or all (whole history).",
    "period": "2026-11-18, 2026-W47, 2026-11 or all; cut in the reporting time zone of the brand.",
    "period_start": "First day of the period (Monday for weeks); null for grain all.",
    "metric": "nps, csat, ces, star_rating, rating or sentiment.",
    "measure": "What value is: nps, top2_box_pct, easy_pct, mean_stars, mean_norm_pct, net_sentiment_pct.",
    "n": "Answers behind the value (sentiment: texts, one per record and touchpoint).",
    "n_respondents": "Distinct respondents behind the answers (customer_key, else the response or review).",
    "design_effect": "Var(clustered by respondent, weighted) / Var(independent unweighted answers); 1 when each "
    "respondent answered once without a weight. The interval uses n / design_effect.",
    "n_effective": "n / design_effect: the effective sample size of the interval (clustering and survey weights; "
    "with weights alone close to Kish's (Σw)²/Σw²).",
    "value": "The headline measure, higher is better (unit: see unit); weighted by the survey weight where answers "
    "carry one.",
    "unit": "What one unit of value is (NPS points, % of answers, stars, % of scale, net %).",
    "ci_low": "Lower end of the 95% interval, on the value's scale and inside it.",
    "ci_high": "Upper end of the 95% interval, on the value's scale and inside it.",
    "se": "Standard error of value (cluster-robust where a respondent gave several answers).",
    "mean": "Mean answer on its own scale (sentiment: −1..1); null when scales are mixed.",
    "mean_norm": "Mean score_norm, 0..1, comparable across metrics.",
    "bayes_mean": "Stars only: Bayesian average (C·m + Σr)/(C + n), prior 7 reviews of 3.5 stars.",
    "top_box_share": "Share (0..1) of answers at the best scale point.",
    "top_box_lower": "Wilson lower bound of top_box_share.",
    "low_n": "Fewer respondents than the low-n threshold (30): read with care.",
}

DRIVER_DOCS: dict[str, str] = {
    "brand": "Brand.",
    "grain": "month or all.",
    "period": "The period (reporting time zone).",
    "period_start": "First day of the period; null for all.",
    "method": "shapley_regression (per-touchpoint ratings) or text_impact (text mentions).",
    "outcome": "The outcome, one metric (text_impact: '<score>:<metric>').",
    "touchpoint": "The driver touchpoint; all on a row that only carries a note.",
    "n": "Records used (Shapley: complete cases; text: records with an outcome).",
    "sampled_from": "Records in the brand × period when n comes from a uniform sample of at most 20,000 of them (a "
    "stable hash of record_id, the same records every run); null when every record was used.",
    "n_mentions": "text_impact: records whose text names the touchpoint.",
    "r2": "Shapley: R² of the full regression.",
    "importance": "Shapley: R² contribution; text_impact: |impact| (unit: see unit).",
    "importance_share": "importance / Σ importance within brand × period × method × outcome.",
    "performance": "Mean score_norm 0..1 of the touchpoint (text: outcome of the mentioning records).",
    "score_all": "text_impact: score of all records (unit: see unit).",
    "score_without": "text_impact: score without the mentioning records.",
    "impact": "text_impact: score_all − score_without; negative drags the score down.",
    "ci_low": "Bootstrap 95% interval (records resampled) of importance (Shapley) or impact (text), low end.",
    "ci_high": "Same interval, high end.",
    "unit": "What importance/impact are measured in.",
    "rank": "1 = most important within brand × period × method × outcome; null when not ranked (see note).",
    "quadrant": "fix_first, keep_up, monitor or maintain (importance vs performance).",
    "note": "Why a row is not ranked, or why a period has no regression.",
}

PEAK_DOCS: dict[str, str] = {
    "brand": "Brand.",
    "grain": "month or all.",
    "period": "The period (reporting time zone).",
    "period_start": "First day of the period; null for all.",
    "touchpoint": "Touchpoint.",
    "n": "Units: records × touchpoint (a score there, or its mentions in text).",
    "n_respondents": "Distinct respondents behind the units (customer_key, else the review or response).",
    "peaks": "Units with a top-box score and strongly positive language (text-only units: the language alone).",
    "potholes": "Units with a bottom score (score_norm ≤ 0.25) or strongly negative language about the touchpoint.",
    "peak_rate": "peaks / n (0..1).",
    "peak_ci_low": "Wilson 95% interval of peak_rate, low end.",
    "peak_ci_high": "Wilson 95% interval of peak_rate, high end.",
    "pothole_rate": "potholes / n (0..1).",
    "pothole_ci_low": "Wilson 95% interval of pothole_rate, low end.",
    "pothole_ci_high": "Wilson 95% interval of pothole_rate, high end.",
    "net": "peak_rate − pothole_rate.",
    "net_lower": "peak_ci_low − pothole_ci_high: the net the data supports at 95%.",
    "rank": "1 = best net_lower within brand × period; null below 10 units.",
    "uses_sentiment": "Whether text sentiment was available (else peaks are plain top boxes).",
    "peak_examples": "Up to 3 redacted example clauses of peaks.",
    "pothole_examples": "Up to 3 redacted example clauses of potholes.",
}

JOURNEY_DOCS: dict[str, str] = {
    "brand": "Brand.",
    "customer_key": "Keyed hash of the customer (never identity).",
    "n_moments": "Scored events of the customer.",
    "n_records": "Reviews/responses of the customer.",
    "first_at": "First moment (UTC).",
    "last_at": "Last moment (UTC).",
    "mean_score": "Plain mean score_norm of all moments (0..1).",
    "peak_score": "score_norm of the most intense moment (farthest from 0.5).",
    "peak_touchpoint": "Touchpoint of that moment.",
    "end_score": "Mean score_norm of the moments at the last time.",
    "end_touchpoint": "Touchpoint of the worst end moment.",
    "peak_end_score": "(peak_score + end_score) / 2.",
    "peak_end_gap": "peak_end_score − mean_score: below 0 the journey is remembered worse than its average.",
}

REPLY_DOCS: dict[str, str] = {
    "brand": "Brand.",
    "source": "Review source.",
    "grain": "month or all.",
    "period": "The period (experience date, else publication; reporting time zone).",
    "period_start": "First day of the period; null for all.",
    "touchpoint": "Always customer_service: replying is customer service the market can see.",
    "reviews": "Reviews (not removed) in the period.",
    "replied": "Reviews with a company reply.",
    "reply_rate": "replied / reviews (0..1).",
    "reply_rate_ci_low": "Wilson 95% interval of reply_rate, low end.",
    "reply_rate_ci_high": "Wilson 95% interval of reply_rate, high end.",
    "median_hours": "Median hours from publication to reply.",
    "p90_hours": "90th percentile of hours to reply.",
    "mean_hours": "Mean hours to reply.",
    "low_n": "Fewer than 30 reviews: read with care.",
}

REJECT_DOCS: dict[str, str] = {
    "batch": "The batch that refused it: reviews-<crawl day> or survey-<file key> (the events partition); a re-run "
    "of the batch replaces its rows.",
    "brand": "Brand of the page or file.",
    "source_kind": "review or survey.",
    "parser": "Parser and version that refused the record; null when the whole input was refused.",
    "raw_key": "Key of the archived input under raw/blobs, to look at the exact bytes.",
    "location": "URL of the page or inbox path of the file.",
    "position": "Where in it: reviews[3], feed.entry[7], row 17; null when the whole input was refused.",
    "native_id": "The record's own id where it had a readable one.",
    "field": "The field holding the refused value.",
    "value": "The refused value, at most 80 characters, e-mail addresses, phone numbers and IPs masked.",
    "reason": "Why, in words: an out-of-range date, a rating that is not a number, 'file refused: …' for a whole "
    "page or file (unreadable, past an input budget, a parser bug).",
}
