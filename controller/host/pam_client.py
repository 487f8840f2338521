#!/usr/bin/python3 -IS
"""secroom-pam-card: the helper pam_exec runs once per log-on, after the password check
(the fallback: the installed helper is the C one, hardware/host-agent/pam/secroom-pam-card.c,
with the same arguments, request, answers and exit codes; see hardware/host-agent/README.md).

``card`` (the password passed: may this card log on here now?) or ``password_failed`` (to
journal the failure). It asks the host agent over its Unix socket and exits 0 (PAM_SUCCESS)
only if the agent says ``ok``; the PAM lines around it turn anything else into
"Authentication failure" (hardware/host-agent/pam). It is installed as a standalone file
(``/usr/lib/secroom/secroom-pam-card``) run by ``/usr/bin/python3 -IS`` and imports only C
modules (``_socket``, ``os``, ``sys``); still, a log-on waits for the interpreter to start
(some 10 to 30 ms), which is why the C helper is the one installed. The agent learns who is
asking from the socket (SO_PEERCRED), not from anything this helper says.

Usage: ``secroom-pam-card card|password_failed [--socket PATH] [--timeout SECONDS]``;
pam_exec puts PAM_USER, PAM_SERVICE, PAM_TTY, PAM_RHOST and PAM_RUSER in the environment.
Exit codes: 0 granted / noted, 1 denied, 2 the agent is unreachable, slow or answered
garbage, 3 bad usage or a PAM item holding a tab or a line break.
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


USAGE = "usage: secroom-pam-card card|password_failed [--socket PATH] [--timeout SECONDS]\n"


def main(argv):
    args = list(argv)
    path = DEFAULT_SOCKET
    timeout = TIMEOUT_S
    if "--socket" in args:
        i = args.index("--socket")
        if i + 1 >= len(args):
            sys.stderr.write(USAGE)
            return 3
        path = args[i + 1]
        del args[i : i + 2]
    if "--timeout" in args:
        i = args.index("--timeout")
        try:
            timeout = float(args[i + 1])
        except (IndexError, ValueError):
            timeout = 0.0
        if not 0 < timeout <= 600:
            sys.stderr.write(USAGE)
            return 3
        del args[i : i + 2]
    if len(args) != 1 or args[0] not in STEPS:
        sys.stderr.write(USAGE)
        return 3
    line = request_line(args[0], os.environ)
    if line is None:
        return 3
    try:
        answer = ask(line, path, timeout)
    except OSError as exc:
        sys.stderr.write(f"secroom-pam-card: the host agent cannot be asked ({exc})\n")
        return 2
    if answer == "ok":
        return 0
    return 1 if answer.startswith("no") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
