"""systemd-logind: list an account's sessions, lock them, end them (the only jeepney importer).

``Manager.LockSession(id)`` asks the session's screen locker (GNOME Shell, xss-lock...) to lock:
logind sends the session's Lock signal. A text console has no locker, so a ``tty`` session is
ended instead (``TerminateSession``) unless configured otherwise. jeepney is a pure-Python
D-Bus client: nothing to compile, and it speaks to the system bus or, in tests, to a private
bus where python-dbusmock's logind template stands in for logind.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from jeepney import DBusAddress, DBusErrorResponse, Properties, new_method_call
from jeepney.io.blocking import DBusConnection, open_dbus_connection
from jeepney.wrappers import unwrap_msg

BUS_NAME = "org.freedesktop.login1"
MANAGER = DBusAddress("/org/freedesktop/login1", bus_name=BUS_NAME,
                      interface="org.freedesktop.login1.Manager")
SESSION_IFACE = "org.freedesktop.login1.Session"
CALL_TIMEOUT_S = 5.0


class LogindError(Exception):
    """logind could not be reached or refused a call (the message says which)."""


@dataclass(frozen=True)
class SessionInfo:
    id: str
    uid: int
    account: str
    seat: str
    type: str = ""  # tty, x11, wayland, mir, unspecified
    remote: bool = False

    @property
    def local(self) -> bool:
        return bool(self.seat) and not self.remote


class Logind(Protocol):
    def sessions(self, account: str) -> list[SessionInfo]: ...

    def lock(self, session_id: str) -> None: ...

    def terminate(self, session_id: str) -> None: ...


class DbusLogind:
    """logind over D-Bus; ``bus`` is "system" or a D-Bus address. One connection, reopened
    after a failure; calls are serialised."""

    def __init__(self, bus: str = "system") -> None:
        self.bus = "SYSTEM" if bus == "system" else bus
        self._conn: DBusConnection | None = None
        self._lock = threading.Lock()

    def _call(self, msg: Any) -> tuple[Any, ...]:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = open_dbus_connection(bus=self.bus)
                reply = self._conn.send_and_get_reply(msg, timeout=CALL_TIMEOUT_S)
                return tuple(unwrap_msg(reply))
            except DBusErrorResponse as exc:
                raise LogindError(f"logind refused {msg.header.fields}: {exc}") from exc
            except (OSError, TimeoutError, ValueError) as exc:
                self._close()
                raise LogindError(f"logind unreachable on {self.bus}: {exc}") from exc

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None

    def sessions(self, account: str) -> list[SessionInfo]:
        (rows,) = self._call(new_method_call(MANAGER, "ListSessions"))
        out = []
        for sid, uid, user, seat, path in rows:
            if user != account:
                continue
            props = self._props(path)
            out.append(SessionInfo(sid, int(uid), user, seat, _value(props.get("Type"), ""),
                                   bool(_value(props.get("Remote"), False))))
        return out

    def _props(self, path: str) -> dict[str, Any]:
        try:
            (props,) = self._call(
                Properties(DBusAddress(path, bus_name=BUS_NAME, interface=SESSION_IFACE))
                .get_all())
        except LogindError:
            return {}
        return dict(props)

    def lock(self, session_id: str) -> None:
        self._call(new_method_call(MANAGER, "LockSession", "s", (session_id,)))

    def terminate(self, session_id: str) -> None:
        self._call(new_method_call(MANAGER, "TerminateSession", "s", (session_id,)))

    def close(self) -> None:
        with self._lock:
            self._close()


def _value(variant: Any, default: Any) -> Any:
    """jeepney gives a property as (signature, value)."""
    if isinstance(variant, tuple) and len(variant) == 2:
        return variant[1]
    return default
