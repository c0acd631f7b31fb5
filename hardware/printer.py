"""Receipt printing over ESC/POS with python-escpos: a recording dummy, a network printer, a USB printer.

Every receipt is first rendered into an escpos ``Dummy`` (so :attr:`ReceiptPrinter.last_output` holds the
exact bytes whatever the backend), then sent to the device in one write: open, send, close. Japanese lines go
out in Kanji mode as Shift_JIS (cp932), the way a Japanese-model Epson TM-T88 expects them.

Anything the printer, the network or USB throws becomes a one-line :class:`PrinterError`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from escpos.escpos import Escpos
from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy, Network, Usb

ESC = b"\x1b"
FS = b"\x1c"
INIT = ESC + b"@"
JAPAN_CHARSET = ESC + b"R\x08"  # international character set Japan: 0x5C prints as ¥
KANJI_ON = FS + b"&"
KANJI_OFF = FS + b"."
KANJI_SHIFT_JIS = FS + b"C\x01"
KANJI_DOUBLE = FS + b"!\x0c"  # double width and height for Kanji characters
KANJI_NORMAL = FS + b"!\x00"
NETWORK_TIMEOUT = 5.0


class PrinterError(Exception):
    """A receipt that could not be printed: no printer, printer unplugged, unreachable, or bad settings."""


def encode_japanese(text: str) -> bytes:
    """``text`` as Shift_JIS (cp932) bytes; ¥ becomes 0x5C (¥ in the Japan character set), the unencodable ``?``."""
    return text.replace("¥", "\\").encode("cp932", errors="replace")


class ReceiptPrinter:
    """Prints receipts on one python-escpos printer. Not thread-safe: use one printer from one thread."""

    def __init__(self, device: Escpos, *, name: str = "printer", output_path: Path | None = None) -> None:
        self._device: Any = device
        self.name = name
        self.output_path = output_path
        self._last_output = b""

    @property
    def last_output(self) -> bytes:
        """The bytes of the last receipt sent (empty before the first)."""
        return self._last_output

    def render(
        self, lines: Sequence[str], *, title_lines: int = 0, barcode: str | None = None, cut: bool = True
    ) -> bytes:
        """The ESC/POS bytes of a receipt, without sending them anywhere."""
        page = Dummy()
        page.profile = self._device.profile
        try:
            page._raw(INIT + JAPAN_CHARSET)
            for index, line in enumerate(lines):
                title = index < title_lines
                if title:
                    page.set(align="center", double_width=True, double_height=True)
                    page._raw(KANJI_DOUBLE)
                _write_line(page, line)
                if title and index + 1 == min(title_lines, len(lines)):
                    page.set(align="left", normal_textsize=True)
                    page._raw(KANJI_NORMAL)
            if barcode is not None:
                _write_barcode(page, barcode)
            if cut:
                page.cut()
        except EscposError as error:
            raise PrinterError(f"cannot lay out the receipt: {_one_line(error)}") from None
        return bytes(page.output)

    def print_receipt(
        self, lines: Sequence[str], *, title_lines: int = 0, barcode: str | None = None, cut: bool = True
    ) -> None:
        """Print ``lines`` (the first ``title_lines`` centred and double-size), an optional CODE128, then cut."""
        data = self.render(lines, title_lines=title_lines, barcode=barcode, cut=cut)
        self._send(data)
        self._last_output = data
        if self.output_path is not None:
            try:
                with self.output_path.open("ab") as sink:
                    sink.write(data)
            except OSError as error:
                raise PrinterError(f"cannot write receipt bytes to {self.output_path}: {error.strerror}") from None

    def _send(self, data: bytes) -> None:
        device = self._device
        if isinstance(device, Dummy):
            device.clear()
        try:
            device.open()
            device._raw(data)
        except (EscposError, OSError) as error:
            raise PrinterError(f"cannot print on {self.name}: {_one_line(error)}") from None
        finally:
            with contextlib.suppress(EscposError, OSError):
                device.close()


def _write_line(page: Any, line: str) -> None:
    if line.isascii():
        page.text(line + "\n")
    else:
        page._raw(KANJI_ON + KANJI_SHIFT_JIS + encode_japanese(line) + b"\n" + KANJI_OFF)


def _write_barcode(page: Any, data: str) -> None:
    if not data or not data.isascii() or not data.isprintable() or len(data) > 250:
        raise PrinterError(f"cannot print {data!r} as a CODE128 barcode (1 to 250 printable ASCII characters)")
    page.ln()
    with contextlib.redirect_stdout(io.StringIO()):  # python-escpos prints which renderer it chose
        page.barcode("{B" + data, "CODE128", function_type="B", height=64, width=2, pos="BELOW")
    page.set(align="left")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def dummy_printer(output_path: Path | None = None) -> ReceiptPrinter:
    """A printer that only records bytes (``last_output``), appending each receipt to ``output_path`` if given."""
    name = f"file {output_path}" if output_path is not None else "dummy printer"
    return ReceiptPrinter(Dummy(), name=name, output_path=output_path)


def network_printer(host: str, port: int = 9100) -> ReceiptPrinter:
    """An Ethernet receipt printer (raw TCP, usually port 9100). Connects for each receipt."""
    if not host:
        raise PrinterError("network printer: no host given")
    if not 0 < port < 65536:
        raise PrinterError(f"network printer: port {port} is out of range")
    return ReceiptPrinter(Network(host, port, timeout=NETWORK_TIMEOUT), name=f"tcp://{host}:{port}")


def usb_printer(vendor_id: int, product_id: int) -> ReceiptPrinter:
    """A USB receipt printer by vendor and product id (Epson is 0x04b8). Needs pyusb."""
    if not Usb.is_usable():
        raise PrinterError("USB printing needs pyusb: pip install pyusb")
    return ReceiptPrinter(Usb(vendor_id, product_id), name=f"usb:{vendor_id:04x}:{product_id:04x}")


def printer_from_spec(spec: str) -> ReceiptPrinter:
    """``dummy``, ``file:PATH``, ``tcp://HOST[:PORT]`` or ``usb:VID:PID`` (hex ids) as a printer."""
    text = spec.strip()
    if text == "dummy":
        return dummy_printer()
    if text.startswith("file:"):
        path = text.removeprefix("file:")
        if not path:
            raise PrinterError("printer spec 'file:' needs a path, as in file:receipts.bin")
        return dummy_printer(Path(path).expanduser())
    if text.startswith("tcp://"):
        try:
            parts = urlsplit(text)
            host, port = parts.hostname, parts.port or 9100
        except ValueError:
            host = None
        if not host:
            raise PrinterError(f"printer spec {spec!r}: expected tcp://HOST:PORT")
        return network_printer(host, port)
    if text.startswith("usb:"):
        fields = text.split(":")
        try:
            vendor, product = (int(field, 16) for field in fields[1:]) if len(fields) == 3 else (-1, -1)
        except ValueError:
            vendor = product = -1
        if not (0 <= vendor <= 0xFFFF and 0 <= product <= 0xFFFF):
            raise PrinterError(f"printer spec {spec!r}: expected usb:VID:PID in hex, as in usb:04b8:0202")
        return usb_printer(vendor, product)
    raise PrinterError(f"unknown printer spec {spec!r}: use dummy, file:PATH, tcp://HOST:PORT or usb:VID:PID")
