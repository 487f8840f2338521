"""Number-system access logs: parse (CSV/JSON), redact individual numbers, map, store, watch."""
