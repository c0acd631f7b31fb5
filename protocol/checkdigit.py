"""Damm check digit: catches every single-digit error and every adjacent transposition.

The numeric payment code ends in a Damm digit so a register rejects a misread before it reaches the
core (where it would count as a failed guess). Code 128's own checksum is computed over the symbol's
codewords and does not catch a decoder that settles on another valid-looking number.
"""

from __future__ import annotations

_DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm_digit(digits: str) -> str:
    """The check digit to append to ``digits`` (ASCII 0-9 only)."""
    interim = 0
    for char in digits:
        interim = _DAMM_TABLE[interim][ord(char) - 48]
    return str(interim)


def damm_valid(digits: str) -> bool:
    """True when ``digits`` ends in its own Damm check digit."""
    return len(digits) > 1 and damm_digit(digits) == "0"
