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
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from dashboard.bus import Bus
from dashboard.settings import DashboardSettings


def other_sites(settings: DashboardSettings) -> list[str]:
    return sorted(set(settings.sites) - {settings.site})


def site_parts(settings: DashboardSettings, sm: sessionmaker[Session], bus: Bus,
               key: Ed25519PrivateKey, room_doors: Any) -> list[Any]:
    """The runtime parts of every other site (none on a single box)."""
    from controller.mqtt import MqttLink
    from dashboard.hosts.presence import PresencePublisher
    from dashboard.ingest.consumer import IngestConsumer
    from dashboard.policy_signer import PolicySigner

    assert settings.mqtt is not None
    parts: list[Any] = []
    for site in other_sites(settings):
        link = MqttLink(settings.mqtt, client_id=f"secroom-dashboard-{site}")

        def publish(topic: str, blob: bytes, retain: bool, link: MqttLink = link) -> None:
            link.publish(topic, blob, retain=retain)

        consumer = IngestConsumer(sm, link, site=site, bus=bus,
                                  gap_timeout_s=settings.gap_timeout_s,
                                  verify_mode=settings.ingest_verify, receipt_key=key)
        consumer.core.state.clock_skew_s = settings.clock_skew_s
        signer = PolicySigner(sm, key, site=site, ttl_s=settings.policy_ttl_s, publish=publish)
        presence = PresencePublisher(sm, key, site=site, room_doors=room_doors,
                                     publish=publish, bus=bus)
        parts += [link, consumer, signer, presence]
    return parts
