"""Disaster recovery: the dashboard's nightly database backup into the room's repository
(job.py, bundle.py, dump.py) and ``secroom recover`` (recover.py)."""
