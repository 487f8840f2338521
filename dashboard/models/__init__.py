"""Dashboard models. Import every model module here so Base.metadata is complete."""

from dashboard.models import (
    anomalies,
    audit,
    auth,
    camera,
    card_enrol,  # noqa: F401 - registers its table
    cardkeys,  # noqa: F401 - registers its table
    correlation,
    events,
    media,
    names,
    nodes,
    numlog,
    people,
    policy,
    recovery,
    replicas,
    reports,
)
from dashboard.models.anomalies import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.events import DoorAccess, Presence, StoredEvent
from dashboard.models.nodes import Node, NodeKey
from dashboard.models.people import (
    Card,
    Door,
    Group,
    Person,
    Printer,
    SiteSettings,
    TimeWindow,
    group_doors,
    group_members,
    group_printers,
)
from dashboard.models.policy import PolicyVersion

__all__ = [
    "Anomaly",
    "AuditRecord",
    "Card",
    "Door",
    "DoorAccess",
    "Group",
    "Node",
    "NodeKey",
    "Person",
    "PolicyVersion",
    "Presence",
    "Printer",
    "SiteSettings",
    "StoredEvent",
    "TimeWindow",
    "anomalies",
    "audit",
    "auth",
    "camera",
    "correlation",
    "events",
    "group_doors",
    "group_members",
    "group_printers",
    "media",
    "names",
    "nodes",
    "numlog",
    "people",
    "policy",
    "recovery",
    "replicas",
    "reports",
]
