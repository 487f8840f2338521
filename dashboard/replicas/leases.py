"""Node-partitioned ingest leases in PostgreSQL (see dashboard.replicas).

Every ``renew_s`` a replica, in its own transactions: records its heartbeat (``replicas``);
reads the live replicas (seen within ``lease_s``) and the sites' enrolled nodes; gives each
node to one live replica by rendezvous hashing (every replica computes the same answer from
the same rows, and a replica joining or leaving moves only its share); renews the leases it
holds and should keep, lets go of those another live replica should have, and claims the ones
it should have whose lease has lapsed (or any lease lapsed for longer than ``lease_s``: no
node is left without a holder while two replicas' views differ). Times are the database's.

The nodes are every enrolled node of the sites the replicas ingest (``sites``: the home site
and a central dashboard's other sites): each site's consumer stores its held nodes. Listeners
(``add_listener``) hear of every change of the held set: each consumer subscribes at the broker
to the topics of its held nodes only, and asks a node it gained for what follows its ack.

A node that is not enrolled has no lease: its state messages (refused, raised as unknown_node)
are handled by the replica that rendezvous hashing picks, so the anomaly is raised once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from controller.envelope import TOPIC_ROOT

_PREFIX = TOPIC_ROOT + "/"

_HEARTBEAT = text(
    "INSERT INTO replicas (name, started_at, seen_at) "
    "VALUES (:me, clock_timestamp(), clock_timestamp()) "
    "ON CONFLICT (name) DO UPDATE SET seen_at = clock_timestamp()")
_LIVE = text("SELECT name FROM replicas WHERE seen_at > clock_timestamp() - make_interval("
             "secs => :lease)")
_NODES = text("SELECT name, site FROM nodes WHERE site IN :sites").bindparams(
    bindparam("sites", expanding=True))
_MINE = text("SELECT node FROM ingest_leases WHERE holder = :me")
_RENEW = text(
    "UPDATE ingest_leases SET expires_at = clock_timestamp() + make_interval(secs => :lease) "
    "WHERE holder = :me AND node IN :nodes").bindparams(bindparam("nodes", expanding=True))
_RELEASE = text(
    "UPDATE ingest_leases SET expires_at = clock_timestamp() "
    "WHERE holder = :me AND node IN :nodes").bindparams(bindparam("nodes", expanding=True))
_CLAIM = text(
    "INSERT INTO ingest_leases (node, holder, expires_at, epoch) "
    "VALUES (:node, :me, clock_timestamp() + make_interval(secs => :lease), 1) "
    "ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, "
    "expires_at = excluded.expires_at, epoch = ingest_leases.epoch + 1 "
    "WHERE ingest_leases.expires_at < clock_timestamp() - make_interval(secs => :grace) "
    "RETURNING node")
_LAPSED = text(
    "SELECT node, expires_at < clock_timestamp(), "
    "expires_at < clock_timestamp() - make_interval(secs => :lease) FROM ingest_leases")
_HELD = text("SELECT node FROM ingest_leases WHERE holder = :me "
             "AND expires_at > clock_timestamp()")
_FENCE = text(
    "SELECT node FROM ingest_leases WHERE holder = :me AND node IN :nodes "
    "AND expires_at > clock_timestamp() FOR SHARE").bindparams(
        bindparam("nodes", expanding=True))
_LEASED = text("SELECT node FROM ingest_leases WHERE node IN :nodes").bindparams(
    bindparam("nodes", expanding=True))
_LEAVE = text("UPDATE ingest_leases SET expires_at = clock_timestamp() - make_interval("
              "secs => :lease) WHERE holder = :me")
_GONE = text("DELETE FROM replicas WHERE name = :me")


def owner(node: str, replicas: Iterable[str]) -> str | None:
    """The replica that should store ``node``'s events (highest random weight)."""
    best: tuple[bytes, str] | None = None
    for name in replicas:
        weight = hashlib.blake2b(f"{name}\0{node}".encode(), digest_size=8).digest()
        if best is None or (weight, name) > best:
            best = (weight, name)
    return None if best is None else best[1]


def node_of(topic: str) -> str | None:
    """The node named by an ingest topic (``secroom/v1/{site}/{node}/...``)."""
    if not topic.startswith(_PREFIX):
        return None
    parts = topic.split("/", 4)
    return parts[3] if len(parts) > 4 else None


@dataclass(frozen=True)
class LeaseChange:
    """What a listener hears after a round that changed anything: the nodes held now (of every
    site), those gained in that round (to be asked for what follows their acks), the enrolled
    nodes other replicas hold, and each enrolled node's site."""

    held: frozenset[str]
    gained: frozenset[str]
    others: frozenset[str]
    sites: dict[str, str]

    def held_at(self, site: str) -> set[str]:
        return {n for n in self.held if self.sites.get(n) == site}


class IngestLeases:
    def __init__(self, sessionmaker: sessionmaker[Session], *, replica: str,
                 sites: Collection[str], lease_s: float = 4.0, renew_s: float = 1.0) -> None:
        if renew_s * 2 > lease_s:
            raise ValueError("renew_s must be at most half of lease_s (a lease outlives a "
                             "late heartbeat)")
        if not sites:
            raise ValueError("leases need at least one site")
        self.sessionmaker = sessionmaker
        self.replica = replica
        self.sites = sorted(set(sites))
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.held: frozenset[str] = frozenset()
        self.enrolled: frozenset[str] = frozenset()
        self.site_of: dict[str, str] = {}
        self.live: tuple[str, ...] = ()
        self._valid_until = 0.0  # monotonic: past it, the held set is not trusted
        self._listeners: list[Callable[[LeaseChange], None]] = []
        self._told: tuple[frozenset[str], frozenset[str]] | None = None  # (held, others)
        self.renewals = 0
        self.errors = 0
        self.last_error: str | None = None
        self.gained_total = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_listener(self, listener: Callable[[LeaseChange], None]) -> None:
        """Call ``listener`` (on the lease thread) after each round that gained a node or
        changed the held or the others' set; at once if a round already ran."""
        self._listeners.append(listener)
        if self._told is not None:
            held, others = self._told
            listener(LeaseChange(held, frozenset(), others, dict(self.site_of)))

    # -- what the consumer asks --------------------------------------------------------------

    def holds(self, node: str) -> bool:
        """Whether this replica stores ``node``'s messages now (by its last renewal)."""
        if time.monotonic() > self._valid_until:
            return False
        if node in self.held:
            return True
        return node not in self.enrolled and owner(node, self.live) == self.replica

    def fence(self, session: Session, nodes: Collection[str]) -> set[str]:
        """In the storing transaction, before anything is stored: the nodes of ``nodes`` this
        replica may store (its lease is valid, and held FOR SHARE until the commit, so no
        takeover happens meanwhile; a node with no lease row: by rendezvous hashing)."""
        if not nodes:
            return set()
        names = sorted(nodes)
        ok = set(session.scalars(_FENCE, {"me": self.replica, "nodes": names}))
        leased = set(session.scalars(_LEASED, {"nodes": names}))
        live = self.live
        ok.update(n for n in names if n not in leased and owner(n, live) == self.replica)
        return ok

    # -- the heartbeat -----------------------------------------------------------------------

    def renew(self) -> tuple[set[str], set[str]]:
        """One round (see the module's docstring); returns the nodes gained and lost."""
        started = time.monotonic()
        me, lease = self.replica, self.lease_s
        with self.sessionmaker() as session, session.begin():
            session.execute(_HEARTBEAT, {"me": me})
            live = tuple(sorted(session.scalars(_LIVE, {"lease": lease})))
            site_of = {n: site for n, site in session.execute(_NODES, {"sites": self.sites})}
            nodes = sorted(site_of)
            mine = set(session.scalars(_MINE, {"me": me}))
            want = {n for n in nodes if owner(n, live) == me}
            keep = sorted(mine & want)
            drop = sorted(mine - want)
            if keep:
                session.execute(_RENEW, {"me": me, "lease": lease, "nodes": keep})
            if drop:
                session.execute(_RELEASE, {"me": me, "nodes": drop})
        # claims in their own transaction: a claim waits for a store in flight on that node.
        # Only the lapsed ones are tried: an upsert locks the row it conflicts with, and would
        # hold up the holder's stores and renewals for nothing
        with self.sessionmaker() as session, session.begin():
            lapsed = {n: (gone, long_gone) for n, gone, long_gone
                      in session.execute(_LAPSED, {"lease": lease})}
            for node in sorted(set(nodes) - mine):
                gone, long_gone = lapsed.get(node, (True, True))
                if not (long_gone or (gone and node in want)):
                    continue
                grace = 0.0 if node in want else lease
                session.execute(_CLAIM, {"node": node, "me": me, "lease": lease,
                                         "grace": grace})
            held = frozenset(session.scalars(_HELD, {"me": me}))
        old = self.held if time.monotonic() <= self._valid_until else frozenset()
        self.live, self.enrolled, self.held = live, frozenset(nodes), held
        self.site_of = site_of
        self._valid_until = started + lease
        self.renewals += 1
        gained, lost = set(held - old), set(old - held)
        self.gained_total += len(gained)
        others = frozenset(nodes) - held
        if gained or self._told != (held, others):
            self._told = (held, others)
            change = LeaseChange(held, frozenset(gained), others, site_of)
            for listener in self._listeners:
                listener(change)
        return gained, lost

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._round()
        self._thread = threading.Thread(target=self._run, name="ingest-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._valid_until = 0.0
        self.held = frozenset()
        self._told = None
        try:  # hand the nodes over at once rather than after lease_s
            with self.sessionmaker() as session, session.begin():
                session.execute(_LEAVE, {"me": self.replica, "lease": self.lease_s})
                session.execute(_GONE, {"me": self.replica})
        except (OperationalError, DBAPIError) as exc:  # they lapse by themselves
            self.last_error = f"leases not released: {exc.orig or exc}"

    def _run(self) -> None:
        while not self._stop.wait(self.renew_s):
            self._round()

    def _round(self) -> None:
        try:
            self.renew()
        except (OperationalError, DBAPIError) as exc:  # held until _valid_until, then none
            self.errors += 1
            self.last_error = f"lease renewal failed: {exc.orig or exc}"

    def stats(self) -> dict[str, Any]:
        return {"replica": self.replica, "held": len(self.held), "live": list(self.live),
                "renewals": self.renewals, "errors": self.errors,
                "last_error": self.last_error}
