"""Live updates: Server-Sent Events fed by the in-process bus (new events, anomalies, nodes, and
stored camera stills: a row showing the still's record fetches its camera cell again)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from controller.envelope import parse_ts
from dashboard.auth.service import AuthService
from dashboard.i18n import Translator
from dashboard.names import Names
from dashboard.web import deps

router = APIRouter()
KEEPALIVE_S = 15.0
MAX_STREAMS = 64
# the last message of a stream whose session ended: the page goes to the log-in form
SESSION_ENDED = b"event: session_ended\ndata: {}\n\n"


def live_item(topic: str, data: dict[str, Any], t: Translator,
              n: Names | None = None) -> dict[str, Any]:
    """What the browser shows for one bus message: labels in the reader's language, names
    instead of ids, the time in the site zone."""
    n = n or Names(lang=t.lang)
    if topic == "event":
        raw = data.get("data")
        payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
        granted = payload.get("granted")
        when = data.get("ts")
        try:
            time_local = t.time(parse_ts(when), seconds=True) if isinstance(when, str) else ""
        except ValueError:
            time_local = ""
        result = ""
        if isinstance(granted, bool):
            result = t.label("result", "granted" if granted else "denied")
            reason = str(payload.get("reason") or "")
            if not granted and reason:
                result += " · " + t.label("door_reason", reason)
        kind = str(data.get("kind") or "")
        person = data.get("person_id") or payload.get("person_id")
        door = data.get("door") or payload.get("door") or ""
        record = payload.get("record") if kind.startswith("camera.") else None
        return {
            "id": f"{data.get('node')}:{data.get('seq')}", "kind": t.label("kind", kind),
            "kind_id": kind, "record": record if isinstance(record, str) else None,
            "time_local": time_local, "door": n.door(str(door)) if door else "",
            "person": n.person(str(person)) if person else (
                t.label("door_reason", "unknown_card") if kind == "door.access" else ""),
            "granted": granted if isinstance(granted, bool) else None,
            "direction": payload.get("direction"), "result": result,
        }
    if topic == "anomaly":
        return {"id": f"anomaly:{data.get('id')}", "kind": t("nav.review"),
                "time_local": "", "door": "", "person": "",
                "granted": None, "result": t.label("review_kind", str(data.get("kind")))}
    if topic == "camera":  # an image stored: no names, no image, only which record to refetch
        record = data.get("record")
        return {"id": f"camera:{data.get('still')}",
                "record": record if isinstance(record, str) else None}
    return {"id": f"{topic}:{data.get('node', '')}", "kind": topic, "data": data}


def _sse(event: str, payload: dict[str, Any], ident: int) -> bytes:
    body = json.dumps(payload, ensure_ascii=False, default=str)
    return f"id: {ident}\nevent: {event}\ndata: {body}\n\n".encode()


@router.get("/live", name="live.stream", include_in_schema=False)
async def live_stream(request: Request) -> StreamingResponse:
    """The stream lives as long as its session: logging out, being logged out everywhere or
    deactivated ends it at once (a ``session`` message on the bus), and a session that ended
    elsewhere (another replica, expiry) ends it at the next keepalive check."""
    bus = request.app.state.bus
    auth: AuthService = request.app.state.auth
    who = deps.principal(request)
    t = deps.translator(request)
    n = deps.names(request)
    if bus is not None and bus.subscribers >= MAX_STREAMS:
        raise HTTPException(status_code=503, detail="too many live streams; close a tab")

    async def logged_in() -> bool:
        if who.session_id is None:
            return False
        return await anyio.to_thread.run_sync(auth.session_active, who.session_id,
                                              deps.now(request))

    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 3000\n: connected\n\n"
        if bus is None:  # no ingest in this process: keep the stream open, quietly
            while not await request.is_disconnected() and await logged_in():
                await anyio.sleep(KEEPALIVE_S)
                yield b": keepalive\n\n"
            yield SESSION_ENDED
            return
        sub = bus.subscribe(("event", "anomaly", "node", "session", "camera"), maxsize=500)
        try:
            # subscribed first, then checked: a log-out in between is not missed
            if not await logged_in():
                yield SESSION_ENDED
                return
            while not await request.is_disconnected():
                msg = await sub.aget(timeout=KEEPALIVE_S)
                if msg is None:
                    if sub.closed:
                        return
                    if not await logged_in():
                        yield SESSION_ENDED
                        return
                    yield b": keepalive\n\n"
                    continue
                if msg.topic == "session":
                    if who.session_id in msg.data.get("ended", ()):
                        yield SESSION_ENDED
                        return
                    continue
                name = "event" if msg.topic in ("event", "anomaly") else msg.topic
                yield _sse(name, live_item(msg.topic, msg.data, t, n), msg.id)
        finally:
            sub.close()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"x-accel-buffering": "no"})
