"""secroom readers package."""
