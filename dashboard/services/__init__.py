"""Admin services: validated, audited changes to people, rights, site settings and nodes."""

from dashboard.services.base import Conflict, NotFound, ServiceError, mark_policy_dirty
from dashboard.services.cards import enrol_card, revoke_card
from dashboard.services.doors import (
    create_door,
    create_printer,
    delete_door,
    delete_printer,
    update_door,
)
from dashboard.services.groups import create_group, delete_group, set_membership, update_group
from dashboard.services.node_keys import approve_new_key, revoke_key
from dashboard.services.nodes import (
    approve_node,
    reject_pending_node,
    revoke_node,
    set_node_roles,
)
from dashboard.services.people import (
    create_person,
    deactivate_person,
    delete_person,
    update_person,
)
from dashboard.services.site import get_site, set_lockdown, set_timezone

__all__ = [
    "Conflict",
    "NotFound",
    "ServiceError",
    "approve_new_key",
    "approve_node",
    "create_door",
    "create_group",
    "create_person",
    "create_printer",
    "deactivate_person",
    "delete_door",
    "delete_group",
    "delete_person",
    "delete_printer",
    "enrol_card",
    "get_site",
    "mark_policy_dirty",
    "reject_pending_node",
    "revoke_card",
    "revoke_key",
    "set_node_roles",
    "revoke_node",
    "set_lockdown",
    "set_membership",
    "set_timezone",
    "update_door",
    "update_group",
    "update_person",
]
