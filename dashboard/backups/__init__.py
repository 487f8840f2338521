"""Backups page: calendar of nights, last snapshot, verify and drill results, the 26 h check."""
