"""N stateless dashboard replicas on one PostgreSQL (issue 24, the central side).

Single box (SQLite, no ``[dashboard.replica]``): none of this runs; everything is as before.

- Ingest (``leases``): each node's events are stored by the one replica holding its lease in
  ``ingest_leases`` (renewed by a heartbeat every second, ``lease_s`` long); the leases cover
  every site the dashboard ingests (``site`` and ``sites``). A replica subscribes at the broker
  to its leased nodes' event topics only (dashboard.ingest.leased: subscribed when a lease is
  gained, unsubscribed when it is lost), so the broker sends each event to one replica. What
  still reaches a replica for a node it does not hold (in flight at a hand-over) is dropped
  without an ack; the node keeps it in its journal, and the replica that takes the lease over
  subscribes, then asks it to re-send what follows its acked mark. Each storing transaction
  re-reads its leases (FOR SHARE) first: a replica whose lease lapsed stores nothing, and a
  takeover waits for a store in flight to commit. We chose leases over MQTT v5 shared
  subscriptions because Mosquitto hands shared messages out in turn with no per-topic
  affinity (per-node order and the chain checks would break); leases need nothing of the
  broker but ordinary subscriptions (one filter per leased node).
- Leader (``leader``): the policy signer and the scheduled work (correlation, missed-backup
  watch, presence, nightly database backup, Home Assistant) run on the one replica holding a
  PostgreSQL session advisory lock; it is freed when that replica's connection ends (killed
  process), and another replica takes it within a second. Each term is recorded
  (``leader_terms``), and each policy version names its signer (``policy_versions.signed_by``).
- Live feed (``pgbus``): what one replica publishes on its bus reaches every replica's bus
  through PostgreSQL LISTEN/NOTIFY. Sessions and log-in throttles were already in the database.
"""
