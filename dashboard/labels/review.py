"""What the review queue names: the kinds of items (raised by ingest, the dashboard, the media
ledger, the number log and the correlation rules), severities, review states, and each rule's
explanation (what it checks and what to do)."""

from __future__ import annotations

Pair = tuple[str, str]

SEVERITIES: dict[str, Pair] = {
    "critical": ("重大", "Critical"),
    "warning": ("警告", "Warning"),
    "info": ("情報", "Information"),
}

REVIEW_STATES: dict[str, Pair] = {
    "open": ("未対応", "Open"),
    "acknowledged": ("確認済み", "Acknowledged"),
    "resolved": ("解決済み", "Resolved"),
}

# Correlation rules (dashboard.correlation.rules.RULES): name and explanation.
RULES: dict[str, tuple[Pair, Pair]] = {
    "access_not_in_room": (
        ("不在時の番号アクセス", "Number access while not in the room"),
        ("番号システムの操作時刻に、その処理者の管理区域への在室記録(入室から退室まで、前後の猶予を含む)がありません。"
         "共有アカウントの利用や、区域外からの操作の可能性があります。本人と上長に操作の事情を確認してください。",
         "The operator used the number system while no stay in the controlled area (entry to "
         "exit, with a grace period either side) covers that time. It may mean a shared "
         "account or use from outside the area: ask the person and their manager.")),
    "access_outside_hours": (
        ("業務時間外の番号アクセス", "Number access outside working hours"),
        ("業務時間外・休業日・祝日に番号システムが操作されました。残業申請など業務上の理由があるか確認してください。",
         "The number system was used outside working hours, on a non-working day or a public "
         "holiday. Check whether there was a business reason (e.g. approved overtime).")),
    "usb_near_access": (
        ("番号アクセス前後の USB 使用", "USB storage around a number access"),
        ("番号アクセスや出力の前後の時間内に、同じ端末で USB ストレージが使われました。持ち出された媒体と内容を確認してください。",  # noqa: E501
         "USB storage was used on the same host shortly before or after a number access or "
         "export. Check which medium was used and what was written to it.")),
    "print_after_access": (
        ("番号アクセス後の印刷", "Print after a number access"),
        ("番号アクセスの後に同じ人が印刷を解放しました(出力の記録)。",
         "The same person released a print after a number access (an output record).")),
    "print_without_access": (
        ("番号アクセスのない印刷", "Print without a number access"),
        ("直前に番号システムの操作がないまま、管理区域のプリンターで印刷が解放されました。印刷物の内容を確認してください。",
         "A print was released on the room's printer with no number access before it. Check "
         "what was printed.")),
    "failed_logins_then_success": (
        ("ログイン失敗の後の成功", "Failed log-ins, then success"),
        ("短時間にログインが繰り返し失敗した後に成功しました。パスワードの推測や共有の可能性があります。",
         "Several failed log-ins were followed by a success within a short time: password "
         "guessing or a shared password is possible.")),
    "unknown_operator": (
        ("未登録の処理者", "Unknown operator"),
        ("番号システムの処理者 ID がどの人にも対応付けられていません。人の設定で処理者 ID を登録してください。",  # noqa: E501
         "The number system's operator id is not mapped to any person. Add it to the person's "
         "settings.")),
    "door_forced": (
        ("扉のこじ開け", "Door forced open"),
        ("施錠中の扉が、カードや退室ボタンによらずに開きました。現地を確認し、在室者に事情を聞いてください。",
         "A locked door opened without a card or the exit button. Check the door and ask "
         "the people present.")),
    "credential_failed": (
        ("カード認証失敗（複製の疑い）", "Card failed its check (possible clone)"),
        ("登録済みのカード番号が読み取られましたが、カードが鍵による認証に応答しませんでした。"
         "複製カードやなりすましの可能性があります。本人にカードの所在を確認し、紛失なら失効させてください。",
         "A registered card's number was read but the card did not prove its key: it may be "
         "a copy or an emulator. Ask the holder where their card is; revoke it if lost.")),
    "door_held_open": (
        ("扉の開放放置", "Door held open"),
        ("扉が規定の時間を超えて開いたままでした。共連れの可能性があります。",
         "The door stayed open longer than allowed: someone may have followed without a "
         "tap.")),
    "usb_blocked": (
        ("未登録 USB 機器の遮断", "Unregistered USB device blocked"),
        ("媒体管理台帳にない USB 機器が接続され、遮断されました。持ち込んだ人を確認してください。",
         "A USB device that is not in the media ledger was plugged in and blocked. Find out "
         "who brought it.")),
    "media_overdue": (
        ("媒体の返却遅れ", "Medium overdue"),
        ("持出し中の媒体が返却予定を過ぎても返っていません。持出者に連絡してください。",
         "A checked-out medium was not returned by its due time. Contact the holder.")),
    "backup_missing": (
        ("バックアップなし", "Backup missing"),
        ("朝の確認時点で、規定時間内の正常なバックアップがありません。バックアップ担当が原因を確認してください。",
         "At the morning check there was no good backup within the allowed age. The backup "
         "operator should find the cause.")),
    "backup_failed": (
        ("バックアップ失敗", "Backup failed"),
        ("夜間バックアップなどの実行が失敗しました。原因を確認して再実行してください。",
         "A backup run failed. Find the cause and run it again.")),
    "node_log_gap": (
        ("ノードのログの欠番", "Gap in a node's log"),
        ("ノードの記録の通番に欠けがあります。記録が失われたか、届いていない可能性があります。",
         "A node's records have a gap in their sequence numbers: records may be lost or "
         "not yet delivered.")),
    "node_log_chain": (
        ("ノードのログの改ざん検知", "Broken chain in a node's log"),
        ("ノードの記録のハッシュ連鎖または署名が一致しません。改ざんの可能性があります。",
         "A node's hash chain or signature does not verify: the records may have been "
         "altered.")),
    "number_in_log": (
        ("ログ内の個人番号", "Individual number in a log"),
        ("取り込んだ番号システムのログに個人番号が含まれていたため、保存前に削除しました。出力設定を確認してください。",
         "An individual number in the imported log was removed before storage. Check the "
         "number system's export settings.")),
    # room PCs (dashboard.correlation.host_rules)
    "pc_logon_not_in_room": (
        ("不在時の PC ログオン", "PC log-on while not in the room"),
        ("室内 PC へのログオンが許可されましたが、入退室記録ではその人は管理区域にいませんでした。在室情報が得られない設定や、"  # noqa: E501
         "ドアの記録の欠落の可能性があります。本人に事情を確認してください。",
         "A log-on at a room PC was granted while the door records show the person outside. "
         "Presence may have been unknown and allowed, or a door record is missing: ask the "
         "person.")),
    "pc_session_after_exit": (
        ("退室後も開いたままの PC セッション", "PC session left open after leaving"),
        ("本人が退室した後も、室内 PC のセッションがロックされずに開いていました。ロックできなかった理由(画面ロック機能のない"  # noqa: E501
         "セッション、PC のエージェント停止)を確認してください。",
         "A person left the room while their PC session stayed open and unlocked. Find why it "
         "was not locked (a session without a screen locker, the PC's agent stopped).")),
    "pc_number_files_without_access": (
        ("番号システム操作のない番号データのファイル操作", "Number-data files used without a "
         "number-system operation"),
        ("番号データのフォルダでファイルが閲覧・コピー・削除されましたが、前後の時間に同じ人の番号システムの操作記録がありません。"
         "目的と持ち出しの有無を確認してください。",
         "Files in a number-data folder were read, copied or deleted with no number-system "
         "operation by the same person around that time. Check the purpose and whether "
         "anything left the room.")),
    "pc_sudo_without_admin": (
        ("権限のない管理者操作", "Administrator command without the right"),
        ("管理者権限のグループに属さない人が sudo などを使用(または試行)しました。必要な作業だったか確認してください。",  # noqa: E501
         "Someone outside the groups with the administrator's right used (or tried) sudo, su "
         "or pkexec. Check whether it was needed.")),
    "pc_logon_outside_hours": (
        ("業務時間外の PC ログオン", "PC log-on outside working hours"),
        ("業務時間外・休業日・祝日に室内 PC へログオンしました。業務上の理由を確認してください。",
         "A room PC was logged on to outside working hours, on a non-working day or a public "
         "holiday. Check the business reason.")),
    "pc_account_on_two_hosts": (
        ("複数 PC への同時ログオン", "Logged on at two PCs at once"),
        ("同じ人(またはアカウント)が 2 台の PC に同時にログオンしていました。アカウントの共有の可能性があります。",  # noqa: E501
         "The same person (or account) was logged on at two PCs at once: the account may be "
         "shared.")),
    "pc_failed_logins": (
        ("PC のログイン失敗の繰り返し", "Repeated failed PC log-ins"),
        ("短時間に同じアカウントのログインが繰り返し失敗しました。パスワードの推測の可能性があります。",
         "Log-ins of one account failed repeatedly within a short time: password guessing is "
         "possible.")),
    "pc_presence_unknown": (
        ("在室情報なしでの PC ログオン判定", "PC log-on decided without presence"),
        ("室内 PC が在室情報(署名付き)を受け取れないままログオンを判定しました。ダッシュボードとの接続を確認してください。",  # noqa: E501
         "A room PC decided a log-on without signed presence information. Check its link to "
         "the dashboard.")),
    "pc_break_glass": (
        ("緊急用アカウントの使用", "Recovery account used"),
        ("カードなしでログオンできる緊急用アカウントが使われました。利用理由を記録し、パスワードを変更して封印し直してください。",
         "The recovery account that logs on without a card was used. Record why, then change "
         "its password and seal it again.")),
}

# Items raised outside the correlation: by the ingest, the dashboard itself, the media ledger
# and the number-log import. (Correlation items are "corr." + a rule above.)
ITEM_KINDS: dict[str, Pair] = {
    "gap": ("ノードの記録の欠番", "Gap in a node's records"),
    "fork": ("ノードの記録の分岐", "Fork in a node's records"),
    "chain": ("ハッシュ連鎖の不一致", "Broken hash chain"),
    "bad_signature": ("署名の不正", "Bad signature"),
    "unknown_node": ("未登録ノードからの通信", "Unknown node"),
    "unapproved_node": ("未承認ノードの記録", "Records from an unapproved node"),
    "node_enrolment": ("ノードの登録申請", "Node asks to be enrolled"),
    "node_key_mismatch": ("ノードの鍵の不一致", "Node key mismatch"),
    "clock_skew": ("ノードの時刻のずれ", "Node clock skew"),
    "journal_failure": ("ジャーナル記録不能", "Journal failure"),
    "broker_link": ("ブローカー接続断", "Broker link lost"),
    "receipt_refused": ("受領通知の拒否", "Receipt refused"),
    "kind_not_allowed": ("役割外の記録の拒否", "Event kind outside the node's roles"),
    "key_revoked": ("失効した鍵の署名", "Signed by a revoked key"),
    "key_rotation_refused": ("鍵の引き継ぎの拒否", "Key handover refused"),
    "node_key_rotated": ("ノードの鍵の更新", "Node key rotated"),
    "policy_rejected": ("ポリシーの拒否", "Policy rejected"),
    "policy_stale": ("ノードのポリシーが古い・期限切れ", "Node runs a stale policy"),
    "door_forced": ("扉のこじ開け", "Door forced open"),
    "door_held_open": ("扉の開放放置", "Door held open"),
    "reader_tamper": ("リーダーのいたずら検知", "Reader tamper"),
    "reader_power": ("リーダーの電源異常", "Reader power failure"),
    "reader_refused": ("リーダーの暗号化通信の失敗", "Reader failed the secure channel"),
    "credential_failed": ("カード認証失敗（複製の疑い）", "Card failed its check (possible clone)"),
    "rejected_payload": ("不正なメッセージ", "Rejected message"),
    "dashboard_unclean_stop": ("ダッシュボードの異常停止", "Dashboard stopped uncleanly"),
    "media_overdue": ("媒体の返却遅れ", "Medium overdue"),
    "node_version_unsupported": ("対応外のノードのバージョン", "Node version not supported"),
    "database_backup_failed": ("データベースのバックアップ失敗", "Database backup failed"),
    "dashboard_recovered": ("バックアップからの復旧", "Rebuilt from backup"),
    "numlog.number_found": ("取込ファイル内の個人番号", "Individual number in an import"),
    "camera_failed": ("カメラ撮影失敗", "Camera gave no still"),
    "camera_upload_refused": ("静止画アップロードの署名不正", "Still upload with a bad signature"),
    "camera_upload_revoked": ("失効した鍵による静止画アップロード",
                              "Still upload by a revoked key"),
    "camera_still_set_aside": ("送れない静止画の保留", "Still set aside on the gateway"),
}

CORR_PREFIX = "corr."


def item_kind_pair(kind: str) -> Pair | None:
    if kind.startswith(CORR_PREFIX):
        rule = RULES.get(kind[len(CORR_PREFIX):])
        return rule[0] if rule else None
    return ITEM_KINDS.get(kind)


def rule_of(kind: str) -> str | None:
    return kind[len(CORR_PREFIX):] if kind.startswith(CORR_PREFIX) else None
