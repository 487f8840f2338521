"""The payloads the ingest reads, as their kind's model (``controller.events.KINDS``).

Only the kinds the ingest projects are validated (door access, node health and policy, the door
alarms): validation costs a few microseconds an event, and the other kinds are stored as they
came, for the pages that read them. A payload that fails its model is still stored (the node
signed it: the record must not be lost), counted as ``invalid_payload`` and not projected; a
kind that is not registered is stored and counted as ``unknown_kind``. An alarm kind raises its
anomaly even when its payload is invalid: a malformed record does not hide a forced door.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from controller.camera.events import KIND_FAILED, KIND_SET_ASIDE, CameraFailed, CameraSetAside
from controller.envelope import Event
from controller.events import (
    KINDS,
    DoorForced,
    DoorHeldOpen,
    NodeReceiptRefused,
    PolicyRejected,
    ReaderPower,
    ReaderSecureRefused,
    ReaderTamper,
)
from controller.events import DoorAccess as AccessEvent
from dashboard.ingest.state import AnomalySink

PROJECTED = frozenset(
    {
        "door.access",
        "door.forced",
        "door.held_open",
        "node.started",
        "node.stopped",
        "node.clock",
        "policy.applied",
        "policy.rejected",
        "node.receipt_refused",
        "reader.tamper",
        "reader.power",
        "reader.secure_refused",
        KIND_FAILED,
        KIND_SET_ASIDE,
    }
)
ALARM_KINDS = frozenset({"door.forced", "door.held_open", "policy.rejected",
                         "node.receipt_refused", "reader.tamper", "reader.power",
                         "reader.secure_refused", KIND_FAILED, KIND_SET_ASIDE})
READER_ALARMS = {"reader.tamper": "reader_tamper", "reader.power": "reader_power",
                 "reader.secure_refused": "reader_refused"}
_READER_SUBJECTS = {"reader_tamper": "reported tamper", "reader_power": "lost its power",
                    "reader_refused": "failed the secure channel"}
# the models' own validators, called directly: what model_validate runs, without its ~1 µs of
# per-call overhead (this runs for every door.access the ingest stores)
_VALIDATE = {kind: KINDS[kind].model.__pydantic_validator__.validate_python for kind in PROJECTED}


def validated(event: Event) -> BaseModel | None:
    """The data of an event of a PROJECTED kind as its model; None if it does not fit."""
    try:
        model: BaseModel = _VALIDATE[event.kind](event.data)
    except ValidationError:
        return None
    return model


def raise_credential_failed(event: Event, data: AccessEvent, pending: AnomalySink) -> None:
    """A card that did not prove its key (a clone, a replay, a wrong key): a review item with
    the card's holder and the place. One open item per card and door, counted."""
    pending.add(
        "credential_failed",
        f"{data.door}:{data.card or '?'}",
        node=event.node,
        severity="critical",
        subject=f"card of {data.person_id or 'unknown'} failed its check at {data.door}",
        detail={"at": event.ts, "door": data.door, "reader": data.reader, "card": data.card,
                "person_id": data.person_id, "card_type": data.card_type,
                "why": data.credential_detail},
    )


def raise_alarm(event: Event, data: BaseModel | None, pending: AnomalySink) -> None:
    """The anomaly of an ALARM_KINDS event (``data`` None: its payload did not validate)."""
    detail: dict[str, object] = {"at": event.ts, "record": f"{event.node}:{event.seq}"}
    if data is None:
        detail["invalid_payload"] = True
    if event.kind == "node.receipt_refused":
        what = data.what if isinstance(data, NodeReceiptRefused) else "receipt"
        pending.add(
            "receipt_refused",
            f"{event.node}:{what}",
            node=event.node,
            severity="critical",
            subject=f"{event.node} refused a forged or replayed {what}",
            detail={**detail, "what": what,
                    "reason": data.reason if isinstance(data, NodeReceiptRefused) else None,
                    "count": data.count if isinstance(data, NodeReceiptRefused) else None},
        )
        return
    if event.kind in READER_ALARMS:
        if isinstance(data, ReaderTamper | ReaderSecureRefused) and not data.active:
            return  # the housing closed again / the reader is back under its key
        if isinstance(data, ReaderPower) and not data.failed:
            return  # its power came back
        reader = data.reader if isinstance(data, ReaderTamper | ReaderPower
                                           | ReaderSecureRefused) else "?"
        kind = READER_ALARMS[event.kind]
        pending.add(
            kind,
            f"{event.node}:{reader}",
            node=event.node,
            severity="warning" if kind == "reader_power" else "critical",
            subject=f"reader {reader} {_READER_SUBJECTS[kind]}",
            detail={**detail, "reader": reader},
        )
        return
    if event.kind == "policy.rejected":
        reason = data.reason if isinstance(data, PolicyRejected) else "invalid_payload"
        pending.add(
            "policy_rejected",
            event.node,
            node=event.node,
            severity="critical",
            subject=f"{event.node} rejected the policy",
            detail={"reason": reason},
        )
        return
    if event.kind == KIND_FAILED:
        camera = data.camera if isinstance(data, CameraFailed) else "?"
        if isinstance(data, CameraFailed):
            detail.update(record=data.record, camera=camera, reason=data.reason,
                          target=data.target, door=data.door)
        pending.add(
            "camera_failed",
            f"{event.node}:{camera}",
            node=event.node,
            severity="warning",
            subject=f"camera {camera} gave no still",
            detail=detail,
        )
        return
    if event.kind == KIND_SET_ASIDE:  # stills the dashboard refused for a revoked key
        if isinstance(data, CameraSetAside):
            detail.update(still=data.still, record=data.record, camera=data.camera,
                          door=data.door, reason=data.reason)
        door = data.door if isinstance(data, CameraSetAside) else None
        pending.add(
            "camera_still_set_aside",
            f"{event.node}:{door or '?'}",
            node=event.node,
            severity="warning",
            subject=f"{event.node} set aside a still of {door or '?'}: its key was revoked",
            detail=detail,
        )
        return
    door = data.door if isinstance(data, DoorForced | DoorHeldOpen) else "?"
    detail["door"] = door
    forced = event.kind == "door.forced"
    pending.add(
        "door_forced" if forced else "door_held_open",
        f"{event.node}:{door}",
        node=event.node,
        severity="critical" if forced else "warning",
        subject=f"door {door} forced open" if forced else f"door {door} held open",
        detail=detail,
    )
