"""Receipt printing over ESC/POS: the bytes a receipt makes, specs, and printers that are not there."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from escpos.printer import Usb as EscposUsb

from hardware import PrinterError, ReceiptPrinter, dummy_printer, network_printer, printer_from_spec, usb_printer

LINES = ["セブン商店 新宿店", "Receipt R-000123", "おにぎり        ¥150", "合計            ¥150", "Thank you"]


def test_a_receipt_carries_init_kanji_text_barcode_and_cut() -> None:
    printer = dummy_printer()
    printer.print_receipt(LINES, title_lines=1, barcode="R-000123")
    out = printer.last_output
    assert out.startswith(b"\x1b@")
    assert b"\x1c&\x1cC\x01" in out  # Kanji mode, Shift_JIS
    assert "セブン商店 新宿店".encode("cp932") in out
    assert "おにぎり        \\150".encode("cp932") in out  # ¥ is 0x5C in the Japan character set
    assert "合計".encode("cp932") in out
    assert b"Receipt R-000123\n" in out
    assert b"Thank you\n" in out
    assert b"\x1dkI\x0a{BR-000123" in out  # GS k 73: CODE128, code set B, 10 bytes
    assert b"\x1dV" in out
    assert out.index(b"\x1dV") > out.index(b"Thank you")


def test_title_lines_are_centred_and_double_size_then_back_to_normal() -> None:
    out = dummy_printer().render(["領収書", "Body"], title_lines=1, cut=False)
    title = out.index("領収書".encode("cp932"))
    body = out.index(b"Body")
    assert b"\x1ba\x01" in out[:title]  # centred
    assert b"\x1b!0" in out[:title]  # double width and height (ANK)
    assert b"\x1c!\x0c" in out[:title]  # double width and height (Kanji)
    assert b"\x1ba\x00" in out[title:body]
    assert b"\x1c!\x00" in out[title:body]
    assert b"\x1dV" not in out


def test_the_dummy_keeps_only_the_last_receipt() -> None:
    printer = dummy_printer()
    assert printer.last_output == b""
    printer.print_receipt(["first"])
    printer.print_receipt(["second"])
    assert b"second" in printer.last_output
    assert b"first" not in printer.last_output


def test_a_file_spec_appends_every_receipt(tmp_path: Path) -> None:
    target = tmp_path / "receipts.bin"
    printer = printer_from_spec(f"file:{target}")
    printer.print_receipt(["one"], barcode="A1")
    first = target.read_bytes()
    printer.print_receipt(["two"])
    assert first == printer_from_spec("dummy").render(["one"], barcode="A1")
    assert target.read_bytes() == first + printer.last_output
    assert b"two" in printer.last_output


def test_an_unwritable_output_file_is_a_printer_error(tmp_path: Path) -> None:
    printer = dummy_printer(tmp_path / "missing-dir" / "receipts.bin")
    with pytest.raises(PrinterError, match="cannot write receipt bytes"):
        printer.print_receipt(["x"])


@pytest.mark.parametrize(
    "spec", ["", "lp0", "file:", "tcp://", "tcp://host:99999", "usb:04b8", "usb:zz:0202", "usb:1:2:3", "usb:10000:1"]
)
def test_bad_specs_are_printer_errors(spec: str) -> None:
    with pytest.raises(PrinterError) as caught:
        printer_from_spec(spec)
    assert "\n" not in str(caught.value)


def test_a_tcp_spec_names_host_and_port() -> None:
    assert printer_from_spec("tcp://192.0.2.7:9101").name == "tcp://192.0.2.7:9101"
    assert printer_from_spec("tcp://printer.local").name == "tcp://printer.local:9100"


def test_a_bad_barcode_is_a_printer_error() -> None:
    with pytest.raises(PrinterError, match="CODE128"):
        dummy_printer().print_receipt(["x"], barcode="レシート")


def test_a_network_printer_that_is_not_there_is_a_one_line_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    printer = network_printer("127.0.0.1", port)
    with pytest.raises(PrinterError) as caught:
        printer.print_receipt(["hello"])
    message = str(caught.value)
    assert message.startswith(f"cannot print on tcp://127.0.0.1:{port}:")
    assert "\n" not in message
    assert caught.value.__suppress_context__
    assert printer.last_output == b""


def test_a_network_printer_gets_the_receipt_bytes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)
        printer = network_printer("127.0.0.1", server.getsockname()[1])
        printer.print_receipt(["hello", "ありがとう"], barcode="R1")
        connection, _ = server.accept()
        with connection:
            connection.settimeout(5)
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
    assert received == printer.last_output
    assert "ありがとう".encode("cp932") in received


def test_usb_without_pyusb_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EscposUsb, "is_usable", staticmethod(lambda: False))  # the class hardware.printer uses
    with pytest.raises(PrinterError, match=r"^USB printing needs pyusb: pip install pyusb$"):
        usb_printer(0x04B8, 0x0202)
    with pytest.raises(PrinterError, match="pyusb"):
        printer_from_spec("usb:04b8:0202")


def test_the_printer_wraps_any_escpos_printer() -> None:
    from escpos.printer import Dummy

    device = Dummy()
    printer = ReceiptPrinter(device, name="mine")
    printer.print_receipt(["x"], cut=False)
    assert device.output == printer.last_output
