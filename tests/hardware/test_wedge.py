"""Keyboard-wedge bursts told from typing by a fake clock; a serial line scanner over pyserial's loop://."""

from __future__ import annotations

import threading

import pytest
import serial

from hardware import KeyboardWedge, LineScanner, WedgeRead
from protocol import ScanKind, mint_code

PAYMENT = mint_code(b"k" * 32, 1234, 1_700_000_000, 3).numeric


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def type_keys(wedge: KeyboardWedge, clock: FakeClock, text: str, gap: float) -> WedgeRead | None:
    for char in text:
        wedge.feed(char)
        clock.now += gap
    return wedge.enter()


def test_a_scanner_burst_of_a_payment_code() -> None:
    clock = FakeClock()
    wedge = KeyboardWedge(clock)
    assert type_keys(wedge, clock, PAYMENT, 0.004) == WedgeRead(PAYMENT, by_scanner=True, kind=ScanKind.PAYMENT)


def test_a_person_typing_the_same_code_is_not_a_scanner() -> None:
    clock = FakeClock()
    read = type_keys(KeyboardWedge(clock), clock, PAYMENT, 0.18)
    assert read == WedgeRead(PAYMENT, by_scanner=False, kind=ScanKind.PAYMENT)


def test_one_slow_key_inside_a_burst_makes_it_typing() -> None:
    clock = FakeClock()
    wedge = KeyboardWedge(clock, max_gap=0.05)
    for index, char in enumerate("4901234567894"):
        wedge.feed(char)
        clock.now += 0.3 if index == 6 else 0.01
    assert wedge.enter() == WedgeRead("4901234567894", by_scanner=False, kind=ScanKind.PRODUCT)


def test_a_gap_exactly_at_the_limit_still_counts_as_a_burst() -> None:
    clock = FakeClock()
    read = type_keys(KeyboardWedge(clock, max_gap=0.25), clock, "49012345", 0.25)
    assert read == WedgeRead("49012345", by_scanner=True, kind=ScanKind.PRODUCT)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("49012345", ScanKind.PRODUCT),
        ("4901234567894", ScanKind.PRODUCT),
        ("490123456", ScanKind.UNKNOWN),
        ("ABC-12345", ScanKind.UNKNOWN),
    ],
)
def test_kinds(text: str, kind: ScanKind) -> None:
    clock = FakeClock()
    read = type_keys(KeyboardWedge(clock), clock, text, 0.001)
    assert read is not None
    assert read.kind == kind


def test_a_short_fast_burst_is_not_a_scanner() -> None:
    clock = FakeClock()
    assert type_keys(KeyboardWedge(clock, min_length=6), clock, "12345", 0.001) == WedgeRead(
        "12345", by_scanner=False, kind=ScanKind.UNKNOWN
    )


def test_surrounding_whitespace_is_stripped_and_controls_ignored() -> None:
    clock = FakeClock()
    wedge = KeyboardWedge(clock)
    wedge.feed(" ")
    wedge.feed("\x1b")
    wedge.feed("49012345 ")
    assert wedge.enter() == WedgeRead("49012345", by_scanner=True, kind=ScanKind.PRODUCT)


def test_enter_on_nothing_is_none_and_the_wedge_starts_over() -> None:
    clock = FakeClock()
    wedge = KeyboardWedge(clock)
    assert wedge.enter() is None
    wedge.feed("   ")
    assert wedge.enter() is None
    wedge.feed("abc")
    wedge.reset()
    assert wedge.pending == ""
    assert type_keys(wedge, clock, "49012345", 0.01) == WedgeRead("49012345", True, ScanKind.PRODUCT)


def test_overlong_input_is_dropped() -> None:
    clock = FakeClock()
    wedge = KeyboardWedge(clock, max_length=10)
    assert type_keys(wedge, clock, "1" * 11, 0.001) is None
    assert wedge.pending == ""
    assert type_keys(wedge, clock, "1" * 10, 0.001) == WedgeRead("1" * 10, True, ScanKind.UNKNOWN)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="min_length"):
        KeyboardWedge(min_length=10, max_length=5)


def collect(port: serial.SerialBase, max_reads: int | None) -> tuple[LineScanner, list[WedgeRead], threading.Event]:
    reads: list[WedgeRead] = []
    got_two = threading.Event()

    def on_read(read: WedgeRead) -> None:
        reads.append(read)
        if len(reads) >= 2:
            got_two.set()

    return LineScanner(port, on_read, max_reads=max_reads), reads, got_two


def test_a_line_scanner_reads_cr_and_lf_terminated_lines() -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)
    scanner, reads, got_two = collect(port, max_reads=None)
    scanner.start()
    try:
        port.write(PAYMENT.encode() + b"\r\n\r\n4901234")
        port.write(b"567894\n")
        assert got_two.wait(5)
    finally:
        scanner.stop()
        port.close()
    assert not scanner.running
    assert reads == [WedgeRead(PAYMENT, True, ScanKind.PAYMENT), WedgeRead("4901234567894", True, ScanKind.PRODUCT)]
    assert scanner.error is None


def test_a_line_scanner_stops_by_itself_after_max_reads() -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)
    scanner, reads, _ = collect(port, max_reads=1)
    scanner.start()
    port.write(b"49012345\r99999999\r")
    assert scanner.finished.wait(5)
    port.close()
    assert [read.text for read in reads] == ["49012345"]
    assert scanner.reads == 1


def test_an_exception_in_the_callback_ends_the_thread_quietly() -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)

    def on_read(read: WedgeRead) -> None:
        raise RuntimeError(f"cannot handle {read.text}")

    scanner = LineScanner(port, on_read)
    scanner.start()
    port.write(b"49012345\n")
    assert scanner.finished.wait(5)
    port.close()
    assert isinstance(scanner.error, RuntimeError)
    assert str(scanner.error) == "cannot handle 49012345"
