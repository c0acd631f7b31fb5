"""Barcode scanners that type: a keyboard-wedge scanner, and a serial (USB CDC) scanner sending lines.

A keyboard-wedge scanner "types" the code very fast and then presses Enter into whatever has focus.
:class:`KeyboardWedge` is fed those keys one by one and tells a scanner's burst from a person typing by
the gaps between keys (timed by an injected clock). :class:`LineScanner` reads CR/LF-terminated lines
from a pyserial port on a daemon thread, in the shape of pyserial's ``threaded.ReaderThread`` with a
``LineReader`` protocol, but bounded, stoppable and never raising on its thread.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from protocol import ScanKind, looks_like_payment_code

PRODUCT_CODE_LENGTHS = (8, 13)  # JAN-8 / EAN-8 and JAN-13 / EAN-13
MAX_LINE_BYTES = 4096


def classify_code(text: str) -> ScanKind:
    """``payment`` for one of our payment codes, ``product`` for an 8- or 13-digit JAN/EAN, else ``unknown``."""
    if looks_like_payment_code(text):
        return ScanKind.PAYMENT
    if text.isascii() and text.isdigit() and len(text) in PRODUCT_CODE_LENGTHS:
        return ScanKind.PRODUCT
    return ScanKind.UNKNOWN


@dataclass(frozen=True)
class WedgeRead:
    """One code read: its text, whether a scanner (not a person) sent it, and what kind of code it looks like."""

    text: str
    by_scanner: bool
    kind: ScanKind

    @classmethod
    def of(cls, text: str, *, by_scanner: bool) -> WedgeRead:
        return cls(text, by_scanner, classify_code(text))


class KeyboardWedge:
    """Collects typed characters until Enter and says whether they came as a scanner's burst."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_gap: float = 0.05,
        min_length: int = 6,
        max_length: int = 64,
    ) -> None:
        if max_gap < 0 or min_length < 1 or max_length < min_length:
            raise ValueError("need max_gap >= 0 and 1 <= min_length <= max_length")
        self._clock = clock
        self.max_gap = max_gap
        self.min_length = min_length
        self.max_length = max_length
        self._chars: list[str] = []
        self._times: list[float] = []
        self._overflow = False

    @property
    def pending(self) -> str:
        """What has been typed since the last Enter."""
        return "".join(self._chars)

    def feed(self, char: str) -> None:
        """One typed key (each character of a longer string in turn); keys that print nothing are ignored."""
        for one in char:
            if not one.isprintable():
                continue
            if len(self._chars) >= self.max_length:
                self._overflow = True
                continue
            self._chars.append(one)
            self._times.append(self._clock())

    def enter(self) -> WedgeRead | None:
        """Finish the burst: the read, or ``None`` if nothing (or more than ``max_length``) was typed."""
        text = self.pending.strip()
        times, overflow = self._times, self._overflow
        self.reset()
        if not text or overflow:
            return None
        fast = all(later - earlier <= self.max_gap for earlier, later in itertools.pairwise(times))
        return WedgeRead.of(text, by_scanner=fast and len(text) >= self.min_length)

    def reset(self) -> None:
        """Forget what has been typed."""
        self._chars = []
        self._times = []
        self._overflow = False


class LineScanner:
    """Turns each CR/LF-terminated line from a serial port into a :class:`WedgeRead` on a daemon thread.

    ``port`` is any pyserial port (``serial.serial_for_url("/dev/ttyACM0", timeout=0.1)`` for a real
    scanner, ``"loop://"`` in tests); give it a read timeout so :meth:`stop` is prompt on ports that cannot
    cancel a read. ``on_read`` runs on the reader thread. After ``max_reads`` reads the thread ends by itself.
    A port error or an exception from ``on_read`` ends the thread too and is kept in :attr:`error`.
    """

    def __init__(
        self, port: serial.SerialBase, on_read: Callable[[WedgeRead], None], max_reads: int | None = None
    ) -> None:
        self._port = port
        self._on_read = on_read
        self._max_reads = max_reads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reads = 0
        self.error: BaseException | None = None
        self.finished = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start reading. Starting a running scanner does nothing."""
        if self.running:
            return
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(target=self._run, name="line-scanner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and wait (at most ``timeout`` seconds) for the thread to end. The port stays open."""
        self._stop.set()
        cancel = getattr(self._port, "cancel_read", None)
        if cancel is not None:
            cancel()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        buffer = bytearray()
        try:
            while not self._stop.is_set() and self._port.is_open:
                data = self._port.read(self._port.in_waiting or 1)
                if data:
                    buffer.extend(data)
                    buffer = self._take_lines(buffer)
        except Exception as error:  # kept in .error: a reader thread must not die loudly
            self.error = error
        finally:
            self.finished.set()

    def _take_lines(self, buffer: bytearray) -> bytearray:
        while not self._stop.is_set():
            ends = [index for index in (buffer.find(b"\r"), buffer.find(b"\n")) if index >= 0]
            if not ends:
                break
            end = min(ends)
            line, buffer = bytes(buffer[:end]), buffer[end + 1 :]
            text = line.decode("utf-8", errors="replace").strip()
            if text:
                self.reads += 1
                self._on_read(WedgeRead.of(text, by_scanner=True))
                if self._max_reads is not None and self.reads >= self._max_reads:
                    self._stop.set()
        if len(buffer) > MAX_LINE_BYTES:  # a line that never ends is noise, not a code
            buffer.clear()
        return buffer
