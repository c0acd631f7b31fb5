"""The customer-facing pole display: two lines of 20 columns, like an Epson DM-D.

Backends: :class:`MemoryDisplay` (tests and the UI), :class:`FileDisplay` (a file rewritten atomically, so
``watch -n 0.2 cat FILE`` in another terminal acts as the display) and :class:`SerialDisplay` (ESC/POS
display commands on a pyserial port). Lines are fitted by display cells: full-width characters count 2.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol

import serial
from rich.cells import cell_len

WIDTH = 20
ESC = b"\x1b"
INIT = ESC + b"@"
JAPAN_CHARSET = ESC + b"R\x08"  # 0x5C shows as ¥
KANJI_ON = b"\x1c&"
CLEAR = b"\x0c"  # clears and homes the cursor
LOWER_LINE = b"\x1f$\x01\x02"  # US $ x y: cursor to column 1 of line 2


class DisplayError(Exception):
    """The display could not be written: file not writable, serial port gone."""


class CustomerDisplay(Protocol):
    """What the register shows the customer."""

    def show(self, upper: str, lower: str) -> None:
        """Show two lines (each fitted to the display's width)."""

    def clear(self) -> None:
        """Blank the display."""


def fit_line(text: str, width: int = WIDTH) -> str:
    """``text`` cut or padded with spaces to exactly ``width`` display cells (controls become spaces)."""
    out: list[str] = []
    used = 0
    for char in text:
        if not char.isprintable():
            char = " "
        cells = cell_len(char)
        if used + cells > width:
            break
        out.append(char)
        used += cells
    return "".join(out) + " " * (width - used)


def format_total_line(label: str, yen: int, width: int = WIDTH) -> str:
    """``label`` on the left and the amount right-aligned, as in ``合計          ¥1,234``."""
    amount = f"-¥{-yen:,}" if yen < 0 else f"¥{yen:,}"
    room = width - cell_len(amount) - 1
    if room < 1:
        return fit_line(amount, width)
    left = fit_line(label, room).rstrip()
    return fit_line(left + " " * (width - cell_len(left) - cell_len(amount)) + amount, width)


class MemoryDisplay:
    """Keeps what is shown: ``current`` is on the display now, ``history`` every pair ever shown."""

    def __init__(self, width: int = WIDTH) -> None:
        self.width = width
        self.history: list[tuple[str, str]] = []
        self.current: tuple[str, str] = (fit_line("", width), fit_line("", width))

    def show(self, upper: str, lower: str) -> None:
        self.current = (fit_line(upper, self.width), fit_line(lower, self.width))
        self.history.append(self.current)

    def clear(self) -> None:
        self.current = (fit_line("", self.width), fit_line("", self.width))


class FileDisplay:
    """Rewrites ``path`` with the two lines (UTF-8) at each change, atomically (temp file + ``os.replace``)."""

    def __init__(self, path: Path, width: int = WIDTH) -> None:
        self.path = Path(path)
        self.width = width
        self._lock = threading.Lock()

    def show(self, upper: str, lower: str) -> None:
        self._write(f"{fit_line(upper, self.width)}\n{fit_line(lower, self.width)}\n")

    def clear(self) -> None:
        self.show("", "")

    def _write(self, text: str) -> None:
        folder = self.path.parent
        with self._lock:
            try:
                handle, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
            except OSError as error:
                raise DisplayError(f"display file {self.path}: cannot write in {folder} ({error.strerror})") from None
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as sink:
                    sink.write(text)
                os.replace(temp, self.path)
            except OSError as error:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise DisplayError(f"display file {self.path}: {error.strerror or error}") from None


def encode_display(text: str) -> bytes:
    """Display bytes: Shift_JIS (cp932), ¥ as 0x5C (the Japan character set), the unencodable as ``?``."""
    return text.replace("¥", "\\").encode("cp932", errors="replace")


class SerialDisplay:
    """An ESC/POS pole display on a pyserial port (``serial.serial_for_url("/dev/ttyUSB0", 9600)``)."""

    def __init__(self, port: serial.SerialBase, width: int = WIDTH) -> None:
        self.port = port
        self.width = width
        self._lock = threading.Lock()
        self._send(INIT + JAPAN_CHARSET + KANJI_ON + CLEAR)

    def show(self, upper: str, lower: str) -> None:
        first = encode_display(fit_line(upper, self.width))
        second = encode_display(fit_line(lower, self.width))
        self._send(CLEAR + first + LOWER_LINE + second)

    def clear(self) -> None:
        self._send(CLEAR)

    def _send(self, data: bytes) -> None:
        with self._lock:
            try:
                self.port.write(data)
                self.port.flush()
            except (serial.SerialException, OSError) as error:
                name = getattr(self.port, "port", None) or "serial port"
                raise DisplayError(f"customer display on {name}: {error}") from None
