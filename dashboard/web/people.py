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
from dashboard.auth import scope
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
    site: str = ""  # the home site (many sites)




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
    site: Ident | None = None  # headquarters: the home site (default: the installation's)


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
    site: Ident = None  # type: ignore[assignment]  # headquarters moves a person's home


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: str = Field(pattern=r"^[0-9A-Fa-f]{4,64}$", description="hex digits, no separators")
    label: str = Field(default="", max_length=128)


def _day(value: Any) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def person_out(p: Person, who: Principal | None = None) -> PersonOut:
    """The person as ``who`` sees them: only the groups (rights) of its site."""
    return PersonOut(
        id=p.id, name=p.name, active=p.active, valid_from=_day(p.valid_from),
        valid_until=_day(p.valid_until), operator_ids=list(p.operator_ids or []),
        cups_users=list(p.cups_users or []), host_accounts=list(p.host_accounts or []),
        groups=[g.id for g in p.groups if who is None or scope.sees_site(who, g.site)],
        cards=[CardOut.model_validate(c, from_attributes=True) for c in p.cards],
        site=p.site,
    )


def _people(db: DbSession, who: Principal) -> list[Person]:
    q = select(Person).options(selectinload(Person.cards), selectinload(Person.groups))
    return list(db.scalars(scope.in_site(q.order_by(Person.id), who, Person.site)))


def person_or_404(db: DbSession, person_id: str, who: Principal | None = None) -> Person:
    """The person, or 404 when there is none or (``who`` scoped to a site) they are another
    site's: the same answer, so a URL does not tell whether another site's person exists."""
    person = db.get(Person, person_id)
    if person is None or (who is not None and not scope.sees_site(who, person.site)):
        raise HTTPException(status_code=404, detail=f"no person {person_id!r}")
    return person


def site_choices(request: Request, who: Principal) -> list[str]:
    """The sites a new row may be given (headquarters of a dashboard with several sites);
    empty: the row takes the account's site or the installation's one site."""
    settings = deps.settings(request)
    if who.site is not None or not settings.sites:
        return []
    return sorted({settings.site, *settings.sites})


# -- pages ------------------------------------------------------------------------------------


def _list_page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    who = deps.principal(request)
    return deps.render(request, "people.html", {
        "people": _people(db, who), "error": error, "sites": site_choices(request, who),
        "visible": lambda g: scope.sees_site(who, g.site)}, status)


@router.get("/people", name="people.page", include_in_schema=False)
def people_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _list_page(request, db)


@router.post("/people", name="people.create", include_in_schema=False)
def people_create(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    id: Annotated[str, Form(max_length=128)],  # noqa: A002
    name: Annotated[str, Form(max_length=200)],
    site: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        deps.change(db, services.create_person, who.username,
                    {"id": id, "name": name, "site": site or None}, now=deps.now(request),
                    within=who.site)
    except HTTPException as exc:
        return _list_page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    return RedirectResponse(f"/people/{id}?msg=common.saved", status_code=303)


def detail_page(request: Request, db: DbSession, person_id: str, *, error: str = "",
                 flash: str = "", status: int = 200) -> Response:
    who = deps.principal(request)
    person = person_or_404(db, person_id, who)
    # the groups this account may give (a site's: its site's; a person may hold rights at
    # other sites too, through those sites' groups)
    groups = list(db.scalars(scope.in_site(select(Group).order_by(Group.id), who, Group.site)))
    ctx: dict[str, Any] = {"p": person_out(person, who), "groups": groups, "error": error}
    if flash:
        ctx["flash"] = flash
    for route_name, section in request.app.state.person_sections:  # e.g. the person's prints
        if allowed(route_name, who.role) and scope.may_call(who, route_name):
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
    person_or_404(db, person_id, who)
    try:
        deps.change(db, services.update_person, who.username, person_id, patch,
                    now=deps.now(request), within=who.site)
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
    person_or_404(db, person_id, who)
    try:
        deps.change(db, services.enrol_card, who.username, person_id, uid, label=label,
                    now=deps.now(request), within=who.site)
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
    person_or_404(db, person_id, who)
    try:
        deps.change(db, services.revoke_card, who.username, uid, now=deps.now(request),
                    within=who.site)
    except HTTPException as exc:
        return detail_page(request, db, person_id, error=deps.error_text(request, exc.detail),
                           status=exc.status_code)
    return RedirectResponse(f"/people/{person_id}?msg=common.saved", status_code=303)


# -- JSON API ---------------------------------------------------------------------------------


@router.get("/api/v1/people", name="api.people.list", response_model=list[PersonOut],
            tags=["people"])
def people_api(db: Annotated[DbSession, Depends(deps.db)],
               who: Annotated[Principal, Depends(deps.principal)]) -> list[PersonOut]:
    return [person_out(p, who) for p in _people(db, who)]


@router.get("/api/v1/people/{person_id}", name="api.people.get", response_model=PersonOut,
            responses=deps.ERRORS, tags=["people"])
def person_api(person_id: str, db: Annotated[DbSession, Depends(deps.db)],
               who: Annotated[Principal, Depends(deps.principal)]) -> PersonOut:
    return person_out(person_or_404(db, person_id, who), who)


@router.post("/api/v1/people", name="api.people.create", response_model=PersonOut,
             status_code=201, responses=deps.ERRORS, tags=["people"])
def person_create_api(
    request: Request, body: PersonCreate, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> PersonOut:
    person = deps.change(db, services.create_person, who.username, body.model_dump(),
                         now=deps.now(request), within=who.site)
    return person_out(person, who)


@router.patch("/api/v1/people/{person_id}", name="api.people.update", response_model=PersonOut,
              responses=deps.ERRORS, tags=["people"])
def person_update_api(
    request: Request, person_id: str, body: PersonUpdate,
    db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> PersonOut:
    patch = body.model_dump(include=body.model_fields_set)
    person = deps.change(db, services.update_person, who.username, person_id, patch,
                         now=deps.now(request), within=who.site)
    return person_out(person, who)


@router.post("/api/v1/people/{person_id}/cards", name="api.cards.create",
             response_model=CardOut, status_code=201, responses=deps.ERRORS, tags=["people"])
def card_create_api(
    request: Request, person_id: str, body: CardIn, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> CardOut:
    card = deps.change(db, services.enrol_card, who.username, person_id, body.uid,
                       label=body.label, now=deps.now(request), within=who.site)
    return CardOut.model_validate(card, from_attributes=True)


@router.post("/api/v1/cards/{uid}/revoke", name="api.cards.revoke", response_model=CardOut,
             responses=deps.ERRORS, tags=["people"])
def card_revoke_api(
    request: Request,
    uid: Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{4,64}$")],
    db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> CardOut:
    card = deps.change(db, services.revoke_card, who.username, uid, now=deps.now(request),
                       within=who.site)
    return CardOut.model_validate(card, from_attributes=True)
