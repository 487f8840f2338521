#!/usr/bin/python3 -IS
"""secroom-pam-card: the helper pam_exec runs at each step of a card log-on.

It asks the host agent over its Unix socket and exits 0 (PAM_SUCCESS) only if the agent says
so; any other exit makes pam_exec return an error, and the PAM lines around it turn that into
"Authentication failure" (hardware/host-agent/pam). Standard library only, so it starts in a
few milliseconds: it is installed as a standalone file (``/usr/lib/secroom/secroom-pam-card``),
run by ``/usr/bin/python3 -IS``. The agent learns who is asking from the socket itself
(SO_PEERCRED), not from anything this helper says.

Usage (from a PAM line): ``secroom-pam-card card|password_failed|granted [--socket PATH]``.
pam_exec puts PAM_USER, PAM_SERVICE, PAM_TTY, PAM_RHOST and PAM_RUSER in the environment.
Exit codes: 0 granted / noted, 1 denied, 2 the agent is unreachable or answered garbage,
3 bad usage.
"""

import json
import os
import socket
import sys

DEFAULT_SOCKET = "/run/secroom/host-agent.sock"
STEPS = ("card", "password_failed", "granted")
TIMEOUT_S = 40.0  # above the agent's longest card wait (30 s)


def request(step: str, env: dict, path: str = DEFAULT_SOCKET, timeout: float = TIMEOUT_S) -> dict:
    """Send one step to the agent and return its answer (raises OSError or ValueError)."""
    msg = {
        "step": step,
        "user": env.get("PAM_USER", ""),
        "service": env.get("PAM_SERVICE", ""),
        "tty": env.get("PAM_TTY", ""),
        "rhost": env.get("PAM_RHOST", ""),
        "ruser": env.get("PAM_RUSER", ""),
        "type": env.get("PAM_TYPE", ""),
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(msg).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n") and len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise ValueError("the agent's answer has no ok field")
    return answer


def main(argv: list) -> int:
    args = list(argv)
    path = DEFAULT_SOCKET
    if "--socket" in args:
        i = args.index("--socket")
        if i + 1 >= len(args):
            return 3
        path = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1 or args[0] not in STEPS:
        print("usage: secroom-pam-card card|password_failed|granted [--socket PATH]",
              file=sys.stderr)
        return 3
    try:
        answer = request(args[0], dict(os.environ), path)
    except (OSError, ValueError) as exc:
        print(f"secroom-pam-card: the host agent cannot be asked ({exc})", file=sys.stderr)
        return 2
    return 0 if answer["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
