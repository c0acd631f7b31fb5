"""The register sends the sale's catalog categories with the payment, and the core's risk rules read them:
a ¥6,000 carton of cigarettes paid from a phone added to the account today is declined (``risk_declined``,
rule ``high_risk_goods``) and the clerk reads why; the owner's own phone pays the same sale. A real core
on loopback, moved by a manual clock, and the Textual register driven by Pilot."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardware.customer_display import MemoryDisplay
from hardware.printer import dummy_printer
from payment_core.core import Core
from payment_core.risk import explain
from payment_core.server import ServerThread
from possim import world
from protocol import ManualClock, system_clock
from terminal.catalog import Catalog, Product
from terminal.client import MAX_CATEGORIES, PaymentClient, api_categories, api_category
from terminal.register import RegisterApp, RegisterOptions, Till
from terminal.register.screens.dialogs import AgeCheckDialog
from terminal.register.screens.payment import APPROVED, DECLINED, PaymentScreen
from terminal.register.texts import DECLINE_REASONS
from terminal.register_store import RegisterStore
from tests.register.conftest import CLERK_ID, CLERK_NAME, CLERK_PIN
from tests.register.pilot_helpers import open_payment, sign_in, type_code, wait_for, wait_state
from tests.support import PASSWORD, customer, totp_now
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter

DAY = 24 * 3600
STORE = "possim 渋谷一丁目店"


@dataclass
class TakenOver:
    core: Core
    server: ServerThread
    clock: ManualClock
    terminal: world.RegisteredTerminal
    account_id: int
    own_phone: CodeMinter  # enrolled with the account two days ago
    new_phone: CodeMinter  # enrolled today, with the right password and second factor


@pytest.fixture
def taken_over(tmp_path: Path) -> Iterator[TakenOver]:
    """An account opened two days ago with 20,000 yen in it, and a second phone enrolled on it now."""
    clock = ManualClock(system_clock().replace(microsecond=0))
    core = world.new_core(tmp_path / "core.db", clock=clock)
    try:
        terminal = world.add_terminal(core, STORE, actor="test")
        with world.serve(core) as server:
            made = world.enroll_customer(core, server.url, customer("kenji@example.jp"), device_name="own", clock=clock)
            own = made.minter(clock)
            with terminal.client(server.url, clock=clock) as register:
                world.fund(register, own, 20_000, per_topup=10_000)
            clock.advance(2 * DAY)
            with WalletClient(server.url, clock=clock) as phone:
                state = phone.enroll(made.customer.email, PASSWORD, totp_now(made.totp_secret, clock), "new", "new")
            new = CodeMinter(state.device_id, state.secret, clock)
            yield TakenOver(core, server, clock, terminal, made.wallet.account_id, own, new)
    finally:
        core.close()


def _register(taken: TakenOver, tmp: Path, catalog: Catalog) -> tuple[RegisterApp, PaymentClient, RegisterStore]:
    store = RegisterStore(tmp / "register.db", taken.clock, terminal_id="R1")
    store.clerks.add_clerk(CLERK_ID, CLERK_NAME, CLERK_PIN)
    client = PaymentClient(
        taken.server.url, taken.terminal.id, taken.terminal.secret, clock=taken.clock, sleep=lambda _s: None
    )
    till = Till(
        store,
        catalog,
        client,
        dummy_printer(tmp / "receipts.escpos"),
        MemoryDisplay(),
        store_name=STORE,
        terminal_id="R1",
        clock=taken.clock,
    )
    options = RegisterOptions(receipt_path=str(tmp / "receipts.escpos"), show_clock=False)
    return RegisterApp(till, None, None, options), client, store


def _carton(catalog: Catalog) -> Product:
    return max((p for p in catalog if p.category == "tobacco"), key=lambda p: p.price)


async def test_a_tobacco_carton_from_a_phone_added_today_is_declined_at_the_register(
    taken_over: TakenOver, tmp_path: Path
) -> None:
    catalog = Catalog.default()
    carton = _carton(catalog)
    assert carton.price > 5_000  # the catalog holds a sale the rule is about, in one item
    app, client, store = _register(taken_over, tmp_path, catalog)
    try:
        async with app.run_test(size=(140, 42)) as pilot:
            await sign_in(pilot)
            await type_code(pilot, carton.jan)
            await wait_for(pilot, lambda: isinstance(app.screen, AgeCheckDialog), "the age check")
            await pilot.press("y")
            await wait_for(pilot, lambda: app.till.sale.age_confirmed, "the age confirmed")
            screen = await open_payment(pilot)
            assert isinstance(screen, PaymentScreen) and screen.attempt.categories == ("tobacco",)

            await type_code(pilot, taken_over.new_phone.mint().numeric)
            await wait_state(pilot, screen, DECLINED)
            said = str(screen.query_one("#pay-state").render())
            assert DECLINE_REASONS["risk_declined"].split(" — ")[0] in said
            assert "Stopped by a security check" in said
            declined = screen.outcome
            assert declined is not None and declined.decline_code == "risk_declined" and declined.payment_id

            taken_over.clock.advance(5)
            await type_code(pilot, taken_over.own_phone.mint().numeric)  # the owner's own phone: a new order
            await wait_state(pilot, screen, APPROVED)
    finally:
        client.close()
        store.close()

    with taken_over.core.transaction() as session:
        (decision,) = explain(session, declined.payment_id)
    assert decision["verdict"] == "decline"
    (finding,) = decision["findings"]
    assert finding["rule"] == "high_risk_goods"
    assert finding["inputs"]["categories"] == ["tobacco"] and finding["inputs"]["amount_yen"] == carton.price


def test_the_client_sends_the_core_s_words_for_other_catalogs_categories(taken_over: TakenOver) -> None:
    """A catalog of another shape (POSSIM_CATALOG) may call them otherwise: the client sends the core's words."""
    assert api_category("Cigarettes") == "tobacco" and api_category("たばこ") == "tobacco"
    assert api_category("Prepaid Card") == "gift_card" and api_category("ギフトカード") == "gift_card"
    assert api_category("Hot snacks & drinks") == "hot_snacks_drinks"
    assert api_category("弁当") is None and api_category("2-for-1") is None
    assert api_category("x" * 60) == "x" * 40
    many = [f"kind{n:02d}" for n in range(30)] + ["TOBACCO", "tobacco", "gift card"]
    sent = api_categories(many)
    assert len(sent) == MAX_CATEGORIES and {"tobacco", "gift_card"} <= set(sent) and list(sent) == sorted(sent)

    with taken_over.terminal.client(taken_over.server.url, clock=taken_over.clock) as register:
        outcome = register.pay("odd-1", 6_000, taken_over.new_phone.mint().numeric, categories=["Cigarettes", "弁当"])
        assert outcome.decline_code == "risk_declined" and outcome.payment_id is not None
        taken_over.clock.advance(5)
        food = register.pay("odd-2", 6_000, taken_over.new_phone.mint().numeric, categories=many[:3])
        assert food.status == "succeeded"  # the same amount, goods no rule reads: paid
    with taken_over.core.transaction() as session:
        (decision,) = explain(session, outcome.payment_id)
    assert decision["findings"][0]["inputs"]["categories"] == ["tobacco"]
