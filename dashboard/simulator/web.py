"""The simulator panel's routes (admin only, demo mode only; see dashboard.simulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import Response

from dashboard.simulator import SimState, Simulator, SimulatorError
from dashboard.web import deps

router = APIRouter()
STATIC = Path(__file__).with_name("static")
MAX_TEXT = 80


def _sim(request: Request) -> Simulator:
    sim: Simulator | None = getattr(request.app.state, "simulator", None)
    if sim is None or not deps.settings(request).demo:
        raise HTTPException(status_code=404, detail="Not Found")
    return sim


def _done(message: str, ok: bool = True) -> Response:
    query = urlencode({"done" if ok else "failed": message[:200]})
    return RedirectResponse(f"/simulator?{query}", status_code=303)


def _act(action: object) -> Response:
    try:
        result = action() if callable(action) else action
    except SimulatorError as exc:
        return _done(str(exc), ok=False)
    return _done(str(result))


@router.get("/simulator", name="simulator.page", include_in_schema=False)
def page(request: Request) -> Response:
    sim = _sim(request)
    return deps.render(request, "simulator/page.html", {
        "people": sim.people(), "readers": sim.readers(), "doors": sim.door_views(),
        "sticks": sim.usb_sticks(), "plugged": sim.usb_plugged(),
        "print_unavailable": sim.print_unavailable(),
        "done": request.query_params.get("done", "")[:200],
        "failed": request.query_params.get("failed", "")[:200],
    })


@router.get("/simulator/state", name="simulator.state", include_in_schema=False)
def state(request: Request) -> SimState:
    sim = _sim(request)
    return SimState(doors=sim.door_views(), usb_plugged=sim.usb_plugged(), last="")


@router.get("/simulator/simulator.js", name="simulator.script", include_in_schema=False)
def script(request: Request) -> Response:
    _sim(request)
    return FileResponse(STATIC / "simulator.js", media_type="text/javascript")


@router.get("/simulator/simulator.css", name="simulator.style", include_in_schema=False)
def style(request: Request) -> Response:
    _sim(request)
    return FileResponse(STATIC / "simulator.css", media_type="text/css")


def _slot(sim: Simulator, reader: int) -> int:
    if reader not in {r.slot for r in sim.readers()}:
        raise HTTPException(status_code=400, detail="unknown reader")
    return reader


@router.post("/simulator/tap", name="simulator.tap", include_in_schema=False)
def tap(
    request: Request, reader: Annotated[int, Form()],
    person: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> Response:
    sim = _sim(request)
    slot = _slot(sim, reader)
    known = {p.id for p in sim.people()}
    if person and person not in known:
        raise HTTPException(status_code=400, detail="unknown person")
    return _act(lambda: sim.tap(person or None, slot))


@router.post("/simulator/door", name="simulator.door", include_in_schema=False)
def door(request: Request, action: Annotated[str, Form(max_length=10)]) -> Response:
    sim = _sim(request)
    if action == "open":
        return _act(lambda: sim.set_contact(True))
    if action == "close":
        return _act(lambda: sim.set_contact(False))
    if action == "rex":
        return _act(sim.press_rex)
    raise HTTPException(status_code=400, detail="action must be open, close or rex")


@router.post("/simulator/usb", name="simulator.usb", include_in_schema=False)
def usb(
    request: Request, stick: Annotated[str, Form(max_length=MAX_TEXT)],
    action: Annotated[str, Form(max_length=10)] = "plug",
) -> Response:
    sim = _sim(request)
    if stick not in {s for s, _ in sim.usb_sticks()}:
        raise HTTPException(status_code=400, detail="unknown stick")
    if action not in ("plug", "unplug"):
        raise HTTPException(status_code=400, detail="action must be plug or unplug")
    return _act(lambda: sim.usb_plug(stick) if action == "plug" else sim.usb_unplug(stick))


@router.post("/simulator/print", name="simulator.print", include_in_schema=False)
def print_job(
    request: Request, person: Annotated[str, Form(max_length=MAX_TEXT)],
    title: Annotated[str, Form(max_length=MAX_TEXT)] = "給与明細",
) -> Response:
    sim = _sim(request)
    reason = sim.print_unavailable()
    if reason:
        return _done(reason, ok=False)
    if person not in {p.id for p in sim.people()}:
        raise HTTPException(status_code=400, detail="unknown person")
    return _act(lambda: sim.print_job(person, title.strip() or "job"))
