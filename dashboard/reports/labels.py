"""Report wording in Japanese (the default) and English."""

from __future__ import annotations

from typing import Literal

Lang = Literal["ja", "en"]

_L: dict[str, tuple[str, str]] = {
    "title": ("特定個人情報 取扱状況報告書", "Handling status report: specific personal information"),  # noqa: E501
    "period": ("対象期間", "Period"),
    "org": ("委託元・事業所", "Organisation"),
    "issued": ("作成日時", "Issued"),
    "s_entries": ("1. 管理区域への入室", "1. Entries to the controlled area"),
    "entries_total": ("入室回数(合計)", "Entries (total)"),
    "denied_total": ("拒否された入室操作", "Denied door attempts"),
    "person": ("人", "Person"),
    "name": ("氏名", "Name"),
    "count": ("件数", "Count"),
    "s_access": ("2. 個人番号の利用(処理者・処理・利用目的別)",
                 "2. Number accesses by operator, action and purpose"),
    "accesses_total": ("番号システム操作(合計)", "Number-system operations (total)"),
    "exports_total": ("うち出力・エクスポート", "of which exports"),
    "operator": ("処理者", "Operator"),
    "action": ("処理", "Action"),
    "purpose": ("利用目的", "Purpose"),
    "s_output": ("3. 出力(印刷)の記録", "3. Outputs (print releases)"),
    "prints_total": ("印刷の解放(合計)", "Print releases (total)"),
    "printer": ("プリンター", "Printer"),
    "pages": ("頁数", "Pages"),
    "s_media": ("4. 媒体の持出し・返却・消去・廃棄", "4. Media check-outs, returns, wipes, disposals"),  # noqa: E501
    "check_out": ("持出し", "Check-outs"),
    "return": ("返却", "Returns"),
    "wipe": ("消去", "Wipes"),
    "dispose": ("廃棄", "Disposals"),
    "control_number": ("管理番号", "Control number"),
    "at": ("日時", "Time"),
    "by": ("担当者", "By"),
    "s_backup": ("5. バックアップの結果(夜間ごと)", "5. Backup result per night"),
    "night": ("日付", "Night"),
    "result": ("結果", "Result"),
    "ok": ("正常", "ok"),
    "failed": ("失敗", "failed"),
    "missing": ("未実施", "missing"),
    "s_anomalies": ("6. 異常とその対応", "6. Anomalies and their resolution"),
    "kind": ("種別", "Kind"),
    "severity": ("重要度", "Severity"),
    "subject": ("内容", "Subject"),
    "state": ("状態", "State"),
    "reason": ("対応・理由", "Resolution / reason"),
    "open": ("未対応", "open"),
    "acknowledged": ("確認済", "acknowledged"),
    "resolved": ("解決済", "resolved"),
    "none_rows": ("該当なし", "none"),
    "s_leak": ("7. 情報漏えいの発生の有無", "7. Whether any leak occurred"),
    "leak_none": ("無し", "None"),
    "leak_open": ("調査中(未対応の重大な異常 {n} 件)", "Under review ({n} unresolved critical anomalies)"),  # noqa: E501
    "leak_occurred": ("有り({n} 件)", "Yes ({n})"),
    "s_seal": ("8. 記録の封印(改ざん検知用ハッシュ)", "8. Seal of the records (hashes for tamper detection)"),  # noqa: E501
    "node": ("ノード", "Node"),
    "head": ("先頭ハッシュ", "Head hash"),
    "events": ("イベント数", "Events"),
    "audit_log": ("監査ログ", "Audit log"),
    "rows_digest": ("番号アクセス記録", "Number-access rows"),
    "seal_id": ("封印 ID", "Seal id"),
    "verify_hint": ("検証: secroom report verify <このファイル>", "Verify: secroom report verify <this file>"),  # noqa: E501
    # deletion certificate
    "cert_title": ("削除証明書", "Certificate of deletion"),
    "cert_body": ("以下のとおり特定個人情報を削除したことを証明します。",
                  "We certify that the specific personal information below was deleted."),
    "cert_number": ("証明書番号", "Certificate number"),
    "processed_on": ("処理年月日", "Date processed"),
    "person_in_charge": ("担当者", "Person in charge"),
    "cert_reason": ("理由", "Reason"),
    "cert_subject": ("対象者", "Subject"),
    "cert_result": ("結果", "Result"),
    "method": ("方法", "Method"),
    "to_org": ("{org} 御中", "To: {org}"),
}


def label(key: str, lang: str, **fmt: object) -> str:
    ja, en = _L[key]
    text = ja if lang == "ja" else en
    return text.format(**fmt) if fmt else text
