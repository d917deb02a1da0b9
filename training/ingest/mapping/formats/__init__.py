"""Readers for export formats beyond csv, jsonl and parquet: one module each, registered by name."""
