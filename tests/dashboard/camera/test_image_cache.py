"""A still's image is a private, re-validated resource: the app's real middleware and routes on
real SQLite. Its ETag is the still's digest; a browser asking again with it gets 304 with no
body, and an auditor reads one view per session (within the window), not one per reload; a new
session, another user, the same session after the window, each add their row; an admin still
gets 403; a still that fails its check is never answered 304."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from controller.camera.events import CameraStill
from controller.camera.upload import HEADER_NODE, HEADER_SIG, HEADER_STILL, sign_upload
from dashboard.camera.store import StillKey
from dashboard.camera.views import VIEW_WINDOW
from dashboard.ingest.core import IngestCore
from dashboard.models import AuditRecord
from dashboard.models.camera import CameraImage
from tests.dashboard.conftest import FakeNode, msg
from tests.dashboard.web.conftest import WebApp, login

JPEG = b"\xff\xd8\xff\xe0" + b"cache" * 400
DIGEST = hashlib.sha256(JPEG).hexdigest()


@pytest.fixture
def still(webapp: WebApp) -> str:
    """A denied tap's still, its event ingested and its image uploaded; its image's URL."""
    gw = FakeNode(site=webapp.settings.site)
    with webapp.sm() as db:
        gw.enrol(db, roles=("door_gateway",))
    record = gw.access("alice", granted=False, reason="unknown_card", door="d1")
    event = gw.event("camera.still", CameraStill(
        camera="door-cam", target="door:d1", record=record.id, record_kind="door.access",
        door="d1", sha256=DIGEST, size=len(JPEG)))
    with webapp.sm() as db:
        IngestCore(site=gw.site).process(db, [msg(record), msg(event)], webapp.clock())
        db.commit()
    r = webapp.client().post("/api/camera/stills", content=JPEG, headers={
        HEADER_NODE: "gw1", HEADER_STILL: event.id, "Content-Type": "image/jpeg",
        HEADER_SIG: sign_upload(gw.key, "gw1", event.id, JPEG)})
    assert r.status_code == 201
    return f"/camera/stills/gw1/{event.seq}.jpg"


def views(webapp: WebApp) -> list[tuple[str, bool]]:
    """(actor, shown from the browser's copy) of every audited view, oldest first."""
    with webapp.sm() as db:
        rows = db.scalars(select(AuditRecord).where(AuditRecord.action == "camera.still_view")
                          .order_by(AuditRecord.seq)).all()
        return [(r.actor, bool((r.after or {}).get("cached"))) for r in rows]


def test_the_image_is_private_revalidated_and_one_view_per_session(webapp: WebApp,
                                                                   still: str) -> None:
    sec, _ = webapp.as_role("security_admin")
    first = sec.get(still)
    assert first.status_code == 200 and first.content == JPEG
    assert first.headers["etag"] == f'"{DIGEST}"'
    cache = first.headers["cache-control"]
    assert cache == "private, no-cache" and "no-store" not in cache  # only the viewer's browser
    assert views(webapp) == [("u_security_admin", False)]

    # the door log reloaded, its live cell fetched again: the browser asks with its ETag
    for _ in range(5):
        again = sec.get(still, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == "private, no-cache"
    assert views(webapp) == [("u_security_admin", False)]  # one view, not six

    # a weak or listed tag is the same copy; a stale tag gets the image (and a row)
    weak = sec.get(still, headers={"If-None-Match": f'"x", W/"{DIGEST}"'})
    assert weak.status_code == 304
    assert sec.get(still, headers={"If-None-Match": '"0"'}).status_code == 200
    assert len(views(webapp)) == 2

    # another user of the same browser (its copy, their session): their own view
    aud, _ = webapp.as_role("auditor")
    assert aud.get(still, headers={"If-None-Match": f'"{DIGEST}"'}).status_code == 304
    assert views(webapp)[-1] == ("u_auditor", True)

    # the same user logged in again: a new session is a new view
    again = webapp.client()
    login(again, "u_security_admin")
    assert again.get(still, headers={"If-None-Match": f'"{DIGEST}"'}).status_code == 304
    assert views(webapp)[-1] == ("u_security_admin", True) and len(views(webapp)) == 4
    assert again.get(still, headers={"If-None-Match": f'"{DIGEST}"'}).status_code == 304
    assert len(views(webapp)) == 4

    # the same session after the window: viewed again
    webapp.clock.advance((VIEW_WINDOW + timedelta(seconds=1)).total_seconds())
    assert sec.get(still, headers={"If-None-Match": f'"{DIGEST}"'}).status_code == 304
    assert len(views(webapp)) == 5
    again.close()

    # an admin gets no image, cached or not, and no view is recorded for it
    admin, _ = webapp.as_role("admin")
    assert admin.get(still).status_code == 403
    assert admin.get(still, headers={"If-None-Match": f'"{DIGEST}"'}).status_code == 403
    assert {a for a, _ in views(webapp)} == {"u_security_admin", "u_auditor"}


def test_a_still_that_fails_its_check_is_never_answered_from_the_cache(webapp: WebApp,
                                                                       still: str) -> None:
    sec, _ = webapp.as_role("security_admin")
    tag = sec.get(still).headers["etag"]
    key = StillKey.of(webapp.settings.camera, webapp.settings.data_dir)
    with webapp.sm.begin() as db:  # someone swaps the stored image
        row = db.scalar(select(CameraImage))
        assert row is not None
        row.nonce, row.ciphertext = key.seal(row.still_id, JPEG[:-1] + b"\x00")
    refused = sec.get(still, headers={"If-None-Match": tag})
    assert refused.status_code == 409 and "etag" not in refused.headers
    assert refused.headers["cache-control"] == "no-store"
    with webapp.sm() as db:
        after = db.scalars(select(AuditRecord.after).where(
            AuditRecord.action == "camera.still_view").order_by(AuditRecord.seq)).all()
    assert [a["integrity"] for a in after] == ["ok", "failing"]
