"""Pure pipeline steps (no Dagster): what each asset does, callable from the CLI and tests."""
