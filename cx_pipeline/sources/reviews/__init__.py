"""Review formats, one module per format: Trustpilot pages, schema.org JSON-LD and microdata, the App Store
customer-reviews feed, Google Play (Console export, Publisher API, scraper JSON) and Google Places.

``cx_pipeline.sources.registry`` discovers every ``SourceFormat`` subclass defined here, so adding a
review source is adding a file. Modules starting with ``_`` hold shared helpers only.
"""
