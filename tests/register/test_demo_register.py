"""``possim demo`` as a new clerk meets it, wired as the demo wires it (a real core on loopback, the demo
wallet): the customer's phone answers a big payment with ``a``/``d``, ``w`` says where the phone is, and
the receipts are kept after the demo ends. The camera is off: the tests type the codes a camera would read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from textual.binding import Binding
from textual.pilot import Pilot

from possim.commands.demo import receipts_note
from possim.demo_stage import DemoStage
from possim.tui_demo import AWAITING_HINT, DEMO_FUNDS, DemoRegister, DemoRegisterApp, demo_register
from protocol import PaymentCode
from terminal.catalog import Product
from terminal.register import RegisterApp
from terminal.register.screens.dialogs import NumberDialog
from terminal.register.screens.payment import APPROVED, AWAITING, DECLINED, PaymentScreen
from terminal.register.screens.receipt import ReceiptScreen
from tests.register.pilot_helpers import open_payment, sign_in, text_of, type_code, wait_for, wait_state
from wallet_app.client import WalletClient


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoRegister]:
    with demo_register(work_dir=tmp_path, receipts_dir=tmp_path / "kept", camera=False) as made:
        yield made


def _big_basket(demo: DemoRegister) -> tuple[Product, int]:
    """A product and a quantity over ¥10,000 (the core asks the phone) within the demo wallet's funds."""
    catalog = demo.app.till.catalog
    product = max((p for p in catalog if p.price <= 5000 and not p.age_restricted), key=lambda p: p.price)
    quantity = 10_001 // product.price + 1
    assert 10_000 < quantity * product.price <= DEMO_FUNDS
    return product, quantity


def _mint(demo: DemoRegister) -> PaymentCode:
    return cast(DemoStage, demo.app.stage).minter.mint()


def _balance(demo: DemoRegister) -> int:
    with WalletClient(demo.core_url) as wallet:
        return wallet.balance(demo.app.phone.state)


def _key_shown(app: RegisterApp, key: str) -> bool:
    active = app.screen.active_bindings.get(key)
    return active is not None and active.enabled and active.binding.show


async def _waiting_for_the_customer(pilot: Pilot[None], demo: DemoRegister, code: PaymentCode) -> PaymentScreen:
    product, quantity = _big_basket(demo)
    await sign_in(pilot)  # the demo's clerk is 1001 / 2580, as the sign-in screen says
    await type_code(pilot, f"{quantity}*{product.jan}")
    screen = await open_payment(pilot)
    assert not _key_shown(demo.app, "a"), "the phone keys are only for a payment waiting for the customer"
    await type_code(pilot, code.numeric)
    await wait_state(pilot, screen, AWAITING)
    await wait_for(pilot, lambda: AWAITING_HINT in str(screen.query_one("#pay-state").render()), "the demo's hint")
    await wait_for(pilot, lambda: _key_shown(demo.app, "a") and _key_shown(demo.app, "d"), "the phone keys")
    return screen


async def test_the_demo_phone_approves_a_big_payment_with_a(demo: DemoRegister) -> None:
    app = demo.app
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await _waiting_for_the_customer(pilot, demo, _mint(demo))
        before = _balance(demo)
        await pilot.press("a")
        await wait_state(pilot, screen, APPROVED)
        assert "APPROVED" in str(screen.query_one("#pay-state").render())
        assert not _key_shown(app, "a")
        product, quantity = _big_basket(demo)
        assert _balance(demo) == before - product.price * quantity


async def test_the_demo_phone_denies_with_d_and_the_clerk_reads_why(demo: DemoRegister) -> None:
    app = demo.app
    async with app.run_test(size=(140, 42)) as pilot:
        code = _mint(demo)
        screen = await _waiting_for_the_customer(pilot, demo, code)
        before = _balance(demo)
        await pilot.press("d")
        await wait_state(pilot, screen, DECLINED)
        text = str(screen.query_one("#pay-state").render())
        assert "DECLINED" in text and "お客様が拒否" in text and "declined on the phone" in text, text
        assert _balance(demo) == before
        tries = screen.attempt.tries
        for form in (code.numeric, code.qr):  # the phone still shows the denied code: not sent again, in any form
            await type_code(pilot, form)
            assert screen.state == DECLINED and screen.attempt.tries == tries
            assert "just declined" in text_of(app, "#pay-read")
        assert "お客様が拒否" in str(screen.query_one("#pay-state").render())


def test_only_the_demo_has_the_phone_keys() -> None:
    def actions(app: type[RegisterApp]) -> set[str]:
        return {binding.action for binding in app.BINDINGS if isinstance(binding, Binding)}

    assert {"phone_answer(True)", "phone_answer(False)"} <= actions(DemoRegisterApp)
    assert not any(action.startswith("phone_answer") for action in actions(RegisterApp))


async def test_w_says_whether_the_phone_is_up(demo: DemoRegister) -> None:
    app = demo.app
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        assert "phone down" in text_of(app, "#camera-status")
        await pilot.press("w")
        await wait_for(pilot, lambda: "phone up" in text_of(app, "#camera-status"), "phone up")
        assert cast(DemoStage, app.stage).phone_up
        await pilot.press("w")
        await wait_for(pilot, lambda: "phone down" in text_of(app, "#camera-status"), "phone down")


async def test_the_demo_keeps_its_receipts_after_it_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSSIM_HOME", str(tmp_path / "home"))
    with demo_register(camera=False) as demo:  # the receipts go to the default place: $POSSIM_HOME/demo-receipts
        app, work = demo.app, demo.work_dir
        async with app.run_test(size=(140, 42)) as pilot:
            assert "demo-receipts" in text_of(app, "#signin-hint")
            await sign_in(pilot)
            product = next(iter(app.till.catalog))
            await type_code(pilot, product.jan)
            await pilot.press("f3")
            await wait_for(pilot, lambda: isinstance(app.screen, NumberDialog), "the cash dialog")
            await pilot.press("enter")  # the exact amount
            await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the receipt")
            assert "demo-receipts" in text_of(app, "#printed")
            await pilot.press("enter")
            await pilot.press("ctrl+q")
        assert app.return_code == 0
    kept = tmp_path / "home" / "demo-receipts"
    assert not work.exists(), "the demo's core and journal are temporary"
    assert demo.receipts.parent == kept and demo.receipts.stat().st_size > 0
    text = demo.receipts.with_suffix(".txt").read_text(encoding="utf-8")
    assert "R1-000001" in text and "領収書" in text
    note = receipts_note(demo.receipts)
    assert str(kept) in note and demo.receipts.with_suffix(".txt").name in note
