"""Payment codes: parsing never crashes, minting round-trips, and any change is caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import qrcode
from hypothesis import given, settings
from hypothesis import strategies as st
from qrcode.constants import ERROR_CORRECT_M

from protocol import (
    CodeForm,
    ErrorCode,
    ProtocolError,
    damm_digit,
    damm_valid,
    mint_code,
    parse_code,
    verify_code,
)

secrets_ = st.binary(min_size=16, max_size=64)
devices = st.integers(min_value=1, max_value=9_999_999)
counters = st.integers(min_value=0, max_value=9)
times = st.integers(min_value=1_600_000_000, max_value=4_000_000_000)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


PARSE_OUTCOMES = {"parsed", "code_malformed", "code_checksum_failed", "code_unknown_issuer"}


def parse_outcome(raw: str | bytes) -> str:
    """``parsed`` for a well-formed code, else the code of the ProtocolError (any other exception fails)."""
    try:
        parsed = parse_code(raw)
    except ProtocolError as error:
        return error.code.value
    assert parsed.text.isdigit() and len(parsed.text) in (22, 40)
    return "parsed"


@given(st.text())
def test_parse_raises_only_protocol_errors_on_any_text(raw: str) -> None:
    assert parse_outcome(raw) in PARSE_OUTCOMES


@given(st.binary())
def test_parse_raises_only_protocol_errors_on_any_bytes(raw: bytes) -> None:
    assert parse_outcome(raw) in PARSE_OUTCOMES


@given(st.text(alphabet="0123456789 ", min_size=20, max_size=44).map(lambda digits: "38" + digits))
def test_parse_on_digit_strings_with_our_prefix(raw: str) -> None:
    assert parse_outcome(raw) in PARSE_OUTCOMES


@given(secrets_, devices, times, counters)
def test_mint_parse_verify_round_trips_for_both_forms(secret: bytes, device: int, at: int, counter: int) -> None:
    code = mint_code(secret, device, at, counter)
    moment = datetime.fromtimestamp(at, UTC) + timedelta(seconds=5)
    assert len(code.numeric) == 22 and code.numeric.startswith("38")
    assert len(code.qr) == 40 and code.qr.startswith("38")
    for form, text in ((CodeForm.NUMERIC, code.numeric), (CodeForm.QR, code.qr)):
        parsed = parse_code(text)
        assert (parsed.form, parsed.device_id, parsed.counter) == (form, device, counter)
        verified = verify_code(parsed, secret, moment)
        assert (verified.device_id, verified.minted_at, verified.counter) == (device, at, counter)
        assert verified.use_key == f"{device}:{at}:{counter}"  # both forms use up the same key


@settings(max_examples=30)
@given(secrets_, devices, times, counters)
def test_qr_form_fits_version_3_at_ecc_m(secret: bytes, device: int, at: int, counter: int) -> None:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
    qr.add_data(mint_code(secret, device, at, counter).qr)
    qr.make(fit=True)
    assert qr.version <= 3


@settings(max_examples=60)
@given(secrets_, devices, times, counters, st.data())
def test_any_single_changed_digit_fails(secret: bytes, device: int, at: int, counter: int, data: st.DataObject) -> None:
    """A substituted digit in either form never parses: the prefix check or the Damm digit catches it."""
    code = mint_code(secret, device, at, counter)
    for text in (code.numeric, code.qr):
        position = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
        digit = data.draw(st.sampled_from([d for d in "0123456789" if d != text[position]]))
        changed = text[:position] + digit + text[position + 1 :]
        expected = ErrorCode.CODE_UNKNOWN_ISSUER if position < 2 else ErrorCode.CODE_CHECKSUM
        assert parse_outcome(changed) == expected.value


@settings(max_examples=60)
@given(secrets_, devices, times, counters, st.data())
def test_an_adjacent_transposition_in_a_code_is_caught_at_parse(
    secret: bytes, device: int, at: int, counter: int, data: st.DataObject
) -> None:
    """Two neighbouring digits swapped (the classic keying slip) never parse as a code."""
    code = mint_code(secret, device, at, counter)
    for text in (code.numeric, code.qr):
        position = data.draw(st.integers(min_value=0, max_value=len(text) - 2))
        swapped = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
        if swapped != text:
            assert parse_outcome(swapped) != "parsed"


@settings(max_examples=60)
@given(secrets_, devices, times, counters, st.data())
def test_a_forger_who_fixes_the_check_digit_is_caught_by_the_mac(
    secret: bytes, device: int, at: int, counter: int, data: st.DataObject
) -> None:
    """A changed digit after the prefix with the check digit recomputed parses, and verify refuses it.

    code_forged, wherever the digit is: the MAC is checked before the time, so a change that moves the time
    out of the window is a wrong MAC too, never code_expired or code_not_yet_valid (those speak of the
    phone's clock, and only a genuine code may). A device number changed to 0000000, which no wallet has,
    is code_malformed at parse. (A changed digit leaves the MAC matching with odds of 1 in 10^7 for the
    numeric form.)
    """
    code = mint_code(secret, device, at, counter)
    moment = datetime.fromtimestamp(at, UTC)
    for text in (code.numeric, code.qr):
        body = text[:-1]
        position = data.draw(st.integers(min_value=2, max_value=len(body) - 1))
        digit = data.draw(st.sampled_from([d for d in "0123456789" if d != body[position]]))
        changed = body[:position] + digit + body[position + 1 :]
        forged = changed + damm_digit(changed)
        if changed[2:9] == "0000000":
            assert parse_outcome(forged) == ErrorCode.CODE_MALFORMED.value
            continue
        with pytest.raises(ProtocolError) as caught:
            verify_code(parse_code(forged), secret, moment)
        assert caught.value.code is ErrorCode.CODE_FORGED
        assert caught.value.details == {}  # nothing measured: a forger learns no clock


@given(st.text(alphabet="0123456789", min_size=2, max_size=40), st.data())
def test_damm_catches_every_adjacent_transposition(digits: str, data: st.DataObject) -> None:
    full = digits + damm_digit(digits)
    i = data.draw(st.integers(min_value=0, max_value=len(full) - 2))
    swapped = full[:i] + full[i + 1] + full[i] + full[i + 2 :]
    assert damm_valid(full)
    assert swapped == full or not damm_valid(swapped)


def test_damm_known_vector() -> None:
    assert damm_digit("572") == "4"
    assert damm_valid("5724")


def test_numeric_form_restores_the_full_second_across_a_wrap() -> None:
    minted = 1_795_379_998  # ends in 9998: the numeric form keeps 9998, the core is already at ...0003
    code = mint_code(b"s" * 32, 7, minted, 2)
    verified = verify_code(parse_code(code.numeric), b"s" * 32, datetime.fromtimestamp(minted + 5, UTC))
    assert verified.minted_at == minted


def test_minting_refuses_bad_inputs() -> None:
    with pytest.raises(ValueError, match="128 bits"):
        mint_code(b"short", 1, NOW, 0)
    with pytest.raises(ValueError, match="device number"):
        mint_code(b"k" * 32, 0, NOW, 0)
    with pytest.raises(ValueError, match="counter"):
        mint_code(b"k" * 32, 1, NOW, 10)


def test_a_code_outside_its_window_is_told_its_time_only_when_its_mac_is_right() -> None:
    """A genuine code outside its window is code_not_yet_valid or code_expired with the phone's clock measured;
    the same digits under a wrong MAC are code_forged, exactly as inside the window. So a guess dated ahead
    learns whether its MAC was right only as any guess does, and the core counts it as one
    (tests/core/test_code_guessing_source.py): no cheaper oracle for a code to spend later."""
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    for offset, expected in ((3_000, ErrorCode.CODE_NOT_YET_VALID), (-3_000, ErrorCode.CODE_EXPIRED)):
        code = mint_code(b"r" * 32, 42, now + timedelta(seconds=offset), 0)
        for secret, answer in ((b"r" * 32, expected), (b"w" * 32, ErrorCode.CODE_FORGED)):
            with pytest.raises(ProtocolError) as caught:
                verify_code(parse_code(code.numeric), secret, now)
            assert caught.value.code is answer
            measured = caught.value.details.get("clock_offset_seconds")
            assert measured == (offset if answer is expected else None)
