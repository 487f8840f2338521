"""Correlation of number accesses with presence, prints, USB, doors, backups and node logs."""
