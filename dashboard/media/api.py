"""JSON API of the media ledger under /api/v1/media (and /api/v1/usb-events).

No ``from __future__ import annotations`` here: the generated endpoints annotate their body with
a model chosen at run time, which FastAPI must see as a class, not a string.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.media import service
from dashboard.media.approval import verify_approver
from dashboard.media.events import UsbEventFilter, usb_events
from dashboard.models.media import Medium, MediumRecord
from dashboard.services.base import ServiceError
from dashboard.web import deps
from dashboard.web.forms import ApiDateTime


def _in_scope(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> None:
    cn = request.path_params.get("cn")  # another site's medium: 404 (dashboard.media.web)
    if cn is not None:
        scope.require_medium(db, deps.principal(request), cn)


router = APIRouter(prefix="/api/v1", tags=["media"], dependencies=[Depends(_in_scope)])


Db = Annotated[DbSession, Depends(deps.db)]
Who = Annotated[Principal, Depends(deps.principal)]


class MediumOut(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
    control_number: str
    state: str
    vendor_id: str
    product_id: str
    serial: str | None
    descriptors_sha256: str | None
    token_digest: str
    media_type: str
    make: str
    model: str
    capacity: str
    custodian: str
    hosts: list[str]
    read_only: bool
    registered_at: datetime
    holder: str | None
    purpose: str | None
    due_back: datetime | None
    requested_by: str | None
    approved_by: str | None
    wipe_method: str | None
    wiped_at: datetime | None
    wipe_verifier: str | None
    disposal_method: str | None
    disposal_certificate: str | None
    disposed_at: datetime | None


class RecordOut(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
    action: str
    from_state: str | None
    to_state: str
    actor: str
    at: datetime
    holder: str | None
    purpose: str | None
    due_back: datetime | None
    approved_by: str | None
    method: str | None
    verifier: str | None
    certificate_number: str | None
    details: dict[str, Any]


class MediumDetail(MediumOut):
    records: list[RecordOut]


# API bodies: the service models without whitespace stripping, so that what the schema accepts
# is what FastAPI accepts; the service validates again (stripped) and answers 400 if blank.
_RAW = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegisterBody(service.RegisterIn):
    model_config = _RAW


class WipeBody(service.WipeIn):
    model_config = _RAW


class DisposeBody(service.DisposeIn):
    model_config = _RAW


class NoteBody(service.NoteIn):
    model_config = _RAW


class CheckOutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holder: str = Field(min_length=1, max_length=128)
    purpose: str = Field(min_length=1, max_length=200)
    due_back: datetime = Field(description="RFC 3339 with an offset; naive times are refused")
    approved_by: str = Field(min_length=1, max_length=64)
    approver_password: str = Field(min_length=1, max_length=256, repr=False)


class UsbEventOut(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
    id: int
    node: str
    seq: int
    ts: datetime
    kind: str
    host: str
    device: str
    verdict: str | None
    rule: str | None
    control_number: str | None
    vendor_product: str
    serial_masked: str | None
    interfaces: tuple[str, ...]
    reason: str


class UsbEventsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[UsbEventOut]
    next_before_id: int | None


def _detail(db: DbSession, row: Medium) -> MediumDetail:
    records = db.scalars(select(MediumRecord).where(
        MediumRecord.control_number == row.control_number).order_by(MediumRecord.id)).all()
    out = MediumOut.model_validate(row).model_dump()
    return MediumDetail(**out, records=[RecordOut.model_validate(r) for r in records])


@router.get("/media", name="api.media.list", response_model=list[MediumOut])
def list_media(db: Db, who: Who,
               state: Annotated[str, Query(max_length=16)] = "") -> list[MediumOut]:
    stmt = scope.only_site_media(select(Medium).order_by(Medium.control_number), who)
    if state:
        stmt = stmt.where(Medium.state == state)
    return [MediumOut.model_validate(r) for r in db.scalars(stmt)]


@router.get("/media/{cn}", name="api.media.get", response_model=MediumDetail,
            responses=deps.ERRORS)
def get_medium(cn: str, db: Db) -> MediumDetail:
    row = db.get(Medium, cn)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no medium {cn!r}")
    return _detail(db, row)


@router.post("/media", name="api.media.register", response_model=MediumDetail, status_code=201,
             responses=deps.ERRORS)
def register(request: Request, body: RegisterBody, db: Db, who: Who) -> MediumDetail:
    scope.require_person(db, who, body.custodian, "custodian")
    row = deps.change(db, service.register_medium, who.username, body.model_dump(),
                      now=deps.now(request))
    return _detail(db, row)


@router.post("/media/{cn}/check-out", name="api.media.check_out", response_model=MediumDetail,
             responses=deps.ERRORS)
def check_out(request: Request, cn: str, body: CheckOutBody, db: Db, who: Who) -> MediumDetail:
    now = deps.now(request)
    try:
        approved = verify_approver(
            request.app.state.auth, requester=who.username, approver=body.approved_by,
            password=body.approver_password, ip=request.client.host if request.client else "",
            now=now)
    except ServiceError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    scope.require_person(db, who, body.holder, "holder")
    data = {"holder": body.holder, "purpose": body.purpose, "due_back": body.due_back,
            "approved_by": approved}
    row = deps.change(db, service.check_out, who.username, cn, data, now=now)
    return _detail(db, row)


def _route(path: str, name: str, fn: Any, body_model: type[BaseModel] | None) -> None:
    def plain(request: Request, cn: str, db: Db, who: Who) -> MediumDetail:
        row = deps.change(db, fn, who.username, cn, now=deps.now(request))
        return _detail(db, row)

    def with_body(request: Request, cn: str, body: body_model,  # type: ignore[valid-type]
                  db: Db, who: Who) -> MediumDetail:
        data = body.model_dump()  # type: ignore[attr-defined]
        row = deps.change(db, fn, who.username, cn, data, now=deps.now(request))
        return _detail(db, row)

    endpoint: Any = plain if body_model is None else with_body
    endpoint.__name__ = name.replace(".", "_")
    router.add_api_route(path, endpoint, methods=["POST"], name=name,
                         response_model=MediumDetail, responses=deps.ERRORS)


_route("/media/{cn}/return", "api.media.return", service.return_medium, NoteBody)
_route("/media/{cn}/store", "api.media.store", service.store_medium, None)
_route("/media/{cn}/wipe", "api.media.wipe", service.wipe_medium, WipeBody)
_route("/media/{cn}/lost", "api.media.lost", service.mark_lost, NoteBody)
_route("/media/{cn}/found", "api.media.found", service.mark_found, NoteBody)
_route("/media/{cn}/dispose", "api.media.dispose", service.dispose_medium, DisposeBody)


@router.get("/usb-events", name="api.usb_events.list", response_model=UsbEventsOut)
def list_usb_events(
    db: Db, start: ApiDateTime = None, end: ApiDateTime = None,
    host: Annotated[str | None, Query(max_length=128)] = None,
    verdict: Annotated[str | None, Query(max_length=32)] = None,
    control_number: Annotated[str | None, Query(max_length=32)] = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> UsbEventsOut:
    f = UsbEventFilter(start=start, end=end, host=host, verdict=verdict, before_id=before_id,
                       control_numbers=frozenset({control_number}) if control_number else None)
    page = usb_events(db, f, limit)
    return UsbEventsOut(items=[UsbEventOut.model_validate(i) for i in page.items],
                        next_before_id=page.next_before_id)
