"""Which versions of nodes and dashboard work together, and how a node says what it runs.

*Adjacent* versions interoperate: the dashboard of a release reads the event envelope of its
own release and of the one before (``READ_ENVELOPES``: while nodes move from v to v+1 both
arrive), and accepts nodes whose software is at most one release older (``MIN_NODE_SOFTWARE``).
Upgrade the dashboard first, then the nodes; a node that is older than that, or newer than the
dashboard (an envelope it does not know), is refused with a ``node_version_unsupported`` review
item. Its events are not acknowledged, so they stay in its journal and arrive once it (or the
dashboard) is upgraded: nothing is lost and nothing is dropped silently.

Each node announces ``{"software", "envelope", "policy"}`` in its retained state message
(``ANNOUNCE_KEY``); a node of the release before announcements says nothing and is taken as
that release (``UNANNOUNCED``). The policy is signed in ``POLICY_FORMAT``; a node lists the
formats it can apply, and a node that cannot apply the dashboard's format is refused the same
way (it keeps running on its last good policy meanwhile).
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

from controller.envelope import READ_ENVELOPES, SCHEMA_VERSION

ANNOUNCE_KEY = "version"
POLICY_FORMAT = 1  # the signed policy's shape (controller.policy.Policy)
POLICY_FORMATS = (1,)  # the formats this node can apply
MIN_NODE_SOFTWARE = (0, 1)  # the oldest node release this dashboard supports
UNANNOUNCED = "0.1"  # what a node that announces nothing runs: the release before announcing


def software_version() -> str:
    try:
        return importlib.metadata.version("secroom")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"


def announcement() -> dict[str, Any]:
    """What a node puts under ``ANNOUNCE_KEY`` in its state message."""
    return {"software": software_version(), "envelope": SCHEMA_VERSION,
            "policy": list(POLICY_FORMATS)}


def release(text: str) -> tuple[int, ...] | None:
    """(major, minor) of a version string like 0.2.1 or 1.0rc1; None if it is not one."""
    m = re.match(r"^(\d{1,6})\.(\d{1,6})", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def envelope_problem(v: int) -> str | None:
    """Why this dashboard cannot read envelope ``v`` (None: it can)."""
    if v in READ_ENVELOPES:
        return None
    side = "older" if v < READ_ENVELOPES.start else "newer"
    return (f"envelope v{v} is {side} than this dashboard reads "
            f"(v{READ_ENVELOPES.start}..v{READ_ENVELOPES.stop - 1})")


def node_problem(announced: Any) -> str | None:
    """Why a node that announced ``announced`` (its state's ``version``, or None) is not
    supported, or None. Pure: the ingest calls it with what the node said."""
    if announced is None:
        announced = {"software": UNANNOUNCED}
    if not isinstance(announced, dict):
        return "its version announcement is malformed"
    software = announced.get("software")
    rel = release(software) if isinstance(software, str) else None
    if rel is None:
        return "it announces no readable software version"
    if rel < MIN_NODE_SOFTWARE:
        oldest = ".".join(map(str, MIN_NODE_SOFTWARE))
        return f"its software {software[:32]} is older than {oldest}, the oldest supported"
    envelope = announced.get("envelope", SCHEMA_VERSION)
    if isinstance(envelope, int) and not isinstance(envelope, bool):
        problem = envelope_problem(envelope)
        if problem is not None:
            return problem
    formats = announced.get("policy", [POLICY_FORMAT])
    if isinstance(formats, list) and POLICY_FORMAT not in formats:
        return f"it cannot apply policy format {POLICY_FORMAT}"
    return None
