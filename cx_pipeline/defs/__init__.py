"""Dagster wiring: assets, checks, resources, IO, jobs, schedules and sensors over the pure code."""
