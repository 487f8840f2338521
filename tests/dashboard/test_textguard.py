"""Every service that stores typed text passes it through the one guard, whoever calls it (a
page, the API, the CLI): the number is replaced, the field is named in the request's hits, and
a near-miss is stored as typed. Hardware identifiers (a stick's serial, its digests) keep their
exact value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.numguard import REDACTED
from dashboard import services
from dashboard.anomalies import acknowledge, raise_anomaly, resolve
from dashboard.auth.service import AuthService
from dashboard.media import service as media
from dashboard.models.auth import User
from dashboard.models.media import MediumRecord
from dashboard.reports.certificates import parse_certificate
from dashboard.reports.clients import ClientIn
from dashboard.reports.data import ReportError
from dashboard.reports.inputs import parse
from dashboard.textguard import collecting
from tests.dashboard.media.conftest import add_people, medium_data
from tests.dashboard.web.conftest import PASSWORD, make_settings

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TYPED = "40212345678⑥"  # NFKC: 402123456786, a made-up number that passes the check digit
NEAR = "40212345678⑦"  # wrong check digit


def _person(db: Session, text: str) -> str:
    return services.create_person(db, "admin", {"id": "p9", "name": f"名 {text}"},
                                  now=NOW).name


def _operator_ids(db: Session, text: str) -> str:
    services.create_person(db, "admin", {"id": "p9", "name": "x"}, now=NOW)
    return services.update_person(db, "admin", "p9", {"operator_ids": [f"op {text}"]},
                                  now=NOW).operator_ids[0]


def _door(db: Session, text: str) -> str:
    return services.create_door(db, "admin", {"id": "d9", "name": f"扉 {text}"}, now=NOW).name


def _printer(db: Session, text: str) -> str:
    return services.create_printer(db, "admin", {"id": "m9", "name": f"複合機 {text}"},
                                   now=NOW).name


def _group(db: Session, text: str) -> str:
    return services.create_group(db, "admin", {"id": "g9", "name": f"班 {text}"}, now=NOW).name


def _card_label(db: Session, text: str) -> str:
    services.create_person(db, "admin", {"id": "p9", "name": "x"}, now=NOW)
    return services.enrol_card(db, "admin", "p9", "0A0B0C0D", label=f"社員証 {text}",
                               now=NOW).label


def _medium(db: Session, text: str) -> str:
    add_people(db)
    row = media.register_medium(db, "admin", medium_data(make=f"San {text}", serial=TYPED),
                                now=NOW)
    assert row.serial == TYPED  # the stick's identity is matched as is: never rewritten
    return row.make


def _medium_note(db: Session, text: str) -> str:
    add_people(db)
    cn = media.register_medium(db, "admin", medium_data(), now=NOW).control_number
    media.mark_lost(db, "admin", cn, {"note": f"棚 {text}"}, now=NOW)
    last = db.scalars(select(MediumRecord).where(MediumRecord.control_number == cn)
                      .order_by(MediumRecord.id.desc())).first()
    assert last is not None
    return str(last.details)


def _ack(db: Session, text: str) -> str:
    a, _ = raise_anomaly(db, "door_forced", dedupe_key="k", now=NOW)
    return acknowledge(db, "admin", a.id, f"確認 {text}", now=NOW).reason or ""


def _resolve(db: Session, text: str) -> str:
    a, _ = raise_anomaly(db, "door_forced", dedupe_key="k", now=NOW)
    return resolve(db, "admin", a.id, f"解決 {text}", now=NOW).reason or ""


def _auth(db: Session) -> AuthService:
    return AuthService(make_settings(Path("/nonexistent")), lambda: db)  # type: ignore[arg-type]


def _user(db: Session, text: str) -> str:
    return _auth(db).create_user(db, username="tanaka", role="auditor", now=NOW,
                                 password=PASSWORD,
                                 display_name=f"田中 {text}").display_name


def _token(db: Session, text: str) -> str:
    user = _auth(db).create_user(db, username="bot", role="auditor", now=NOW,
                                 password=PASSWORD)
    return _auth(db).create_token(db, user_id=user.id, name=f"token {text}", scopes={"read"},
                                  now=NOW)[0].name


CASES: dict[str, tuple[Callable[[Session, str], str], str]] = {
    "person name": (_person, "name"),
    "person operator ids": (_operator_ids, "operator_ids"),
    "door name": (_door, "name"),
    "printer name": (_printer, "name"),
    "group name": (_group, "name"),
    "card label": (_card_label, "label"),
    "medium make": (_medium, "make"),
    "medium note": (_medium_note, "note"),
    "anomaly acknowledge reason": (_ack, "reason"),
    "anomaly resolve reason": (_resolve, "reason"),
    "user display name": (_user, "display_name"),
    "API token name": (_token, "name"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_stored_text_is_guarded(session: Session, case: str) -> None:
    store, field = CASES[case]
    with collecting() as hits:
        stored = store(session, TYPED)
    assert REDACTED in stored and "402123456786" not in stored and TYPED not in stored
    assert field in {h.field for h in hits}


@pytest.mark.parametrize("case", ["person name", "anomaly acknowledge reason", "user display name"])
def test_a_near_miss_is_stored_as_typed(session: Session, case: str) -> None:
    store, _ = CASES[case]
    with collecting() as hits:
        stored = store(session, NEAR)
    assert NEAR in stored and not hits


def test_users_are_found_by_the_redacted_name(session: Session) -> None:
    _user(session, TYPED)
    assert session.query(User).filter(User.display_name == f"田中 {REDACTED}").count() == 1


# What an admin types for a document handed to a client (the client's name, a certificate's
# subject) is refused rather than stored with the marker; the hit is still counted, so the
# page raises the "number found" anomaly like any other.
DOCUMENT_CASES: dict[str, tuple[Callable[[str], object], str]] = {
    "client name": (lambda text: parse(ClientIn, {"name": f"株式会社 {text}"}), "name"),
    "deletion certificate subject": (lambda text: parse_certificate({
        "kind": "numlog", "ref": "r1", "client_id": 1, "person_id": "p1", "reason": "退職",
        "subject": f"対象 {text}"}), "subject"),
}


@pytest.mark.parametrize("case", list(DOCUMENT_CASES))
def test_documents_refuse_a_number_and_count_it(case: str) -> None:
    make, field = DOCUMENT_CASES[case]
    make("山田 太郎")  # the same input without a number is accepted
    with collecting() as hits, pytest.raises(ReportError) as err:
        make(TYPED)
    assert field in str(err.value) and "individual number" in str(err.value)
    assert "402123456786" not in str(err.value) and TYPED not in str(err.value)
    assert [h.field for h in hits] == [field]
