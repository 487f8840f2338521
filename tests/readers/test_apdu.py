from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readers.apdu import (
    GET_DATA_UID,
    VALID_UID_LENGTHS,
    UidError,
    UidOk,
    build_get_uid,
    parse_uid_reply,
)
from readers.base import FAILURE_REASONS, FailureReason
from readers.virtual import Misbehaviour, get_data_reply

UID8 = bytes.fromhex("012E4CD2A1B3C4D5")


def expected_reason(raw: bytes) -> FailureReason | None:
    """An independent oracle for the parser: None means "this is a good UID"."""
    if len(raw) < 2:
        return FailureReason.SHORT_REPLY
    sw = raw[-2:].hex().upper()
    if sw == "9000":
        return None if len(raw) - 2 in (4, 7, 8, 10) else FailureReason.BAD_UID_LENGTH
    if sw == "6A81":
        return FailureReason.FILE_NOT_FOUND
    if sw.startswith("6C"):
        return FailureReason.WRONG_LENGTH
    if sw == "6282":
        return FailureReason.WARNING_EOF
    if sw.startswith("63"):
        return FailureReason.VERIFY_FAILED
    return FailureReason.STATUS_ERROR


def check_reply(raw: bytes) -> UidOk | UidError:
    result = parse_uid_reply(raw)
    want = expected_reason(raw)
    if want is None:
        assert isinstance(result, UidOk)
        assert result.uid == raw[:-2]
        assert len(result.uid) in VALID_UID_LENGTHS
        assert result.uid_hex == raw[:-2].hex().upper()
    else:
        assert isinstance(result, UidError), f"{raw.hex()} parsed as a UID"
        assert result.reason == want
        assert result.reason in FAILURE_REASONS
        assert result.detail
    return result


def test_get_data_command_is_pcsc_part3_uid() -> None:
    assert bytes.fromhex("FFCA000000") == GET_DATA_UID
    assert build_get_uid() == GET_DATA_UID
    assert build_get_uid(7) == bytes.fromhex("FFCA000007")
    with pytest.raises(ValueError):
        build_get_uid(256)


@pytest.mark.parametrize("length", sorted(VALID_UID_LENGTHS))
def test_good_uid_lengths(length: int) -> None:
    uid = bytes(range(1, length + 1))
    result = parse_uid_reply(uid + b"\x90\x00")
    assert result == UidOk(uid)
    assert result.uid_hex == uid.hex().upper()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("6A81", FailureReason.FILE_NOT_FOUND),
        ("6C05", FailureReason.WRONG_LENGTH),
        ("6C00", FailureReason.WRONG_LENGTH),
        ("6282", FailureReason.WARNING_EOF),
        ("6300", FailureReason.VERIFY_FAILED),
        ("63C2", FailureReason.VERIFY_FAILED),
        ("6F00", FailureReason.STATUS_ERROR),
        ("0102030405060708" + "6F00", FailureReason.STATUS_ERROR),
        ("01020304050607" + "9001", FailureReason.STATUS_ERROR),
        ("", FailureReason.SHORT_REPLY),
        ("90", FailureReason.SHORT_REPLY),
        ("9000", FailureReason.BAD_UID_LENGTH),
        ("0102030405" + "9000", FailureReason.BAD_UID_LENGTH),
        ("00" * 16 + "9000", FailureReason.BAD_UID_LENGTH),
        ("00" * 254 + "9000", FailureReason.BAD_UID_LENGTH),
    ],
)
def test_status_words_and_lengths_map_to_reasons(reply: str, reason: FailureReason) -> None:
    result = parse_uid_reply(bytes.fromhex(reply))
    assert isinstance(result, UidError)
    assert result.reason is reason


def test_detail_names_the_status_word_but_not_the_data() -> None:
    result = parse_uid_reply(bytes.fromhex("DEADBEEF6A81"))
    assert isinstance(result, UidError)
    assert "6A81" in result.detail
    assert "DEADBEEF" not in result.detail.upper()


def test_accepts_pyscard_int_lists_and_rejects_non_bytes() -> None:
    assert parse_uid_reply([1, 2, 3, 4, 0x90, 0x00]) == UidOk(b"\x01\x02\x03\x04")
    bad = parse_uid_reply([1, 2, 300, 4, 0x90, 0x00])
    assert isinstance(bad, UidError)
    assert bad.reason is FailureReason.TRANSMIT_FAILED


@pytest.mark.parametrize("mode", list(Misbehaviour))
def test_every_virtual_card_misbehaviour_is_a_clear_error(mode: Misbehaviour) -> None:
    reply = get_data_reply(UID8, mode, random.Random(7))
    if mode is Misbehaviour.REMOVE_MID_READ:
        assert reply is None  # the card leaves; the adapter sees an empty reply or an error
    result = check_reply(reply or b"")
    assert isinstance(result, UidError)


def test_well_behaved_virtual_card_reply_parses() -> None:
    reply = get_data_reply(UID8, None, random.Random(0))
    assert reply is not None
    assert parse_uid_reply(reply) == UidOk(UID8)


def _random_reply(rng: random.Random) -> bytes:
    kind = rng.randrange(3)
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 20)))
    if kind == 0:
        return data  # pure noise, including the empty string and single bytes
    if kind == 1:
        return data + b"\x90\x00"  # success status with any length of data
    sw = rng.choice([b"\x6a\x81", b"\x62\x82", b"\x63\x00", b"\x6f\x00", b"\x6d\x00"])
    return data + (bytes((0x6C, rng.randrange(256))) if rng.random() < 0.2 else sw)


def test_ten_thousand_random_replies_never_raise_nor_give_a_bogus_uid() -> None:
    rng = random.Random(20261122)
    outcomes: Counter[str] = Counter()
    for _ in range(10_000):
        result = check_reply(_random_reply(rng))
        outcomes["uid" if isinstance(result, UidOk) else result.reason.value] += 1
    assert sum(outcomes.values()) == 10_000
    # the generator reached every branch of the parser
    reachable = {r.value for r in FailureReason} - {"removed", "transmit_failed"}
    assert reachable | {"uid"} <= set(outcomes)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_parser_total_on_arbitrary_bytes(raw: bytes) -> None:
    check_reply(raw)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=12), st.sampled_from([b"\x90\x00", b"\x6c\x08", b"\x63\xc1"]))
def test_parser_on_structured_replies(data: bytes, sw: bytes) -> None:
    check_reply(data + sw)
