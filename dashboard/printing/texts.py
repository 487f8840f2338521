"""Messages of the printing and backups pages (ja default, en), layered over the app's catalogue.

The app's catalogue (dashboard/locales) belongs to the web layer; these pages bring their own
keys and fall back to it for everything shared (navigation, columns, filters).
"""

from __future__ import annotations

from collections.abc import Mapping

from dashboard.i18n import Translator

Table = Mapping[str, tuple[str, str]]  # key -> (ja, en)


class Texts(Translator):
    """A request's Translator that knows this feature's keys first."""

    def __init__(self, base: Translator, table: Table) -> None:
        super().__init__(base.lang, base.zone)
        self.table = table

    def __call__(self, key: str, **values: object) -> str:
        pair = self.table.get(key)
        if pair is None:
            return super().__call__(key, **values)
        text = pair[0] if self.lang == "ja" else pair[1]
        return text.format(**values) if values else text

    def maybe(self, key: str, fallback: str) -> str:
        if key in self.table:
            return self(key)
        return super().maybe(key, fallback)


PRINTING: dict[str, tuple[str, str]] = {
    "printing.title": ("印刷の記録", "Printing"),
    "printing.releases": ("解放", "Releases"),
    "printing.denials": ("拒否", "Denials"),
    "printing.expiries": ("期限切れ", "Expiries"),
    "printing.jobs": ("ジョブ", "Jobs"),
    "printing.pages": ("頁数", "Pages"),
    "printing.copies": ("部数", "Copies"),
    "printing.printer": ("プリンター", "Printer"),
    "printing.person": ("人", "Person"),
    "printing.kind": ("種別", "Kind"),
    "printing.detail": ("詳細", "Detail"),
    "printing.event": ("イベント", "Event"),
    "printing.held_hours": ("保留時間(h)", "Held (h)"),
    "printing.all_kinds": ("すべて", "All"),
    "printing.per_person": ("人別", "Per person"),
    "printing.per_printer": ("プリンター別", "Per printer"),
    "printing.events": ("記録", "Records"),
    "printing.output_records": ("出力の記録(印刷)", "Output records (printing)"),
    "printing.unknown_pages": ("頁数不明の解放 {n} 件", "{n} releases without a page count"),
    "printing.more": ("すべての記録", "All records"),
    "printing.none": ("記録なし", "No records"),
    "printing.kind.print.release": ("解放", "Released"),
    "printing.kind.print.denied": ("拒否", "Denied"),
    "printing.kind.print.expired": ("期限切れ", "Expired"),
    "printing.reason.unknown_card": ("未登録のカード", "Unknown card"),
    "printing.reason.no_right": ("印刷権限なし", "No print right"),
    "printing.reason.not_in_room": ("入室記録なし", "Not in the room"),
    "printing.reason.no_jobs": ("保留ジョブなし", "No held jobs"),
    "printing.reason.printer_stopped": ("プリンター停止中", "Printer stopped"),
    "printing.reason.cups_unavailable": ("印刷サーバー応答なし", "CUPS unavailable"),
}
