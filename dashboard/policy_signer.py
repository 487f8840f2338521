"""Build the access policy from the database, sign it and publish each node its slice.

The whole site's policy is built, versioned and stored signed (``policy_versions``); what goes
out is one slice per approved node that declared its scope (controller.policy_slice), signed
with the same key and retained on ``secroom/v1/{site}/{node}/policy``, which only that node may
read (dashboard.broker_config). A slice lists card UIDs only as HMACs under the node's card key.
Every policy carries ``expires_at`` (``ttl_s`` after issue): the signer issues a fresh version
once half of that has passed, and a new version when a node's declared scope changes.

Versions increase by one per published content change and are persisted (``policy_versions``),
so a restart or a second replica never reuses one; they also rise above any version a node
reports it applied (a dashboard recovered from an older backup). Services mark the policy dirty
in the same transaction as the change (``services.mark_policy_dirty``); the signer's thread polls
every ``debounce_s`` and publishes once the changes have been quiet for ``debounce_s``. Content
identical to the last published policy is not re-issued. A publish that fails (broker down) is
retried on the next poll: the signed blob is already stored, so the nodes get that version.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from controller.envelope import canonical_json, legacy_policy_topic, now_utc, policy_topic
from controller.policy import (
    DoorRule,
    Group,
    NodeGrant,
    Person,
    Policy,
    TimeWindow,
    sign_policy,
)
from controller.policy_slice import NodeScope, card_key_for, slice_policy
from dashboard import cardkeys
from dashboard.media.policy import build_usb_policy
from dashboard.models.nodes import Node
from dashboard.models.people import Door, Printer, SiteSettings
from dashboard.models.people import Group as GroupRow
from dashboard.models.people import Person as PersonRow
from dashboard.models.policy import PolicyVersion
from dashboard.services.site import get_site

Publish = Callable[[str, bytes, bool], Any]
MAX_AHEAD = 100_000  # policy versions a node may claim beyond the newest this database issued
POLICY_TTL_S = 7 * 86400  # a node refuses a policy this long after it was issued


class PolicySignerError(Exception):
    """The database content cannot be turned into a valid policy (the message says why)."""


def content_digest(policy: Policy) -> str:
    body = policy.model_dump(mode="json", exclude={"version", "issued_at", "expires_at"})
    return hashlib.sha256(canonical_json(body)).hexdigest()


Scopes = dict[str, NodeScope]


def node_scopes(session: Session, site: str) -> Scopes:
    """The approved nodes of ``site`` that declared what they decide on (their state message's
    ``policy.scope``) and that scope: each gets its slice."""
    scopes: Scopes = {}
    for node in session.scalars(select(Node).where(Node.site == site).order_by(Node.name)):
        if not node.approved or not isinstance(node.health, dict):
            continue
        reported = node.health.get("policy")
        scope = NodeScope.declared(reported.get("scope") if isinstance(reported, dict) else None)
        if scope is not None and not scope.empty:
            scopes[node.name] = scope
    return scopes


def scopes_digest(scopes: Scopes) -> str:
    body = {name: scope.as_dict() for name, scope in scopes.items()}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def issue_digest(policy: Policy, scopes: Scopes) -> str:
    """What ``policy_versions.sha256`` holds: the content and the nodes' scopes together (a
    scope change is a new version: a node refuses other content under the same version)."""
    return hashlib.sha256(
        f"{content_digest(policy)}:{scopes_digest(scopes)}".encode()).hexdigest()


class PolicySigner:
    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        key: Ed25519PrivateKey,
        *,
        site: str,
        publish: Publish | None,
        debounce_s: float = 1.0,
        clock: Callable[[], datetime] = now_utc,
        ttl_s: float = POLICY_TTL_S,
        replica: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.replica = replica  # recorded as each version's signer (dashboard.replicas)
        self.key = key
        self.site = site
        self.publish = publish
        self.debounce_s = debounce_s
        self.clock = clock
        self.ttl = timedelta(seconds=ttl_s)
        self.last_error: str | None = None
        self.published: list[int] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._published_cb: list[Callable[[int], None]] = []
        self._scopes_sent: str | None = None  # scopes_digest of the last publish
        self._legacy_cleared = False  # the whole-site retained policy of old releases

    # -- building ----------------------------------------------------------------------------

    def build(
        self, session: Session, *, version: int | None = None, issued_at: datetime | None = None
    ) -> Policy:
        """The policy as the database describes it now (``version`` defaults to the next one)."""
        settings = get_site(session, self.site, now=self.clock())
        people = session.scalars(
            select(PersonRow)
            .options(selectinload(PersonRow.cards), selectinload(PersonRow.groups))
            .order_by(PersonRow.id)
        ).all()
        groups = session.scalars(
            select(GroupRow)
            .options(
                selectinload(GroupRow.doors),
                selectinload(GroupRow.printers),
                selectinload(GroupRow.windows),
            )
            .order_by(GroupRow.id)
        ).all()
        doors = session.scalars(select(Door).order_by(Door.id)).all()
        printers = session.scalars(select(Printer.id).order_by(Printer.id)).all()
        issued_at = issued_at or self.clock()
        try:
            return Policy(
                version=version if version is not None else self._next_version(session),
                issued_at=issued_at,
                expires_at=issued_at + self.ttl,
                site=self.site,
                timezone=settings.timezone,
                people=[
                    Person(
                        id=p.id,
                        name=p.name,
                        active=p.active,
                        valid_from=p.valid_from,
                        valid_until=p.valid_until,
                        cards=[c.uid for c in p.cards if c.active],
                        verified_cards=[c.uid for c in p.cards
                                        if c.active and c.credential != "uid"],
                        groups=sorted(g.id for g in p.groups),
                        operator_ids=list(p.operator_ids or []),
                        cups_users=list(p.cups_users or []),
                        host_accounts=list(p.host_accounts or []),
                    )
                    for p in people
                ],
                groups=[
                    Group(
                        id=g.id,
                        name=g.name,
                        doors=[d.id for d in g.doors],
                        printers=[p.id for p in g.printers],
                        on_holidays=g.on_holidays,
                        hosts=list(g.hosts or []),
                        host_admin=bool(g.host_admin),
                        windows=[
                            TimeWindow(days=list(w.days), start=w.start, end=w.end)
                            for w in g.windows
                        ],
                    )
                    for g in groups
                ],
                doors=[
                    DoorRule(
                        id=d.id,
                        name=d.name,
                        two_person=d.two_person,
                        two_person_window_s=d.two_person_window_s,
                        anti_passback=d.anti_passback,
                        require_verified=bool(d.require_verified),
                    )
                    for d in doors
                ],
                printers=list(printers),
                lockdown=settings.lockdown,
                lockdown_doors=list(settings.lockdown_doors or []),
                usb=build_usb_policy(session),
                card_key_ids=cardkeys.key_ids(session),
                nodes=[
                    NodeGrant(name=n.name, roles=sorted(n.role_set), public_key=n.public_key,
                              key_since_seq=n.key_since_seq)
                    for n in session.scalars(
                        select(Node).where(Node.key_status == "approved").order_by(Node.name))
                    if n.role_set and n.public_key
                ],
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise PolicySignerError(
                f"the rights in the database do not form a valid policy: {exc}"
            ) from exc

    def _next_version(self, session: Session) -> int:
        """Above every version issued and every version a node reports it applied: after a
        recovery from an older backup the nodes run versions this database never saw, and
        refuse anything not newer (a node's claim lifts the floor by at most MAX_AHEAD)."""
        issued = session.scalar(select(func.max(PolicyVersion.version))) or 0
        applied = session.scalar(
            select(func.max(Node.policy_version)).where(Node.key_status == "approved")) or 0
        return max(issued, min(applied, issued + MAX_AHEAD)) + 1

    # -- publishing --------------------------------------------------------------------------

    def publish_now(self, *, force: bool = False) -> int:
        """Sign and publish the current policy; return the version the nodes now get.

        Without ``force``, content equal to the latest version re-publishes that version.
        """
        with self._lock:
            for _ in range(5):
                try:
                    version, blob, scopes = self._issue(force)
                    break
                except IntegrityError:  # another replica took this version number; retry
                    continue
            else:
                raise PolicySignerError("could not allocate a policy version (contention)")
            self._send(version, blob, scopes)
            return version

    def _issue(self, force: bool) -> tuple[int, bytes, Scopes]:
        now = self.clock()
        with self.sessionmaker() as session:
            settings = get_site(session, self.site, now=now)
            dirty_at = settings.policy_dirty_at
            latest = session.scalars(
                select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)
            ).first()
            policy = self.build(session, issued_at=now)
            scopes = node_scopes(session, self.site)
            digest = issue_digest(policy, scopes)
            if latest is not None and latest.sha256 == digest and not force and self._fresh(
                    latest.issued_at, now) and not self._nodes_ahead(session, latest.version):
                version, blob = latest.version, latest.blob
            else:
                blob = sign_policy(policy, self.key)
                version = policy.version
                session.add(
                    PolicyVersion(
                        version=version, site=self.site, issued_at=now, sha256=digest, blob=blob,
                        signed_by=self.replica,
                    )
                )
            stmt = update(SiteSettings).where(SiteSettings.site == self.site)
            stmt = stmt.where(
                SiteSettings.policy_dirty_at.is_(None)
                if dirty_at is None
                else SiteSettings.policy_dirty_at == dirty_at
            )
            session.execute(stmt.values(policy_dirty=False))
            session.commit()
            return version, blob, scopes

    @staticmethod
    def _nodes_ahead(session: Session, version: int) -> bool:
        """A node applied a newer version than ``version`` (a dashboard restored from an older
        backup): re-sending ``version`` would only be refused; a new one is due."""
        applied = session.scalar(
            select(func.max(Node.policy_version)).where(Node.key_status == "approved")) or 0
        return applied > version

    def _fresh(self, issued_at: datetime, now: datetime) -> bool:
        """Less than half its lifetime old: re-sending it leaves the nodes time to get the
        next one before it expires."""
        return now - issued_at < self.ttl / 2

    def slices(self, blob: bytes, scopes: Scopes) -> dict[str, bytes]:
        """Each node's signed slice of the stored signed site policy ``blob``."""
        policy = Policy.model_validate(json.loads(blob)["policy"])
        keys = []
        if policy.card_key_ids:  # the card master keys this version names, sealed per node
            with self.sessionmaker() as session:
                keys = cardkeys.site_keys(session, self.key, list(policy.card_key_ids))
        return {
            node: sign_policy(
                slice_policy(policy, node, scope, card_key_for(self.key, self.site, node),
                             site_keys=keys),
                self.key)
            for node, scope in scopes.items()
        }

    def _send(self, version: int, blob: bytes, scopes: Scopes) -> None:
        if self.publish is None:
            self._scopes_sent = scopes_digest(scopes)
            return
        try:
            if not self._legacy_cleared:  # an empty retained message deletes the old one
                self.publish(legacy_policy_topic(self.site), b"", True)
                self._legacy_cleared = True
            for node, signed in self.slices(blob, scopes).items():
                self.publish(policy_topic(self.site, node), signed, True)
        except Exception as exc:  # the broker link's error: stored, retried on the next poll
            self.last_error = f"policy {version} not published yet: {exc}"
            return
        self._scopes_sent = scopes_digest(scopes)
        self.last_error = None
        with self.sessionmaker() as session:  # older versions never sent are superseded
            session.execute(
                update(PolicyVersion)
                .where(PolicyVersion.version <= version, PolicyVersion.published_at.is_(None))
                .values(published_at=self.clock())
            )
            session.commit()
        self.published.append(version)
        for cb in list(self._published_cb):
            cb(version)

    def on_published(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(version)`` after each successful publish (e.g. to feed the bus)."""
        self._published_cb.append(callback)

    def current(self) -> tuple[int, bytes] | None:
        with self.sessionmaker() as session:
            row = session.scalars(
                select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)
            ).first()
            return (row.version, row.blob) if row else None

    def republish(self) -> int | None:
        """Send the latest signed version again (e.g. after reconnecting to a fresh broker); a
        new version if the nodes' scopes changed since it was issued."""
        cur = self.current()
        if cur is None:
            return None
        with self.sessionmaker() as session:
            scopes = node_scopes(session, self.site)
            row = session.get(PolicyVersion, cur[0])
            policy = Policy.model_validate(json.loads(cur[1])["policy"])
            same = row is not None and row.sha256 == issue_digest(policy, scopes)
            same = same and not self._nodes_ahead(session, cur[0])
        if not same:
            return self.publish_now()
        self._send(cur[0], cur[1], scopes)
        return cur[0]

    def poll(self) -> int | None:
        """Publish if the policy is dirty and quiet long enough, a node's scope changed, the
        latest version is half-way to its expiry, or an earlier send failed."""
        now = self.clock()
        with self.sessionmaker() as session:
            settings = session.get(SiteSettings, self.site)
            unsent = session.scalar(
                select(func.count())
                .select_from(PolicyVersion)
                .where(PolicyVersion.published_at.is_(None))
            )
            issued = session.scalar(select(func.max(PolicyVersion.issued_at)))
            scopes = node_scopes(session, self.site)
            if self._scopes_sent is None:
                self._scopes_sent = self._scopes_of_latest(session, scopes)
            rescope = scopes_digest(scopes) != self._scopes_sent
            if issued is not None and not self._fresh(_aware(issued), now):
                return self.publish_now(force=True)
            if settings is None or rescope:
                due = True
            elif settings.policy_dirty:
                since = settings.policy_dirty_at or now
                due = (now - since).total_seconds() >= self.debounce_s or bool(unsent)
            else:
                due = False
        if due:
            return self.publish_now()
        if unsent:
            return self.republish()
        return None

    def _scopes_of_latest(self, session: Session, scopes: Scopes) -> str | None:
        """At start: ``scopes``' digest if the latest stored version was issued for them (so
        the nodes have it: nothing to re-send after a restart or a recovery), else None."""
        row = session.scalars(
            select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)).first()
        if row is None or row.published_at is None:
            return None
        policy = Policy.model_validate(json.loads(row.blob)["policy"])
        return scopes_digest(scopes) if row.sha256 == issue_digest(policy, scopes) else None

    def notify(self) -> None:
        """Wake the thread now (a service just changed something)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="policy-signer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.debounce_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.poll()
            except Exception as exc:  # a DB hiccup or an invalid policy: shown, retried
                self.last_error = f"{type(exc).__name__}: {exc}"


def _aware(when: datetime) -> datetime:
    from datetime import UTC

    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
