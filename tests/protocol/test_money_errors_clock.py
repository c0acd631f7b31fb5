"""Money, the error catalogue and the injectable clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    MAX_AMOUNT_YEN,
    SPECS,
    ErrorCode,
    ErrorType,
    ManualClock,
    OffsetClock,
    ProtocolError,
    epoch_seconds,
    format_yen,
    from_epoch,
    require_amount,
    system_clock,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_YEN))
def test_require_amount_accepts_every_whole_yen_up_to_the_maximum(amount: int) -> None:
    assert require_amount(amount) == amount


@given(
    st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=MAX_AMOUNT_YEN + 1),
        st.booleans(),
        st.floats(allow_nan=True),
        st.text(),
        st.decimals(allow_nan=False),
        st.none(),
        st.lists(st.integers(min_value=1, max_value=10), max_size=2),
    )
)
def test_require_amount_refuses_everything_else(value: object) -> None:
    """Zero, negatives, too much, bools (True is an int), floats (even 100.0), strings, decimals, None."""
    with pytest.raises(ProtocolError) as caught:
        require_amount(value)
    assert caught.value.code is ErrorCode.AMOUNT_INVALID
    assert caught.value.param == "amount"


def test_require_amount_names_the_parameter() -> None:
    with pytest.raises(ProtocolError) as caught:
        require_amount(0, param="refund.amount")
    assert caught.value.to_dict()["param"] == "refund.amount"


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "¥0"), (7, "¥7"), (999, "¥999"), (1_000, "¥1,000"), (1_234_567, "¥1,234,567"), (-500, "-¥500")],
)
def test_format_yen(amount: int, text: str) -> None:
    assert format_yen(amount) == text


def test_every_error_code_has_a_spec_with_a_status_that_matches_its_type() -> None:
    assert set(SPECS) == set(ErrorCode)
    for code, spec in SPECS.items():
        assert spec.message.endswith("."), code
        if spec.type is ErrorType.AUTHENTICATION:
            assert spec.status == 401, code
        if spec.type is ErrorType.RATE_LIMIT:
            assert spec.status == 429, code
        if spec.type is ErrorType.API:
            assert spec.status >= 500, code
        if spec.type is ErrorType.PAYMENT:
            assert spec.status == 402, code


@pytest.mark.parametrize("code", list(ErrorCode))
def test_a_protocol_error_carries_its_spec_and_a_stripe_shape(code: ErrorCode) -> None:
    error = ProtocolError(code)
    assert error.status == SPECS[code].status
    assert error.to_dict() == {"type": SPECS[code].type.value, "code": code.value, "message": SPECS[code].message}
    assert "param" not in error.to_dict()
    assert str(error).startswith(f"{code.value}: ")


def test_a_protocol_error_keeps_a_custom_message_and_param() -> None:
    error = ProtocolError(ErrorCode.VALIDATION_FAILED, "amount: must be an integer", param="amount")
    assert error.to_dict() == {
        "type": "invalid_request_error",
        "code": "parameter_invalid",
        "message": "amount: must be an integer",
        "param": "amount",
    }
    assert error.status == 422


def test_the_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(NOW)
    assert clock() == clock() == NOW
    clock.advance(1.5)
    assert clock() == NOW + timedelta(seconds=1.5)
    clock.set(NOW - timedelta(days=1))
    assert clock() == NOW - timedelta(days=1)
    assert ManualClock()().tzinfo is UTC


def test_offset_clock_and_epoch_helpers() -> None:
    base = ManualClock(NOW)
    ahead = OffsetClock(90, base)
    assert ahead() == NOW + timedelta(seconds=90)
    base.advance(10)
    assert ahead() - base() == timedelta(seconds=90)
    assert from_epoch(epoch_seconds(NOW)) == NOW
    assert system_clock().tzinfo is UTC
