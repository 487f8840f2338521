"""secroom backup package."""
