"""Individual numbers in whatever shape an operator may type them are found; others are not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.jp import in_

from dashboard.numlog.redact import REDACTED, contains_my_number, redact

VALID = "123456789018"


@pytest.mark.parametrize("text", [
    VALID, f"番号{VALID}です", "1234-5678-9018", "1234 5678 9018", "１２３４５６７８９０１８",
    "１２３４－５６７８－９０１８", "1234ー5678ー9018", "1234\u30005678\u30009018",
    "1234 - 5678 - 9018", "ID:987654321093;", "a111122223333b", "1234\u22125678\u22129018",
])
def test_numbers_are_found_and_replaced(text: str) -> None:
    r = redact(text)
    assert r.count >= 1 and REDACTED in r.text
    digits = "".join(c for c in r.text if c.isdigit())
    assert VALID not in digits and "987654321093" not in digits and "111122223333" not in digits


@pytest.mark.parametrize("text", [
    "123456789012",  # fails the check digit
    "1234567890180",  # 13 digits: a corporate number, not a My Number
    "2015/8/10 9:58", "2026/10/05 12:30:00", "03-1234-5678", "12345678901", "",
    "給与 123,456,789,018 円",  # thousands separators are not number separators
])
def test_other_digits_are_left(text: str) -> None:
    assert redact(text).text == text and not contains_my_number(text)


@given(st.integers(min_value=0, max_value=10**11 - 1), st.sampled_from(["", "-", " ", "ー"]),
       st.text(alphabet="abcあい:,/", max_size=5))
def test_any_valid_number_in_any_separator_style_is_redacted(n: int, sep: str, pad: str) -> None:
    body = f"{n:011d}"
    number = body + in_.calc_check_digit(body)
    typed = sep.join([number[:4], number[4:8], number[8:]])
    r = redact(pad + typed + pad)
    assert r.count == 1 and number not in "".join(c for c in r.text if c.isdigit())
