"""Roles, the one explicit list of public routes, and the role matrix (route name -> roles).

The app's security middleware looks every request's route up here: a route that is neither
public nor in the matrix is refused to everyone (secure by default). Tests walk the route
table and call each route as every role and anonymously against this data.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    security_admin = "security_admin"
    backup_operator = "backup_operator"
    auditor = "auditor"


ALL: frozenset[Role] = frozenset(Role)
READERS: frozenset[Role] = frozenset({Role.admin, Role.security_admin, Role.auditor})
EDITORS: frozenset[Role] = frozenset({Role.admin, Role.security_admin})
ADMINS: frozenset[Role] = frozenset({Role.admin})

# Routes anyone may call without a session or token. "camera.upload" is a node's: it carries
# no session but the node's Ed25519 signature, checked by its handler (dashboard.camera.web).
PUBLIC_ROUTES: frozenset[str] = frozenset(
    {"health", "login.form", "login.submit", "language.set", "static", "camera.upload"}
)

# All a session opened with a temporary password (an admin's reset) may do until the user has
# set their own password.
WHILE_MUST_CHANGE: frozenset[str] = frozenset(
    {"account.password", "account.password_change", "logout"}
)

# Camera stills are personal data (people's faces): only those who review incidents see them,
# security admins and auditors; admins (accounts, nodes) and backup operators do not.
STILL_VIEWERS: frozenset[Role] = frozenset({Role.security_admin, Role.auditor})

# Every authenticated route. Auditors read everything and change nothing.
ROLE_MATRIX: dict[str, frozenset[Role]] = {
    "logout": ALL,
    "openapi": ALL,
    "me": ALL,
    # the caller's own account: set a new password (after a reset, the only page open)
    "account.password": ALL,
    "account.password_change": ALL,
    "overview.page": READERS,
    "live.stream": READERS,
    # door log and presence
    "door_log.page": READERS,
    "door_log.csv": READERS,
    "presence.page": READERS,
    # people and cards
    "people.page": READERS,
    "people.detail": READERS,
    "people.create": EDITORS,
    "people.update": EDITORS,
    "people.card_add": EDITORS,
    "people.card_revoke": EDITORS,
    # enrolment by a tap: a window the editor opens at one reader (node + reader name)
    "people.enrol_open": EDITORS,
    "people.enrol_status": EDITORS,
    "people.enrol_close": EDITORS,
    "people.enrol_confirm": EDITORS,
    # a blank card personalised at a reader on a signed command to its node
    "people.personalise": EDITORS,
    "people.personalise_status": EDITORS,
    # groups (rights), weekly windows, public holidays
    "groups.page": READERS,
    "groups.create": EDITORS,
    "groups.update": EDITORS,
    "groups.window_add": EDITORS,
    "groups.window_delete": EDITORS,
    # doors, printers, lockdown
    "doors.page": READERS,
    "doors.create": EDITORS,
    "doors.update": EDITORS,
    "printers.page": READERS,
    "printers.create": EDITORS,
    "printers.delete": EDITORS,
    "lockdown.page": READERS,
    "lockdown.set": EDITORS,
    # nodes
    "nodes.page": ALL,
    "nodes.approve": ADMINS,
    "nodes.reject": ADMINS,
    "nodes.roles": ADMINS,
    "nodes.revoke": ADMINS,
    "nodes.key_approve": ADMINS,
    "nodes.key_revoke": ADMINS,
    # site card master keys (cards that prove themselves): the changeover's progress, and
    # the `secroom card-keys` command's rotate and retire
    "card_keys.page": READERS,
    "card_keys.rotate": EDITORS,
    "card_keys.retire": EDITORS,
    # audit and anomalies
    "audit.page": READERS,
    "anomalies.page": READERS,
    "anomalies.ack": EDITORS,
    # dashboard users and API tokens
    "users.page": ADMINS,
    "users.create": ADMINS,
    "users.token_create": ADMINS,
    "users.token_revoke": ADMINS,
    "users.deactivate": ADMINS,
    "users.reactivate": ADMINS,
    "users.password_reset": ADMINS,
    "users.sessions_end": ADMINS,
    "users.scope": ADMINS,  # limit an account to one site or one client company
    # JSON API
    "api.overview": READERS,
    "api.events": READERS,
    "api.presence": READERS,
    "api.people.list": READERS,
    "api.people.get": READERS,
    "api.people.create": EDITORS,
    "api.people.update": EDITORS,
    "api.cards.create": EDITORS,
    "api.cards.revoke": EDITORS,
    "api.groups.list": READERS,
    "api.doors.list": READERS,
    "api.printers.list": READERS,
    "api.lockdown.get": READERS,
    "api.lockdown.set": EDITORS,
    "api.nodes.list": ALL,
    "api.nodes.approve": ADMINS,
    "api.nodes.roles": ADMINS,
    "api.nodes.revoke": ADMINS,
    "api.nodes.key_approve": ADMINS,
    "api.nodes.key_revoke": ADMINS,
    "api.nodes.keys": ALL,
    # Prometheus metrics: a scrape job's API token (read scope); no person in them, any role
    "api.metrics": ALL,
    "api.audit.list": READERS,
    "api.anomalies.list": READERS,
    "api.anomalies.ack": EDITORS,
    # room PCs: sessions, log-ons, operations, health (host agents)
    "hosts.page": READERS,
    "hosts.detail": READERS,
    # printing: output records (releases, denials, expiries)
    "printing.page": READERS,
    "printing.csv": READERS,
    "printing.person": READERS,
    "api.printing.events": READERS,
    "api.printing.summary": READERS,
    # backups ("snapshots": a route name must not contain "ack", see the auditor test)
    "snapshots.page": ALL,
    "api.snapshots.calendar": ALL,
    "api.snapshots.status": ALL,
    # USB media ledger (numbered media, lifecycle, certificates) and USB events
    "media.page": READERS,
    "media.csv": READERS,
    "media.usbguard_rules": READERS,
    "media.detail": READERS,
    "media.certificate_pdf": READERS,
    "media.certificate_csv": READERS,
    "media.person": READERS,
    "usb_events.page": READERS,
    "media.register": EDITORS,
    "media.check_out": EDITORS,
    "media.return": EDITORS,
    "media.store": EDITORS,
    "media.wipe": EDITORS,
    "media.lost": EDITORS,
    "media.found": EDITORS,
    "media.dispose": EDITORS,
    "media.reconfigure": EDITORS,
    "media.wipe_interval": EDITORS,
    "media.type_wipe_interval": EDITORS,
    "api.media.list": READERS,
    "api.media.get": READERS,
    "api.usb_events.list": READERS,
    "api.media.register": EDITORS,
    "api.media.check_out": EDITORS,
    "api.media.return": EDITORS,
    "api.media.store": EDITORS,
    "api.media.wipe": EDITORS,
    "api.media.lost": EDITORS,
    "api.media.found": EDITORS,
    "api.media.dispose": EDITORS,
    # number-access logs, correlation findings, person timeline, monthly reports
    "numlog.page": READERS,
    "numlog.upload": EDITORS,
    "numlog.upload_js": READERS,
    "api.numlog.rows": EDITORS,
    "findings.page": READERS,
    "findings.resolve": EDITORS,
    "timeline.page": READERS,
    "api.timeline": READERS,
    "api.findings.list": READERS,
    "api.correlation.rerun": EDITORS,
    # the review queue (anomalies and correlation findings are one list of items to review)
    "review.page": READERS,
    "review.item": READERS,
    "review.acknowledge": EDITORS,
    "review.resolve": EDITORS,
    "review.assign": EDITORS,
    "review.escalate": EDITORS,
    "review.bulk_acknowledge": EDITORS,
    "api.review.list": READERS,
    "api.review.get": READERS,
    "api.review.act": EDITORS,
    # backup operators confirm backup alarms on the backups page
    "snapshots.alarm_confirm": frozenset({Role.admin, Role.security_admin, Role.backup_operator}),
    # display names of readers, hosts, nodes and the site
    "names.page": READERS,
    "names.set": EDITORS,
    # lockdown: who is inside now (printable, for an evacuation)
    "lockdown.inside": READERS,
    "reports.page": READERS,
    "reports.monthly": READERS,  # auditors may issue (read) the report; issuing is audited
    "reports.download": READERS,
    "reports.verify": READERS,  # checking a file changes nothing
    "reports.supersede": EDITORS,
    "reports.clients": READERS,
    "reports.client_save": EDITORS,
    "reports.map_office": EDITORS,
    "reports.office": READERS,
    "reports.office_save": EDITORS,
    "reports.certificates": READERS,
    "reports.certificate_issue": EDITORS,
    "reports.certificate_file": READERS,
    "reports.register": READERS,
    "reports.register_save": EDITORS,
    "reports.register_pdf": READERS,
    "reports.reviews": READERS,
    "reports.classify": EDITORS,
    "camera.image": STILL_VIEWERS,
    "camera.cell": READERS,  # a row's camera cell: the checks; the image for STILL_VIEWERS
}

# Token scopes: "read" allows safe methods, "write" allows changes (role still applies).
SCOPES: frozenset[str] = frozenset({"read", "write"})


def allowed(route_name: str, role: str) -> bool:
    return role in ROLE_MATRIX.get(route_name, frozenset())
