"""Money is integer yen. No floats anywhere near an amount."""

from __future__ import annotations

from protocol.errors import ErrorCode, ProtocolError

MAX_AMOUNT_YEN = 10_000_000


def require_amount(value: object, param: str = "amount") -> int:
    """A positive whole number of yen, at most ``MAX_AMOUNT_YEN``; anything else is ``amount_invalid``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AMOUNT_YEN:
        raise ProtocolError(ErrorCode.AMOUNT_INVALID, param=param)
    return value


def format_yen(amount: int) -> str:
    """``1234`` -> ``¥1,234``; negative amounts keep their sign in front."""
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,}"
