#!/usr/bin/python3 -IS
"""secroom-pam-card: the helper pam_exec runs once per log-on, after the password check.

``card`` (the password passed: may this card log on here now?) or ``password_failed`` (to
journal the failure). It asks the host agent over its Unix socket and exits 0 (PAM_SUCCESS)
only if the agent says ``ok``; the PAM lines around it turn anything else into
"Authentication failure" (hardware/host-agent/pam). It is installed as a standalone file
(``/usr/lib/secroom/secroom-pam-card``) run by ``/usr/bin/python3 -IS`` and imports only C
modules (``_socket``, ``os``, ``sys``): a log-on waits for this process to start, so it starts
in a few milliseconds. The agent learns who is asking from the socket (SO_PEERCRED), not
from anything this helper says.

Usage: ``secroom-pam-card card|password_failed [--socket PATH]``; pam_exec puts PAM_USER,
PAM_SERVICE, PAM_TTY, PAM_RHOST and PAM_RUSER in the environment. Exit codes: 0 granted /
noted, 1 denied, 2 the agent is unreachable or answered garbage, 3 bad usage or a PAM item
holding a tab or a line break.
"""

import _socket
import os
import sys

DEFAULT_SOCKET = "/run/secroom/host-agent.sock"
STEPS = ("card", "password_failed")
TIMEOUT_S = 40.0  # above the agent's longest card wait (30 s)
ITEMS = ("PAM_USER", "PAM_SERVICE", "PAM_TTY", "PAM_RHOST", "PAM_RUSER")


def request_line(step, env):
    """The request line, or None if a PAM item holds a tab or a line break."""
    values = [env.get(name, "") for name in ITEMS]
    if any(c in v for v in values for c in "\t\n\r"):
        return None
    return ("\t".join(["v1", step, *values]) + "\n").encode("utf-8", "surrogateescape")


def ask(line, path=DEFAULT_SOCKET, timeout=TIMEOUT_S):
    """Send one request line to the agent and return its answer line (raises OSError)."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(line)
        data = b""
        while not data.endswith(b"\n") and len(data) < 1024:
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data.decode("utf-8", "replace").strip()


def main(argv):
    args = list(argv)
    path = DEFAULT_SOCKET
    if "--socket" in args:
        i = args.index("--socket")
        if i + 1 >= len(args):
            return 3
        path = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1 or args[0] not in STEPS:
        sys.stderr.write("usage: secroom-pam-card card|password_failed [--socket PATH]\n")
        return 3
    line = request_line(args[0], os.environ)
    if line is None:
        return 3
    try:
        answer = ask(line, path)
    except OSError as exc:
        sys.stderr.write(f"secroom-pam-card: the host agent cannot be asked ({exc})\n")
        return 2
    if answer == "ok":
        return 0
    return 1 if answer.startswith("no") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
