"""Issue 13, part 1: guessing at payment codes is stopped at its source, not at the victim's wallet.

Before: ten bad codes from any register paused a device's codes everywhere for ten minutes, device
numbers were handed out in order (1, 2, 3, ...), and ``device_unknown`` told a register which numbers
were phones. Each test walks through one door of that attack and finds it shut.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from payment_core import devices
from payment_core.core import Core
from payment_core.models import AuditEvent, CodeFailure, Device, Notification
from payment_core.server import ServerThread
from possim.world import add_terminal
from protocol import ManualClock, damm_digit
from protocol.payment_code import MAX_DEVICE_NUMBER
from tests.support import SignedCaller, balance, enroll_wallet, error_code
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

# The numeric form: 38 DDDDDDD TTTT C MMMMMMM K (protocol/payment_code.py)
_DEVICE, _MAC = slice(2, 9), slice(14, 21)


def _checked(body: str) -> str:
    return body + damm_digit(body)


def with_mac(real: str, mac: int) -> str:
    """``real`` (numeric form) with another MAC: a guess at the code of the device it names, now."""
    return _checked(real[: _MAC.start] + f"{mac:07d}")


def naming(real: str, device: int) -> str:
    """``real`` (numeric form) naming another device number, its MAC kept: a guess at that device."""
    return _checked(real[: _DEVICE.start] + f"{device:07d}" + real[_DEVICE.stop : _MAC.stop])


def wrong_macs(real: str) -> Iterator[int]:
    """MACs that are not the real code's: every one is a failed guess."""
    right = int(real[_MAC])
    return (mac for mac in range(10**7) if mac != right)


def free_device_number(core: Core) -> int:
    with core.transaction() as session:
        while True:
            number = secrets.randbelow(MAX_DEVICE_NUMBER) + 1
            if session.get(Device, number) is None:
                return number


@pytest.fixture
def same_store_terminal(core: Core, server: ServerThread, clock: ManualClock) -> Iterator[SignedCaller]:
    """Another register of the ``terminal`` fixture's store (Shibuya 1-chome)."""
    made = add_terminal(core, "Shibuya 1-chome", "register-3", "test")
    with SignedCaller(server.url, made.id, made.secret, clock) as caller:
        yield caller


def test_device_numbers_are_drawn_at_random_over_the_whole_field(
    core: Core, server: ServerThread, clock: ManualClock, wallet: WalletState
) -> None:
    """Three phones enrolled one after another: not 1, 2, 3 (nor any run), and every number fits the field."""
    others = [enroll_wallet(server.url, clock, f"guest{n}@example.jp", core).device_id for n in range(2)]
    numbers = [wallet.device_id, *others]
    assert all(1 <= number <= MAX_DEVICE_NUMBER for number in numbers)
    assert len(set(numbers)) == 3
    assert sorted(numbers) != list(range(min(numbers), min(numbers) + 3)), numbers
    assert max(numbers) > 1_000, numbers  # sequential numbering would still be at 3


def test_a_taken_device_number_is_drawn_again(
    core: Core, server: ServerThread, clock: ManualClock, wallet: WalletState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A draw that hits a phone's number (or one a concurrent enrollment took) is not an error: draw again."""
    free = free_device_number(core)
    draws = iter([wallet.device_id, wallet.device_id, free])
    monkeypatch.setattr(devices, "_draw_device_number", lambda: next(draws))
    second = enroll_wallet(server.url, clock, "guest@example.jp", core)
    assert second.device_id == free
    with core.transaction() as session:
        assert session.get_one(Device, wallet.device_id).account_id == wallet.account_id  # untouched


def test_an_unknown_device_answers_like_a_forged_code(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, clock: ManualClock
) -> None:
    """A register cannot tell a phone's number from an empty one: same status, code and message, in the window
    and out of it; only the audit knows which was which."""
    real = minter.mint().numeric
    nobody = free_device_number(core)
    unknown = terminal.pay("guess-nobody", 500, naming(real, nobody))
    forged = terminal.pay("guess-phone", 500, with_mac(real, next(wrong_macs(real))))
    assert unknown.status_code == forged.status_code == 402
    ours = {"payment_id": "", "order_id": ""}  # the only fields that differ: the request's own
    assert unknown.json()["error"] | ours == forged.json()["error"] | ours
    assert error_code(unknown) == "code_forged"

    clock.advance(core.config.code_ttl_seconds + core.config.clock_skew_seconds + 1)  # both codes expired now
    late_unknown = terminal.pay("late-nobody", 500, naming(real, nobody))
    late_known = terminal.pay("late-phone", 500, with_mac(real, next(wrong_macs(real))))
    # The MAC comes before the time: out of the window too, a wrong MAC and an unknown number are the same
    # code_forged (only a genuine code is told its phone's clock), and both count as guesses.
    assert late_unknown.json()["error"] | ours == late_known.json()["error"] | ours
    assert error_code(late_unknown) == "code_forged"

    with core.transaction() as session:
        refused = session.execute(
            select(AuditEvent.target, AuditEvent.result).where(AuditEvent.action == "code.refused")
        ).all()
        assert sorted(refused) == sorted(
            2 * [(f"device:{nobody}", "device_unknown"), (f"device:{wallet.device_id}", "code_forged")]
        )
        assert session.query(CodeFailure).count() == 4  # the expired ones too: a wrong MAC is a guess at any time


def test_a_flooding_register_is_refused_while_the_owner_pays_at_another_store(
    core: Core,
    terminal: SignedCaller,
    second_terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    """The attack of issue 13: a register sends a victim's device number with bad MACs. It is the register that
    stops, not the victim's phone, whose next numeric code pays at another store."""
    real = minter.mint().numeric
    guesses = wrong_macs(real)
    for attempt in range(core.config.limits.terminal_code_failures):
        assert error_code(terminal.pay(f"flood-{attempt}", 100, with_mac(real, next(guesses)))) == "code_forged"
    refused = terminal.pay("flood-more", 100, minter.mint().numeric)  # even a valid code, from this register
    assert (refused.status_code, error_code(refused)) == (429, "code_guessing_throttled")
    assert int(refused.headers["Retry-After"]) == core.config.limits.code_failure_window_seconds

    paid = second_terminal.pay("owner-buys-lunch", 800, minter.mint().numeric)
    assert paid.status_code == 200, paid.text
    assert balance(core, wallet) == funded - 800


def test_a_store_cannot_multiply_its_guesses_by_its_registers(
    core: Core,
    terminal: SignedCaller,
    same_store_terminal: SignedCaller,
    second_terminal: SignedCaller,
    server: ServerThread,
    clock: ManualClock,
    minter: CodeMinter,
    funded: int,
) -> None:
    """Two registers of one store spend the store's budget; its third register, clean itself, is refused too,
    while another store's register takes the same phone's code."""
    limits = core.config.limits
    per_register = limits.store_code_failures // 2
    assert per_register <= limits.terminal_code_failures  # each register alone stays under its own limit
    real = minter.mint().numeric
    guesses = wrong_macs(real)
    for register in (terminal, same_store_terminal):
        for attempt in range(per_register):
            answer = register.pay(f"spread-{register.key_id}-{attempt}", 100, with_mac(real, next(guesses)))
            assert error_code(answer) == "code_forged"
    third = add_terminal(core, "Shibuya 1-chome", "register-4", "test")
    with SignedCaller(server.url, third.id, third.secret, clock) as clean_register:
        refused = clean_register.pay("clean-register", 100, minter.mint().qr)
    assert (refused.status_code, error_code(refused)) == (429, "code_guessing_throttled")
    assert second_terminal.pay("other-store", 100, minter.mint().qr).status_code == 200

    clock.advance(limits.code_failure_window_seconds + 1)  # the window passes: the store may take codes again
    assert terminal.pay("after-the-window", 100, minter.mint().qr).status_code == 200


def test_a_much_guessed_device_keeps_paying_with_its_qr_code_and_its_owner_is_told(
    core: Core,
    terminal: SignedCaller,
    second_terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    clock: ManualClock,
    funded: int,
) -> None:
    """A patient guesser (a register back after every window, or many stores) reaches the per-device bound: from
    then the phone's numeric codes, whose 7-digit MAC can be guessed, are refused everywhere for the day; its QR
    codes still pay, and the owner hears of it once."""
    limits = core.config.limits
    rounds, rest = divmod(limits.device_numeric_failures, limits.terminal_code_failures)
    assert rest == 0
    for round_ in range(rounds):
        real = minter.mint().numeric
        guesses = wrong_macs(real)
        for attempt in range(limits.terminal_code_failures):
            answer = terminal.pay(f"patient-{round_}-{attempt}", 100, with_mac(real, next(guesses)))
            assert error_code(answer) == "code_forged", (round_, attempt)
        clock.advance(limits.code_failure_window_seconds + 1)

    numeric = second_terminal.pay("owner-numeric", 300, minter.mint().numeric)
    assert (numeric.status_code, error_code(numeric)) == (429, "code_guessing_throttled")
    qr = second_terminal.pay("owner-qr", 300, minter.mint().qr)
    assert qr.status_code == 200, qr.text
    assert balance(core, wallet) == funded - 300

    with core.transaction() as session:
        told = session.scalars(
            select(Notification.message).where(
                Notification.account_id == wallet.account_id, Notification.kind == "security"
            )
        ).all()
        paused = session.scalars(select(AuditEvent.target).where(AuditEvent.action == "code.numeric_paused")).all()
    assert len(told) == 1 and "QR code" in told[0]
    assert paused == [f"device:{wallet.device_id}"]

    clock.advance(limits.device_numeric_window_seconds)  # a day on, the number is accepted again
    assert second_terminal.pay("owner-numeric-later", 300, minter.mint().numeric).status_code == 200
