"""Event kinds and denial reasons as people read them.

The registry of event kinds lives with the nodes (``controller.events.KINDS``, each kind with
its ja/en label, and ``DOOR_DENIAL_LABELS`` / ``PRINT_DENIAL_LABELS``). Until every checkout has
it, these tables answer for the kinds and reasons the nodes emit today; ``kind_pair`` and
``reason_pair`` read the registry first.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

Pair = tuple[str, str]

KINDS: dict[str, Pair] = {
    "door.access": ("入退室", "Door access"),
    "door.two_person_pending": ("二名認証待ち", "Awaiting second person"),
    "door.opened": ("扉開", "Door opened"),
    "door.closed": ("扉閉", "Door closed"),
    "door.forced": ("強制開扉", "Door forced open"),
    "door.held_open": ("扉開放時間超過", "Door held open"),
    "door.rex": ("退室ボタン操作", "Request to exit"),
    "door.lockdown": ("ロックダウン", "Lockdown"),
    "reader.unbound_tap": ("未割当リーダーでのタッチ", "Tap at an unassigned reader"),
    "reader.connected": ("リーダー接続", "Reader connected"),
    "reader.disconnected": ("リーダー切断", "Reader disconnected"),
    "reader.read_failed": ("カード読取エラー", "Card read failed"),
    "reader.tamper": ("リーダーのいたずら検知", "Reader tamper"),
    "reader.power": ("リーダー電源異常", "Reader power"),
    "reader.secure_refused": ("リーダー暗号化通信の拒否", "Reader refused (secure channel)"),
    "print.release": ("印刷出力", "Print released"),
    "print.denied": ("印刷拒否", "Print denied"),
    "print.expired": ("印刷ジョブ期限切れ", "Print jobs expired"),
    "usb.inserted": ("USB機器接続", "USB device inserted"),
    "usb.removed": ("USB機器取り外し", "USB device removed"),
    "backup.snapshot": ("バックアップ完了", "Backup completed"),
    "backup.failed": ("バックアップ失敗", "Backup failed"),
    "backup.verified": ("バックアップ検証", "Backup verified"),
    "backup.pruned": ("バックアップ世代整理", "Backups pruned"),
    "node.started": ("ノード起動", "Node started"),
    "node.stopped": ("ノード停止", "Node stopped"),
    "node.clock": ("時刻同期状態", "Clock synchronisation"),
    "camera.still": ("カメラ静止画", "Camera still"),
    "camera.failed": ("カメラ撮影失敗", "Camera failed"),
    "camera.set_aside": ("静止画の送信保留", "Still set aside"),
    "node.receipt_refused": ("受領通知の拒否", "Receipt refused"),
    "card.enrolment": ("カード発行", "Card personalisation"),
    "card.rekeyed": ("カード鍵の更新", "Card re-keyed"),
    "policy.applied": ("ポリシー適用", "Policy applied"),
    "policy.rejected": ("ポリシー拒否", "Policy rejected"),
    "node.policy_stale": ("ポリシー期限切れ", "Policy expired"),
}

DOOR_REASONS: dict[str, Pair] = {
    "unknown_card": ("未登録カード", "Unknown card"),
    "inactive": ("利用停止中", "Person inactive"),
    "expired": ("有効期限切れ", "Expired"),
    "not_yet_valid": ("有効期間開始前", "Not yet valid"),
    "not_permitted": ("通行権限なし", "Not permitted"),
    "outside_schedule": ("通行可能時間外", "Outside schedule"),
    "anti_passback": ("アンチパスバック", "Anti-passback"),
    "awaiting_second_person": ("二人目の認証待ち", "Awaiting second person"),
    "same_person_twice": ("同一人物の重複認証", "Same person twice"),
    "lockdown": ("ロックダウン中", "Lockdown"),
    "no_policy": ("ポリシー未受信", "No policy loaded"),
    "policy_stale": ("ポリシー期限切れ", "Policy expired"),
    "credential_failed": ("カード認証失敗（複製の疑い）", "Card failed its check (possible clone)"),
    "credential_weak": ("弱い認証のカード（UIDのみ）", "Weak card (UID only)"),
}

# how far a card proved itself at the reader (door.access ``credential``)
CREDENTIALS: dict[str, Pair] = {
    "verified": ("検証済み", "Verified"),
    "weak": ("弱い", "Weak"),
    "failed": ("認証失敗", "Failed"),
}

# a card's type as enrolled (dashboard.services.cards.CREDENTIALS): what proves it
CARD_TYPES: dict[str, Pair] = {
    "uid": ("UID のみ（弱い）", "UID only (weak)"),
    "desfire": ("DESFire（検証済み）", "DESFire (verified)"),
    "felica_lite_s": ("FeliCa Lite-S（検証済み）", "FeliCa Lite-S (verified)"),
}

PRINT_REASONS: dict[str, Pair] = {
    "unknown_card": ("未登録カード", "Unknown card"),
    "no_right": ("印刷権限なし", "No print right"),
    "not_in_room": ("入室記録なし", "Not in the room"),
    "no_jobs": ("保留ジョブなし", "No held jobs"),
    "printer_stopped": ("プリンター停止中", "Printer stopped"),
    "cups_unavailable": ("印刷サーバー応答なし", "Print server unavailable"),
    "printing_not_configured": ("印刷機能未設定", "Printing not configured"),
}


def _registry() -> Any:
    """``controller.events`` once it holds the registry of kinds, else None."""
    try:
        module = import_module("controller.events")
    except ImportError:
        return None
    return module if hasattr(module, "KINDS") else None


def _pair(label: Any) -> Pair | None:
    ja, en = getattr(label, "ja", None), getattr(label, "en", None)
    return (ja, en) if isinstance(ja, str) and isinstance(en, str) else None


def kind_pair(kind: str) -> Pair | None:
    reg = _registry()
    if reg is not None and kind in reg.KINDS:
        pair = _pair(getattr(reg.KINDS[kind], "label", None))
        if pair:
            return pair
    return KINDS.get(kind)


def registry_pair(table_name: str, key: str) -> Pair | None:
    """A label from one of the registry's tables (e.g. LOGON_DENIAL_LABELS)."""
    reg = _registry()
    table = getattr(reg, table_name, {}) if reg is not None else {}
    return _pair(table[key]) if key in table else None


def reason_pair(reason: str, source: str = "door") -> Pair | None:
    reg = _registry()
    table_name = "PRINT_DENIAL_LABELS" if source == "print" else "DOOR_DENIAL_LABELS"
    if reg is not None and reason in getattr(reg, table_name, {}):
        pair = _pair(getattr(reg, table_name)[reason])
        if pair:
            return pair
    return (PRINT_REASONS if source == "print" else DOOR_REASONS).get(reason)


def all_kinds() -> set[str]:
    reg = _registry()
    return set(KINDS) | (set(reg.KINDS) if reg is not None else set())


def all_reasons(source: str) -> set[str]:
    reg = _registry()
    table = PRINT_REASONS if source == "print" else DOOR_REASONS
    name = "PRINT_DENIAL_LABELS" if source == "print" else "DOOR_DENIAL_LABELS"
    return set(table) | (set(getattr(reg, name, {})) if reg is not None else set())
