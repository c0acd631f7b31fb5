"""Clock skew in the protocol: a refusal for time names whose clock is off, by how many seconds, and the core's
time; it is given only for a code whose MAC or a request whose signature is right, so a forger learns nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    DEFAULT_SKEW_SECONDS,
    DEFAULT_TTL_SECONDS,
    TOLERANCE_SECONDS,
    CodeForm,
    ErrorCode,
    ProtocolError,
    mint_code,
    parse_code,
    sign_request,
    verify_code,
    verify_signature,
)
from protocol.errors import ClockSkew, SkewedClock, ahead_or_behind, describe_seconds
from protocol.signing import stale_timestamp

SECRET = b"s" * 32
NOW = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)
OLDEST = DEFAULT_TTL_SECONDS + DEFAULT_SKEW_SECONDS
FORMS = [CodeForm.NUMERIC, CodeForm.QR]


def refusal(text: str, secret: bytes = SECRET, now: datetime = NOW) -> ProtocolError | None:
    try:
        verify_code(parse_code(text), secret, now)
    except ProtocolError as error:
        return error
    return None


def code_dated(offset_seconds: int, form: CodeForm) -> str:
    """A genuine code from a phone whose clock is ``offset_seconds`` off the core's ``NOW``."""
    return mint_code(SECRET, 42, NOW + timedelta(seconds=offset_seconds), 0).text(form)


@pytest.mark.parametrize("form", FORMS)
def test_a_code_dated_beyond_the_skew_says_the_phone_clock_is_ahead_by_how_much(form: CodeForm) -> None:
    error = refusal(code_dated(180, form))
    assert error is not None and error.code is ErrorCode.CODE_NOT_YET_VALID
    assert error.status == 402  # the code and status a register already knows: only fields are added
    assert ClockSkew.of(error) == ClockSkew(SkewedClock.PHONE, 180, NOW, DEFAULT_SKEW_SECONDS)
    assert "The phone's clock is 3 min ahead of the core's" in error.message
    assert "set the phone's time automatically" in error.message


@pytest.mark.parametrize("form", FORMS)
def test_an_old_genuine_code_says_old_code_or_phone_clock_behind_with_the_seconds(form: CodeForm) -> None:
    error = refusal(code_dated(-95, form))
    assert error is not None and error.code is ErrorCode.CODE_EXPIRED
    assert ClockSkew.of(error) == ClockSkew(SkewedClock.PHONE, -95, NOW, OLDEST)
    assert "made 95 s ago" in error.message
    assert "an old code, or the phone's clock is about 95 s behind the core's" in error.message


@given(
    offset=st.integers(min_value=-4_999, max_value=4_999),
    form=st.sampled_from(FORMS),
    counter=st.integers(min_value=0, max_value=9),
)
def test_any_genuine_code_is_taken_inside_the_window_and_measured_outside_it(
    offset: int, form: CodeForm, counter: int
) -> None:
    """Whatever the phone's offset (within the numeric form's ±5,000 s), the answer is exact to the second."""
    text = mint_code(SECRET, 42, NOW + timedelta(seconds=offset), counter).text(form)
    error = refusal(text)
    if -OLDEST <= offset <= DEFAULT_SKEW_SECONDS:
        assert error is None
        return
    assert error is not None
    assert error.code is (ErrorCode.CODE_NOT_YET_VALID if offset > 0 else ErrorCode.CODE_EXPIRED)
    skew = ClockSkew.of(error)
    assert skew is not None and (skew.clock, skew.offset_seconds, skew.server_time) == (SkewedClock.PHONE, offset, NOW)


@given(offset=st.integers(min_value=-4_999, max_value=4_999), form=st.sampled_from(FORMS))
def test_a_wrong_mac_is_code_forged_at_any_time_and_measures_nothing(offset: int, form: CodeForm) -> None:
    """The MAC is checked first: a made-up code learns no clock and no window, only code_forged."""
    error = refusal(code_dated(offset, form), secret=b"w" * 32)
    assert error is not None
    assert (error.code, error.details, error.message) == (ErrorCode.CODE_FORGED, {}, "The payment code is not valid.")


def test_a_code_of_a_phone_off_by_more_than_the_numeric_range_is_measured_in_its_qr_form() -> None:
    """The numeric form keeps the time mod 10,000 s: a day off restores the wrong second (a wrong MAC); the QR
    form carries the whole second and says the phone's clock is a day behind."""
    assert (error := refusal(code_dated(-86_400, CodeForm.NUMERIC))) is not None
    assert error.code is ErrorCode.CODE_FORGED
    assert (error := refusal(code_dated(-86_400, CodeForm.QR))) is not None
    assert error.code is ErrorCode.CODE_EXPIRED and "about 24 h behind" in error.message


@pytest.mark.parametrize(
    ("offset", "words"),
    [(-200, "The register's clock is 3 min 20 s behind the core's"), (150, "is 2 min 30 s ahead of the core's")],
)
def test_a_stale_signature_names_the_signers_clock_the_seconds_and_the_core_time(offset: int, words: str) -> None:
    signed = sign_request(SECRET, "term_x", "POST", "/v1/payments", b"{}", NOW + timedelta(seconds=offset))
    with pytest.raises(ProtocolError) as caught:
        verify_signature(SECRET, signed, "POST", "/v1/payments", b"{}", NOW, signer=SkewedClock.REGISTER)
    error = caught.value
    assert (error.code, error.status) == (ErrorCode.TIMESTAMP_STALE, 401)
    assert ClockSkew.of(error) == ClockSkew(SkewedClock.REGISTER, offset, NOW, TOLERANCE_SECONDS)
    assert words in error.message and "the core's time is 03:15:00 UTC" in error.message


@pytest.mark.parametrize("offset", [-TOLERANCE_SECONDS, TOLERANCE_SECONDS])
def test_a_signature_at_the_edge_of_the_tolerance_passes(offset: int) -> None:
    signed = sign_request(SECRET, "dev_42", "GET", "/v1/wallet", b"", NOW + timedelta(seconds=offset))
    verify_signature(SECRET, signed, "GET", "/v1/wallet", b"", NOW, signer=SkewedClock.PHONE)


def test_a_forged_signature_is_signature_invalid_whatever_its_time_and_says_no_time() -> None:
    """A stale timestamp under a wrong signature is signature_invalid: the core's time goes to key holders only."""
    for offset in (-10_000, 0, 10_000):
        signed = sign_request(b"w" * 32, "term_x", "POST", "/v1/payments", b"{}", NOW + timedelta(seconds=offset))
        with pytest.raises(ProtocolError) as caught:
            verify_signature(SECRET, signed, "POST", "/v1/payments", b"{}", NOW, signer=SkewedClock.REGISTER)
        assert (caught.value.code, caught.value.details) == (ErrorCode.SIGNATURE_INVALID, {})


def test_signing_md_shows_exactly_what_the_core_answers_a_register_200_s_behind() -> None:
    signing_md = (Path(__file__).parents[2] / "docs" / "SIGNING.md").read_text(encoding="utf-8")
    (shown,) = re.findall(r"^```json timestamp-stale-example\n(.*?)^```$", signing_md, flags=re.MULTILINE | re.DOTALL)
    signed_at = int((NOW - timedelta(seconds=200)).timestamp())
    assert json.loads(shown) == stale_timestamp(signed_at, NOW, TOLERANCE_SECONDS, SkewedClock.REGISTER).envelope()


def test_the_measurement_survives_the_wire() -> None:
    """What the core sends (the envelope) reads back as the same measurement in any client."""
    sent = ProtocolError(
        ErrorCode.TIMESTAMP_STALE, "off", details=ClockSkew(SkewedClock.PHONE, -300, NOW, 120).details()
    )
    body = sent.envelope()
    assert body["error"]["server_time"] == "2026-11-22T03:15:00+00:00"
    assert body["error"]["clock_offset_seconds"] == -300 and body["error"]["clock"] == "phone"
    read = ProtocolError.from_envelope(401, body)
    assert ClockSkew.of(read) == ClockSkew(SkewedClock.PHONE, -300, NOW, 120)


@pytest.mark.parametrize(
    "bent",
    [
        {"clock": "wristwatch"},
        {"clock": ["phone"]},
        {"clock_offset_seconds": True},
        {"clock_offset_seconds": "95"},
        {"tolerance_seconds": None},
        {"server_time": "2026-11-22T03:15:00"},  # no zone: not a time the core sends
        {"server_time": "yesterday"},
    ],
)
def test_a_measurement_that_is_not_well_formed_reads_as_none(bent: dict[str, object]) -> None:
    details = ClockSkew(SkewedClock.REGISTER, 200, NOW, 120).details() | bent
    error = ProtocolError.from_envelope(401, {"error": {"code": "timestamp_stale", "message": "x", **details}})
    assert ClockSkew.of(error) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (95, "95 s"),
        (-119, "119 s"),
        (120, "2 min"),
        (200, "3 min 20 s"),
        (599, "9 min 59 s"),
        (840, "14 min"),
        (18_000, "5 h"),
        (3 * 86_400, "3 days"),
    ],
)
def test_spans_read_as_a_person_says_them(seconds: int, words: str) -> None:
    assert describe_seconds(seconds) == words


def test_ahead_or_behind_reads_with_and_without_what_it_is_compared_to() -> None:
    assert ahead_or_behind(180) == "3 min ahead"
    assert ahead_or_behind(-95, "the core's") == "95 s behind the core's"
    assert ahead_or_behind(180, "the core's") == "3 min ahead of the core's"
