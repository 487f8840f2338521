"""A private pcscd with the vpcd virtual reader, owned by one test (wraps readers.pcscd_host).

``start_pcscd`` picks a free vpcd port pair, starts the daemon in its own mount namespace and
calls ``unavailable()`` (skip, or fail in CI) when pcscd, the vpcd driver or namespaces are
missing. Talking to it:

* from this (pytest) process: ``host.use_in_this_process()`` before the first PC/SC call (the
  fixture does it); libpcsclite caches the socket path, the host retargets a symlink;
* from a subprocess: pass ``{**os.environ, **host.env}`` as its environment.
"""

from __future__ import annotations

from pathlib import Path

from readers.base import ReaderError
from readers.pcscd_host import PcscdHost, find_vpcd_driver, free_port_pair
from tests.support import require_binary, unavailable


def start_pcscd(workdir: Path, *, attempts: int = 3) -> PcscdHost:
    require_binary("pcscd", "/usr/sbin/pcscd")
    require_binary("unshare", "/usr/bin/unshare")
    if find_vpcd_driver() is None:
        unavailable("vpcd driver not installed (apt-get install vsmartcard-vpcd)")
    last: ReaderError | None = None
    for attempt in range(attempts):
        host = PcscdHost(workdir / f"pcscd-{attempt}", port=free_port_pair())
        try:
            host.start()
        except ReaderError as exc:  # port pair raced away, or no mount namespace allowed
            host.stop()
            last = exc
            if "in use" not in str(exc):
                break
            continue
        return host
    unavailable(f"private pcscd would not start: {last}")
    raise AssertionError("unreachable")
