"""Data layer: records and manifests, audio I/O, dataset ingestion, the synthetic corpus."""
