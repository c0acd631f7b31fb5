"""A register doing payments, in a process of its own, so ``possim bench --only memory`` can read its memory.

``python -m possim.bench.register_run --core URL --terminal-id ID --secret-file F --codes-file C --folder D
--out OUT``: the register as ``possim register`` builds it (its journal, the default catalog, a printer
writing to a file, the payment client signing with the terminal's secret, the Textual ``RegisterApp``),
run headless and driven as a clerk would with Textual's pilot: sign in, then for each wallet code (one
numeric code a line in C) ring up the cheapest product, take the wallet payment (F2, the code typed as a
keyboard-wedge scanner leaves it), wait for the core's decision, print the receipt, next customer. Then it
writes ``{"payments", "approved", "states", "seconds", "memory_mb": {"peak", "now"}}`` (its own
``/proc/self/status``) to OUT as JSON.

No camera: the camera's frames are ``possim bench --only scan``'s business, and a webcam is not there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from hardware.customer_display import MemoryDisplay
from hardware.printer import dummy_printer
from possim.bench.served import memory_mb
from terminal.catalog import Catalog
from terminal.client import PaymentClient
from terminal.register import RegisterApp, RegisterOptions, Till
from terminal.register.screens.payment import APPROVED, SENDING, WAITING, PaymentScreen
from terminal.register.screens.receipt import ReceiptScreen
from terminal.register.screens.sale import SaleScreen
from terminal.register_store import RegisterStore

CLERK_ID, CLERK_NAME, CLERK_PIN = "1001", "Bench clerk", "2580"
WAIT_SECONDS = 30.0  # for any one step (a screen, the core's answer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m possim.bench.register_run", description=__doc__)
    parser.add_argument("--core", required=True)
    parser.add_argument("--terminal-id", required=True)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--codes-file", type=Path, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    codes = args.codes_file.read_text().split()
    secret = bytes.fromhex(args.secret_file.read_text().strip())
    catalog = Catalog.default()
    product = min((p for p in catalog if not p.age_restricted), key=lambda p: p.price)
    states: Counter[str] = Counter()
    store = RegisterStore(args.folder / "register.db", terminal_id=args.terminal_id)
    with store, PaymentClient(args.core, args.terminal_id, secret) as client:
        store.clerks.add_clerk(CLERK_ID, CLERK_NAME, CLERK_PIN)
        receipts = args.folder / "receipts.escpos"
        till = Till(
            store,
            catalog,
            client,
            dummy_printer(receipts),
            MemoryDisplay(),
            store_name="bench",
            terminal_id=args.terminal_id,
        )
        app = RegisterApp(till, None, None, RegisterOptions(receipt_path=str(receipts), show_clock=False))
        started = time.monotonic()
        marks: list[float] = []

        async def clerk(pilot: Pilot[object]) -> None:
            try:
                await _sign_in(pilot)
                marks.append(time.monotonic())
                for code in codes:
                    states[await _sale(pilot, product.jan, code)] += 1
                    marks.append(time.monotonic())
            finally:
                pilot.app.exit()

        app.run(headless=True, size=(140, 42), auto_pilot=clerk)
        seconds = time.monotonic() - started
    report = {
        "payments": len(codes),
        "approved": states[APPROVED],
        "states": dict(states),
        "seconds": round(seconds, 2),
        "signed_in_s": round(marks[0] - started, 2) if marks else None,
        "sale_s": [round(b - a, 2) for a, b in itertools.pairwise(marks)],
        "memory_mb": memory_mb(),
    }
    args.out.write_text(json.dumps(report))
    return 0 if sum(states.values()) == len(codes) else 1


async def _wait(pilot: Pilot[object], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the register did not show {what}")
        await pilot.pause(0.02)


async def _type(pilot: Pilot[object], text: str) -> None:
    """What a keyboard-wedge scanner (or a clerk) leaves: the text in the focused field, then Enter. The text
    is put in at once (a key press through the pilot costs ~70 ms: 2 s a code, a bench's time for nothing)."""
    await _wait(pilot, lambda: isinstance(pilot.app.focused, Input), "an entry field with the focus")
    field = pilot.app.focused
    assert isinstance(field, Input)
    field.value = text
    field.cursor_position = len(text)
    await pilot.press("enter")


async def _sign_in(pilot: Pilot[object]) -> None:
    await _type(pilot, CLERK_ID)
    await _wait(pilot, lambda: getattr(pilot.app.focused, "id", None) != "clerk-id", "the PIN field")
    await _type(pilot, CLERK_PIN)
    await _wait(pilot, lambda: isinstance(pilot.app.screen, SaleScreen), "the sale screen")


async def _sale(pilot: Pilot[object], jan: str, code: str) -> str:
    """One customer: ring up ``jan``, pay with the wallet ``code``; the payment's final state on screen."""
    app = pilot.app
    assert isinstance(app, RegisterApp)
    await _type(pilot, jan)
    await _wait(pilot, lambda: not app.till.sale.is_empty, "the product rung up")
    await pilot.press("f2")
    await _wait(pilot, lambda: isinstance(app.screen, PaymentScreen), "the payment screen")
    screen = app.screen
    assert isinstance(screen, PaymentScreen)
    await _type(pilot, code)
    await _wait(pilot, lambda: screen.state not in (WAITING, SENDING), "the core's decision")
    state = str(screen.state)
    if screen.state == APPROVED:
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the receipt")
        await pilot.press("enter")
    else:
        await pilot.press("escape")
        await _wait(pilot, lambda: isinstance(app.screen, SaleScreen), "the sale screen")
        app.till.void_sale()
    await _wait(pilot, lambda: isinstance(app.screen, SaleScreen) and app.till.sale.is_empty, "the next customer")
    return state


if __name__ == "__main__":
    raise SystemExit(main())
