"""Payment codes in time: the life and skew windows, the numeric form's restored second, the key, the forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    DEFAULT_SKEW_SECONDS,
    DEFAULT_TTL_SECONDS,
    ISSUER_PREFIX,
    CodeForm,
    ErrorCode,
    ManualClock,
    ProtocolError,
    damm_digit,
    looks_like_payment_code,
    mint_code,
    parse_code,
    verify_code,
)
from protocol.payment_code import expires_at

SECRET = b"s" * 32
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LIFE = DEFAULT_TTL_SECONDS + DEFAULT_SKEW_SECONDS  # the last second a code is still accepted
FORMS = [CodeForm.NUMERIC, CodeForm.QR]


def refusal(text: str, now: datetime, secret: bytes = SECRET, **windows: int) -> ErrorCode | None:
    """None when the code verifies at ``now``, else the refusal's code."""
    try:
        verify_code(parse_code(text), secret, now, **windows)
    except ProtocolError as error:
        return error.code
    return None


@pytest.mark.parametrize("form", FORMS)
def test_a_code_lives_for_ttl_plus_skew_and_not_a_second_more(form: CodeForm) -> None:
    """With the clock moved (never slept): valid at minting, valid at ttl+skew, code_expired one second later."""
    clock = ManualClock(NOW)
    text = mint_code(SECRET, 42, clock(), 3).text(form)
    assert refusal(text, clock()) is None
    clock.advance(LIFE)
    assert refusal(text, clock()) is None
    clock.advance(1)
    assert refusal(text, clock()) is ErrorCode.CODE_EXPIRED
    clock.advance(3_600)
    assert refusal(text, clock()) is ErrorCode.CODE_EXPIRED


@pytest.mark.parametrize("form", FORMS)
def test_a_phone_clock_ahead_by_up_to_the_skew_is_tolerated(form: CodeForm) -> None:
    """A code dated ``skew`` seconds in the future verifies, and restores its own minting second."""
    code = mint_code(SECRET, 42, NOW + timedelta(seconds=DEFAULT_SKEW_SECONDS), 0)
    verified = verify_code(parse_code(code.text(form)), SECRET, NOW)
    assert verified.minted_at == code.minted_at


def test_a_qr_code_dated_beyond_the_skew_is_not_yet_valid() -> None:
    code = mint_code(SECRET, 42, NOW + timedelta(seconds=DEFAULT_SKEW_SECONDS + 1), 0)
    assert refusal(code.qr, NOW) is ErrorCode.CODE_NOT_YET_VALID
    assert refusal(mint_code(SECRET, 42, NOW + timedelta(hours=5), 0).qr, NOW) is ErrorCode.CODE_NOT_YET_VALID


def test_a_numeric_code_dated_beyond_the_skew_is_not_yet_valid() -> None:
    """The numeric form should say what the QR form says of a phone clock running ahead: code_not_yet_valid."""
    code = mint_code(SECRET, 42, NOW + timedelta(seconds=DEFAULT_SKEW_SECONDS + 1), 0)
    assert refusal(code.numeric, NOW) is ErrorCode.CODE_NOT_YET_VALID


def test_windows_are_the_callers_to_choose() -> None:
    """``ttl_seconds`` and ``skew_seconds`` move both edges: here 10 s of life and no skew."""
    text = mint_code(SECRET, 42, NOW, 0).qr
    assert refusal(text, NOW + timedelta(seconds=10), ttl_seconds=10, skew_seconds=0) is None
    assert refusal(text, NOW + timedelta(seconds=11), ttl_seconds=10, skew_seconds=0) is ErrorCode.CODE_EXPIRED
    assert refusal(text, NOW - timedelta(seconds=1), ttl_seconds=10, skew_seconds=0) is ErrorCode.CODE_NOT_YET_VALID


@given(
    at=st.integers(min_value=1_600_000_000, max_value=4_000_000_000),
    delay=st.integers(min_value=-DEFAULT_SKEW_SECONDS, max_value=LIFE),
    counter=st.integers(min_value=0, max_value=9),
)
def test_the_numeric_form_restores_the_full_minting_second(at: int, delay: int, counter: int) -> None:
    """The numeric form keeps the time mod 10,000; anywhere in the window the core gets the whole second back."""
    code = mint_code(SECRET, 7, at, counter)
    assert int(code.numeric[9:13]) == at % 10_000
    verified = verify_code(parse_code(code.numeric), SECRET, datetime.fromtimestamp(at + delay, UTC))
    assert (verified.minted_at, verified.counter, verified.form) == (at, counter, CodeForm.NUMERIC)


def test_a_numeric_code_restored_to_the_wrong_ten_thousand_seconds_fails_its_mac() -> None:
    """Reaching the core 10,000 s or more late, the numeric form restores the wrong second: code_forged."""
    code = mint_code(SECRET, 7, NOW, 0)
    assert refusal(code.numeric, NOW + timedelta(seconds=10_000)) is ErrorCode.CODE_FORGED
    assert refusal(code.qr, NOW + timedelta(seconds=10_000)) is ErrorCode.CODE_EXPIRED


@given(st.binary(min_size=16, max_size=64), st.binary(min_size=16, max_size=64))
def test_another_devices_secret_is_code_forged(secret: bytes, other: bytes) -> None:
    code = mint_code(secret, 42, NOW, 0)
    for text in (code.numeric, code.qr):
        assert refusal(text, NOW, secret) is None
        if other != secret:
            assert refusal(text, NOW, other) is ErrorCode.CODE_FORGED


def test_a_code_names_its_device_second_and_counter_in_both_forms() -> None:
    code = mint_code(SECRET, 1_234_567, NOW, 8)
    assert code.numeric[:9] == code.qr[:9] == ISSUER_PREFIX + "1234567"
    assert int(code.qr[9:19]) == code.minted_at == int(NOW.timestamp())
    assert code.numeric[13] == code.qr[19] == "8"
    assert (code.text(CodeForm.NUMERIC), code.text(CodeForm.QR)) == (code.numeric, code.qr)
    assert expires_at(code) == NOW + timedelta(seconds=DEFAULT_TTL_SECONDS)


def test_codes_minted_in_one_second_differ_by_counter_and_use_different_keys() -> None:
    """Ten codes a second from one device are all distinct, and so are their single-use keys."""
    codes = [mint_code(SECRET, 42, NOW, counter) for counter in range(10)]
    assert len({code.numeric for code in codes}) == len({code.qr for code in codes}) == 10
    keys = {verify_code(parse_code(code.numeric), SECRET, NOW).use_key for code in codes}
    assert len(keys) == 10


def test_parse_reads_bytes_and_hand_entry_separators() -> None:
    code = mint_code(SECRET, 42, NOW, 0)
    assert parse_code(code.qr.encode()) == parse_code(code.qr)
    dashed = "-".join(code.numeric[i : i + 4] for i in range(0, 22, 4))
    assert parse_code(f"  {dashed}\n").text == code.numeric
    assert parse_code(code.numeric).form is CodeForm.NUMERIC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ErrorCode.CODE_MALFORMED),
        ("4901234567894", ErrorCode.CODE_MALFORMED),  # an EAN-13 on a product
        ("https://example.com/pay?x=1", ErrorCode.CODE_MALFORMED),
        ("１２３４５６７８９０１２３４５６７８９０１２", ErrorCode.CODE_MALFORMED),  # full-width digits
        ("2800000428831082877057", ErrorCode.CODE_UNKNOWN_ISSUER),  # another issuer's 22 digits
        (b"\xff\xfe38", ErrorCode.CODE_MALFORMED),
    ],
)
def test_parse_refuses_what_is_not_ours(raw: str | bytes, expected: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_code(raw)
    assert caught.value.code is expected


def test_device_number_zero_is_malformed_even_with_a_good_check_digit() -> None:
    body = "38" + "0000000" + "1234" + "0" + "1234567"
    with pytest.raises(ProtocolError) as caught:
        parse_code(body + damm_digit(body))
    assert caught.value.code is ErrorCode.CODE_MALFORMED


def test_looks_like_payment_code_routes_on_prefix_and_length() -> None:
    code = mint_code(SECRET, 42, NOW, 0)
    assert looks_like_payment_code(code.numeric) and looks_like_payment_code(code.qr)
    assert not looks_like_payment_code(code.numeric[:-1])
    assert not looks_like_payment_code("28" + code.numeric[2:])
    assert not looks_like_payment_code("３８" + code.numeric[2:])
