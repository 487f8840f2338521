"""The room PCs' correlation rules: pure functions of the host agents' events (typed by
``dashboard.hosts.queries.HostEvent``), presence, number accesses and the settings.

Each returns a ``FindingOut`` or None; keys are built from the events' node:seq refs, so the
incremental path and a re-run give the same keys. Sentences name people by id and times in the
site's zone, as the other rules do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from dashboard.correlation.pc_rules import (  # noqa: F401 - the names, re-exported
    HOST_RULES,
    PC_AFTER_EXIT,
    PC_BREAK_GLASS,
    PC_FAILED_LOGINS,
    PC_FILES_WITHOUT_ACCESS,
    PC_NOT_IN_ROOM,
    PC_OUTSIDE_HOURS,
    PC_PRESENCE_UNKNOWN,
    PC_SUDO_NOT_ADMIN,
    PC_TWO_HOSTS,
)
from dashboard.correlation.rules import covered, is_working_time, key, local
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.types import AccessIn, FindingOut, Interval
from dashboard.hosts.queries import HostEvent, PcSession

FAILURE_REASONS = frozenset({"wrong_password", "unknown_card", "wrong_account"})


def _who(d: object) -> str:
    return getattr(d, "person_id", None) or getattr(d, "account", None) or "?"


def _local_logon(e: HostEvent) -> bool:
    return e.kind == "host.logon" and e.data.granted and not e.data.remote


def logon_not_in_room(e: HostEvent, intervals: Sequence[Interval], s: CorrelationSettings
                      ) -> FindingOut | None:
    """A local log-on granted to someone no presence interval covers (grace applied)."""
    d = e.data
    if not _local_logon(e) or d.person_id is None:
        return None
    doors = set(s.room_doors)
    ivs = [iv for iv in intervals if not doors or iv.door in doors]
    if covered(e.ts, ivs, timedelta(seconds=s.grace_s)) is not None:
        return None
    when = local(e.ts, s)
    return FindingOut(
        key=key(PC_NOT_IN_ROOM, e.ref), rule=PC_NOT_IN_ROOM, severity="critical", at=e.ts,
        person_id=d.person_id, node=e.node,
        subject=f"{d.person_id}: log-on at {d.host} at {when} while not in the room",
        ja=f"{d.person_id} が {when} に室内 PC {d.host} にログオン({d.service}、{e.ref})"
           f"しましたが、入退室記録では在室していません(猶予 {s.grace_s} 秒)。",
        en=f"{d.person_id} logged on at room PC {d.host} at {when} ({d.service}, {e.ref}) "
           f"while the door records show them outside (grace {s.grace_s} s).",
        evidence={"event": e.ref, "host": d.host, "presence": d.presence},
    )


def logon_outside_hours(e: HostEvent, s: CorrelationSettings) -> FindingOut | None:
    if not _local_logon(e):
        return None
    ok, why = is_working_time(e.ts, s)
    if ok:
        return None
    d = e.data
    when = local(e.ts, s)
    hours = f"{s.hours_start:%H:%M}-{s.hours_end:%H:%M}"
    why_ja = {"weekend": "休業日", "holiday": "祝日", "hours": "業務時間外"}[why]
    return FindingOut(
        key=key(PC_OUTSIDE_HOURS, e.ref), rule=PC_OUTSIDE_HOURS, severity="warning", at=e.ts,
        person_id=d.person_id, node=e.node,
        subject=f"{_who(d)}: log-on at {d.host} at {when} ({why})",
        ja=f"{_who(d)} が{why_ja}({when})に室内 PC {d.host} にログオンしました({e.ref}、業務時間 "
           f"{hours})。",
        en=f"{_who(d)} logged on at room PC {d.host} at {when}, {why} ({e.ref}; working hours "
           f"{hours}).",
        evidence={"event": e.ref, "host": d.host, "why": why},
    )


def presence_unknown(e: HostEvent, s: CorrelationSettings) -> FindingOut | None:
    """A log-on decided without signed presence: granted (the setting allows it) or denied."""
    d = e.data
    if e.kind != "host.logon" or not (d.presence == "unknown" or d.reason == "presence_unknown"):
        return None
    when = local(e.ts, s)
    verdict_ja, verdict_en = ("許可", "granted") if d.granted else ("拒否", "denied")
    return FindingOut(
        key=key(PC_PRESENCE_UNKNOWN, e.ref), rule=PC_PRESENCE_UNKNOWN,
        severity="critical" if d.granted else "warning", at=e.ts, person_id=d.person_id,
        node=e.node, subject=f"{d.host}: log-on {verdict_en} without presence at {when}",
        ja=f"室内 PC {d.host} が在室情報を得られないまま {_who(d)} のログオンを{verdict_ja}しました"
           f"({when}、{e.ref})。ダッシュボードとの接続を確認してください。",
        en=f"Room PC {d.host} {verdict_en} a log-on by {_who(d)} without presence information "
           f"({when}, {e.ref}); check its link to the dashboard.",
        evidence={"event": e.ref, "host": d.host, "granted": d.granted},
    )


def break_glass(e: HostEvent, s: CorrelationSettings) -> FindingOut | None:
    d = e.data
    if e.kind != "host.logon" or not d.break_glass or not d.granted:
        return None
    when = local(e.ts, s)
    return FindingOut(
        key=key(PC_BREAK_GLASS, e.ref), rule=PC_BREAK_GLASS, severity="critical", at=e.ts,
        node=e.node, subject=f"{d.host}: recovery account {d.account} used at {when}",
        ja=f"室内 PC {d.host} で緊急用アカウント {d.account} がカードなしでログオンしました"
           f"({when}、{e.ref})。利用理由を記録してください。",
        en=f"The recovery account {d.account} logged on without a card at room PC {d.host} "
           f"({when}, {e.ref}); record why it was used.",
        evidence={"event": e.ref, "host": d.host, "account": d.account},
    )


def sudo_without_admin(e: HostEvent, s: CorrelationSettings) -> FindingOut | None:
    d = e.data
    if e.kind != "host.sudo" or d.admin_right is not False:
        return None
    when = local(d.at, s)
    done_ja, done_en = ("実行", "ran") if d.ok else ("試行(拒否)", "tried (refused)")
    return FindingOut(
        key=key(PC_SUDO_NOT_ADMIN, e.ref), rule=PC_SUDO_NOT_ADMIN,
        severity="critical" if d.ok else "warning", at=d.at, person_id=d.person_id,
        node=e.node, subject=f"{_who(d)}: {d.tool} on {d.host} without the administrator right",
        ja=f"管理者権限のない {_who(d)} が {when} に {d.host} で {d.tool} を{done_ja}しました"
           f"({d.command or d.target}、{d.count} 回、{e.ref})。",
        en=f"{_who(d)}, who has no administrator right, {done_en} {d.tool} on {d.host} at "
           f"{when} ({d.command or d.target}, {d.count} time(s), {e.ref}).",
        evidence={"event": e.ref, "host": d.host, "tool": d.tool, "ok": d.ok},
    )


def files_without_access(e: HostEvent, accesses: Sequence[AccessIn], s: CorrelationSettings
                         ) -> FindingOut | None:
    """Files in a number-data folder used with no number-system operation by the same person
    within ``usb_window_s`` either side."""
    d = e.data
    if e.kind != "host.file_access" or d.path_class != "number_data" or not d.success:
        return None
    w = timedelta(seconds=s.usb_window_s)
    end = d.last_at or d.at
    if d.person_id is not None and any(
            a.person_id == d.person_id and a.ok and a.category != "login"
            and d.at - w <= a.ts <= end + w for a in accesses):
        return None
    when = local(d.at, s)
    names = ", ".join(d.names[:5]) + (" …" if d.count > 5 else "")
    return FindingOut(
        key=key(PC_FILES_WITHOUT_ACCESS, e.ref), rule=PC_FILES_WITHOUT_ACCESS,
        severity="critical" if d.op in ("copy", "delete") else "warning", at=d.at,
        person_id=d.person_id, node=e.node,
        subject=f"{_who(d)}: {d.op} of {d.count} number-data file(s) on {d.host} without a "
                "number-system operation",
        ja=f"{_who(d)} が {when} に {d.host} の番号データフォルダで {d.count} 件のファイル操作"
           f"({d.op}、{d.program}: {names})をしましたが、前後 {s.usb_window_s // 60} 分に"
           f"番号システムの操作記録がありません({e.ref})。",
        en=f"{_who(d)} did {d.op} on {d.count} file(s) in a number-data folder on {d.host} at "
           f"{when} ({d.program}: {names}) with no number-system operation within "
           f"{s.usb_window_s // 60} min ({e.ref}).",
        evidence={"event": e.ref, "host": d.host, "op": d.op, "count": d.count},
    )


def session_after_exit(exit_ref: str, person_id: str, left_at: datetime,
                       sessions: Sequence[PcSession], locks: Sequence[HostEvent],
                       s: CorrelationSettings) -> FindingOut | None:
    """A session of the person still open, and not locked, ``grace_s`` after they left."""
    after = left_at + timedelta(seconds=s.grace_s)
    locked = {(e.data.host, e.data.account) for e in locks
              if e.data.person_id == person_id and left_at <= e.ts <= after and e.data.ok
              and (e.data.sessions or e.data.terminated)}
    still = sorted((x for x in sessions if x.person_id == person_id and x.open_at(after)
                    and (x.opened_at is None or x.opened_at <= left_at)
                    and (x.host, x.account) not in locked), key=lambda x: (x.host, x.session_id))
    if not still:
        return None
    where = ", ".join(f"{x.host} #{x.session_id}" for x in still[:5])
    when = local(left_at, s)
    return FindingOut(
        key=key(PC_AFTER_EXIT, exit_ref, person_id), rule=PC_AFTER_EXIT, severity="warning",
        at=left_at,
        person_id=person_id, node=still[0].node,
        subject=f"{person_id}: PC session open after leaving the room at {when}",
        ja=f"{person_id} が {when} に退室した後も、室内 PC のセッションがロックされずに開いています"
           f"({where}、猶予 {s.grace_s} 秒、{exit_ref})。",
        en=f"{person_id} left the room at {when} while their PC session stayed open and "
           f"unlocked ({where}; grace {s.grace_s} s; {exit_ref}).",
        evidence={"exit": exit_ref, "sessions": [f"{x.host}#{x.session_id}" for x in still]},
    )


def two_hosts(e: HostEvent, sessions: Sequence[PcSession], s: CorrelationSettings
              ) -> FindingOut | None:
    """A session opened while the same person (or account) has one open on another host."""
    d = e.data
    if e.kind != "host.session" or d.action != "opened":
        return None
    mine = (lambda x: x.person_id == d.person_id) if d.person_id else (
        lambda x: x.account == d.account and x.account is not None)
    others = sorted((x for x in sessions if x.host != d.host and mine(x)
                     and x.open_at(d.at)), key=lambda x: (x.host, x.session_id))
    if not others:
        return None
    when = local(d.at, s)
    where = ", ".join(f"{x.host} #{x.session_id}" for x in others[:5])
    return FindingOut(
        key=key(PC_TWO_HOSTS, e.ref), rule=PC_TWO_HOSTS, severity="warning", at=d.at,
        person_id=d.person_id, node=e.node,
        subject=f"{_who(d)}: logged on at {d.host} and {others[0].host} at once",
        ja=f"{_who(d)} が {when} に {d.host} にログオンしたとき、別の PC でもログオン中でした"
           f"({where}、{e.ref})。",
        en=f"{_who(d)} logged on at {d.host} at {when} while logged on at another PC ({where}; "
           f"{e.ref}).",
        evidence={"event": e.ref, "host": d.host, "others": [f"{x.host}#{x.session_id}"
                                                             for x in others]},
    )


def failure_count(e: HostEvent) -> int:
    d = e.data
    if e.kind == "host.auth_failed":
        return int(d.count)
    if e.kind == "host.logon" and not d.granted and d.reason in FAILURE_REASONS:
        return 1
    return 0


def failed_logins(e: HostEvent, earlier: Sequence[HostEvent], s: CorrelationSettings
                  ) -> FindingOut | None:
    """The failure that brings one account's failures at one host within the window to the
    threshold (``earlier``: that account's failure events there before ``e``)."""
    n = failure_count(e)
    if n == 0:
        return None
    d = e.data
    lo = e.ts - timedelta(seconds=s.failed_login_window_s)
    before = sum(failure_count(x) for x in earlier
                 if lo <= x.ts and (x.ts, x.ref) < (e.ts, e.ref) and x.data.host == d.host
                 and x.data.account == d.account)
    threshold = s.failed_login_threshold
    if before + n < threshold or before >= threshold:
        return None
    when = local(e.ts, s)
    return FindingOut(
        key=key(PC_FAILED_LOGINS, e.ref), rule=PC_FAILED_LOGINS, severity="warning", at=e.ts,
        person_id=d.person_id, node=e.node,
        subject=f"{d.account}: {before + n} failed log-ins at {d.host}",
        ja=f"{d.host} でアカウント {d.account} のログイン失敗が "
           f"{s.failed_login_window_s // 60} 分以内に {before + n} 回ありました"
           f"({when} まで、{e.ref})。",
        en=f"Account {d.account} failed to log in {before + n} times at {d.host} within "
           f"{s.failed_login_window_s // 60} min (up to {when}; {e.ref}).",
        evidence={"event": e.ref, "host": d.host, "account": d.account, "count": before + n},
    )
