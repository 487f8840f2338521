"""The review queue and an item's page (evidence inline, history, actions), and their API.

``router`` is one of ``dashboard.app.routers()``; its roles are rows of
``dashboard.auth.roles.ROLE_MATRIX``. The old anomaly and finding pages redirect here.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.camera.store import stills_for
from dashboard.camera.web import still_key
from dashboard.labels import rule_explanation
from dashboard.labels.review import ITEM_KINDS, RULES, rule_of
from dashboard.models.anomalies import Anomaly
from dashboard.review import actions
from dashboard.review.api import ActionIn, item_out
from dashboard.review.evidence import history, item_strip
from dashboard.review.queue import Filters, queue, weekly_by_severity
from dashboard.review.sentences import Evidence, fields_of, sentence
from dashboard.web import deps

router = APIRouter()
Db = Annotated[DbSession, Depends(deps.db)]
Who = Annotated[Principal, Depends(deps.principal)]

ERRORS = (("a reason is required", "review.error.reason"),
          ("only identical", "review.error.mixed"),
          ("critical items", "review.error.critical"),
          ("no longer open", "review.error.state"),
          ("cannot", "review.error.state"),
          ("choose at least", "review.error.none"),
          ("not a user", "review.error.assignee"),
          ("no anomaly", "review.error.missing"))


def error_key(exc: Exception) -> str:
    text = str(exc)
    return next((key for part, key in ERRORS if part in text), "review.error.generic")


def all_kinds() -> list[str]:
    return [f"corr.{r}" for r in RULES] + list(ITEM_KINDS)


def parse_filters(request: Request) -> Filters:
    q = request.query_params
    zone = deps.settings(request).zone

    def day(name: str, plus: int = 0) -> datetime | None:
        value = q.get(name, "")
        try:
            d = date.fromisoformat(value) if value else None
        except ValueError:
            return None
        return datetime(d.year, d.month, d.day, tzinfo=zone) + timedelta(days=plus) \
            if d else None

    page = q.get("page", "1")
    return Filters(
        state=q.get("state", "open") if q.get("state", "open") in (
            "open", "acknowledged", "resolved", "unresolved", "all") else "open",
        severity=q.get("severity", "") if q.get("severity", "") in (
            "critical", "warning", "info") else "",
        kind=q.get("kind", "") if q.get("kind", "") in all_kinds() else "",
        person=q.get("person", "")[:64], place=q.get("place", "")[:64],
        since=day("since"), until=day("until", 1), assignee=q.get("assignee", "")[:64],
        sort=q.get("sort", "at") if q.get("sort") in ("at", "severity", "kind", "state",
                                                      "last_seen") else "at",
        desc=q.get("desc", "1") != "0", page=int(page) if page.isdigit() else 1,
    )


def queue_context(request: Request, db: DbSession, f: Filters) -> dict[str, Any]:
    n = deps.names(request)
    t = deps.translator(request)
    mine = scope.node_filter(deps.principal(request), Anomaly.node)
    page = queue(db, n, f, scope=mine)
    ev = Evidence.load(db, page.items)
    rows = [(a, sentence(a, ev, t, n)) for a in page.items]
    since = deps.now(request) - timedelta(weeks=12)
    return {
        "f": f, "page": page, "rows": rows, "kinds": all_kinds(),
        "link": lambda **change: "/review?" + urlencode(f.query_args(**change)),
        "since_value": request.query_params.get("since", ""),
        "until_value": request.query_params.get("until", ""),
        "weekly": weekly_by_severity(db, since, deps.settings(request).zone, mine),
        "users": [u.username for u in actions.assignable(db)],
    }


@router.get("/review", name="review.page", include_in_schema=False)
def review_page(request: Request, db: Db) -> Response:
    return deps.render(request, "review/queue.html",
                       queue_context(request, db, parse_filters(request)))


def _item(db: DbSession, anomaly_id: deps.RowId, who: Principal) -> Anomaly:
    scope.require_site_row(db, who, Anomaly.id, anomaly_id, Anomaly.node, "review item")
    row = db.get(Anomaly, anomaly_id)
    if row is None:
        raise HTTPException(status_code=404, detail="no such review item")
    return row


def item_context(request: Request, db: DbSession, a: Anomaly) -> dict[str, Any]:
    n, t = deps.names(request), deps.translator(request)
    ev = Evidence.load(db, [a])
    finding = ev.findings.get(a.id)
    rule = rule_of(a.kind)
    record = (a.detail or {}).get("record")  # the event behind a node's alarm (node:seq)
    stills = stills_for(db, still_key(request), [(record, a.at or a.first_seen_at)],
                        now=deps.now(request)) if isinstance(record, str) else {}
    return {
        "stills": [s for found in stills.values() for s in found],
        "a": a, "finding": finding, "sentence": sentence(a, ev, t, n),
        "facts": fields_of(a, ev, t, n), "strip": item_strip(db, a, finding),
        "explanation": rule_explanation(rule, t.lang) if rule else "",
        "history": history(db, a.id), "users": [u.username for u in actions.assignable(db)],
    }


@router.get("/review/{anomaly_id}", name="review.item", include_in_schema=False)
def review_item(request: Request, anomaly_id: deps.RowId, db: Db, who: Who) -> Response:
    ctx = item_context(request, db, _item(db, anomaly_id, who))
    return deps.render(request, "review/item.html", ctx)


def _act(request: Request, db: DbSession, anomaly_id: deps.RowId, fn: Any, *args: Any,
         back: str = "") -> Response:
    who = deps.principal(request)
    _item(db, anomaly_id, who)  # another site's item: 404, nothing done
    try:
        fn(db, *args, now=deps.now(request))
        db.commit()
    except actions.AnomalyError as exc:
        db.rollback()
        a = _item(db, anomaly_id, who)
        ctx = item_context(request, db, a)
        ctx.update(error=deps.translator(request)(error_key(exc)),
                   typed=request.scope.get("state", {}).get("typed", {}))
        return deps.render(request, "review/item.html", ctx, 409)
    return RedirectResponse(back or f"/review/{anomaly_id}?msg=common.saved", status_code=303)


Reason = Annotated[str, Form(max_length=2000)]


def _typed(request: Request, **values: str) -> None:
    request.scope.setdefault("state", {})["typed"] = values


@router.post("/review/{anomaly_id}/acknowledge", name="review.acknowledge",
             include_in_schema=False)
def review_acknowledge(request: Request, anomaly_id: deps.RowId, db: Db, who: Who,
                       reason: Reason = "") -> Response:
    _typed(request, reason=reason)
    return _act(request, db, anomaly_id, actions.anomalies.acknowledge, who.username,
                anomaly_id, reason)


@router.post("/review/{anomaly_id}/resolve", name="review.resolve", include_in_schema=False)
def review_resolve(request: Request, anomaly_id: deps.RowId, db: Db, who: Who,
                   reason: Reason = "") -> Response:
    _typed(request, resolve_reason=reason)
    return _act(request, db, anomaly_id, actions.anomalies.resolve, who.username, anomaly_id,
                reason)


@router.post("/review/{anomaly_id}/assign", name="review.assign", include_in_schema=False)
def review_assign(request: Request, anomaly_id: deps.RowId, db: Db, who: Who,
                  assignee: Annotated[str, Form(max_length=64)] = "") -> Response:
    return _act(request, db, anomaly_id, actions.assign, who.username, anomaly_id, assignee)


@router.post("/review/{anomaly_id}/escalate", name="review.escalate", include_in_schema=False)
def review_escalate(request: Request, anomaly_id: deps.RowId, db: Db, who: Who,
                    reason: Reason = "") -> Response:
    _typed(request, escalate_reason=reason)
    return _act(request, db, anomaly_id, actions.escalate, who.username, anomaly_id, reason)


@router.post("/review/bulk-acknowledge", name="review.bulk_acknowledge",
             include_in_schema=False)
def review_bulk(request: Request, db: Db, who: Who, reason: Reason = "",
                ids: Annotated[list[int] | None, Form()] = None,
                back: Annotated[str, Form(max_length=2000)] = "/review") -> Response:
    target = deps.safe_next(back, "/review")
    for one in sorted(set(ids or [])):
        _item(db, one, who)  # one item of another site: 404, nothing acknowledged
    try:
        done = actions.bulk_acknowledge(db, who.username, ids or [], reason,
                                        now=deps.now(request))
        db.commit()
    except actions.AnomalyError as exc:
        db.rollback()
        ctx = queue_context(request, db, parse_filters(request))
        ctx.update(error=deps.translator(request)(error_key(exc)), bulk_reason=reason,
                   chosen=set(ids or []))
        return deps.render(request, "review/queue.html", ctx, 409)
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}msg=review.bulk_done&n={len(done)}", status_code=303)


# -- JSON API ---------------------------------------------------------------------------------


@router.get("/api/v1/review", name="api.review.list", tags=["review"])
def review_api(request: Request, db: Db, who: Who,
               lang: Annotated[str, Query(pattern="^(ja|en)$")] = "ja") -> dict[str, Any]:
    """The queue (same filters as the page: state, severity, kind, person, place, since,
    until, assignee, sort, desc, page), each item with its sentence in ``lang``."""
    f = parse_filters(request)
    n = deps.names(request)
    n.lang = lang
    t = deps.translator(request)
    t.lang = lang
    page = queue(db, n, f, scope=scope.node_filter(who, Anomaly.node))
    ev = Evidence.load(db, page.items)
    return {"total": page.total, "page": page.page, "pages": page.pages,
            "by_state": page.by_state, "by_severity": page.by_severity,
            "by_kind": page.by_kind,
            "items": [item_out(a, ev, t, n).model_dump(mode="json") for a in page.items]}


@router.get("/api/v1/review/{anomaly_id}", name="api.review.get", tags=["review"],
            responses=deps.ERRORS)
def review_item_api(request: Request, anomaly_id: deps.RowId, db: Db, who: Who,
                    lang: Annotated[str, Query(pattern="^(ja|en)$")] = "ja") -> dict[str, Any]:
    a = _item(db, anomaly_id, who)
    n, t = deps.names(request), deps.translator(request)
    n.lang = t.lang = lang
    out = item_out(a, Evidence.load(db, [a]), t, n).model_dump(mode="json")
    out["history"] = [vars(s) | {"at": s.at.isoformat()} for s in history(db, a.id)]
    return out


@router.post("/api/v1/review/{anomaly_id}/{action}", name="api.review.act", tags=["review"],
             responses=deps.ERRORS)
def review_act_api(request: Request, anomaly_id: deps.RowId, action: str, body: ActionIn, db: Db,
                   who: Who) -> dict[str, Any]:
    """acknowledge, resolve or escalate (with ``reason``), or assign (to ``assignee``)."""
    now = deps.now(request)
    steps: dict[str, Any] = {
        "acknowledge": lambda: actions.anomalies.acknowledge(db, who.username, anomaly_id,
                                                            body.reason, now=now),
        "resolve": lambda: actions.anomalies.resolve(db, who.username, anomaly_id,
                                                    body.reason, now=now),
        "escalate": lambda: actions.escalate(db, who.username, anomaly_id, body.reason,
                                             now=now),
        "assign": lambda: actions.assign(db, who.username, anomaly_id, body.assignee, now=now),
    }
    if action not in steps:
        raise HTTPException(status_code=404, detail="actions: acknowledge, resolve, escalate, "
                                                    "assign")
    _item(db, anomaly_id, who)  # another site's item: 404, nothing done
    try:
        steps[action]()
        db.commit()
    except actions.AnomalyError as exc:
        db.rollback()
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return review_item_api(request, anomaly_id, db, who, deps.translator(request).lang)
