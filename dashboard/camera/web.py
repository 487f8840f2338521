"""Routes: the nodes' signed still upload, and the still image for the roles that may see it.

``camera.upload`` needs no session or token: a node has neither. It is in PUBLIC_ROUTES and
authenticates itself: the node's Ed25519 signature over (node, still id, SHA-256 of the body),
checked with the node's key for the still's seq, as the ingest checks its events (the approved
key, or a retired one below its handover: dashboard.camera.store). Refusals are counted
(``UPLOAD_REFUSALS``); a bad signature or a revoked key raises a review item. A revoked key's
refusal is 410 with reason ``key_revoked``: final, the node sets that still aside
(``camera.set_aside``, its own review item naming the door) and sends it no more.

``camera.image`` (security admins and auditors, ROLE_MATRIX) serves one still after checking it
against its signed event, every time; every view, shown or refused for failing its check, is
audited, a browser's re-validation of its copy within one session only once in a while
(dashboard.camera.views).

``camera.cell`` renders one record's stills as the door log shows them (the image only for the
roles above): live pages fetch it when a still of a row they show arrives, or its image was
stored (the bus's ``camera`` message, published after the commit).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from controller.camera.upload import HEADER_NODE, HEADER_SIG, HEADER_STILL
from dashboard.anomalies import raise_anomaly
from dashboard.auth.service import Principal
from dashboard.camera import views
from dashboard.camera.store import (
    StillKey,
    UploadRefused,
    image_for,
    record_of,
    stills_for,
    store_upload,
)
from dashboard.models.events import StoredEvent
from dashboard.web import deps

router = APIRouter()
UPLOAD_REFUSALS: Counter[str] = Counter()
# the refusals that raise a review item (one open item per node and kind)
REFUSAL_ITEMS = {"bad_signature": "camera_upload_refused", "key_revoked": "camera_upload_revoked"}
Db = Annotated[DbSession, Depends(deps.db)]
NodeName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Seq = Annotated[int, Path(ge=1, le=2**63 - 1)]


def still_key(request: Request) -> StillKey:
    key = getattr(request.app.state, "camera_key", None)
    if key is None:
        cfg = deps.settings(request)
        key = request.app.state.camera_key = StillKey.of(cfg.camera, cfg.data_dir)
    return key


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadRefused(413, "bad_size", f"a still is at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UploadRefused(413, "bad_size", f"a still is at most {limit} bytes")
    return bytes(body)


def _store(request: Request, node: str, image: bytes) -> bool:
    cfg = deps.settings(request)
    still_id = request.headers.get(HEADER_STILL, "")[:96]
    with request.app.state.sessionmaker() as db:
        try:
            stored = store_upload(
                db, still_key(request), node=node, still_id=still_id,
                signature=request.headers.get(HEADER_SIG, "")[:200], image=image,
                now=deps.now(request), max_bytes=cfg.camera.max_bytes)
            db.commit()
            bus = request.app.state.bus
            if stored and bus is not None:  # live pages show the row's still now
                bus.publish("camera", {"still": still_id, "record": record_of(db, still_id)})
        except UploadRefused as exc:
            db.rollback()
            if exc.reason in REFUSAL_ITEMS:
                raise_anomaly(db, REFUSAL_ITEMS[exc.reason], dedupe_key=node or "?",
                              now=deps.now(request), node=node or None, severity="critical",
                              subject=f"a still upload for {node} was refused: {exc.reason}",
                              detail={"reason": exc.reason})
                db.commit()
            raise
        except IntegrityError:  # the same still uploaded twice at once: the other one stored
            db.rollback()
            return False
    return stored


@router.post("/api/camera/stills", name="camera.upload", include_in_schema=False)
async def upload_still(request: Request) -> Response:
    cfg = deps.settings(request)
    node = request.headers.get(HEADER_NODE, "")[:64]
    try:
        image = await _body(request, cfg.camera.max_bytes)
        stored = await run_in_threadpool(_store, request, node, image)
    except UploadRefused as exc:
        UPLOAD_REFUSALS[exc.reason] += 1
        return JSONResponse({"detail": str(exc), "reason": exc.reason}, status_code=exc.status)
    return JSONResponse({"stored": stored}, status_code=201 if stored else 200)


@router.get("/camera/stills/{node}/{seq}.jpg", name="camera.image", include_in_schema=False)
def still_image(request: Request, node: NodeName, seq: Seq, db: Db,
                who: Annotated[Principal, Depends(deps.principal)]) -> Response:
    """The image, checked each time; cached by the viewer's browser only, asked again each time
    it is shown: a 304 for the same image, audited as dashboard.camera.views says."""
    still_id, now = f"{node}:{seq}", deps.now(request)
    integrity, image = image_for(db, still_key(request), still_id)
    if image is None:
        views.audit_view(db, who, still_id, integrity, now)
        db.commit()
        raise HTTPException(status_code=404 if integrity in ("missing", "purged") else 409,
                            detail=f"still {still_id}: {integrity}")
    tag = views.etag(hashlib.sha256(image).hexdigest())
    headers = {"ETag": tag, "Cache-Control": views.CACHE_CONTROL}
    if views.matches(request.headers.get("if-none-match", ""), tag):
        if not views.seen_lately(db, who, still_id, now):
            views.audit_view(db, who, still_id, integrity, now, revalidated=True)
            db.commit()
        return Response(status_code=304, headers=headers)
    views.audit_view(db, who, still_id, integrity, now)
    db.commit()
    return Response(image, media_type="image/jpeg", headers=headers)


@router.get("/camera/records/{node}/{seq}/stills", name="camera.cell", include_in_schema=False)
def record_stills(request: Request, node: NodeName, seq: Seq, db: Db) -> Response:
    """The camera cell of one record (a door log row, a live feed row): its stills' checks."""
    record = f"{node}:{seq}"
    ts = db.scalar(select(StoredEvent.ts).where(StoredEvent.node == node, StoredEvent.seq == seq))
    found = stills_for(db, still_key(request), [(record, ts)], now=deps.now(request)
                       ) if ts is not None else {}
    return deps.render(request, "camera/_stills.html", {"stills": found.get(record, [])})
