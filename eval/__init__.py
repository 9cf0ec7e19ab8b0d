"""Evaluation harnesses for the text scorers (run as scripts; see docs/evaluation.md)."""
