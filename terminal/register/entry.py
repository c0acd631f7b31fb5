"""The scan entry line: what a keyboard-wedge scanner (or the clerk) types codes into."""

from __future__ import annotations

from textual.widgets import Input

SCAN_CHARACTERS = frozenset("0123456789* ")


class ScanEntry(Input):
    """Takes only digits, ``*`` (quantity) and spaces, so letter keys stay free for the register's bindings.

    A USB keyboard-wedge scanner types a code's digits and Enter into whatever has focus; screens keep
    this line focused so a scan always lands here.
    """

    def __init__(self, placeholder: str, *, id: str) -> None:
        super().__init__(placeholder=placeholder, id=id, restrict=r"[0-9* ]*", max_length=64)

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character is not None and character in SCAN_CHARACTERS
