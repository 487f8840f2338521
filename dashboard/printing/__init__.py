"""Printing page: output records (print.release), denials and expiries from stored events."""
