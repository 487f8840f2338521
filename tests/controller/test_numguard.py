"""The one guard: individual numbers in whatever shape a person may type them are found (after
NFKC, in any digit form, with any separator), near-misses and other digits are left as typed."""

from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import numguard
from controller.numguard import (
    REDACTED,
    check_digit,
    contains_my_number,
    json_may_hold_number,
    redact,
    redact_data,
    scrub,
    scrub_record,
)

VALID = "123456789018"
OTHER = "402123456786"


@pytest.mark.parametrize("text", [
    VALID, f"番号{VALID}です", "1234-5678-9018", "1234 5678 9018", "１２３４５６７８９０１８",
    "１２３４－５６７８－９０１８", "1234ー5678ー9018", "1234\u30005678\u30009018",
    "1234 - 5678 - 9018", "ID:987654321093;", "a111122223333b", "1234\u22125678\u22129018",
    # the finding: forms only NFKC turns into ASCII digits or separators
    "40212345678⑥", "④⓪②①②③④⑤⑥⑦⑧⑥", "4021234567⁸⁶", "4021\ufe632345\ufe636786",
    "4021\u20022345\u20026786", "4021\u200a2345\u20096786", "𝟒𝟎𝟐𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟔", "٤٠٢١٢٣٤٥٦٧٨٦",
    # invisible characters, line breaks, kanji digits, ⑫ (two digits in one character)
    "4021\u200b2345\u00ad6786", "4021\n2345\r\n6786", "四〇二一二三四五六七八六",
    "40212345678\u2076",
    "❹⓿❷❶❷❸❹❺❻❼❽❻", "⑫3456789018", "4\ufe0f\u20e3021 2345 6786",
])
def test_numbers_are_found_and_replaced(text: str) -> None:
    r = redact(text)
    assert r.count >= 1 and REDACTED in r.text
    normalised = unicodedata.normalize("NFKC", r.text)
    assert not contains_my_number(normalised)
    for number in (VALID, OTHER, "987654321093", "111122223333"):
        assert number not in _digits(normalised)


@pytest.mark.parametrize("text", [
    "123456789012",  # fails the check digit
    "40212345678⑦", "4021\ufe632345\ufe636787",  # near-misses in the new forms: kept as typed
    "1234567890180",  # 13 digits: a corporate number, not a My Number
    "2015/8/10 9:58", "2026/10/05 12:30:00", "03-1234-5678", "12345678901", "",
    "給与 123,456,789,018 円",  # thousands separators are not number separators
    "2026.11.22 12:30:45.678",  # dots and colons join nothing
    "4021----2345-6786",  # four separators in a row break the chain
    "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾",  # parenthesised: NFKC puts "(" ")" between the digits
])
def test_other_digits_are_left(text: str) -> None:
    assert redact(text).text == text and not contains_my_number(text)


def test_only_the_number_s_characters_are_replaced() -> None:
    assert scrub("見積 ４０２１－２３４５－６７８⑥ 号") == f"見積 {REDACTED} 号"
    assert scrub(f"{VALID} と {OTHER}") == f"{REDACTED} と {REDACTED}"
    assert scrub("a\u200b40212345678⑥\u200bb") == f"a\u200b{REDACTED}\u200bb"


# -- property: every digit form and separator ---------------------------------------------------

DIGIT_FORMS: list[list[str]] = [
    [str(d) for d in range(10)],
    [chr(0xFF10 + d) for d in range(10)],  # full-width
    ["⓪"] + [chr(0x2460 + d - 1) for d in range(1, 10)],  # circled
    ["⁰", "¹", "²", "³"] + [chr(0x2070 + d) for d in range(4, 10)],  # superscript
    [chr(0x2080 + d) for d in range(10)],  # subscript
    [chr(0x1D7CE + d) for d in range(10)],  # mathematical bold
    [chr(0x1D7F6 + d) for d in range(10)],  # mathematical monospace
    [chr(0x0660 + d) for d in range(10)],  # Arabic-Indic
    [chr(0x0966 + d) for d in range(10)],  # Devanagari
    ["⓿"] + [chr(0x2776 + d - 1) for d in range(1, 10)],  # dingbat negative circled
    list("〇一二三四五六七八九"),  # kanji, one per digit
]
SEPARATORS = ["-", "\ufe63", "\u2002", "\u3000", "ー", "－", " ", "\u2010", "\u2212", "\u00a0",
              "\u2009", "\n", "・", "\t", "\u2014", "ｰ"]
INVISIBLE = ["\u200b", "\u00ad", "\ufe0f", "\u2060", "\u0301"]
# Surrounding text: no digit-like character; anything else a person may type around a number.
AROUND = st.text(alphabet=st.sampled_from(list("abcXYZあいう漢字番号：:/.,()[]「」_ ー-\u3000")),
                 max_size=8)


@st.composite
def typed_numbers(draw: st.DrawFn, *, valid: bool = True) -> tuple[str, str]:
    """(the number's 12 ASCII digits, the number as typed)."""
    body = "".join(str(draw(st.integers(0, 9))) for _ in range(11))
    check = int(check_digit(body))
    if not valid:
        check = (check + draw(st.integers(1, 9))) % 10
    number = body + str(check)
    cuts = sorted(draw(st.sets(st.integers(1, 11), max_size=5)))
    groups = [number[a:b] for a, b in zip([0, *cuts], [*cuts, 12], strict=True)]
    out: list[str] = []
    for i, group in enumerate(groups):
        if i:
            out.append("".join(draw(st.lists(st.sampled_from(SEPARATORS), min_size=0,
                                             max_size=3))))
        for j, ch in enumerate(group):
            if j or i:
                out.append(draw(st.sampled_from(["", "", "", *INVISIBLE])))
            out.append(draw(st.sampled_from(DIGIT_FORMS))[int(ch)])
    return number, "".join(out)


def _digits(text: str) -> str:
    """The digits a reader sees, any form, in order, ignoring everything else."""
    return "".join(d for ch in text for d in numguard._map_char(ch) if d.isdigit()) \
        if not text.isascii() else "".join(c for c in text if c.isdigit())


@settings(max_examples=200)
@given(typed_numbers(), AROUND, AROUND)
def test_any_valid_number_in_any_form_is_removed(typed: tuple[str, str], pre: str,
                                                 post: str) -> None:
    number, shown = typed
    out = redact(pre + shown + post)
    assert (out.text, out.count) == (pre + REDACTED + post, 1)
    # the journal's quick test over the event's JSON lets it through
    assert json_may_hold_number(json.dumps({"t": pre + shown + post, "n": 1},
                                           ensure_ascii=False, separators=(",", ":")))
    normalised = unicodedata.normalize("NFKC", out.text)
    assert number not in _digits(normalised) and not contains_my_number(normalised)


@settings(max_examples=200)
@given(typed_numbers(valid=False), AROUND, AROUND)
def test_a_near_miss_is_kept_as_typed(typed: tuple[str, str], pre: str, post: str) -> None:
    text = pre + typed[1] + post
    assert redact(text).text == text


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("0123456789 -\t\nab/:.ー①４\u2002")), max_size=60))
def test_the_pre_checks_never_hide_a_number(text: str) -> None:
    """The quick tests only skip texts in which the full search finds nothing."""
    norm, origin = numguard._normalise(text)
    full = numguard._spans(norm)
    assert bool(full) == contains_my_number(text)
    doc = json.dumps({"k": text, "n": 1}, ensure_ascii=False, separators=(",", ":"))
    if full:
        assert json_may_hold_number(doc)


@settings(max_examples=100)
@given(typed_numbers(), st.sampled_from(["\x0b", "\x1c", "\x1f", "\x0c", "\r"]),
       st.sampled_from(["", "\x01", "\x19", "\x00"]))
def test_the_json_pre_check_reads_escaped_separators(typed: tuple[str, str], sep: str,
                                                     before: str) -> None:
    number = typed[0]
    data = {"title": before + number[:4] + sep + number[4:8] + sep + number[8:]}
    doc = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert json_may_hold_number(doc)
    assert redact_data(data)[1] == 1


def test_the_digit_like_class_covers_every_character_that_reads_as_a_digit() -> None:
    """_NONASCII_DIGITLIKE (the quick test of non-ASCII text) is written out for the basic
    plane; a Unicode update that adds a character reading as a digit must add it there too."""
    mapping = numguard._map_char.__wrapped__  # type: ignore[attr-defined]
    missing = []
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if any(c.isdigit() for c in mapping(ch)) and not numguard._NONASCII_DIGITLIKE.match(ch):
            missing.append(f"U+{cp:04X}")
    assert missing == []


def test_data_is_redacted_in_every_string_and_key_numbers_stay() -> None:
    data = {"title": f"明細 {OTHER}", "n": int(OTHER), OTHER: ["ok", ("x", "4021 2345 6786")],
            "clean": "nothing here"}
    out, found = redact_data(data)
    assert found == 3
    assert out == {"title": f"明細 {REDACTED}", "n": int(OTHER), REDACTED: ["ok", ["x", REDACTED]],
                   "clean": "nothing here"}
    same = {"a": "b"}
    assert redact_data(same) == (same, 0) and redact_data(same)[0] is same


def test_a_log_record_keeps_its_shape_and_loses_its_number() -> None:
    rec = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                            '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET",
                                                        f"/media/{OTHER}?q=1", "1.1", 404), None)
    scrub_record(rec)
    assert isinstance(rec.args, tuple) and len(rec.args) == 5  # uvicorn unpacks them
    assert OTHER not in rec.getMessage() and REDACTED in rec.getMessage()
    split = logging.LogRecord("x", logging.INFO, __file__, 1, "%s%s", ("4021234", "56786"), None)
    scrub_record(split)
    assert split.getMessage() == REDACTED
    try:
        raise ValueError(f"bad card {OTHER}")
    except ValueError:
        import sys

        exc = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    scrub_record(exc)
    assert exc.exc_text and OTHER not in exc.exc_text and REDACTED in exc.exc_text


def test_a_node_or_site_name_holding_a_number_is_a_config_error(tmp_path: Path) -> None:
    """The envelope and every topic carry the node's and the site's names (not scanned)."""
    from controller.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="node.name: .*individual number") as err:
        parse_config({"node": {"name": "gw-4021-2345-6786", "site": "s1"},
                      "policy": {"trusted_keys": ["x"]}}, base=tmp_path)
    assert "4021" not in str(err.value)
