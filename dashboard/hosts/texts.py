"""Messages of the host pages (ja default, en), layered over the app's catalogue. Kinds and
reasons are labelled by the nodes' registry (controller.events, through ``t.label``)."""

from __future__ import annotations

from fastapi import Request

from dashboard.printing.texts import Texts
from dashboard.web import deps

HOSTS: dict[str, tuple[str, str]] = {
    "hosts.title": ("室内 PC", "Room PCs"),
    "hosts.host": ("PC", "PC"),
    "hosts.sessions": ("セッション", "Sessions"),
    "hosts.open_sessions": ("ログオン中", "Logged on"),
    "hosts.logons": ("ログオン", "Log-ons"),
    "hosts.operations": ("操作の記録", "Operations"),
    "hosts.health": ("状態", "Health"),
    "hosts.account": ("アカウント", "Account"),
    "hosts.opened": ("開始", "Opened"),
    "hosts.closed": ("終了", "Closed"),
    "hosts.still_open": ("継続中", "still open"),
    "hosts.result": ("結果", "Result"),
    "hosts.granted": ("許可", "Granted"),
    "hosts.denied": ("拒否", "Denied"),
    "hosts.service": ("サービス", "Service"),
    "hosts.detail": ("詳細", "Detail"),
    "hosts.count": ("件数", "Count"),
    "hosts.program": ("プログラム", "Program"),
    "hosts.files": ("ファイル", "Files"),
    "hosts.more_files": ("ほか {n} 件", "{n} more"),
    "hosts.disk": ("ディスク", "Disk"),
    "hosts.failed_units": ("異常なサービス", "Failed services"),
    "hosts.last_update": ("最終更新", "Last update"),
    "hosts.clock": ("時刻同期", "Clock"),
    "hosts.clock.synced": ("同期済み", "synchronised"),
    "hosts.clock.unsynced": ("未同期", "not synchronised"),
    "hosts.readers": ("カードリーダー", "Card readers"),
    "hosts.presence": ("在室情報", "Presence"),
    "hosts.presence.fresh": ("受信中", "current"),
    "hosts.presence.stale": ("不明(受信なし)", "unknown (none received)"),
    "hosts.no_health": ("状態の報告なし", "No health report yet"),
    "hosts.none": ("記録なし", "No records"),
    "hosts.pc_records": ("PC の利用", "PC use"),
    "hosts.invalid": ("読めない記録 {n} 件", "{n} unreadable records"),
    "hosts.period": ("期間: 過去 {days} 日", "Period: last {days} days"),
    "hosts.failure": ("失敗", "failed"),
    # file operations and folder classes
    "hosts.op.read": ("閲覧", "read"), "hosts.op.write": ("書込み", "write"),
    "hosts.op.create": ("作成", "create"), "hosts.op.delete": ("削除", "delete"),
    "hosts.op.rename": ("名前変更", "rename"), "hosts.op.copy": ("コピー", "copy"),
    "hosts.op.attr": ("属性変更", "attributes"), "hosts.op.exec": ("実行", "execute"),
    "hosts.class.number_data": ("番号データ", "number data"),
    "hosts.class.vault": ("保管庫", "vault"),
}


def texts(request: Request) -> Texts:
    return Texts(deps.translator(request), HOSTS)
