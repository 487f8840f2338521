"""The correlation rules: pure functions of typed inputs, settings and (where needed) ``now``.

Each returns a ``FindingOut`` or None. The dedupe key is built from stable ids only (row keys,
node:seq refs, control numbers, dates), so the incremental path and a re-run over any period that
holds the same data produce the same keys. Explanations show the joined evidence: ids and
site-local times, never a number's digits (log rows are redacted before they get here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from dashboard.correlation.calendar import is_jp_holiday
from dashboard.correlation.pc_rules import HOST_RULES
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.types import (
    AccessIn,
    BackupIn,
    DoorIncidentIn,
    FindingOut,
    Interval,
    LoanIn,
    LogIssueIn,
    PrintIn,
    UsbIn,
)

NOT_IN_ROOM = "access_not_in_room"
OUTSIDE_HOURS = "access_outside_hours"
USB_NEAR_ACCESS = "usb_near_access"
PRINT_AFTER_ACCESS = "print_after_access"
PRINT_WITHOUT_ACCESS = "print_without_access"
FAILED_LOGINS = "failed_logins_then_success"
UNKNOWN_OPERATOR = "unknown_operator"
DOOR_FORCED = "door_forced"
DOOR_HELD_OPEN = "door_held_open"
USB_BLOCKED = "usb_blocked"
MEDIA_OVERDUE = "media_overdue"
BACKUP_MISSING = "backup_missing"
BACKUP_FAILED = "backup_failed"
LOG_GAP = "node_log_gap"
LOG_CHAIN = "node_log_chain"
NUMBER_IN_LOG = "number_in_log"

RULES = (NOT_IN_ROOM, OUTSIDE_HOURS, USB_NEAR_ACCESS, PRINT_AFTER_ACCESS, PRINT_WITHOUT_ACCESS,
         FAILED_LOGINS, UNKNOWN_OPERATOR, DOOR_FORCED, DOOR_HELD_OPEN, USB_BLOCKED, MEDIA_OVERDUE,
         BACKUP_MISSING, BACKUP_FAILED, LOG_GAP, LOG_CHAIN, NUMBER_IN_LOG, *HOST_RULES)
NUMBER_RULES = (NOT_IN_ROOM, OUTSIDE_HOURS, USB_NEAR_ACCESS, FAILED_LOGINS, UNKNOWN_OPERATOR,
                NUMBER_IN_LOG)
INFO_ONLY = frozenset({PRINT_AFTER_ACCESS})  # output records, not anomalies


def key(rule: str, *parts: object) -> str:
    return ":".join([rule, *(str(p) for p in parts)])[:255]


def local(ts: datetime, s: CorrelationSettings) -> str:
    return ts.astimezone(s.zone).strftime("%Y-%m-%d %H:%M:%S")


def _who(a: AccessIn) -> str:
    return a.person_id or a.operator


# -- number accesses ------------------------------------------------------------------------


def covered(ts: datetime, intervals: Sequence[Interval], grace: timedelta) -> Interval | None:
    """The presence interval around ``ts`` (with ``grace`` either side), if any."""
    for iv in intervals:
        start = iv.start - grace if iv.start is not None else None
        end = iv.end + grace if iv.end is not None else None
        if start is not None and ts >= start and (end is None or ts <= end):
            return iv
    return None


def access_not_in_room(a: AccessIn, intervals: Sequence[Interval], s: CorrelationSettings
                       ) -> FindingOut | None:
    """An access by a known person while no presence interval covers it (grace applied)."""
    if a.person_id is None or a.category == "login" or not a.ok:
        return None
    doors = set(s.room_doors)
    ivs = [iv for iv in intervals if not doors or iv.door in doors]
    if covered(a.ts, ivs, timedelta(seconds=s.grace_s)) is not None:
        return None
    last_left = max((iv.end for iv in ivs if iv.end is not None and iv.end <= a.ts), default=None)
    when = local(a.ts, s)
    left_ja = f"最後の退室 {local(last_left, s)}" if last_left else "期間内の入室記録なし"
    left_en = f"last left {local(last_left, s)}" if last_left else "no entry recorded"
    return FindingOut(
        key=key(NOT_IN_ROOM, a.key), rule=NOT_IN_ROOM, severity="critical", at=a.ts,
        person_id=a.person_id,
        subject=f"{_who(a)}: access at {when} while not in the room",
        ja=f"{_who(a)} が {when} に番号システムを操作({a.action}、{a.ref})しましたが、"
           f"管理区域に在室していません({left_ja}、猶予 {s.grace_s} 秒)。",
        en=f"{_who(a)} used the number system at {when} ({a.action}, {a.ref}) while not in the "
           f"controlled area ({left_en}; grace {s.grace_s} s).",
        evidence={"row": a.key, "ref": a.ref, "ts": a.ts, "last_left": last_left,
                  "grace_s": s.grace_s},
    )


def is_working_time(ts: datetime, s: CorrelationSettings,
                    is_holiday: Callable[[date], bool] = is_jp_holiday) -> tuple[bool, str]:
    lt = ts.astimezone(s.zone)
    if lt.weekday() not in s.work_days:
        return False, "weekend"
    if s.holidays_off and is_holiday(lt.date()):
        return False, "holiday"
    if not (s.hours_start <= lt.time() < s.hours_end):
        return False, "hours"
    return True, ""


_WHY = {"weekend": ("休業日", "a non-working day"), "holiday": ("祝日", "a public holiday"),
        "hours": ("業務時間外", "outside working hours")}


def access_outside_hours(a: AccessIn, s: CorrelationSettings,
                         is_holiday: Callable[[date], bool] = is_jp_holiday) -> FindingOut | None:
    ok, why = is_working_time(a.ts, s, is_holiday)
    if ok or a.category == "login":
        return None
    ja, en = _WHY[why]
    when = local(a.ts, s)
    hours = f"{s.hours_start:%H:%M}-{s.hours_end:%H:%M}"
    return FindingOut(
        key=key(OUTSIDE_HOURS, a.key), rule=OUTSIDE_HOURS, severity="warning", at=a.ts,
        person_id=a.person_id, subject=f"{_who(a)}: access at {when} ({en})",
        ja=f"{_who(a)} が {ja}({when})に番号システムを操作しました({a.action}、{a.ref}、"
           f"業務時間 {hours})。",
        en=f"{_who(a)} used the number system on {en} ({when}; {a.action}, {a.ref}; working "
           f"hours {hours}).",
        evidence={"row": a.key, "ref": a.ref, "ts": a.ts, "why": why},
    )


def usb_near_access(a: AccessIn, usb: Sequence[UsbIn], s: CorrelationSettings
                    ) -> FindingOut | None:
    """USB storage used on the operator's host within the window around an access or export."""
    if a.host is None or a.category == "login" or not a.ok:
        return None
    w = timedelta(seconds=s.usb_window_s)
    near = sorted((u for u in usb if u.host == a.host and u.storage
                   and u.verdict in ("allow", "readonly") and abs(u.ts - a.ts) <= w),
                  key=lambda u: (u.ts, u.ref))
    if not near:
        return None
    export = a.category == "export"
    refs = ", ".join(f"{u.ref} {u.control_number or '-'} {local(u.ts, s)}" for u in near[:5])
    what_ja, what_en = ("出力", "an export") if export else ("番号アクセス", "a number access")
    return FindingOut(
        key=key(USB_NEAR_ACCESS, a.key), rule=USB_NEAR_ACCESS,
        severity="critical" if export else "warning", at=a.ts, person_id=a.person_id,
        subject=f"{_who(a)}: USB storage on {a.host} around {what_en}",
        ja=f"{_who(a)} の{what_ja}({local(a.ts, s)}、{a.ref})の前後 {s.usb_window_s // 60} 分以内に"
           f"端末 {a.host} で USB ストレージが使用されました: {refs}。",
        en=f"USB storage was used on {a.host} within {s.usb_window_s // 60} min of {what_en} by "
           f"{_who(a)} ({local(a.ts, s)}, {a.ref}): {refs}.",
        evidence={"row": a.key, "ref": a.ref, "host": a.host, "usb": [u.ref for u in near]},
    )


def failed_logins(success: AccessIn, earlier: Sequence[AccessIn], s: CorrelationSettings
                  ) -> FindingOut | None:
    """A successful log-in after ``threshold`` failures of the same operator within the window
    (counting failures since the operator's previous success)."""
    if success.category != "login" or not success.ok:
        return None
    lo = success.ts - timedelta(seconds=s.failed_login_window_s)
    me = (success.ts, success.line, success.key)
    rows = sorted((r for r in earlier if r.operator == success.operator and r.category == "login"
                   and lo <= r.ts and (r.ts, r.line, r.key) < me),
                  key=lambda r: (r.ts, r.line, r.key))
    fails: list[AccessIn] = []
    for r in rows:
        if r.ok:
            fails = []
        else:
            fails.append(r)
    if len(fails) < s.failed_login_threshold:
        return None
    refs = ", ".join(f"{f.ref} {local(f.ts, s)}" for f in fails[:10])
    return FindingOut(
        key=key(FAILED_LOGINS, success.key), rule=FAILED_LOGINS, severity="warning",
        at=success.ts, person_id=success.person_id,
        subject=f"{_who(success)}: {len(fails)} failed log-ins, then success",
        ja=f"{_who(success)} のログインが {len(fails)} 回失敗した後、{local(success.ts, s)} に成功しました"  # noqa: E501
           f"({success.ref}。失敗: {refs})。",
        en=f"{_who(success)} failed to log in {len(fails)} times, then succeeded at "
           f"{local(success.ts, s)} ({success.ref}; failures: {refs}).",
        evidence={"row": success.key, "failures": [f.key for f in fails]},
    )


def unknown_operator(a: AccessIn, s: CorrelationSettings) -> FindingOut | None:
    if a.person_id is not None:
        return None
    return FindingOut(
        key=key(UNKNOWN_OPERATOR, a.source, a.operator), rule=UNKNOWN_OPERATOR,
        severity="warning", at=a.ts,
        subject=f"unknown operator {a.operator!r} in {a.source}",
        ja=f"処理者「{a.operator}」({a.source})はどの人にも対応付けられていません"
           f"(初回 {local(a.ts, s)}、{a.ref})。人の設定で処理者 ID を登録してください。",
        en=f"Operator {a.operator!r} ({a.source}) is not mapped to any person (first seen "
           f"{local(a.ts, s)}, {a.ref}); add the operator id to the person.",
        evidence={"row": a.key, "ref": a.ref, "source": a.source, "operator": a.operator},
    )


def number_in_log(a: AccessIn, s: CorrelationSettings) -> FindingOut | None:
    if not a.redacted_fields:
        return None
    fields = ", ".join(a.redacted_fields)
    return FindingOut(
        key=key(NUMBER_IN_LOG, a.key), rule=NUMBER_IN_LOG, severity="critical", at=a.ts,
        person_id=a.person_id,
        subject=f"individual number found in {a.source} line {a.line} ({fields})",
        ja=f"{a.source} の {a.line} 行目(NO {a.no or '-'}、列 {fields})に個人番号が含まれていたため、"  # noqa: E501
           "保存前に削除しました。番号システムの出力設定を確認してください。",
        en=f"An individual number in {a.source} line {a.line} (NO {a.no or '-'}, column "
           f"{fields}) was redacted before storage; check the number system's export settings.",
        evidence={"row": a.key, "source": a.source, "line": a.line, "fields": list(a.redacted_fields)},  # noqa: E501
    )


# -- prints ---------------------------------------------------------------------------------


def print_release(p: PrintIn, accesses: Sequence[AccessIn], s: CorrelationSettings
                  ) -> FindingOut:
    """An output record after a number access by the same person, or a print without one."""
    lo = p.ts - timedelta(seconds=s.print_window_s)
    before = sorted((a for a in accesses if a.person_id == p.person_id and a.ok
                     and a.category != "login" and lo <= a.ts <= p.ts), key=lambda a: a.ts)
    who = p.person_id or "?"
    if before:
        last = before[-1]
        return FindingOut(
            key=key(PRINT_AFTER_ACCESS, p.ref), rule=PRINT_AFTER_ACCESS, severity="info",
            at=p.ts, person_id=p.person_id,
            subject=f"{who}: print release on {p.printer} after a number access",
            ja=f"{who} が {local(p.ts, s)} にプリンター {p.printer} で印刷を解放しました({p.ref}、"
               f"{p.pages if p.pages is not None else '?'} 頁)。直前の番号アクセス: "
               f"{local(last.ts, s)} {last.action}({last.ref})。",
            en=f"{who} released a print on {p.printer} at {local(p.ts, s)} ({p.ref}, "
               f"{p.pages if p.pages is not None else '?'} pages) after a number access at "
               f"{local(last.ts, s)} ({last.action}, {last.ref}).",
            evidence={"print": p.ref, "rows": [a.key for a in before[-5:]]},
        )
    return FindingOut(
        key=key(PRINT_WITHOUT_ACCESS, p.ref), rule=PRINT_WITHOUT_ACCESS, severity="warning",
        at=p.ts, person_id=p.person_id,
        subject=f"{who}: print release on {p.printer} without a number access",
        ja=f"{who} が {local(p.ts, s)} にプリンター {p.printer} で印刷を解放しましたが({p.ref})、"
           f"直前 {s.print_window_s // 3600} 時間に番号システムの操作記録がありません。",
        en=f"{who} released a print on {p.printer} at {local(p.ts, s)} ({p.ref}) with no number "
           f"access in the {s.print_window_s // 3600} h before.",
        evidence={"print": p.ref},
    )


def print_keys(p: PrintIn) -> tuple[str, str]:
    return key(PRINT_AFTER_ACCESS, p.ref), key(PRINT_WITHOUT_ACCESS, p.ref)


# -- physical and node events ---------------------------------------------------------------


def door_incident(e: DoorIncidentIn, present: Sequence[str], s: CorrelationSettings
                  ) -> FindingOut | None:
    if e.kind not in ("door.forced", "door.held_open"):
        return None
    forced = e.kind == "door.forced"
    rule = DOOR_FORCED if forced else DOOR_HELD_OPEN
    people = ", ".join(sorted(present)) or "-"
    ja_what, en_what = ("こじ開け(強制開放)", "forced open") if forced else ("開放放置", "held open")  # noqa: E501
    return FindingOut(
        key=key(rule, e.ref), rule=rule, severity="critical" if forced else "warning", at=e.ts,
        node=e.node, subject=f"door {e.door} {en_what} at {local(e.ts, s)}",
        ja=f"扉 {e.door} が {local(e.ts, s)} に{ja_what}されました({e.ref})。在室者: {people}。",
        en=f"Door {e.door} was {en_what} at {local(e.ts, s)} ({e.ref}); present: {people}.",
        evidence={"event": e.ref, "door": e.door, "present": sorted(present)},
    )


def usb_blocked(u: UsbIn, s: CorrelationSettings) -> FindingOut | None:
    if u.verdict != "block":
        return None
    return FindingOut(
        key=key(USB_BLOCKED, u.ref), rule=USB_BLOCKED, severity="warning", at=u.ts,
        node=u.ref.split(":")[0], subject=f"unregistered USB device blocked on {u.host}",
        ja=f"未登録の USB 機器({u.vendor_product or '?'}、{u.device})が {local(u.ts, s)} に端末 "
           f"{u.host} で遮断されました({u.ref})。",
        en=f"An unregistered USB device ({u.vendor_product or '?'}, {u.device}) was blocked on "
           f"{u.host} at {local(u.ts, s)} ({u.ref}).",
        evidence={"event": u.ref, "host": u.host},
    )


def media_overdue(loan: LoanIn, now: datetime, s: CorrelationSettings) -> FindingOut | None:
    back = loan.returned_at
    if (back is not None and back <= loan.due_back) or (back is None and now <= loan.due_back):
        return None
    late = (back or now) - loan.due_back
    hours = int(late.total_seconds() // 3600)
    status_ja = f"{local(back, s)} に返却" if back else "未返却"
    status_en = f"returned {local(back, s)}" if back else "not returned"
    return FindingOut(
        key=key(MEDIA_OVERDUE, loan.control_number, loan.due_back.isoformat()),
        rule=MEDIA_OVERDUE, severity="warning", at=loan.due_back, person_id=loan.holder,
        subject=f"medium {loan.control_number} overdue",
        ja=f"媒体 {loan.control_number}({loan.holder} が持出し)の返却期限 {local(loan.due_back, s)} を"  # noqa: E501
           f" {hours} 時間超過しています({status_ja})。",
        en=f"Medium {loan.control_number} checked out by {loan.holder} was due back "
           f"{local(loan.due_back, s)}; {hours} h late ({status_en}).",
        evidence={"control_number": loan.control_number, "due_back": loan.due_back},
    )


def backup_checkpoints(since: datetime, until: datetime, now: datetime,
                       s: CorrelationSettings) -> list[datetime]:
    """The daily check times (site local ``backup_check_time``) in [since, min(until, now)]."""
    end = min(until, now)
    day = since.astimezone(s.zone).date()
    out: list[datetime] = []
    while True:
        cp = datetime.combine(day, s.backup_check_time, s.zone)
        if cp > end:
            return out
        if cp >= since:
            out.append(cp)
        day += timedelta(days=1)


def backup_missing(checkpoint: datetime, snapshots: Sequence[BackupIn], s: CorrelationSettings
                   ) -> FindingOut | None:
    """No good snapshot younger than ``backup_max_age_h`` at the morning check."""
    oldest = checkpoint - timedelta(hours=s.backup_max_age_h)
    good = [b for b in snapshots if b.ok and oldest < b.ts <= checkpoint]
    if good:
        return None
    last = max((b.ts for b in snapshots if b.ok and b.ts <= checkpoint), default=None)
    day = checkpoint.astimezone(s.zone).date().isoformat()
    last_ja = local(last, s) if last else "なし"
    last_en = local(last, s) if last else "none"
    return FindingOut(
        key=key(BACKUP_MISSING, day), rule=BACKUP_MISSING, severity="critical", at=checkpoint,
        subject=f"no good backup before the check of {day}",
        ja=f"{local(checkpoint, s)} の確認時点で、{s.backup_max_age_h:g} 時間以内の正常なバックアップが"  # noqa: E501
           f"ありません(最後の正常なバックアップ: {last_ja})。",
        en=f"At the check of {local(checkpoint, s)} there was no good backup younger than "
           f"{s.backup_max_age_h:g} h (last good one: {last_en}).",
        evidence={"checkpoint": checkpoint, "last_good": last},
    )


def backup_failed(b: BackupIn, s: CorrelationSettings) -> FindingOut | None:
    if b.ok:
        return None
    return FindingOut(
        key=key(BACKUP_FAILED, b.ref), rule=BACKUP_FAILED, severity="critical", at=b.ts,
        node=b.node, subject=f"backup {b.stage} failed on {b.node} ({b.error})",
        ja=f"{local(b.ts, s)} に {b.node} のバックアップ({b.stage})が失敗しました"
           f"(原因 {b.error or '?'}、{b.ref})。",
        en=f"Backup {b.stage} failed on {b.node} at {local(b.ts, s)} (cause {b.error or '?'}, "
           f"{b.ref}).",
        evidence={"event": b.ref, "error": b.error},
    )


def log_issue(i: LogIssueIn, s: CorrelationSettings) -> FindingOut:
    if i.kind == "gap":
        return FindingOut(
            key=key(LOG_GAP, i.node, i.first), rule=LOG_GAP, severity="critical", at=i.ts,
            node=i.node, subject=f"{i.node}: events {i.first}..{i.last} missing",
            ja=f"ノード {i.node} のログに欠番があります(seq {i.first}〜{i.last}、{local(i.ts, s)} 付近)。",  # noqa: E501
            en=f"Node {i.node}'s log has a gap: seq {i.first}..{i.last} missing (around "
               f"{local(i.ts, s)}).",
            evidence={"node": i.node, "first": i.first, "last": i.last},
        )
    return FindingOut(
        key=key(LOG_CHAIN, i.node, i.first), rule=LOG_CHAIN, severity="critical", at=i.ts,
        node=i.node, subject=f"{i.node}: hash chain or signature broken at seq {i.first}",
        ja=f"ノード {i.node} のログのハッシュ連鎖または署名が seq {i.first} で不正です({local(i.ts, s)})。",  # noqa: E501
        en=f"Node {i.node}'s log has a broken hash chain or signature at seq {i.first} "
           f"({local(i.ts, s)}).",
        evidence={"node": i.node, "seq": i.first},
    )
