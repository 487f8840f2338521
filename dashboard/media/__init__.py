"""The media ledger in the dashboard: audited services over ``usb_guard.ledger``, the USB part
of the signed policy (``build_usb_policy``), overdue anomalies, USB event queries, pages and API.
"""
