"""Dagster asset definitions, by group: raw, events, scored."""
