"""The customer display: fitting lines by cells, and the memory, file and serial backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import serial
from rich.cells import cell_len

from hardware import (
    CustomerDisplay,
    DisplayError,
    FileDisplay,
    MemoryDisplay,
    SerialDisplay,
    fit_line,
    format_total_line,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", "abc" + " " * 17),
        ("x" * 25, "x" * 20),
        ("合計", "合計" + " " * 16),
        ("あ" * 11, "あ" * 10),
        ("a" + "あ" * 10, "a" + "あ" * 9 + " "),  # a wide character never straddles the edge
        ("tab\there", "tab here" + " " * 12),
    ],
)
def test_fit_line_counts_cells(text: str, expected: str) -> None:
    assert fit_line(text) == expected
    assert cell_len(fit_line(text)) == 20


def test_total_line_right_aligns_the_amount() -> None:
    assert format_total_line("合計", 1234) == "合計" + " " * 10 + "¥1,234"
    assert format_total_line("Total", 1_234_567, width=16) == "Total ¥1,234,567"
    assert format_total_line("返金", -500) == "返金" + " " * 11 + "-¥500"
    long = format_total_line("とても長いラベルの名前です", 98765)
    assert long.endswith(" ¥98,765")
    assert cell_len(long) == 20
    assert format_total_line("x", 10**20, width=8) == "¥100,000"


def test_memory_display_records_what_is_shown() -> None:
    display: CustomerDisplay = MemoryDisplay()
    display.show("いらっしゃいませ", format_total_line("合計", 150))
    display.show("Thank you", "")
    display.clear()
    assert isinstance(display, MemoryDisplay)
    assert display.history == [
        (fit_line("いらっしゃいませ"), fit_line("合計            ¥150")),
        (fit_line("Thank you"), " " * 20),
    ]
    assert display.current == (" " * 20, " " * 20)


def test_file_display_rewrites_the_file(tmp_path: Path) -> None:
    target = tmp_path / "display.txt"
    display = FileDisplay(target)
    display.show("おにぎり", format_total_line("合計", 150))
    assert target.read_text(encoding="utf-8") == f"{fit_line('おにぎり')}\n{format_total_line('合計', 150)}\n"
    display.clear()
    assert target.read_text(encoding="utf-8") == " " * 20 + "\n" + " " * 20 + "\n"
    assert [path.name for path in tmp_path.iterdir()] == ["display.txt"]  # no temp files left behind


def test_file_display_in_a_missing_folder_is_a_display_error(tmp_path: Path) -> None:
    display = FileDisplay(tmp_path / "nope" / "display.txt")
    with pytest.raises(DisplayError, match="cannot write"):
        display.show("a", "b")


def test_serial_display_sends_esc_pos_display_commands() -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)
    display = SerialDisplay(port)
    assert port.read(port.in_waiting) == b"\x1b@\x1bR\x08\x1c&\x0c"
    display.show("いらっしゃいませ", format_total_line("合計", 1234))
    sent = port.read(port.in_waiting)
    upper = fit_line("いらっしゃいませ").encode("cp932")
    lower = ("合計" + " " * 10 + "\\1,234").encode("cp932")
    assert sent == b"\x0c" + upper + b"\x1f$\x01\x02" + lower
    display.clear()
    assert port.read(port.in_waiting) == b"\x0c"
    port.close()


def test_a_closed_serial_port_is_a_display_error() -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)
    display = SerialDisplay(port)
    port.close()
    with pytest.raises(DisplayError, match="customer display"):
        display.show("a", "b")
