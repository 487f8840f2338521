"""What a log row is: a log-in (ok or failed), a number access, or an export/output."""

from __future__ import annotations

import unicodedata

LOGIN_WORDS = ("ログイン", "ログオン", "login", "log in", "logon", "sign in", "認証")
DELETE_WORDS = ("削除", "廃棄", "消去", "delete", "erase", "purge")
EXPORT_WORDS = ("出力", "エクスポート", "ダウンロード", "印刷", "export", "download", "print", "csv")  # noqa: E501
FAIL_WORDS = ("失敗", "エラー", "拒否", "不可", "fail", "error", "denied", "invalid", "ロック")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def classify(action: str, result: str) -> tuple[str, bool]:
    """(category, ok): category is login, delete, export or access; ok is False for a
    failure. A deletion (処理 = 削除, 廃棄, ...) can be certified (削除証明書)."""
    a, r = _fold(action), _fold(result)
    ok = r.strip() != "ng" and not any(w in r for w in FAIL_WORDS)
    if any(w in a for w in LOGIN_WORDS):
        return "login", ok
    if any(w in a for w in DELETE_WORDS):
        return "delete", ok
    if any(w in a for w in EXPORT_WORDS):
        return "export", ok
    return "access", ok
