"""The export engine (no Dagster)."""
