"""`secroom demo`: the whole room on one machine, with a virtual card reader and simulated GPIO.

Everything runs from one working folder (``.demo/`` by default) and stops on Ctrl-C, leaving no
process behind: a private Mosquitto on a free loopback port, a private pcscd with the vpcd
virtual reader, the gateway with gpiozero's MockFactory, and a line printer of every event that
reaches the broker. Type ``help`` for the tap commands.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def run(args: argparse.Namespace) -> int:
    from controller.sdnotify import wait_for_stop
    from dashboard.demo.panel import RoomSimulator  # the heavy imports, on use
    from dashboard.demo.room import DemoRoom, DemoUnavailable

    room = DemoRoom(args.workdir.resolve())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C stops the demo even when started where SIGINT is inherited as ignored (a
    # background job of a non-interactive shell)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        room.start(panel=RoomSimulator(room))
    except DemoUnavailable as exc:
        print(f"secroom demo: {exc}", file=sys.stderr)
        room.stop()
        return 3
    except BaseException:
        room.stop()  # whatever failed, leave no broker or pcscd behind
        raise
    try:
        room.print_banner()
        if args.no_input or not sys.stdin.isatty():
            wait_for_stop(stop)  # in slices: a signal's handler runs only on the main thread
        else:
            room.command_loop(stop)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping the demo...", flush=True)
        room.stop()
    return 0
