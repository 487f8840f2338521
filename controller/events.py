"""One typed payload (the envelope's ``data``) per event kind, and ``KINDS``, the registry of
every kind any node emits: its model, the node roles that may emit it, and its labels.

The door.*, policy.*, node.* and reader.* models live here; the features keep theirs
(``controller.printing.events``, ``backup.events``, ``usb_guard.events``) and are merged into
``KINDS``. Emitters hand the model itself to ``emit(kind, model)``; the node runtime refuses a
kind that is not registered and any object that is not that kind's model. The dashboard
validates the ``data`` of the kinds it projects with ``KINDS[kind].model``. No payload carries
an individual number; card UIDs are hardware serials, not personal numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field

from backup import events as backup
from controller import card_events as cards
from controller.camera import events as camera
from controller.envelope import ClockState
from controller.host import events as host
from controller.printing import events as printing
from controller.receipts import RefusalReason
from readers.base import FailureReason
from usb_guard import events as usb

_CFG = ConfigDict(extra="forbid", frozen=True)
DoorId = Annotated[str, Field(min_length=1, max_length=64)]  # a [[doors]] id (controller.door)
Via = Literal["grant", "rex"]  # what unlocked the door
OpenVia = Literal["grant", "rex", "forced", "unknown"]  # how an opening began


class Emit(Protocol):
    """Where features hand their events: the node runtime's ``emit`` (journal first), or a
    stand-in that prints or records them. ``data`` is the model registered for ``kind``."""

    def __call__(self, kind: str, data: BaseModel, /) -> Any: ...


DenialReason = Literal[
    "unknown_card",
    "inactive",
    "expired",
    "not_yet_valid",
    "not_permitted",
    "outside_schedule",
    "anti_passback",
    "awaiting_second_person",
    "same_person_twice",
    "lockdown",
    "no_policy",
    "policy_stale",
    "credential_failed",  # the card did not prove its key: wrong key, replayed or cloned
    "credential_weak",  # a UID-only card at a door that accepts verified cards only
]


class DoorAccess(BaseModel):
    """door.access: one card presented at a door reader, granted or denied with a reason."""

    model_config = _CFG

    door: DoorId
    reader: str
    direction: Literal["in", "out"]
    granted: bool
    reason: DenialReason | None = None
    person_id: str | None = None
    second_person_id: str | None = None  # the partner in a two-person grant
    card: str | None = None  # the UID presented (uppercase hex)
    policy_version: int | None = None
    # how far the card proved itself (readers.verify): verified, weak (UID only) or failed
    credential: Literal["verified", "weak", "failed"] | None = None
    card_type: Literal["desfire", "felica_lite_s", "uid"] | None = None
    credential_key: str | None = None  # id of the site key that verified it (never the key)
    credential_detail: str | None = Field(default=None, max_length=160)  # why not verified


class DoorTwoPersonPending(BaseModel):
    """door.two_person_pending: first authorised card of a pair; waits for a second person."""

    model_config = _CFG

    door: DoorId
    reader: str
    person_id: str
    window_s: int


class DoorOpened(BaseModel):
    """door.opened: the contact opened while the door was unlocked (by a grant or REX)."""

    model_config = _CFG

    door: DoorId
    via: Via
    person_id: str | None = None
    reason: str | None = None  # why the grant was given, e.g. "access", "two_person", "remote"


class DoorClosed(BaseModel):
    model_config = _CFG

    door: DoorId
    open_s: float = Field(ge=0)
    via: OpenVia  # how the opening that just ended began


class DoorForced(BaseModel):
    """door.forced: the contact opened while the door was locked and no REX or grant."""

    model_config = _CFG

    door: DoorId
    lockdown: bool = False


class DoorHeldOpen(BaseModel):
    """door.held_open: open longer than held_open_s (emitted once per opening)."""

    model_config = _CFG

    door: DoorId
    open_s: float = Field(ge=0)
    via: OpenVia
    person_id: str | None = None


class DoorRex(BaseModel):
    """door.rex: the request-to-exit button was pressed (egress works even in lockdown)."""

    model_config = _CFG

    door: DoorId
    lockdown: bool = False


class DoorLockdown(BaseModel):
    model_config = _CFG

    door: DoorId
    on: bool


PolicyReason = Literal[
    "unsigned",
    "bad_signature",
    "unknown_key",
    "older_version",
    "version_conflict",
    "malformed",
    "wrong_site",
    "wrong_node",  # a slice signed for another node
    "expired",  # past its expires_at
    "no_card_key",  # hashed cards and no card key on this node
    "card_keys_unreadable",  # sealed card master keys that do not open with this node's key
]


class PolicyApplied(BaseModel):
    model_config = _CFG

    version: int
    issued_at: datetime
    key_id: str
    digest: str
    source: str  # "mqtt", "file", "stored" (re-loaded from disk at start-up)
    persisted: bool  # False: applied in memory but the disk refused the write


class PolicyRejected(BaseModel):
    model_config = _CFG

    reason: PolicyReason
    version: int | None = None
    detail: str = Field(default="", max_length=200)
    source: str



class NodePolicyStale(BaseModel):
    """node.policy_stale: the policy in force went past its expiry (no newer one arrived);
    ``mode`` "closed": the node now denies as if it had none; "last_good": it keeps deciding."""

    model_config = _CFG

    version: int
    expires_at: datetime
    mode: Literal["closed", "last_good"]


class NodeStarted(BaseModel):
    """node.started: the runtime started; ``resumed_after`` is the journal's last seq before."""

    model_config = _CFG

    boot: str
    resumed_after: int = Field(ge=0)


class NodeStopped(BaseModel):
    model_config = _CFG

    boot: str


class NodeReceiptRefused(BaseModel):
    """node.receipt_refused: acks or resend requests this node refused (forged, replayed, not
    its own...), ``count`` of them since the last such event for the same reason."""

    model_config = _CFG

    what: Literal["ack", "resend", "enrol"]
    reason: RefusalReason
    count: int = Field(ge=1)


class NodeClock(BaseModel):
    """node.clock: the node's clock became synchronised or lost its synchronisation."""

    model_config = _CFG

    state: ClockState
    offset_s: float | None = None  # the node's clock minus its time source, when known


class ReaderUnboundTap(BaseModel):
    """reader.unbound_tap: a card at a reader the config binds to no door or printer."""

    model_config = _CFG

    reader: str


class _ReaderLink(BaseModel):
    model_config = _CFG

    reader: str
    detail: str = ""


class ReaderConnected(_ReaderLink):
    """reader.connected: a reader appeared (plugged in, or found at start)."""


class ReaderDisconnected(_ReaderLink):
    """reader.disconnected: a reader went away; its door is reachable only by REX or key."""


class ReaderReadFailed(BaseModel):
    """reader.read_failed: a card was presented but its UID could not be read."""

    model_config = _CFG

    reader: str
    reason: FailureReason
    detail: str = ""  # hex status words, error codes, lengths (never a guessed UID)


class ReaderTamper(BaseModel):
    """reader.tamper: the reader reports its housing opened or pulled off (``active``), or
    closed again (OSDP local status)."""

    model_config = _CFG

    reader: str
    active: bool
    detail: str = ""


class ReaderPower(BaseModel):
    """reader.power: the reader reports its supply failed (``failed``) or came back."""

    model_config = _CFG

    reader: str
    failed: bool
    detail: str = ""


class ReaderSecureRefused(BaseModel):
    """reader.secure_refused: a reader failed the secure channel (wrong or default key, or no
    OSDP SC) and is not listened to (``active``), or got through with its key again."""

    model_config = _CFG

    reader: str
    active: bool
    detail: str = ""


# -- the registry --------------------------------------------------------------------------------

NodeRole = Literal["door_gateway", "print_station", "host_agent", "backup_job"]
NODE_ROLES: frozenset[NodeRole] = frozenset(get_args(NodeRole))
_DOOR: frozenset[NodeRole] = frozenset({"door_gateway"})  # doors, racks and their readers
_READERS: frozenset[NodeRole] = frozenset({"door_gateway", "print_station"})
_PRINT: frozenset[NodeRole] = frozenset({"print_station"})
_HOST: frozenset[NodeRole] = frozenset({"host_agent"})  # usb.* and host.* (a room PC's agent)
_BACKUP: frozenset[NodeRole] = frozenset({"backup_job"})


class Label(NamedTuple):
    ja: str
    en: str

    def text(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


@dataclass(frozen=True, slots=True)
class KindSpec:
    model: type[BaseModel]
    roles: frozenset[NodeRole]  # the node roles that may emit this kind
    label: Label


def _k(model: type[BaseModel], roles: frozenset[NodeRole], ja: str, en: str) -> KindSpec:
    return KindSpec(model, roles, Label(ja, en))


KINDS: dict[str, KindSpec] = {
    "door.access": _k(DoorAccess, _DOOR, "入退室", "Door access"),
    "door.two_person_pending": _k(DoorTwoPersonPending, _DOOR, "二名認証待ち",
                                  "Awaiting second person"),
    "door.opened": _k(DoorOpened, _DOOR, "扉開", "Door opened"),
    "door.closed": _k(DoorClosed, _DOOR, "扉閉", "Door closed"),
    "door.forced": _k(DoorForced, _DOOR, "強制開扉", "Door forced open"),
    "door.held_open": _k(DoorHeldOpen, _DOOR, "扉開放時間超過", "Door held open"),
    "door.rex": _k(DoorRex, _DOOR, "退室ボタン操作", "Request to exit"),
    "door.lockdown": _k(DoorLockdown, _DOOR, "ロックダウン", "Lockdown"),
    "reader.unbound_tap": _k(ReaderUnboundTap, _READERS, "未割当リーダーでのタッチ",
                             "Tap at an unassigned reader"),
    "reader.connected": _k(ReaderConnected, _READERS, "リーダー接続", "Reader connected"),
    "reader.disconnected": _k(ReaderDisconnected, _READERS, "リーダー切断",
                              "Reader disconnected"),
    "reader.read_failed": _k(ReaderReadFailed, _READERS, "カード読取エラー", "Card read failed"),
    "reader.tamper": _k(ReaderTamper, _READERS, "リーダーのいたずら検知", "Reader tamper"),
    "reader.power": _k(ReaderPower, _READERS, "リーダー電源異常", "Reader power"),
    "reader.secure_refused": _k(ReaderSecureRefused, _READERS, "リーダー暗号化通信の拒否",
                                "Reader refused (secure channel)"),
    cards.KIND_ENROLMENT: _k(cards.CardEnrolment, _DOOR, "カード発行", "Card personalisation"),
    cards.KIND_REKEYED: _k(cards.CardRekeyed, _DOOR, "カード鍵の更新", "Card re-keyed"),
    printing.PRINT_RELEASE: _k(printing.PrintReleasePayload, _PRINT, "印刷出力", "Print released"),
    printing.PRINT_DENIED: _k(printing.PrintDeniedPayload, _PRINT, "印刷拒否", "Print denied"),
    printing.PRINT_EXPIRED: _k(printing.PrintExpiredPayload, _PRINT, "印刷ジョブ期限切れ",
                               "Print jobs expired"),
    usb.KIND_INSERTED: _k(usb.UsbInserted, _HOST, "USB機器接続", "USB device inserted"),
    usb.KIND_REMOVED: _k(usb.UsbRemoved, _HOST, "USB機器取り外し", "USB device removed"),
    host.KIND_LOGON: _k(host.HostLogon, _HOST, "PC ログオン", "PC log-on"),
    host.KIND_LOGOFF: _k(host.HostLogoff, _HOST, "PC ログオフ", "PC log-off"),
    host.KIND_LOCKED: _k(host.HostLocked, _HOST, "PC ロック", "PC locked"),
    host.KIND_UNLOCKED: _k(host.HostUnlocked, _HOST, "PC ロック解除", "PC unlocked"),
    host.KIND_SESSION: _k(host.HostSession, _HOST, "PC セッション", "PC session"),
    host.KIND_SUDO: _k(host.HostSudo, _HOST, "管理者権限の使用", "Administrator command"),
    host.KIND_AUTH_FAILED: _k(host.HostAuthFailed, _HOST, "PC 認証失敗",
                              "PC authentication failed"),
    host.KIND_FILE_ACCESS: _k(host.HostFileAccess, _HOST, "ファイル操作", "File access"),
    host.KIND_HEALTH: _k(host.HostHealth, _HOST, "PC の状態", "PC health"),
    host.KIND_OPLOG_GAP: _k(host.HostOplogGap, _HOST, "操作記録の欠落", "Operations log gap"),
    "backup.snapshot": _k(backup.BackupSnapshot, _BACKUP, "バックアップ完了", "Backup completed"),
    "backup.failed": _k(backup.BackupFailed, _BACKUP, "バックアップ失敗", "Backup failed"),
    "backup.verified": _k(backup.BackupVerified, _BACKUP, "バックアップ検証", "Backup verified"),
    "backup.pruned": _k(backup.BackupPruned, _BACKUP, "バックアップ世代整理", "Backups pruned"),
    camera.KIND_STILL: _k(camera.CameraStill, _READERS, "カメラ静止画", "Camera still"),
    camera.KIND_FAILED: _k(camera.CameraFailed, _READERS, "カメラ撮影失敗", "Camera failed"),
    camera.KIND_SET_ASIDE: _k(camera.CameraSetAside, _READERS, "静止画の送信保留",
                              "Still set aside"),
    # every role: its runtime, its clock, the signed policy it follows
    "node.started": _k(NodeStarted, NODE_ROLES, "ノード起動", "Node started"),
    "node.stopped": _k(NodeStopped, NODE_ROLES, "ノード停止", "Node stopped"),
    "node.clock": _k(NodeClock, NODE_ROLES, "時刻同期状態", "Clock synchronisation"),
    "node.receipt_refused": _k(NodeReceiptRefused, NODE_ROLES, "受領通知の拒否",
                               "Receipt refused"),
    "policy.applied": _k(PolicyApplied, NODE_ROLES, "ポリシー適用", "Policy applied"),
    "policy.rejected": _k(PolicyRejected, NODE_ROLES, "ポリシー拒否", "Policy rejected"),
    "node.policy_stale": _k(NodePolicyStale, NODE_ROLES, "ポリシー期限切れ", "Policy expired"),
}


ROLE_LABELS: dict[str, Label] = {
    "door_gateway": Label("扉ゲートウェイ", "Door gateway"),
    "print_station": Label("印刷ステーション", "Print station"),
    "host_agent": Label("PC エージェント", "Host agent"),
    "backup_job": Label("バックアップジョブ", "Backup job"),
}


def parse_roles(text: str | Iterable[str] | None) -> frozenset[NodeRole]:
    """Roles from their stored form ("door_gateway,print_station") or a list; unknown names
    raise ValueError (a role nobody defined grants nothing, and is a typo to show)."""
    items = (text or "").split(",") if isinstance(text, str) or text is None else list(text)
    names = {r.strip() for r in items if r and r.strip()}
    unknown = names - NODE_ROLES
    if unknown:
        raise ValueError(f"unknown node role(s) {', '.join(sorted(unknown))}; "
                         f"one of {', '.join(sorted(NODE_ROLES))}")
    return frozenset(names)  # type: ignore[arg-type]


def may_emit(kind: str, roles: Iterable[str]) -> bool:
    """May a node holding ``roles`` emit ``kind``? False for a kind that is not registered."""
    spec = KINDS.get(kind)
    return spec is not None and not spec.roles.isdisjoint(roles)


def payload_error(kind: str, data: object) -> str | None:
    """Why ``data`` cannot be emitted as ``kind`` (not registered, or not its model), or None."""
    spec = KINDS.get(kind)
    if spec is None:
        return f"event kind {kind!r} is not registered in controller.events.KINDS"
    if type(data) is not spec.model:
        return (f"event data for {kind} must be a {spec.model.__name__} model, "
                f"not {type(data).__name__}")
    return None


# -- denial reasons, as people read them ---------------------------------------------------------

DOOR_DENIAL_LABELS: dict[str, Label] = {
    "unknown_card": Label("未登録カード", "Unknown card"),
    "inactive": Label("利用停止中", "Person inactive"),
    "expired": Label("有効期限切れ", "Expired"),
    "not_yet_valid": Label("有効期間開始前", "Not yet valid"),
    "not_permitted": Label("通行権限なし", "Not permitted"),
    "outside_schedule": Label("通行可能時間外", "Outside schedule"),
    "anti_passback": Label("アンチパスバック", "Anti-passback"),
    "awaiting_second_person": Label("二人目の認証待ち", "Awaiting second person"),
    "same_person_twice": Label("同一人物の重複認証", "Same person twice"),
    "lockdown": Label("ロックダウン中", "Lockdown"),
    "no_policy": Label("ポリシー未受信", "No policy loaded"),
    "policy_stale": Label("ポリシー期限切れ", "Policy expired"),
    "credential_failed": Label("カード認証失敗（複製の疑い）",
                               "Card failed its check (possible clone)"),
    "credential_weak": Label("弱い認証のカード（UIDのみ）", "Weak card (UID only)"),
}

# how far a card proved itself (DoorAccess.credential)
CREDENTIAL_LABELS: dict[str, Label] = {
    "verified": Label("検証済み", "Verified"),
    "weak": Label("弱い", "Weak"),
    "failed": Label("認証失敗", "Failed"),
}

PRINT_DENIAL_LABELS: dict[str, Label] = {
    "unknown_card": Label("未登録カード", "Unknown card"),
    "no_right": Label("印刷権限なし", "No print right"),
    "not_in_room": Label("入室記録なし", "Not in the room"),
    "no_jobs": Label("保留ジョブなし", "No held jobs"),
    "printer_stopped": Label("プリンター停止中", "Printer stopped"),
    "cups_unavailable": Label("印刷サーバー応答なし", "Print server unavailable"),
    "printing_not_configured": Label("印刷機能未設定", "Printing not configured"),
}

# host.logon denials (controller.host.events.LogonDenialReason), the door's style
LOGON_DENIAL_LABELS: dict[str, Label] = {
    "remote": Label("リモート接続(カード不可)", "Remote (the card never counts)"),
    "no_policy": Label("ポリシー未受信", "No policy loaded"),
    "no_reader": Label("カードリーダーなし", "No card reader"),
    "no_card": Label("カードなし", "No card"),
    "unknown_card": Label("未登録カード", "Unknown card"),
    "inactive": Label("利用停止中", "Person inactive"),
    "expired": Label("有効期限切れ", "Expired"),
    "not_yet_valid": Label("有効期間開始前", "Not yet valid"),
    "wrong_account": Label("本人のアカウントではない", "Not the card holder's account"),
    "not_permitted": Label("この PC の利用権限なし", "No right to this PC"),
    "outside_schedule": Label("利用可能時間外", "Outside schedule"),
    "not_in_room": Label("入室記録なし", "Not in the room"),
    "presence_unknown": Label("在室情報なし", "Presence unknown"),
    "wrong_password": Label("パスワード誤り", "Wrong password"),
    "bad_caller": Label("不正な問い合わせ元", "Request from a wrong process"),
}

# host.locked and host.logoff reasons
SESSION_END_LABELS: dict[str, Label] = {
    "card_removed": Label("カード取り外し", "Card removed"),
    "left_room": Label("退室", "Left the room"),
    "card_away": Label("カード不在が続いた", "Card stayed away"),
}

RECEIPT_REFUSAL_LABELS: dict[str, Label] = {
    "malformed": Label("形式不正", "Malformed"),
    "unsigned": Label("署名なし", "Unsigned"),
    "unknown_key": Label("未知の署名鍵", "Unknown signing key"),
    "bad_signature": Label("署名不一致", "Bad signature"),
    "wrong_node": Label("宛先違い", "Addressed to another node"),
    "replayed": Label("再送（古い通番）", "Replayed (older counter)"),
    "beyond_head": Label("未記録の通番", "Beyond the journal head"),
    "not_ours": Label("このノードの記録ではない", "Not this node's record"),
    "too_large_range": Label("範囲が大きすぎる", "Range too large"),
}
