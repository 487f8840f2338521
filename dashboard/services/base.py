"""What every admin service shares: errors, input validation, audit and the policy-dirty flag.

A service function takes ``(session, actor, data)`` (plus keyword ``now``), validates, writes,
appends a hash-chained audit record (who, when, before, after) and, when the change affects what
the nodes enforce, marks the policy dirty so the signer re-publishes. The caller commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import update
from sqlalchemy.orm import Session

from controller.envelope import now_utc
from dashboard.audit import append_audit
from dashboard.models.people import SiteSettings
from dashboard.textguard import GuardedModel


class ServiceError(ValueError):
    """The request is invalid; the message says what to change."""


class NotFound(ServiceError):
    """The record named in the request does not exist."""


class Conflict(ServiceError):
    """The request clashes with existing data (duplicate id, card held by someone else...)."""


Ident = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s/#+]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Actor = str

M = TypeVar("M", bound=BaseModel)


class Input(GuardedModel):
    """An admin change's input. Its text (and so the audit log's, the policy's and the
    reports') holds no individual number: ``GuardedModel`` replaces one in every field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def validate(model: type[M], data: M | dict[str, Any]) -> M:
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
        )
        raise ServiceError(f"invalid {model.__name__}: {problems}") from exc


def check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 64:
        raise ServiceError("actor must name the user making the change (1-64 characters)")
    return actor


def audit(
    session: Session,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    before: Any,
    after: Any,
    now: datetime,
) -> None:
    append_audit(
        session,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        now=now,
    )


def rights_changed(
    session: Session,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    before: Any,
    after: Any,
    now: datetime,
) -> None:
    """Audit a change to people, cards or rights and flag the policy for re-signing."""
    audit(session, actor, action, target_type, target_id, before, after, now)
    mark_policy_dirty(session, now)


def mark_policy_dirty(session: Session, now: datetime) -> None:
    """Flag every site's policy for re-publication (the signer debounces and publishes)."""
    session.execute(update(SiteSettings).values(policy_dirty=True, policy_dirty_at=now))


def when(now: datetime | None) -> datetime:
    return now if now is not None else now_utc()


# -- sites (many sites, issue 24) ---------------------------------------------------------------
# ``within``: the site a site-scoped editor manages (None: headquarters, every site). A row of
# another site is "not found", with the same words as a row that does not exist.
Site = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


def new_site(session: Session, given: str | None, within: str | None) -> str:
    """The site of a row being made: a site's editor makes rows of its own site only;
    headquarters names one, or gets the installation's one site (several: it must name it)."""
    if within is not None and given not in (None, within):
        raise ServiceError(f"you manage site {within} only")
    site = within or given
    if site is None:
        from dashboard.models.people import single_site

        try:
            site = single_site(session.connection())
        except ValueError as exc:
            raise ServiceError(str(exc)) from exc
    return site


def visible(row_site: str | None, within: str | None) -> bool:
    return within is None or row_site == within
