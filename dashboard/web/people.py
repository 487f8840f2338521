"""People and their cards: list, create, edit, rights (groups), enrol a card by its UID, revoke
a card. Every change goes through the audited services. Enrolment by a tap at a chosen reader
is its own router (``dashboard.web.enrol``), a section of the person page."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import selectinload
from starlette.responses import Response

from dashboard import services
from dashboard.auth.roles import allowed
from dashboard.auth.service import Principal
from dashboard.models import Group, Person
from dashboard.web import deps
from dashboard.web.forms import Ident, ShortText, csv_list

router = APIRouter()


class CardOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: str
    label: str
    active: bool
    enrolled_at: datetime
    enrolled_by: str
    revoked_at: datetime | None
    credential: str = "uid"  # uid (weak), desfire or felica_lite_s (proves a secroom key)


class PersonOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    active: bool
    valid_from: date | None
    valid_until: date | None
    operator_ids: list[str]
    cups_users: list[str]
    host_accounts: list[str]
    groups: list[str]
    cards: list[CardOut]




class PersonCreate(BaseModel):
    """A new person (API); the audited service validates again and stores it."""

    model_config = ConfigDict(extra="forbid")
    id: Ident
    name: Annotated[str, Field(min_length=1, max_length=200)]
    active: bool = True
    valid_from: date | None = None
    valid_until: date | None = None
    operator_ids: list[ShortText] = []
    cups_users: list[ShortText] = []
    host_accounts: list[ShortText] = []
    groups: list[Ident] = []


class PersonUpdate(BaseModel):
    """A partial change (API): only the fields sent are changed; dates may be cleared."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)] = None  # type: ignore[assignment]
    active: bool = None  # type: ignore[assignment]
    valid_from: date | None = None
    valid_until: date | None = None
    operator_ids: list[ShortText] = None  # type: ignore[assignment]
    cups_users: list[ShortText] = None  # type: ignore[assignment]
    host_accounts: list[ShortText] = None  # type: ignore[assignment]
    groups: list[Ident] = None  # type: ignore[assignment]


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: str = Field(pattern=r"^[0-9A-Fa-f]{4,64}$", description="hex digits, no separators")
    label: str = Field(default="", max_length=128)


def _day(value: Any) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def person_out(p: Person) -> PersonOut:
    return PersonOut(
        id=p.id, name=p.name, active=p.active, valid_from=_day(p.valid_from),
        valid_until=_day(p.valid_until), operator_ids=list(p.operator_ids or []),
        cups_users=list(p.cups_users or []), host_accounts=list(p.host_accounts or []),
        groups=[g.id for g in p.groups],
        cards=[CardOut.model_validate(c, from_attributes=True) for c in p.cards],
    )


def _people(db: DbSession) -> list[Person]:
    q = select(Person).options(selectinload(Person.cards), selectinload(Person.groups))
    return list(db.scalars(q.order_by(Person.id)))


def person_or_404(db: DbSession, person_id: str) -> Person:
    person = db.get(Person, person_id)
    if person is None:
        raise HTTPException(status_code=404, detail=f"no person {person_id!r}")
    return person


# -- pages ------------------------------------------------------------------------------------


def _list_page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    return deps.render(request, "people.html", {"people": _people(db), "error": error}, status)


@router.get("/people", name="people.page", include_in_schema=False)
def people_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _list_page(request, db)


@router.post("/people", name="people.create", include_in_schema=False)
def people_create(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    id: Annotated[str, Form(max_length=128)],  # noqa: A002
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        deps.change(db, services.create_person, who.username, {"id": id, "name": name},
                    now=deps.now(request))
    except HTTPException as exc:
        return _list_page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    return RedirectResponse(f"/people/{id}?msg=common.saved", status_code=303)


def detail_page(request: Request, db: DbSession, person_id: str, *, error: str = "",
                 flash: str = "", status: int = 200) -> Response:
    person = person_or_404(db, person_id)
    groups = list(db.scalars(select(Group).order_by(Group.id)))
    ctx: dict[str, Any] = {"p": person_out(person), "groups": groups, "error": error}
    if flash:
        ctx["flash"] = flash
    role = deps.principal(request).role
    for route_name, section in request.app.state.person_sections:  # e.g. the person's prints
        if allowed(route_name, role):
            ctx.update(section(request, db, person_id))
    return deps.render(request, "person.html", ctx, status)


@router.get("/people/{person_id}", name="people.detail", include_in_schema=False)
def person_detail(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
) -> Response:
    return detail_page(request, db, person_id)


@router.post("/people/{person_id}", name="people.update", include_in_schema=False)
def person_update(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    name: Annotated[str, Form(max_length=200)],
    active: Annotated[bool, Form()] = False,
    valid_from: Annotated[str, Form(max_length=10)] = "",
    valid_until: Annotated[str, Form(max_length=10)] = "",
    operator_ids: Annotated[str, Form(max_length=2000)] = "",
    cups_users: Annotated[str, Form(max_length=2000)] = "",
    host_accounts: Annotated[str, Form(max_length=2000)] = "",
    groups: Annotated[list[str] | None, Form()] = None,
) -> Response:
    patch = {
        "name": name, "active": active, "valid_from": valid_from or None,
        "valid_until": valid_until or None, "operator_ids": csv_list(operator_ids),
        "cups_users": csv_list(cups_users), "host_accounts": csv_list(host_accounts),
        "groups": groups or [],
    }
    person_or_404(db, person_id)
    try:
        deps.change(db, services.update_person, who.username, person_id, patch,
                    now=deps.now(request))
    except HTTPException as exc:
        return detail_page(request, db, person_id, error=deps.error_text(request, exc.detail),
                           status=exc.status_code)
    return RedirectResponse(f"/people/{person_id}?msg=common.saved", status_code=303)


@router.post("/people/{person_id}/cards", name="people.card_add", include_in_schema=False)
def person_card_add(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    uid: Annotated[str, Form(max_length=64)],
    label: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    person_or_404(db, person_id)
    try:
        deps.change(db, services.enrol_card, who.username, person_id, uid, label=label,
                    now=deps.now(request))
    except HTTPException as exc:
        return detail_page(request, db, person_id, error=deps.error_text(request, exc.detail),
                           status=exc.status_code)
    return RedirectResponse(f"/people/{person_id}?msg=common.saved", status_code=303)


@router.post("/people/{person_id}/cards/{uid}/revoke", name="people.card_revoke",
             include_in_schema=False)
def person_card_revoke(
    request: Request, person_id: str, uid: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> Response:
    person_or_404(db, person_id)
    try:
        deps.change(db, services.revoke_card, who.username, uid, now=deps.now(request))
    except HTTPException as exc:
        return detail_page(request, db, person_id, error=deps.error_text(request, exc.detail),
                           status=exc.status_code)
    return RedirectResponse(f"/people/{person_id}?msg=common.saved", status_code=303)


# -- JSON API ---------------------------------------------------------------------------------


@router.get("/api/v1/people", name="api.people.list", response_model=list[PersonOut],
            tags=["people"])
def people_api(db: Annotated[DbSession, Depends(deps.db)]) -> list[PersonOut]:
    return [person_out(p) for p in _people(db)]


@router.get("/api/v1/people/{person_id}", name="api.people.get", response_model=PersonOut,
            responses=deps.ERRORS, tags=["people"])
def person_api(person_id: str, db: Annotated[DbSession, Depends(deps.db)]) -> PersonOut:
    return person_out(person_or_404(db, person_id))


@router.post("/api/v1/people", name="api.people.create", response_model=PersonOut,
             status_code=201, responses=deps.ERRORS, tags=["people"])
def person_create_api(
    request: Request, body: PersonCreate, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> PersonOut:
    person = deps.change(db, services.create_person, who.username, body.model_dump(),
                         now=deps.now(request))
    return person_out(person)


@router.patch("/api/v1/people/{person_id}", name="api.people.update", response_model=PersonOut,
              responses=deps.ERRORS, tags=["people"])
def person_update_api(
    request: Request, person_id: str, body: PersonUpdate,
    db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> PersonOut:
    patch = body.model_dump(include=body.model_fields_set)
    person = deps.change(db, services.update_person, who.username, person_id, patch,
                         now=deps.now(request))
    return person_out(person)


@router.post("/api/v1/people/{person_id}/cards", name="api.cards.create",
             response_model=CardOut, status_code=201, responses=deps.ERRORS, tags=["people"])
def card_create_api(
    request: Request, person_id: str, body: CardIn, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> CardOut:
    card = deps.change(db, services.enrol_card, who.username, person_id, body.uid,
                       label=body.label, now=deps.now(request))
    return CardOut.model_validate(card, from_attributes=True)


@router.post("/api/v1/cards/{uid}/revoke", name="api.cards.revoke", response_model=CardOut,
             responses=deps.ERRORS, tags=["people"])
def card_revoke_api(
    request: Request,
    uid: Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{4,64}$")],
    db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> CardOut:
    card = deps.change(db, services.revoke_card, who.username, uid, now=deps.now(request))
    return CardOut.model_validate(card, from_attributes=True)
