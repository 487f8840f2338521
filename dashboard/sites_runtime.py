"""A central dashboard's other sites (``[dashboard] sites``): for each, what the single box runs
for its own site: a broker link, an ingest consumer (acks and resend requests signed with the
dashboard's key), the policy signer and the presence publisher, all on the central broker,
where each site's bridge delivers its subtree (hardware/central/). One consumer per site keeps
each site's nodes in order on their own connection; a site's outage or backlog does not hold
up another's.

The first site's link is a child process (``LinkProcess``: MQTT parsing beside storing, for the
single box's thousands of events a second); the other sites' links are threads (``MqttLink``):
a site sends a few events a second, and a child process costs ~74 MB of memory (measured: six
sites with a process each, 6 x 74 MB), a thread link a few.

With replicas (dashboard.replicas) every replica runs each site's link and consumer, and the
ingest leases cover every site's nodes: a replica stores (and subscribes to) the nodes it
holds of every site. The policy signer, the presence publisher and the card enrolment sender
of each site are the leader's, on that site's link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from controller.mqtt import MqttLink
from dashboard.bus import Bus
from dashboard.replicas.leases import IngestLeases
from dashboard.settings import DashboardSettings


def other_sites(settings: DashboardSettings) -> list[str]:
    return sorted(set(settings.sites) - {settings.site})


@dataclass
class SiteIngest:
    site: str
    link: MqttLink
    consumer: Any


def site_ingest(settings: DashboardSettings, sm: sessionmaker[Session], bus: Bus,
                key: Ed25519PrivateKey, leases: IngestLeases | None = None,
                replica: str | None = None) -> list[SiteIngest]:
    """Each other site's broker link and ingest consumer (none on a single box); with
    ``leases``, on every replica, storing the nodes it holds."""
    from dashboard.ingest.consumer import IngestConsumer

    assert settings.mqtt is not None
    out = []
    for site in other_sites(settings):
        client_id = f"secroom-dashboard-{site}" + (f"-{replica}" if replica else "")
        link = MqttLink(settings.mqtt, client_id=client_id)
        consumer = IngestConsumer(sm, link, site=site, bus=bus,
                                  gap_timeout_s=settings.gap_timeout_s,
                                  verify_mode=settings.ingest_verify, receipt_key=key,
                                  leases=leases)
        consumer.core.state.clock_skew_s = settings.clock_skew_s
        out.append(SiteIngest(site, link, consumer))
    return out


def site_publishers(settings: DashboardSettings, sm: sessionmaker[Session], bus: Bus,
                    key: Ed25519PrivateKey, room_doors: Any, ingest: list[SiteIngest],
                    replica: str | None = None) -> list[Any]:
    """Each other site's policy signer, presence publisher and card enrolment sender (the
    leader's, with replicas)."""
    from controller.envelope import now_utc
    from dashboard.card_enrol import EnrolSender
    from dashboard.hosts.presence import PresencePublisher
    from dashboard.policy_signer import PolicySigner

    parts: list[Any] = []
    for one in ingest:
        def publish(topic: str, blob: bytes, retain: bool, link: MqttLink = one.link) -> None:
            link.publish(topic, blob, retain=retain)

        signer = PolicySigner(sm, key, site=one.site, ttl_s=settings.policy_ttl_s,
                              publish=publish, replica=replica)
        presence = PresencePublisher(sm, key, site=one.site, room_doors=room_doors,
                                     publish=publish, bus=bus)
        enrol = EnrolSender(sm, key, site=one.site, publish=publish, clock=now_utc)
        parts += [signer, presence, enrol]
    return parts
