"""The register's client against a real core whose network fails: never a double charge, always an end."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import httpx
import pytest

from payment_core import incident, terminals
from payment_core.core import Core
from payment_core.server import ServerThread
from protocol import ManualClock
from terminal.client import PaymentClient
from tests.support import SignedCaller, assert_books_balance, balance, fund_wallet
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

# How a request fails: "down" never reaches the core; "drop" reaches it and loses the answer.
Fault = Callable[[httpx.Request], str | None]


class FaultyTransport(httpx.BaseTransport):
    """Forwards to the real server over loopback, failing requests as ``fault`` decides."""

    def __init__(self, fault: Fault) -> None:
        self._inner = httpx.HTTPTransport()
        self._fault = fault
        self.log: list[tuple[str, str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        verdict = self._fault(request)
        self.log.append((request.method, request.url.path, verdict))
        if verdict == "down":
            raise httpx.ConnectError("core unreachable", request=request)
        response = self._inner.handle_request(request)
        if verdict == "drop":
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


@pytest.fixture
def register_factory(
    core: Core, server: ServerThread, clock: ManualClock
) -> Iterator[Callable[[Fault], tuple[PaymentClient, FaultyTransport]]]:
    made = terminals.provision_terminal(core, "Akihabara", "register-9", "test")
    clients: list[PaymentClient] = []

    def build(fault: Fault) -> tuple[PaymentClient, FaultyTransport]:
        transport = FaultyTransport(fault)
        client = PaymentClient(
            server.url,
            made.terminal.id,
            made.secret,
            clock=clock,
            transport=transport,
            retries=2,
            sleep=lambda _seconds: None,
        )
        clients.append(client)
        return client, transport

    yield build
    for client in clients:
        client.close()


def first_n(n: int, verdict: str, path: str = "/v1/payments") -> Fault:
    seen = {"count": 0}

    def fault(request: httpx.Request) -> str | None:
        if request.url.path == path and seen["count"] < n:
            seen["count"] += 1
            return verdict
        return None

    return fault


def test_a_lost_answer_is_retried_with_the_same_order_and_charges_once(
    core: Core,
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]],
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    client, transport = register_factory(first_n(1, "drop"))
    outcome = client.pay("lost-1", 1_500, minter.mint().qr)
    assert (outcome.status, outcome.attempts) == ("succeeded", 2)
    assert [entry[2] for entry in transport.log] == ["drop", None]
    assert balance(core, wallet) == funded - 1_500


def test_every_answer_lost_then_the_query_finds_the_charge(
    core: Core,
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]],
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    client, transport = register_factory(first_n(3, "drop"))
    outcome = client.pay("lost-2", 800, minter.mint().qr)
    assert outcome.status == "succeeded"
    assert [path for _, path, _ in transport.log] == ["/v1/payments"] * 3 + ["/v1/orders/lost-2"]
    assert balance(core, wallet) == funded - 800


def test_core_down_then_back_for_the_reverse_closes_the_order(
    core: Core,
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]],
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    """Nothing reached the core, the lookup failed too; the reverse gets through and closes the order."""
    down_until_reverse: Fault = lambda request: None if request.url.path.endswith("/reverse") else "down"  # noqa: E731
    client, _ = register_factory(down_until_reverse)
    code = minter.mint().qr
    outcome = client.pay("down-1", 700, code)
    assert outcome.status == "reversed"
    healthy, _ = register_factory(lambda _request: None)
    late = healthy.pay("down-1", 700, code)
    assert late.status == "reversed"  # the order is closed: a late copy cannot charge
    assert balance(core, wallet) == funded


def test_core_down_throughout_says_unknown_and_never_raises(
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]], minter: CodeMinter
) -> None:
    client, transport = register_factory(lambda _request: "down")
    outcome = client.pay("down-2", 700, minter.mint().qr)
    assert (outcome.status, outcome.error_code) == ("unknown", "service_unavailable")
    assert not outcome.final
    assert len(transport.log) == 9  # 3 tries each for the payment, the lookup and the reverse


def test_a_misread_code_never_leaves_the_register(
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]], minter: CodeMinter
) -> None:
    client, transport = register_factory(lambda _request: None)
    code = minter.mint().numeric
    misread = code[:3] + str((int(code[3]) + 1) % 10) + code[4:]
    outcome = client.pay("misread-1", 100, misread)
    assert (outcome.status, outcome.error_code) == ("error", "code_checksum_failed")
    assert transport.log == []
    assert client.pay("junk-1", 100, "https://example.com/x").error_code == "code_malformed"


def test_declines_and_conflicts_come_back_as_outcomes(
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]], minter: CodeMinter, funded: int
) -> None:
    client, _ = register_factory(lambda _request: None)
    code = minter.mint().qr
    declined = client.pay("big-1", funded + 1, code)
    assert (declined.status, declined.decline_code, declined.http_status) == ("declined", "insufficient_funds", 402)
    assert declined.payment_id is not None
    conflict = client.pay("big-1", 5, code)
    assert (conflict.status, conflict.error_code, conflict.http_status) == ("error", "idempotency_conflict", 409)


def test_refunds_and_cash_topups_through_the_client(
    core: Core,
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]],
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    client, _ = register_factory(first_n(1, "drop", "/v1/topups/cash"))
    topped = client.topup_cash("cash-1", 2_000, minter.mint().numeric)
    assert (topped.status, topped.balance_after) == ("succeeded", funded + 2_000)
    paid = client.pay("r-1", 1_000, minter.mint().qr)
    assert paid.payment_id is not None
    part = client.refund(paid.payment_id, "ref-1", 400)
    assert (part.status, part.amount) == ("refunded", 400)
    rest = client.refund(paid.payment_id, "ref-2")
    assert rest.amount == 600
    over = client.refund(paid.payment_id, "ref-3", 1)
    assert (over.status, over.error_code) == ("error", "payment_not_refundable")
    assert balance(core, wallet) == funded + 2_000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeded_chaos_never_loses_or_doubles_money(
    seed: int,
    core: Core,
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]],
    terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    clock: ManualClock,
) -> None:
    """A seeded run (replayable from its seed): 25 payments, a third of all requests fail in either way."""
    rng = random.Random(seed)
    fund_wallet(terminal, minter, 50_000)
    clock.advance(1)
    chaos: Fault = lambda _request: rng.choice(["down", "drop", None, None, None, None])  # noqa: E731
    client, _ = register_factory(chaos)
    charged = 0
    for index in range(25):
        if index % 9 == 8:
            clock.advance(1)
        amount = rng.randrange(100, 1_500)
        outcome = client.pay(f"chaos-{seed}-{index}", amount, minter.mint().qr)
        if not outcome.final:  # the register's last resort: reverse until the order is closed
            for _ in range(10):
                outcome = client.reverse(f"chaos-{seed}-{index}")
                if outcome.final:
                    break
        assert outcome.final, outcome
        charged += amount if outcome.status == "succeeded" else 0
    assert balance(core, wallet) == 50_000 - charged
    assert_books_balance(core)


def test_a_paused_top_up_is_a_final_refusal_not_an_unknown_outcome(
    core: Core,
    register_factory: Callable[[Fault], tuple[PaymentClient, FaultyTransport]],
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    """An operator's kill switch answers 503 ``service_paused``: the register says so at once, with the
    core's words, instead of retrying into "unknown"; nothing moves, and after the resume it works."""
    client, transport = register_factory(lambda _request: None)
    incident.pause(core, "topup-cash", "admin:test", "incident drill")
    paused = client.topup_cash("paused-1", 2_000, minter.mint().numeric)
    assert (paused.status, paused.error_code, paused.attempts) == ("error", "service_paused", 1)
    assert "balance is safe" in paused.message  # "error", not "unknown": nothing to query or reverse
    assert [path for _method, path, _verdict in transport.log] == ["/v1/topups/cash"]  # asked once, not retried
    assert balance(core, wallet) == funded
    incident.resume(core, "topup-cash", "admin:test")
    topped = client.topup_cash("paused-2", 2_000, minter.mint().numeric)
    assert (topped.status, topped.balance_after) == ("succeeded", funded + 2_000)
