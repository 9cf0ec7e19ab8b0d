"""Partitions: reviews are fetched in daily batches; each survey file is its own partition."""

from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition

#: one ingestion batch per UTC day; end_offset=1 makes today's partition runnable today
DAILY = DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)

#: one partition per survey file, keyed by the first 16 hex of its SHA-256: re-dropping the same
#: file is a no-op, a changed file is a new partition
SURVEY_FILES = DynamicPartitionsDefinition(name="survey_file")
