"""The site card master keys page: each key (state, created when and by whom, the cards on it),
the people whose cards still hold the previous key (to ask them to tap a reader), and the two
changes the `secroom card-keys` command makes: rotate (after a confirmation step) and retire
the previous key (an explicit confirmation while cards are still on it). Both go through
dashboard.cardkeys, so the audit rows are the command's.

The keys are the whole dashboard's (every site's door nodes carry them): a site's account sees
its own site's cards and people only, and cannot rotate or retire (that changes every site);
headquarters' admins and security admins can.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from controller.keys import KeyFileError, load_private
from dashboard import cardkeys
from dashboard.auth.service import Principal
from dashboard.web import deps

router = APIRouter()
Db = Annotated[DbSession, Depends(deps.db)]
Who = Annotated[Principal, Depends(deps.principal)]

def _page(request: Request, db: DbSession, who: Principal, *, error: str = "",
          status: int = 200, confirm_rotate: bool = False) -> Response:
    keys = cardkeys.key_statuses(db, who.site)
    previous = next((k for k in keys if k.state == "previous"), None)
    return deps.render(request, "card_keys.html", {
        "keys": keys, "active": next((k for k in keys if k.state == "active"), None),
        "previous": previous, "stale": cardkeys.cards_on_previous(db, who.site),
        "error": error, "confirm_rotate": confirm_rotate and previous is None,
        "scoped": who.site is not None,
    }, status)


@router.get("/card-keys", name="card_keys.page", include_in_schema=False)
def card_keys_page(request: Request, db: Db, who: Who) -> Response:
    """``?step=rotate``: the rotation's confirmation step."""
    return _page(request, db, who, confirm_rotate=request.query_params.get("step") == "rotate")


def _refused(request: Request, db: DbSession, who: Principal, exc: cardkeys.CardKeyError,
             status: int = 409) -> Response:
    """A refusal of dashboard.cardkeys in the reader's words."""
    db.rollback()
    return _page(request, db, who, error=deps.translator(request)(f"card_keys.error.{exc.code}"),
                 status=status)


@router.post("/card-keys/rotate", name="card_keys.rotate", include_in_schema=False)
def card_keys_rotate(request: Request, db: Db, who: Who,
                     confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    t = deps.translator(request)
    if confirm != "yes":  # only the confirmation step's button sends it
        return _page(request, db, who, error=t("card_keys.error.confirm_rotate"), status=400,
                     confirm_rotate=True)
    key_file = deps.settings(request).policy_key_file
    try:
        assert key_file is not None  # the settings fill it in
        signing_key = load_private(key_file)
    except (KeyFileError, OSError):
        return _page(request, db, who, error=t("card_keys.error.signing_key"), status=409)
    try:
        cardkeys.rotate(db, signing_key, actor=who.username, now=deps.now(request))
        db.commit()
    except cardkeys.CardKeyError as exc:
        return _refused(request, db, who, exc)
    return RedirectResponse("/card-keys?msg=card_keys.rotated", status_code=303)


@router.post("/card-keys/retire", name="card_keys.retire", include_in_schema=False)
def card_keys_retire(request: Request, db: Db, who: Who,
                     key_id: Annotated[str, Form(max_length=32)] = "",
                     cards_left: Annotated[int, Form(ge=0, le=10**9)] = 0,
                     accept: Annotated[bool, Form()] = False) -> Response:
    """``key_id``: the previous key the page showed (a stale page retires nothing);
    ``cards_left`` with ``accept``: how many cards the admin agreed to cut off."""
    t = deps.translator(request)
    previous = [k.key_id for k in cardkeys.key_statuses(db) if k.state == "previous"]
    if not previous:
        return _page(request, db, who, error=t("card_keys.error.no_previous"), status=409)
    if key_id not in previous:
        return _page(request, db, who, error=t("card_keys.error.stale"), status=409)
    try:
        cardkeys.retire_previous(db, actor=who.username, now=deps.now(request),
                                 accept_cards_left=cards_left if accept else 0)
        db.commit()
    except cardkeys.CardKeyError as exc:
        return _refused(request, db, who, exc)
    return RedirectResponse("/card-keys?msg=card_keys.retired", status_code=303)
