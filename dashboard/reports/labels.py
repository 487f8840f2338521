# ruff: noqa: E501 - a wording table reads best one entry a line
"""Document wording in Japanese (the default) and English: the monthly handling report, the
deletion certificate, the handling-status register, review-item kinds."""

from __future__ import annotations

from typing import Literal

Lang = Literal["ja", "en"]

_L: dict[str, tuple[str, str]] = {
    # the letter
    "title": ("特定個人情報の取扱い状況について", "Report on the handling of specific personal information"),
    "title_all": ("特定個人情報の取扱い状況について(社内用・全委託元)",
                  "Report on the handling of specific personal information (internal, all clients)"),
    "to_org": ("{org} 御中", "To: {org}"),
    "to_all": ("社内用(全委託元)", "Internal (all clients)"),
    "number": ("第 {n} 号", "No. {n}"),
    "addr": ("所在地", "Address"),
    "phone": ("電話番号", "Telephone"),
    "office_name": ("名称", "Name"),
    "representative": ("代表者", "Representative"),
    "seal": ("印", "Seal"),
    "greeting": ("拝啓 時下ますますご清栄のこととお喜び申し上げます。平素は格別のご高配を賜り、誠にありがとうございます。",
                 "Dear Sirs,"),
    "letter": ("当事務所における{period}の特定個人情報の取扱い状況について、下記のとおりご報告いたします。",
               "We report below how we handled your specific personal information from {period}."),
    "letter_all": ("{period}の特定個人情報の取扱い状況(全委託元)を下記のとおり記録する。",
                   "The handling of specific personal information for all clients, {period}."),
    "closing": ("敬具", "Yours faithfully,"),
    "times_in": ("日時はすべて{zone}で記載しています。", "All times are {zone}."),
    "corrects": ("本書は{date}付 第 {n} 号を次の理由により訂正し、差し替えるものです。理由: {reason}",
                 "This report corrects and replaces No. {n} of {date} for this reason: {reason}"),
    "ki": ("記", "Details"),
    "ijo": ("以上", "End"),
    "page": ("{page} / {pages} 頁", "page {page} of {pages}"),
    # section 1
    "s1": ("1. 安全管理措置の実施状況", "1. Safety management measures taken"),
    "kind_col": ("区分", "Kind"),
    "policy_col": ("当事務所の措置", "Our measures"),
    "record_col": ("当月の記録", "This month's records"),
    "organizational": ("組織的安全管理措置", "Organisational measures"),
    "human": ("人的安全管理措置", "Human measures"),
    "physical": ("物理的安全管理措置", "Physical measures"),
    "technical": ("技術的安全管理措置", "Technical measures"),
    "f_uses": ("個人番号の利用 {n} 件(うち失敗・拒否 {f} 件)、{annex}",
               "{n} uses of individual numbers ({f} failed or denied), {annex}"),
    "f_reviews": ("確認事項 {n} 件(対応済み {m} 件、未対応 {k} 件)、{annex}",
                  "{n} review items ({m} closed, {k} open), {annex}"),
    "f_deletions": ("削除・廃棄の証明 {n} 件、{annex}", "{n} deletion certificates, {annex}"),
    "f_handlers": ("個人番号を取り扱った担当者 {n} 名: {names}", "{n} staff handled the numbers: {names}"),
    "f_entries": ("管理区域への入室 {i} 件・退室 {o} 件(うち拒否 {k} 件)、{annex}",
                  "{i} entries and {o} exits of the controlled area ({k} denied), {annex}"),
    "f_prints": ("印刷(出力) {n} 件、{annex}", "{n} print releases, {annex}"),
    "f_media": ("媒体の持出し {c} 件・返却 {r} 件・消去 {w} 件・廃棄 {d} 件、{annex}",
                "media: {c} carried out, {r} returned, {w} wiped, {d} disposed of, {annex}"),
    "f_logins": ("番号システムへのログイン {n} 件(うち失敗 {f} 件)、{annex}",
                 "{n} log-ins to the number system ({f} failed), {annex}"),
    "f_backups": ("バックアップ 取得 {ok} 夜・失敗 {failed} 夜・未実施 {missing} 夜、検証 {v} 回、{annex}",
                  "backups: {ok} nights taken, {failed} failed, {missing} missing; {v} verified, {annex}"),
    "f_pcs": ("管理区域内のパソコンへのログオン {n} 件(うち拒否 {k} 件)、個人番号データの操作 {o} 件、{annex}",
              "{n} log-ons at the room's PCs ({k} denied), {o} operations on number data, {annex}"),
    "f_seal": ("記録の改ざん検知(封印)、{annex}", "records sealed against tampering, {annex}"),
    "annex_ref": ("別紙{n}", "annex {n}"),
    # sections 2-4
    "s2": ("2. 特定個人情報の利用、持出し、廃棄・削除の記録", "2. Records of use, carrying out, disposal and deletion"),
    "s2_text": ("利用は別紙1「個人番号関係事務処理一覧」({n} 件)、持出しは別紙5({m} 件)、廃棄・削除は別紙6({k} 件)のとおり。",
                "Uses: annex 1 ({n}); carried out: annex 5 ({m}); disposal and deletion: annex 6 ({k})."),
    "s3": ("3. 特定個人情報の再委託の有無", "3. Re-entrustment"),
    "s4": ("4. 情報漏えいの発生の有無", "4. Whether any leak occurred"),
    "leak_none": ("無し。", "None."),
    "leak_yes": ("有り({n} 件、別紙8)。", "Yes ({n}, annex 8)."),
    "leak_open": ("調査中の確認事項 {n} 件(別紙8)。", "{n} review items still under investigation (annex 8)."),
    # annexes
    "annex": ("別紙{n} {title}", "Annex {n}: {title}"),
    "a_uses": ("個人番号関係事務処理一覧", "Number-related work"),
    "a_logins": ("番号システムへのログイン実績", "Log-ins to the number system"),
    "a_entries": ("管理区域への入退室", "Entries to and exits from the controlled area"),
    "a_entries_note": ("個人番号を取り扱った担当者の入退室(拒否を含む)。", "Of the staff who handled the numbers (denials included)."),
    "a_entries_note_all": ("全員の入退室(拒否を含む)。", "Everyone's (denials included)."),
    "a_prints": ("出力(印刷)の記録", "Outputs (print releases)"),
    "a_prints_note": ("個人番号の利用に続く印刷。", "Prints that followed a use of the numbers."),
    "a_media": ("媒体の持出し・返却・消去・廃棄", "Media carried out, returned, wiped, disposed of"),
    "a_deletions": ("削除・廃棄の記録(削除証明書)", "Deletions (certificates)"),
    "a_backups": ("バックアップの実施状況", "Backups"),
    "a_backups_note": ("{first}から{last}までの {n} 夜: 取得 {ok} 夜。以下は例外のみ。",
                       "{n} nights from {first} to {last}: {ok} taken. Exceptions only below."),
    "a_backups_none": ("対象となる夜はありません(システム稼働前)。", "No nights to count (before the system existed)."),
    "a_reviews": ("確認事項とその対応", "Review items and their resolution"),
    "a_pcs": ("管理区域内のパソコンの利用(ログオン、個人番号データの操作)", "Use of the room's PCs (log-ons, operations on number data)"),
    "a_pcs_note": ("個人番号を取り扱った担当者のログオンと、個人番号データを保存するフォルダーでの操作。", "Of the staff who handled the numbers: their log-ons and the operations in the folders that hold the numbers."),
    "a_pcs_note_all": ("すべてのログオンと、個人番号データを保存するフォルダーでの操作。", "Every log-on, and the operations in the folders that hold the numbers."),
    "pc_logon": ("ログオン", "Log-on"),
    "pc_file_op": ("ファイル操作", "File operation"),
    "pc_ok": ("成功", "done"),
    "pc_failed": ("失敗", "failed"),
    "pc_unknown": ("(不明)", "(unknown)"),
    "pc_op": ("{op} {n} 件", "{op}: {n} file(s)"),
    "op_read": ("読取", "read"),
    "op_write": ("書込", "write"),
    "op_create": ("作成", "create"),
    "op_delete": ("削除", "delete"),
    "op_rename": ("名前変更", "rename"),
    "op_copy": ("複製", "copy"),
    "op_attr": ("属性変更", "attribute change"),
    "op_exec": ("実行", "execute"),
    "c_host": ("端末", "PC"),
    "a_integrity": ("記録の完全性(検証用情報)", "Integrity of the records (for verification)"),
    "none_rows": ("該当なし", "none"),
    # columns
    "c_no": ("NO", "No."),
    "c_office": ("事業所名", "Office"),
    "c_at": ("日時", "Time"),
    "c_screen": ("画面", "Screen"),
    "c_action": ("処理", "Action"),
    "c_purpose": ("利用目的", "Purpose"),
    "c_operator": ("処理者", "Operator"),
    "c_result": ("結果", "Result"),
    "c_name": ("氏名", "Name"),
    "c_door": ("扉", "Door"),
    "c_direction": ("入退", "In/out"),
    "c_reason": ("理由", "Reason"),
    "c_printer": ("プリンター", "Printer"),
    "c_pages": ("頁数", "Pages"),
    "c_after": ("直前の利用", "After the use at"),
    "c_control": ("管理番号", "Control number"),
    "c_kind": ("区分", "Kind"),
    "c_person": ("担当者", "Person"),
    "c_cert": ("証明書番号", "Certificate"),
    "c_processed": ("処理年月日", "Processed on"),
    "c_method": ("方法", "Method"),
    "c_subject": ("対象者", "Subject"),
    "c_issued": ("発行日", "Issued"),
    "c_day": ("日付", "Night"),
    "c_detail": ("内容", "Detail"),
    "c_severity": ("重要度", "Severity"),
    "c_state": ("状態", "State"),
    "c_resolution": ("対応", "Resolution"),
    "c_incident": ("事故区分", "Incident"),
    "c_item": ("項目", "Item"),
    "c_value": ("値", "Value"),
    # values
    "in": ("入室", "in"),
    "out": ("退室", "out"),
    "granted": ("許可", "granted"),
    "denied": ("拒否", "denied"),
    "unknown_card": ("登録のないカード", "unknown card"),
    "unmapped_op": ("未登録の処理者({op})", "unregistered operator ({op})"),
    "check_out": ("持出し", "carried out"),
    "return": ("返却", "returned"),
    "wipe": ("消去", "wiped"),
    "dispose": ("廃棄", "disposed of"),
    "night_failed": ("取得失敗", "failed"),
    "night_missing": ("未実施", "missing"),
    "verify_failed": ("検証失敗", "verification failed"),
    "info": ("情報", "info"),
    "warning": ("注意", "warning"),
    "critical": ("重大", "critical"),
    "open": ("未対応", "open"),
    "acknowledged": ("確認済み", "acknowledged"),
    "resolved": ("解決済み", "resolved"),
    "incident_yes": ("漏えい等事案", "incident"),
    "incident_no": ("該当せず", "not an incident"),
    "incident_none": ("未分類", "not classified"),
    # integrity annex
    "i_node": ("ノード {name}", "node {name}"),
    "i_events": ("{n} 件、最終 {seq}: {hash}", "{n} events, head {seq}: {hash}"),
    "i_audit": ("監査ログ", "Audit log"),
    "i_rows": ("番号システムの記録", "Number-system rows"),
    "i_seal": ("封印 ID", "Seal id"),
    "i_how": ("検証方法", "How to verify"),
    "i_how_text": ("ダッシュボードの「報告書」画面で本ファイルをアップロードする、または secroom report verify <本ファイル> を実行する。",
                   "Upload this file on the dashboard's Reports page, or run: secroom report verify <this file>"),
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
    "record_basis": ("根拠となる記録", "Record it rests on"),
    "org": ("委託元", "Client"),
    "cert_csv_title": ("削除証明書", "Certificate of deletion"),
    # handling-status register
    "reg_title": ("特定個人情報ファイル管理台帳", "Register of specific personal information files"),
    "reg_kind": ("ファイルの種類", "File type"),
    "reg_name": ("名称", "Name"),
    "reg_client": ("委託元", "Client"),
    "reg_responsible": ("責任者", "Responsible"),
    "reg_department": ("取扱部署", "Department"),
    "reg_purpose": ("利用目的", "Purpose"),
    "reg_retention": ("保存期間", "Retention"),
    "reg_deletion": ("削除・廃棄状況", "Deletion status"),
    "reg_access": ("アクセス権を有する者", "Who holds access rights"),
    "reg_operator": ("番号システム利用者", "number-system user"),
    "reg_as_of": ("{date} 現在", "as of {date}"),
    "reg_office": ("当事務所", "our office"),
}

# review-item kinds (anomaly kinds, "corr." rules without the prefix)
KINDS: dict[str, tuple[str, str]] = {
    "access_not_in_room": ("管理区域外での番号利用", "number use outside the controlled area"),
    "access_outside_hours": ("業務時間外の番号利用", "number use outside working hours"),
    "usb_near_access": ("番号利用前後の媒体使用", "USB medium used around a number use"),
    "print_without_access": ("番号利用を伴わない印刷", "print without a number use"),
    "print_after_access": ("番号利用後の印刷", "print after a number use"),
    "failed_logins_then_success": ("ログイン失敗の後の成功", "failed log-ins, then a success"),
    "unknown_operator": ("登録のない処理者", "unregistered operator"),
    "door_forced": ("扉のこじ開け", "door forced"),
    "door_held_open": ("扉の開放放置", "door held open"),
    "usb_blocked": ("未登録媒体の遮断", "unregistered USB device blocked"),
    "media_overdue": ("媒体の返却遅延", "medium overdue"),
    "media_wipe_overdue": ("媒体の定期消去の遅延", "periodic wipe of a medium overdue"),
    "backup_missing": ("バックアップ未実施", "backup missing"),
    "backup_failed": ("バックアップ失敗", "backup failed"),
    "node_log_gap": ("記録の欠落", "gap in a node's log"),
    "node_log_chain": ("記録の連鎖の不整合", "broken link in a node's log"),
    "number_in_log": ("記録中の個人番号", "individual number in a log"),
    "numlog.number_found": ("取込記録中の個人番号", "individual number in an imported row"),
    "node_enrolment": ("機器の登録申請", "device asked to be enrolled"),
    "unapproved_node": ("未承認の機器からの記録", "records from an unapproved device"),
}


def wording(table: dict[str, tuple[str, str]], key: str, lang: str, **fmt: object) -> str:
    """``table[key]`` in ``lang`` (ja, else en), formatted with ``fmt``."""
    ja, en = table[key]
    text = ja if lang == "ja" else en
    return text.format(**fmt) if fmt else text


def label(key: str, lang: str, **fmt: object) -> str:
    return wording(_L, key, lang, **fmt)


def kind_label(kind: str, lang: str) -> str:
    """A review item's kind in words; a kind without wording is 'other', never the code."""
    base = kind[5:] if kind.startswith("corr.") else kind
    pair = KINDS.get(base) or KINDS.get(kind)
    if pair is None:
        from dashboard.i18n import catalogue

        text = catalogue(lang).get(f"anomaly.{base}")
        return text or ("その他の確認事項" if lang == "ja" else "other review item")
    return pair[0] if lang == "ja" else pair[1]


def denial_label(reason: str | None, lang: str) -> str:
    """Why a door refused, in words (the dashboard's wording of the controller's reasons)."""
    if not reason:
        return ""
    from dashboard.i18n import catalogue

    return catalogue(lang).get(f"reason.{reason}") or ("その他" if lang == "ja" else "other")


def pick(text: str, lang: str) -> str:
    """One half of a bilingual 'English / 日本語' text (as the correlation writes some
    reasons); any other text as it is."""
    if " / " not in text:
        return text
    parts = [p.strip() for p in text.split(" / ")]
    cjk = [p for p in parts if any(ord(ch) > 0x3000 for ch in p)]
    latin = [p for p in parts if p not in cjk]
    chosen = cjk if lang == "ja" else latin
    return " / ".join(chosen) if chosen else text


def logon_denial_label(reason: str | None, lang: str) -> str:
    """Why a room PC refused a log-on, in words (the controller's wording of its reasons)."""
    from controller.events import LOGON_DENIAL_LABELS

    found = LOGON_DENIAL_LABELS.get(reason or "")
    if found is None:
        return "その他" if lang == "ja" else "other"
    return found.ja if lang == "ja" else found.en
