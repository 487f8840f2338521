"""The auditd watch rules the agent installs for its watched folders (``secroom host
audit-rules``): one recursive watch per folder, on reads, writes, executions and attribute
changes, keyed ``secroom-<class>`` so the agent keeps only its own events."""

from __future__ import annotations

from collections.abc import Sequence

from controller.host.config import Watch

RULES_FILE = "/etc/audit/rules.d/60-secroom.rules"


def audit_rules(watches: Sequence[Watch]) -> str:
    lines = ["## secroom host agent: watched folders (generated; `secroom host audit-rules`)"]
    for w in watches:
        path = str(w.path)
        if any(c.isspace() for c in path):
            raise ValueError(f"auditctl cannot watch a path with white space: {path!r}")
        lines.append(f"-w {path} -p rwxa -k {w.key}")
    return "\n".join(lines) + "\n"
