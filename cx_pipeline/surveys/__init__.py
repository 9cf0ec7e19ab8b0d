"""Pure survey-export logic (no Dagster): bytes → tables → question registry → measures, plus inbox helpers.

The format classes in ``cx_pipeline.sources.formats`` (qualtrics, surveymonkey, typeform, google_forms,
plain_table) only describe each vendor's layout; everything shared lives here so that every export is
read, dated, mapped and reshaped the same way.
"""

from cx_pipeline.surveys.question_registry import QuestionConfig, QuestionSpec, infer_questions
from cx_pipeline.surveys.tabular import RawTable, decode_bytes, read_table

__all__ = ["QuestionConfig", "QuestionSpec", "RawTable", "decode_bytes", "infer_questions", "read_table"]
