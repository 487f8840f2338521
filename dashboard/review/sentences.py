"""Each review item as one sentence in the reader's language that names people, doors, hosts
and nodes by their names ("鈴木 健一 が 12:30 に番号システムを操作(閲覧)。その時刻は管理区域に不在
(12:00 退室)"). Built from the item, its finding's evidence and the records they point to,
never from the English ``subject`` stored with the item."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from dashboard.i18n import Translator
from dashboard.labels import label
from dashboard.models.anomalies import Anomaly
from dashboard.models.correlation import Finding
from dashboard.models.events import StoredEvent
from dashboard.models.numlog import NumberAccess
from dashboard.names import Names

# kind -> (ja, en); fields: person, time, date, place, host, node, action, last_left, why,
# reader, printer, pages, n, operator, control, holder, due, last, stage, first, last_seq, seq,
# line, fields, count, backed_up
TEMPLATES: dict[str, tuple[str, str]] = {
    "corr.access_not_in_room": (
        "{person} が {time} に番号システムを操作({action})。その時刻は管理区域に不在({last_left})",
        "{person} used the number system at {time} ({action}) while not in the controlled area "
        "({last_left})"),
    "corr.access_outside_hours": (
        "{person} が{why}の {time} に番号システムを操作({action})",
        "{person} used the number system at {time}, {why} ({action})"),
    "corr.usb_near_access": (
        "{person} の番号アクセス({time})の前後に、端末 {host} で USB ストレージを使用",
        "USB storage was used on {host} around {person}'s number access at {time}"),
    "corr.print_after_access": (
        "{person} が番号アクセスの後、{time} に {printer} で印刷({pages} 頁)",
        "{person} printed {pages} pages on {printer} at {time}, after a number access"),
    "corr.print_without_access": (
        "{person} が {time} に {printer} で印刷({pages} 頁)。直前に番号システムの操作なし",
        "{person} printed {pages} pages on {printer} at {time} with no number access before"),
    "corr.failed_logins_then_success": (
        "{person} の番号システムへのログインが {n} 回失敗した後、{time} に成功",
        "{person} failed to log in to the number system {n} times, then succeeded at {time}"),
    "corr.unknown_operator": (
        "処理者 {operator} がどの人にも対応付けられていません(初回 {time})",
        "Operator {operator} is not mapped to any person (first seen {time})"),
    "corr.door_forced": (
        "{place} が {time} にこじ開けられました(在室: {present})",
        "{place} was forced open at {time} (inside: {present})"),
    "corr.door_held_open": (
        "{place} が {time} に開いたままになりました(在室: {present})",
        "{place} was held open at {time} (inside: {present})"),
    "corr.usb_blocked": (
        "端末 {host} で未登録の USB 機器を遮断({time})",
        "An unregistered USB device was blocked on {host} at {time}"),
    "corr.media_overdue": (
        "媒体 {control} の返却期限 {due} を過ぎています(持出者 {holder})",
        "Medium {control} was due back {due} (held by {holder})"),
    "corr.backup_missing": (
        "{time} の確認時点で正常なバックアップがありません(最後の正常なバックアップ: {last})",
        "No good backup at the check of {time} (last good one: {last})"),
    "corr.backup_failed": (
        "{node} のバックアップ({stage})が {time} に失敗",
        "The backup ({stage}) on {node} failed at {time}"),
    "corr.node_log_gap": (
        "{node} の記録に欠番があります(通番 {first}〜{last_seq}、{time} 付近)",
        "{node}'s records have a gap (numbers {first} to {last_seq}, around {time})"),
    "corr.node_log_chain": (
        "{node} の記録のハッシュ連鎖または署名が一致しません(通番 {seq}、{time})",
        "{node}'s hash chain or signature does not verify (number {seq}, {time})"),
    "corr.number_in_log": (
        "取り込んだログの {line} 行目({fields})に個人番号があったため、保存前に削除しました",
        "An individual number in line {line} of an imported log ({fields}) was removed "
        "before storage"),
    "gap": ("{node} の記録に欠番があります", "{node}'s records have a gap"),
    "fork": ("{node} の記録が分岐しています", "{node}'s records fork"),
    "chain": ("{node} の記録のハッシュ連鎖が一致しません", "{node}'s hash chain is broken"),
    "bad_signature": ("{node} の記録の署名が不正です", "{node} sent a record with a bad signature"),
    "unknown_node": ("登録されていないノードから通信がありました", "An unknown node connected"),
    "unapproved_node": ("承認前のノード {node} から記録が届いています",
                        "Records arrived from {node}, which is not approved yet"),
    "node_enrolment": ("ノード {node} が登録を申請しています。鍵を確認して承認してください",
                       "{node} asks to be enrolled: compare its key and approve it"),
    "node_key_mismatch": ("ノード {node} が登録と異なる鍵を名乗っています",
                          "{node} announces a key that differs from its approved key"),
    "clock_skew": ("ノード {node} の時刻がずれています", "{node}'s clock is off"),
    "journal_failure": ("ノード {node} が記録を書き込めません", "{node} cannot write its journal"),
    "broker_link": ("ノード {node} とブローカーの接続が切れました",
                    "{node} lost its link to the broker"),
    "receipt_refused": ("ノード {node} が偽造または再送の疑いのある受領通知を拒否しました",
                        "{node} refused a forged or replayed receipt"),
    "policy_rejected": ("ノード {node} がポリシーを拒否しました", "{node} rejected the policy"),
    "policy_stale": ("ノード {node} が古いか期限切れのポリシーで動いています",
                     "{node} runs an old or expired policy"),
    "door_forced": ("{place} が {time} にこじ開けられました", "{place} was forced open at {time}"),
    "reader_tamper": ("{node} のリーダー {reader} が {time} にいたずら(カバーの開放・取り外し)を"
                      "検知しました",
                      "Reader {reader} of {node} reported tamper (opened or pulled off) at "
                      "{time}"),
    "reader_power": ("{node} のリーダー {reader} が {time} に電源異常を報告しました",
                     "Reader {reader} of {node} reported a power failure at {time}"),
    "reader_refused": ("{node} のリーダー {reader} が {time} に暗号化通信を確立できませんでした"
                       "(鍵の不一致・初期化・交換の疑い)。リーダーからの入力は受け付けていません",
                       "Reader {reader} of {node} failed the secure channel at {time} (wrong "
                       "key, reset or swapped); nothing it sends is accepted"),
    "door_held_open": ("{place} が {time} に開いたままになりました",
                       "{place} was held open at {time}"),
    "rejected_payload": ("ノード {node} から不正なメッセージが届きました",
                         "{node} sent a message that was refused"),
    "dashboard_unclean_stop": ("ダッシュボードが正常に終了しませんでした(停電や強制終了の可能性)",
                               "The dashboard stopped without shutting down (power loss or a "
                               "kill)"),
    "media_overdue": ("媒体 {control} の返却期限 {due} を過ぎています(持出者 {holder})",
                      "Medium {control} was due back {due} (held by {holder})"),
    "node_version_unsupported": (
        "ノード {node} のバージョンにこのダッシュボードは対応していません。記録は受け取らずノードに"
        "残しています。ノード(新しすぎる場合はダッシュボード)を更新してください",
        "{node} runs a version this dashboard does not support: its records stay on the node "
        "until it (or, if it is newer, the dashboard) is upgraded"),
    "database_backup_failed": ("ダッシュボードのデータベースのバックアップが {time} に失敗しました",
                               "The dashboard's database backup failed at {time}"),
    "dashboard_recovered": (
        "ダッシュボードを {backed_up} のバックアップから復旧しました。それ以降の権限の変更、ログの"
        "取込、確認作業は含まれていません。確認して再入力してください",
        "The dashboard was rebuilt from its backup of {backed_up}: changes made after it "
        "(rights, log imports, reviews) are not in it; check and enter them again"),
    "camera_failed": ("カメラ {camera} が {time} の{place}の記録の静止画を撮れませんでした",
                      "Camera {camera} took no still of the record at {place} at {time}"),
    "camera_upload_refused": ("ノード {node} を名乗る静止画のアップロードの署名が一致しません",
                              "A still upload claiming to be from {node} failed its signature"),
    "camera_upload_revoked": (
        "ノード {node} の失効した鍵で署名された静止画のアップロードを拒否しました",
        "A still upload signed by a revoked key of {node} was refused"),
    "camera_still_set_aside": (
        "{node} は{place}の静止画を送れないため保留しました"
        "(撮影時の鍵が失効しています、{count} 件)。画像はゲートウェイの保留場所に残っています",
        "{node} set aside {count} still(s) of {place}: the key that signed them was revoked. "
        "The images stay in the gateway's set-aside place"),
    "numlog.number_found": (
        "取込ファイルの {line} 行目に個人番号があったため、その行を取り込みませんでした",
        "Line {line} of an imported file held an individual number and was not imported"),
}
WHY = {"weekend": ("休業日", "on a non-working day"), "holiday": ("祝日", "on a public holiday"),
       "hours": ("業務時間外", "outside working hours")}
FIELDS = {"purpose": ("利用目的", "purpose"), "screen": ("画面", "screen"),
          "action": ("処理", "action"), "result": ("結果", "result"),
          "operator": ("処理者", "operator"), "office": ("事業所名", "office"),
          "no": ("NO", "NO"), "terminal": ("端末", "terminal")}


@dataclass
class Evidence:
    """What the sentences of a page of items read, loaded in a few queries."""

    findings: dict[int, Finding] = field(default_factory=dict)
    rows: dict[str, NumberAccess] = field(default_factory=dict)
    events: dict[str, StoredEvent] = field(default_factory=dict)

    @classmethod
    def load(cls, db: Session, items: list[Anomaly]) -> Evidence:
        out = cls()
        ids = [a.id for a in items if a.kind.startswith("corr.")]
        if ids:
            for f in db.scalars(select(Finding).where(Finding.anomaly_id.in_(ids))):
                out.findings[f.anomaly_id or 0] = f
        keys = {str(f.evidence.get("row")) for f in out.findings.values() if f.evidence.get("row")}
        if keys:
            out.rows = {r.row_key: r for r in db.scalars(
                select(NumberAccess).where(NumberAccess.row_key.in_(keys)))}
        refs = set()
        for f in out.findings.values():
            for k in ("print", "event"):
                ref = f.evidence.get(k)
                if isinstance(ref, str) and ":" in ref:
                    node, _, seq = ref.rpartition(":")
                    if seq.isdigit():
                        refs.add((node, int(seq)))
        if refs:
            q = select(StoredEvent).where(tuple_(StoredEvent.node, StoredEvent.seq).in_(refs))
            out.events = {f"{e.node}:{e.seq}": e for e in db.scalars(q)}
        return out


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "ja" else pair[1]


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else None
    return None


def fields_of(a: Anomaly, ev: Evidence, t: Translator, n: Names) -> dict[str, Any]:
    """The named values a sentence (or the item page) shows for ``a``."""
    lang = t.lang
    f = ev.findings.get(a.id)
    evidence: dict[str, Any] = dict(f.evidence) if f else {}
    detail = a.detail if isinstance(a.detail, dict) else {}
    row = ev.rows.get(str(evidence.get("row", "")))
    event = None
    for k in ("print", "event"):
        if isinstance(evidence.get(k), str):
            event = ev.events.get(evidence[k]) or event
    data = event.data if event is not None and isinstance(event.data, dict) else {}
    none = "—"
    last_left = _when(evidence.get("last_left"))
    left = (f"{t.hm(last_left)} 退室" if lang == "ja" else f"left at {t.hm(last_left)}") \
        if last_left else ("入室記録なし" if lang == "ja" else "no entry recorded")
    present = [n.person(p) for p in evidence.get("present", []) or []]
    out: dict[str, Any] = {
        "person": n.person(a.person_id) if a.person_id else none,
        "time": t.time(a.at or a.first_seen_at),
        "place": n.place(a.place or evidence.get("door") or detail.get("door")) or none,
        "host": n.host(a.host or evidence.get("host") or detail.get("host")) or none,
        "node": n.node(a.node) if a.node else none,
        "reader": n.reader(detail.get("reader")) if detail.get("reader") else none,
        "action": row.action if row is not None and row.action else none,
        "operator": (row.operator if row is not None else evidence.get("operator")) or none,
        "last_left": left,
        "why": _pick(WHY.get(str(evidence.get("why")), ("", "")), lang) or none,
        "printer": n.printer(str(data.get("printer", ""))) or none,
        "pages": data.get("pages", "?"),
        "n": len(evidence.get("failures", []) or []),
        "present": "、".join(present) if present else ("なし" if lang == "ja" else "nobody"),
        "control": detail.get("control_number") or _control(a) or none,
        "holder": n.person(detail.get("holder") or a.person_id) if (detail.get("holder")
                                                                     or a.person_id) else none,
        "due": t.time(_when(detail.get("due_back")) or a.at),
        "last": t.time(_when(evidence.get("last_good"))) if evidence.get("last_good")
        else ("なし" if lang == "ja" else "none"),
        "stage": label("backup_stage", str(data.get("stage") or "run"), lang),
        "first": evidence.get("first", detail.get("first", none)),
        "last_seq": evidence.get("last", detail.get("last", none)),
        "seq": evidence.get("seq", detail.get("seq", none)),
        "line": evidence.get("line", detail.get("line", none)),
        "fields": "、".join(_pick(FIELDS.get(x, (x, x)), lang)
                           for x in (evidence.get("fields") or detail.get("fields") or [])),
        "count": a.count,
        "camera": n.reader(str(detail["camera"])) if detail.get("camera") else none,
        "backed_up": t.time(_when(detail.get("backed_up_at"))) if detail.get("backed_up_at")
        else none,
    }
    return out


def _control(a: Anomaly) -> str | None:
    parts = a.dedupe_key.split(":")
    return next((p for p in parts if p.startswith("USB-")), None)


class _Fill(defaultdict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "—"


def sentence(a: Anomaly, ev: Evidence, t: Translator, n: Names) -> str:
    template = TEMPLATES.get(a.kind)
    values = fields_of(a, ev, t, n)
    if template is None:
        kind = label("review_kind", a.kind, t.lang)
        return f"{kind}({values['node']})" if a.node else kind
    text = _pick(template, t.lang).format_map(_Fill(None, values))
    if a.count > 1:
        text += f"(×{a.count})"
    return text
