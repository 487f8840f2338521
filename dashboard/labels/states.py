"""Roles, statuses and the other small vocabularies the console shows, in Japanese and English:
one table per vocabulary, keyed by the value the code stores."""

from __future__ import annotations

Pair = tuple[str, str]

ROLES: dict[str, Pair] = {
    "admin": ("管理者", "Administrator"),
    "security_admin": ("セキュリティ管理者", "Security admin"),
    "backup_operator": ("バックアップ担当", "Backup operator"),
    "auditor": ("監査人", "Auditor"),
}

NODE_STATES: dict[str, Pair] = {
    "online": ("オンライン", "Online"),
    "offline": ("オフライン", "Offline"),
    "unknown": ("不明", "Unknown"),
}

KEY_STATUSES: dict[str, Pair] = {
    "approved": ("承認済み", "Approved"),
    "pending": ("承認待ち", "Pending"),
    "revoked": ("失効", "Revoked"),
    "rejected": ("拒否", "Rejected"),
}

CLOCK_STATES: dict[str, Pair] = {
    "synced": ("同期済み", "Synchronised"),
    "unsynced": ("未同期", "Not synchronised"),
}

DIRECTIONS: dict[str, Pair] = {"in": ("入室", "In"), "out": ("退室", "Out")}

RESULTS: dict[str, Pair] = {"granted": ("許可", "Granted"), "denied": ("拒否", "Denied")}

MEDIA_STATES: dict[str, Pair] = {
    "registered": ("登録済み", "Registered"),
    "in_storage": ("保管中", "In storage"),
    "checked_out": ("持出し中", "Checked out"),
    "returned": ("返却済み", "Returned"),
    "wiped": ("消去済み", "Wiped"),
    "lost": ("紛失", "Lost"),
    "disposed": ("廃棄済み", "Disposed"),
}

MEDIA_ACTIONS: dict[str, Pair] = {
    "register": ("登録", "Register"),
    "store": ("保管", "Store"),
    "check_out": ("持出し", "Check out"),
    "return": ("返却", "Return"),
    "wipe": ("消去", "Wipe"),
    "mark_lost": ("紛失", "Lost"),
    "found": ("発見", "Found"),
    "dispose": ("廃棄", "Dispose"),
    "reconfigure": ("設定変更", "Settings changed"),
}

USB_VERDICTS: dict[str, Pair] = {
    "allow": ("許可", "Allowed"),
    "block": ("遮断", "Blocked"),
    "readonly": ("読み取り専用", "Read-only"),
    "removed_token_mismatch": ("トークン不一致で除去", "Removed: token mismatch"),
}

BACKUP_STATUSES: dict[str, Pair] = {
    "done": ("完了", "Done"),
    "failed": ("失敗", "Failed"),
    "missing": ("なし", "Missing"),
    "pending": ("未実行", "Pending"),
}

BACKUP_STAGES: dict[str, Pair] = {
    "run": ("夜間実行", "Nightly run"),
    "prune": ("世代整理", "Prune"),
    "purge": ("削除義務(パージ)", "Purge"),
    "restore": ("リストア", "Restore"),
    "verify": ("検証", "Verify"),
    "drill": ("リストア訓練", "Restore drill"),
}

BACKUP_ERRORS: dict[str, Pair] = {
    "locked": ("リポジトリが使用中", "Repository locked"),
    "disk_full": ("保存先の容量不足", "Disk full"),
    "integrity": ("整合性エラー", "Integrity error"),
    "key": ("鍵のエラー", "Key error"),
    "io": ("読み書きエラー(保存先が応答しない等)", "Input/output error"),
    "config": ("設定エラー", "Configuration error"),
    "not_found": ("対象が見つからない", "Not found"),
    "error": ("その他のエラー", "Other error"),
}

ACCESS_CATEGORIES: dict[str, Pair] = {
    "login": ("ログイン", "Log-in"),
    "access": ("閲覧・更新", "Access"),
    "export": ("出力", "Export"),
}

# What the audit log records (dashboard.audit.append_audit's ``action``).
AUDIT_ACTIONS: dict[str, Pair] = {
    "camera.still_view": ("カメラ静止画の閲覧", "Camera still viewed"),
    "camera.purge": ("カメラ静止画の保存期間経過による削除", "Camera stills removed (retention)"),
    "person.create": ("人の登録", "Person added"),
    "person.update": ("人の変更", "Person changed"),
    "person.delete": ("人の削除", "Person deleted"),
    "card.enrol": ("カードの登録", "Card enrolled"),
    "card.revoke": ("カードの失効", "Card revoked"),
    "card_key.rotate": ("カード鍵の生成・更新", "Card master key generated"),
    "card_key.retire": ("旧カード鍵の廃止", "Previous card master key retired"),
    "group.create": ("グループの作成", "Group added"),
    "group.update": ("グループの変更", "Group changed"),
    "group.delete": ("グループの削除", "Group deleted"),
    "door.create": ("扉の登録", "Door added"),
    "door.update": ("扉の変更", "Door changed"),
    "door.delete": ("扉の削除", "Door deleted"),
    "printer.create": ("プリンターの登録", "Printer added"),
    "printer.update": ("プリンターの変更", "Printer changed"),
    "printer.delete": ("プリンターの削除", "Printer deleted"),
    "site.lockdown": ("ロックダウンの変更", "Lockdown changed"),
    "site.timezone": ("時間帯の変更", "Time zone changed"),
    "node.approve": ("ノードの承認", "Node approved"),
    "node.revoke": ("ノードの失効", "Node revoked"),
    "node.reject": ("ノードの拒否", "Node rejected"),
    "node.roles": ("ノードの役割の変更", "Node roles changed"),
    "node.key_rotate": ("ノードの鍵の更新(ノードの署名)", "Node key rotated (signed by the node)"),
    "node.key_approve": ("ノードの新しい鍵の承認", "Node's new key approved"),
    "node.key_revoke": ("ノードの旧鍵の失効", "Node's old key revoked"),
    "user.create": ("ユーザーの作成", "User added"),
    "token.create": ("API トークンの発行", "API token issued"),
    "token.revoke": ("API トークンの失効", "API token revoked"),
    "anomaly.acknowledge": ("確認", "Acknowledged"),
    "anomaly.resolve": ("解決", "Resolved"),
    "anomaly.assign": ("担当者の割当て", "Assigned"),
    "anomaly.escalate": ("エスカレーション", "Escalated"),
    "report.issue": ("月次報告の発行", "Report issued"),
    "certificate.issue": ("証明書の発行", "Certificate issued"),
    "numlog.import": ("番号アクセスログの取込", "Number log imported"),
    "numlog.map_operator": ("処理者の対応付け", "Operator mapped"),
    "numlog.map_terminal": ("端末の対応付け", "Terminal mapped"),
    "name.set": ("表示名の設定", "Display name set"),
    "card.enrol_open": ("カード登録の受付開始", "Card enrolment opened"),
    "card.personalise_request": ("ブランクカード発行の依頼", "Blank card issue requested"),
    "card.personalise_done": ("ブランクカードの発行(鍵の書き込み)",
                              "Blank card issued (key written)"),
    "card.personalise_failed": ("ブランクカード発行の失敗", "Blank card issue failed"),
    "card.rekey": ("カード鍵の更新(新しいサイト鍵へ)", "Card re-keyed (to the new site key)"),
    "user.password_change": ("パスワードの変更", "Password changed"),
    "user.deactivate": ("ユーザーの無効化", "User deactivated"),
    "user.reactivate": ("ユーザーの再有効化", "User reactivated"),
    "user.password_reset": ("パスワードのリセット", "Password reset"),
    "user.sessions_end": ("ログイン中のセッションの終了", "Sessions ended"),
    "user.scope": ("アカウントの範囲（サイト・委託元）の変更", "Account scope changed"),
    "client.save": ("委託元の登録・変更", "Client saved"),
    "client.map_office": ("事業所名と委託元の対応付け", "Office mapped to a client"),
    "office.save": ("自社情報の変更", "Office details changed"),
    "register.save": ("管理台帳の変更", "Register entry saved"),
    "report.supersede": ("月次報告の訂正版の発行", "Corrected report issued"),
    "review.classify": ("事案の分類", "Incident classified"),
    "dashboard.recovered": ("ダッシュボードの復旧", "Dashboard recovered"),
    "media.wipe_interval": ("媒体の種類の定期消去間隔の変更", "Wipe interval of a media type set"),
    "medium.wipe_interval": ("媒体の定期消去間隔の変更", "Medium: wipe interval set"),
    **{f"medium.{k}": (f"媒体の{ja}", f"Medium: {en.lower()}")
       for k, (ja, en) in MEDIA_ACTIONS.items()},
}

AUDIT_TARGETS: dict[str, Pair] = {
    "person": ("人", "Person"), "card": ("カード", "Card"), "group": ("グループ", "Group"),
    "door": ("扉", "Door"), "printer": ("プリンター", "Printer"), "site": ("サイト", "Site"),
    "node": ("ノード", "Node"), "user": ("ユーザー", "User"),
    "api_token": ("API トークン", "API token"), "anomaly": ("確認事項", "Review item"),
    "report": ("報告", "Report"), "certificate": ("証明書", "Certificate"),
    "numlog_batch": ("取込", "Import"), "operator": ("処理者", "Operator"),
    "terminal": ("端末", "Terminal"), "medium": ("媒体", "Medium"),
    "name": ("表示名", "Display name"),
    "client": ("委託元", "Client"), "office": ("自社情報", "Office details"),
    "data_file": ("管理台帳の項目", "Register entry"), "media_type": ("媒体の種類", "Media type"),
}

# Things an admin gives a display name (dashboard.models.names.NAME_KINDS).
NAME_KINDS: dict[str, Pair] = {
    "reader": ("リーダー", "Reader"),
    "host": ("端末", "Host"),
    "node": ("ノード", "Node"),
    "site": ("サイト", "Site"),
}
