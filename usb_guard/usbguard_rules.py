"""Export of the media whitelist as USBGuard rules (usbguard-rules.conf(5)), for hosts that
already run USBGuard instead of the secroom agent.

USBGuard cannot do what the agent does on top: it cannot read the medium token (a clone with
the same id and serial passes), and it has no read-only mode, so read-only media are left out
(blocked) with a comment. Class rules use the ``match-all`` set operator (every interface of the
device must be in the allowed set), which needs a USBGuard whose rule language documents it.
"""

from __future__ import annotations

from datetime import datetime

from usb_guard.policy import RegisteredMedium, UsbPolicy

MASS_STORAGE_ANY = "08:*:*"


def quote(text: str) -> str:
    """A USBGuard string literal: backslash, double quote and non-printables escaped."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape"))
    return '"' + "".join(out) + '"'


def _medium_rule(m: RegisteredMedium) -> str:
    ident = m.identity
    interfaces = " ".join(ident.interfaces) if ident.interfaces else MASS_STORAGE_ANY
    return (f"allow id {ident.vendor_id}:{ident.product_id} serial {quote(ident.serial or '')} "
            f"with-interface equals {{ {interfaces} }} label {quote(m.control_number)}")


def _usable(m: RegisteredMedium, policy: UsbPolicy, host: str | None,
            now: datetime | None) -> str | None:
    """None if the medium may be allowed, else why it is left out."""
    if m.state not in policy.usable_states:
        return f"state {m.state}"
    if host is not None and not m.allowed_on(host):
        return f"not allowed on {host}"
    if now is not None and m.usable_until is not None and now > m.usable_until:
        return "past its usable-until time"
    if m.read_only:
        return "read-only, which USBGuard cannot enforce"
    return None


def export_rules(policy: UsbPolicy | None, host: str | None = None,
                 now: datetime | None = None) -> str:
    """rules.conf text: registered media, class rules, then the explicit default."""
    title = f"host {host}" if host else "all hosts"
    lines = [f"# secroom USB whitelist for USBGuard ({title}); generated, do not edit",
             "# USBGuard cannot check the secroom medium token: clones with the same id and",
             "# serial are not told apart. Run the secroom agent where that matters."]
    if policy is None:
        lines.append("# no policy yet: hubs, keyboards and mice only")
        policy = UsbPolicy()
    for m in policy.media:
        why = _usable(m, policy, host, now)
        if why is None:
            lines.append(_medium_rule(m))
        else:
            lines.append(f"# {m.control_number} left out: {why}")
    allowed = [r.pattern for r in policy.class_rules if r.action == "allow"]
    blocked = [r.pattern for r in policy.class_rules if r.action == "block"]
    lines.append(f"block with-interface one-of {{ {MASS_STORAGE_ANY} }}")
    if policy.default == "allow":
        if blocked:
            lines.append(f"block with-interface one-of {{ {' '.join(blocked)} }}")
        lines.append("allow")
    else:
        if allowed:
            lines.append(f"allow with-interface match-all {{ {' '.join(allowed)} }}")
        lines.append("block")
    return "\n".join(lines) + "\n"
