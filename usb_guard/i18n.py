"""Japanese and English labels for certificates and ledger exports."""

from __future__ import annotations

from typing import Literal

Lang = Literal["ja", "en"]

LABELS: dict[str, tuple[str, str]] = {
    "certificate_title": ("媒体消去・廃棄証明書", "Media Sanitization Certificate"),
    "certificate_subtitle": ("NIST SP 800-88 に基づく記録", "Record per NIST SP 800-88"),
    "section_person": ("消去実施者", "Person performing sanitization"),
    "section_media": ("媒体情報", "Media information"),
    "section_sanitization": ("消去の詳細", "Sanitization details"),
    "section_destination": ("消去後の媒体の行き先", "Media destination"),
    "section_validation": ("確認者", "Validation"),
    "certificate_number": ("証明書番号", "Certificate number"),
    "organization": ("組織", "Organization"),
    "name": ("氏名", "Name"),
    "title": ("役職", "Title"),
    "location": ("場所", "Location"),
    "phone": ("電話番号", "Phone"),
    "control_number": ("管理番号", "Control number"),
    "media_type": ("媒体の種類", "Media type"),
    "make": ("メーカー", "Make / manufacturer"),
    "model": ("型番", "Model"),
    "serial": ("シリアル番号", "Serial number"),
    "capacity": ("容量", "Capacity"),
    "custodian": ("管理責任者", "Custodian"),
    "classification": ("情報の区分", "Data classification"),
    "method": ("消去方法の区分", "Method type"),
    "technique": ("消去手段", "Method used"),
    "tool": ("使用ツール（版）", "Tool used (version)"),
    "verification_method": ("検証方法", "Verification method"),
    "verification_result": ("検証結果", "Verification result"),
    "post_classification": ("消去後の区分", "Post-sanitization classification"),
    "destination": ("行き先", "Destination"),
    "destination_detail": ("行き先の詳細", "Destination details"),
    "notes": ("備考", "Notes"),
    "sanitized_at": ("消去日", "Date of sanitization"),
    "validated_at": ("確認日", "Date of validation"),
    "issued_at": ("発行日", "Date issued"),
    "signature_performer": ("実施者署名", "Performer's signature"),
    "signature_validator": ("確認者署名", "Validator's signature"),
    "state": ("状態", "State"),
    "vendor_product": ("ベンダー:製品ID", "Vendor:product ID"),
    "hosts": ("使用可能端末", "Allowed hosts"),
    "read_only": ("読み取り専用", "Read-only"),
    "registered_at": ("登録日時", "Registered at"),
    "holder": ("持出者", "Checked out to"),
    "purpose": ("利用目的", "Purpose"),
    "due_back": ("返却予定", "Due back"),
    "approved_by": ("承認者", "Approved by"),
    "wipe_method": ("消去方法", "Wipe method"),
    "wiped_at": ("消去日時", "Wiped at"),
    "verifier": ("検証者", "Verifier"),
    "disposal_method": ("廃棄方法", "Disposal method"),
    "disposal_certificate": ("廃棄証明書番号", "Disposal certificate"),
    "disposed_at": ("廃棄日時", "Disposed at"),
    "field": ("項目", "Field"),
    "value": ("内容", "Value"),
}

VALUES: dict[str, tuple[str, str]] = {
    "Clear": ("消去（Clear）", "Clear"),
    "Purge": ("除去（Purge）", "Purge"),
    "Destroy": ("破壊（Destroy）", "Destroy"),
    "passed": ("合格", "Passed"),
    "failed": ("不合格", "Failed"),
    "internal_reuse": ("社内で再利用", "Internal reuse"),
    "external_reuse": ("社外で再利用", "External reuse"),
    "recycling": ("リサイクル業者", "Recycling facility"),
    "manufacturer": ("メーカー返却", "Manufacturer"),
    "destroyed": ("物理破壊済み", "Destroyed"),
    "other": ("その他", "Other"),
    "registered": ("登録済", "Registered"),
    "in_storage": ("保管中", "In storage"),
    "checked_out": ("持出中", "Checked out"),
    "returned": ("返却済", "Returned"),
    "wiped": ("消去済", "Wiped"),
    "lost": ("紛失", "Lost"),
    "disposed": ("廃棄済", "Disposed"),
    "yes": ("はい", "Yes"),
    "no": ("いいえ", "No"),
}


def label(key: str, lang: Lang) -> str:
    ja, en = LABELS[key]
    return ja if lang == "ja" else en


def value(key: str, lang: Lang) -> str:
    if key not in VALUES:
        return key
    ja, en = VALUES[key]
    return ja if lang == "ja" else en
