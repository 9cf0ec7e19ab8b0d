"""Review page formats (Trustpilot, schema.org JSON-LD and microdata): one module per format.

``cx_pipeline.sources.registry`` discovers every ``SourceFormat`` subclass defined here, so adding a
review source is adding a file.
"""
