"""The terminal's order id is the idempotency key: a repeat gets the stored answer, never a second charge."""

from __future__ import annotations

from payment_core.core import Core
from tests.support import SignedCaller, assert_books_balance, balance, error_code
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState


def test_same_order_and_body_returns_the_stored_response(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    code = minter.mint().qr
    first = terminal.pay("order-7", 700, code)
    second = terminal.pay("order-7", 700, code)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert balance(core, wallet) == funded - 700


def test_same_order_with_other_parameters_is_a_conflict(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    code = minter.mint().qr
    assert terminal.pay("order-7", 700, code).status_code == 200
    changed = terminal.pay("order-7", 701, code)
    assert (changed.status_code, error_code(changed)) == (409, "idempotency_conflict")
    assert changed.json()["error"]["type"] == "idempotency_error"
    assert balance(core, wallet) == funded - 700


def test_a_stored_decline_is_replayed_too(terminal: SignedCaller, minter: CodeMinter, funded: int) -> None:
    code = minter.mint().qr
    first = terminal.pay("order-9", funded * 2, code)
    second = terminal.pay("order-9", funded * 2, code)
    assert first.status_code == second.status_code == 402
    assert first.json() == second.json()
    assert error_code(second) == "insufficient_funds"


def test_retry_after_a_dropped_response_charges_once(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    """The register sent, the core charged, the answer was lost: the retry (new nonce, same order) is safe."""
    code = minter.mint().numeric
    terminal.pay("order-lost", 1_000, code)  # the answer is thrown away, as if the line dropped
    retried = terminal.pay("order-lost", 1_000, code)
    assert retried.status_code == 200
    assert retried.json()["status"] == "succeeded"
    assert balance(core, wallet) == funded - 1_000
    looked_up = terminal.call("GET", "/v1/orders/order-lost")
    assert looked_up.json()["id"] == retried.json()["id"]


def test_orders_are_per_terminal(
    core: Core,
    terminal: SignedCaller,
    second_terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    assert terminal.pay("order-1", 100, minter.mint().qr).status_code == 200
    assert second_terminal.pay("order-1", 200, minter.mint().qr).status_code == 200
    assert balance(core, wallet) == funded - 300
    missing = second_terminal.call("GET", "/v1/orders/order-404")
    assert (missing.status_code, error_code(missing)) == (404, "resource_missing")


def test_reverse_refunds_a_success_in_full(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    assert terminal.pay("order-r", 2_000, minter.mint().qr).status_code == 200
    reversed_ = terminal.call("POST", "/v1/orders/order-r/reverse", {})
    assert reversed_.json()["status"] == "reversed"
    assert reversed_.json()["amount_refunded"] == 2_000
    again = terminal.call("POST", "/v1/orders/order-r/reverse", {})
    assert again.json()["status"] == "reversed"
    assert balance(core, wallet) == funded
    assert_books_balance(core)


def test_reverse_before_arrival_closes_the_order(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    """A register that gave up reverses; the original request arriving late must not charge."""
    closed = terminal.call("POST", "/v1/orders/order-late/reverse", {})
    assert closed.json()["status"] == "reversed"
    late = terminal.pay("order-late", 900, minter.mint().qr)
    assert late.status_code == 200
    assert late.json()["status"] == "reversed"
    assert balance(core, wallet) == funded


def test_partial_and_full_refunds_never_exceed_the_payment(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    paid = terminal.pay("order-f", 3_000, minter.mint().qr).json()
    path = f"/v1/payments/{paid['id']}/refunds"
    first = terminal.call("POST", path, {"refund_id": "r1", "amount": 1_000})
    assert first.json()["amount"] == 1_000
    assert terminal.call("POST", path, {"refund_id": "r1", "amount": 1_000}).json()["id"] == first.json()["id"]
    too_much = terminal.call("POST", path, {"refund_id": "r2", "amount": 2_001})
    assert (too_much.status_code, error_code(too_much)) == (400, "refund_exceeds_payment")
    rest = terminal.call("POST", path, {"refund_id": "r3"})
    assert rest.json()["amount"] == 2_000
    order = terminal.call("GET", "/v1/orders/order-f").json()
    assert (order["status"], order["amount_refunded"]) == ("refunded", 3_000)
    after = terminal.call("POST", path, {"refund_id": "r4", "amount": 1})
    assert error_code(after) == "payment_not_refundable"
    assert balance(core, wallet) == funded
    assert_books_balance(core)


def test_another_store_cannot_refund_my_payment(
    terminal: SignedCaller, second_terminal: SignedCaller, minter: CodeMinter, funded: int
) -> None:
    paid = terminal.pay("order-x", 500, minter.mint().qr).json()
    stolen = second_terminal.call("POST", f"/v1/payments/{paid['id']}/refunds", {"refund_id": "r1"})
    assert (stolen.status_code, error_code(stolen)) == (404, "resource_missing")
