"""The app under uvicorn, stopping at once on Ctrl-C even with browser tabs open."""

from __future__ import annotations

from types import FrameType

import uvicorn

from dashboard.bus import Bus


class Server(uvicorn.Server):
    """uvicorn's server that first ends the live (SSE) streams when asked to stop.

    uvicorn waits for open connections before it stops, and a live stream stays open as long as
    its browser tab: an open tab kept the dashboard running after Ctrl-C (or, with a graceful
    timeout, had its stream cancelled with a traceback). Closing the bus's subscriptions ends
    each stream normally; the browser reconnects once the dashboard is back."""

    def __init__(self, config: uvicorn.Config, bus: Bus | None) -> None:
        super().__init__(config)
        self.bus = bus

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:  # SIGINT, SIGTERM
        if self.bus is not None:
            self.bus.close()
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        """Ask it to stop from another thread (where uvicorn installs no signal handler)."""
        if self.bus is not None:
            self.bus.close()
        self.should_exit = True
