"""Japanese and English messages of the media pages (their own catalogue, so the shared one
stays untouched); anything not here falls back to the dashboard's translator."""

from __future__ import annotations

from typing import Any

from dashboard.i18n import Translator
from dashboard.labels import states

MESSAGES: dict[str, tuple[str, str]] = {
    "media.title": ("媒体管理台帳", "Media ledger"),
    "media.nav": ("媒体", "Media"),
    "media.register": ("媒体を登録", "Register a medium"),
    "media.control_number": ("管理番号", "Control number"),
    "media.state": ("状態", "State"),
    "media.custodian": ("管理責任者", "Custodian"),
    "media.holder": ("持出者", "Checked out to"),
    "media.purpose": ("利用目的", "Purpose"),
    "media.due_back": ("返却予定", "Due back"),
    "media.approver": ("承認者（別の管理者）", "Approver (a second admin)"),
    "media.approver_password": ("承認者のパスワード", "Approver's password"),
    "media.approved_by": ("承認者", "Approved by"),
    "media.requested_by": ("申請者", "Requested by"),
    "media.make": ("メーカー", "Make"),
    "media.model": ("型番", "Model"),
    "media.media_type": ("媒体の種類", "Media type"),
    "media.capacity": ("容量", "Capacity"),
    "media.vid_pid": ("ベンダーID:製品ID", "Vendor:product ID"),
    "media.serial": ("シリアル番号", "Serial"),
    "media.descriptors": ("ディスクリプタのハッシュ", "Descriptors hash"),
    "media.token_digest": ("媒体トークンのダイジェスト", "Medium token digest"),
    "media.hosts": ("使用可能端末（カンマ区切り、* は全端末）",
                    "Allowed hosts (comma separated, * = any)"),
    "media.allowed_hosts": ("使用可能端末", "Allowed hosts"),
    "media.read_only": ("読み取り専用", "Read-only"),
    "media.filter_state": ("状態", "State"),
    "media.search": ("検索", "Search"),
    "media.export_csv": ("台帳をCSVで出力", "Export ledger (CSV)"),
    "media.usbguard": ("USBGuard ルールを出力", "Export USBGuard rules"),
    "media.check_out": ("持出し", "Check out"),
    "media.return": ("返却", "Return"),
    "media.store": ("保管", "Put in storage"),
    "media.wipe": ("消去", "Wipe"),
    "media.dispose": ("廃棄", "Dispose"),
    "media.lost": ("紛失として記録", "Record as lost"),
    "media.found": ("発見", "Found"),
    "media.settings": ("使用設定", "Use settings"),
    "media.note": ("備考", "Note"),
    "media.method": ("方法", "Method"),
    "media.technique": ("消去手段", "Technique"),
    "media.tool": ("使用ツール（版）", "Tool (version)"),
    "media.verifier": ("検証者（別の人）", "Verifier (another person)"),
    "media.verification": ("検証方法と結果", "Verification"),
    "media.certificate_number": ("証明書番号", "Certificate number"),
    "media.destination": ("行き先", "Destination"),
    "media.certificate": ("消去・廃棄証明書", "Sanitisation certificate"),
    "media.certificate_pdf_ja": ("PDF（日本語）", "PDF (Japanese)"),
    "media.certificate_pdf_en": ("PDF（英語）", "PDF (English)"),
    "media.certificate_csv": ("CSV", "CSV"),
    "media.records": ("履歴", "History"),
    "media.when": ("日時", "When"),
    "media.action": ("操作", "Action"),
    "media.actor": ("実行者", "By"),
    "media.transition": ("状態の変化", "State change"),
    "media.details": ("詳細", "Details"),
    "media.overdue": ("返却期限超過", "Overdue"),
    "media.none": ("媒体はありません", "No media"),
    "media.person_title": ("{name} の媒体", "Media of {name}"),
    "media.holding": ("持出し中・管理中の媒体", "Media held or in custody"),
    "media.history": ("持出し・返却の履歴", "Check-out history"),
    "media.saved": ("保存しました", "Saved"),
    "usb.title": ("USB イベント", "USB events"),
    "usb.host": ("端末", "Host"),
    "usb.kind": ("種類", "Kind"),
    "usb.verdict": ("判定", "Verdict"),
    "usb.rule": ("規則", "Rule"),
    "usb.device": ("デバイス", "Device"),
    "usb.interfaces": ("インターフェース", "Interfaces"),
    "usb.reason": ("理由", "Reason"),
    "usb.inserted": ("接続", "inserted"),
    "usb.removed": ("取外し", "removed"),
    "dest.internal_reuse": ("社内で再利用", "internal reuse"),
    "dest.external_reuse": ("社外で再利用", "external reuse"),
    "dest.recycling": ("リサイクル", "recycling"),
    "dest.manufacturer": ("メーカー返却", "manufacturer"),
    "dest.destroyed": ("破壊", "destroyed"),
    "dest.other": ("その他", "other"),
    # states, actions and verdicts: the console's one table of labels
    **{f"mstate.{k}": v for k, v in states.MEDIA_STATES.items()},
    **{f"maction.{k}": v for k, v in states.MEDIA_ACTIONS.items()},
    **{f"verdict.{k}": v for k, v in states.USB_VERDICTS.items()},
}
STATES = ("registered", "in_storage", "checked_out", "returned", "wiped", "lost", "disposed")
DESTINATIONS = ("destroyed", "recycling", "manufacturer", "internal_reuse", "external_reuse",
                "other")


class MediaText:
    """``m(key)`` in the media templates: this catalogue first, then the dashboard's."""

    def __init__(self, t: Translator) -> None:
        self.t = t

    def __call__(self, key: str, **values: Any) -> str:
        pair = MESSAGES.get(key)
        if pair is None:
            return self.t(key, **values)
        text = pair[0] if self.t.lang == "ja" else pair[1]
        return text.format(**values) if values else text
