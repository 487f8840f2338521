"""secroom dashboard: ingest, people and rights, signed policy, web UI, reports."""
