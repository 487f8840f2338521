"""Room PCs on the dashboard: the signed presence the host agents follow, the hosts' pages,
their sessions and operations (for the person's timeline and the monthly report)."""
