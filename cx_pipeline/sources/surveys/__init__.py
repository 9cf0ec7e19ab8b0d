"""Survey exports (no Dagster): one module per vendor layout plus the machinery they share.

Vendor modules (qualtrics, surveymonkey, typeform, google_forms, plain_table) only describe a layout;
``tabular`` (bytes → table), ``question_registry`` (header → question), ``dates`` and ``responses``
(table → measures) are shared so every export is read, dated, mapped and reshaped the same way.
``cx_pipeline.sources.registry`` discovers the vendor modules' ``SourceFormat`` classes.
"""
