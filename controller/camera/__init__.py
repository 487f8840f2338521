"""Cameras: a still of each door, rack and print event, sealed with the record.

``types`` the small protocol every adapter follows; ``http`` (the only importer of httpx
here) the adapters: a plain IP camera's snapshot URL (digest auth), Motion's web control API and
Frigate's HTTP API as NVRs; ``settings`` the ``[cameras]`` config; ``service`` the worker that
takes a still after an event without ever delaying the door, and ``upload`` the signed upload of
the image to the dashboard.
"""
