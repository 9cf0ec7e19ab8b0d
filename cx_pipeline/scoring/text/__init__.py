"""Text scoring of touchpoint events: language id, lexicon sentiment and touchpoint tagging (pure polars, no Dagster).

Public API: ``score_text`` (all at once, adds SCORED_TEXT_COLUMNS), ``fill_language``, ``score_sentiment``,
``tag_touchpoints``; ``score_text_rowwise`` is the per-row reference implementation of the sentiment rules.
"""

from cx_pipeline.scoring.text.language import LANGUAGE_COLUMNS, detect_languages, fill_language
from cx_pipeline.scoring.text.score import SCORED_TEXT_COLUMNS, TEXT_METHOD_VERSION, score_text, text_method_version
from cx_pipeline.scoring.text.sentiment import SENTIMENT_COLUMNS, score_sentiment, score_text_rowwise
from cx_pipeline.scoring.text.touchpoints import TOUCHPOINT_COLUMNS, tag_touchpoints

__all__ = [
    "LANGUAGE_COLUMNS",
    "SCORED_TEXT_COLUMNS",
    "SENTIMENT_COLUMNS",
    "TEXT_METHOD_VERSION",
    "TOUCHPOINT_COLUMNS",
    "detect_languages",
    "fill_language",
    "score_sentiment",
    "score_text",
    "score_text_rowwise",
    "tag_touchpoints",
    "text_method_version",
]
