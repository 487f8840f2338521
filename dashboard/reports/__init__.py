"""The monthly handling report (取扱状況報告), its seal and verification, deletion certificates."""
