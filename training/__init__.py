"""Training pipelines: ingest, features, temporal evaluation, tracking."""
