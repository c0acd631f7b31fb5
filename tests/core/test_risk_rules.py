"""The risk engine on real payments: each rule fires on its pattern, with its reasons kept beside the
payment and in the audit, and stays quiet on an ordinary customer's payment. Real server, both stores."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from payment_core.core import Core
from payment_core.models import Account, AuditEvent
from payment_core.risk import Verdict, explain
from payment_core.server import ServerThread
from possim import world
from possim.cli import main
from protocol import ManualClock
from tests.support import PASSWORD, SignedCaller, error_code, fund_wallet, totp_now
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter

DAY = 24 * 3600
_orders = count()


@dataclass
class Victim:
    account_id: int
    own_phone: CodeMinter  # enrolled with the account, days ago
    new_phone: CodeMinter | None  # added today: the attacker's, in a takeover


def _customers(
    core: Core, server: ServerThread, clock: ManualClock, emails: list[str], *, takeover: bool
) -> list[Victim]:
    """Accounts opened two days ago, each with its phone; with ``takeover``, a second phone enrolled on
    each now with the right password and second factor, as 7pay's attackers did."""
    made = [
        world.enroll_customer(
            core, server.url, world.Customer(email, PASSWORD, "+819012345678"), device_name="own", clock=clock
        )
        for email in emails
    ]
    clock.advance(2 * DAY)
    victims = []
    for enrolled in made:
        new_phone = None
        if takeover:
            with WalletClient(server.url, clock=clock) as client:
                totp = totp_now(enrolled.totp_secret, clock)
                state = client.enroll(enrolled.customer.email, PASSWORD, totp, "attacker", "stolen")
            new_phone = CodeMinter(state.device_id, state.secret, clock)
        own = CodeMinter(enrolled.wallet.device_id, enrolled.wallet.secret, clock)
        victims.append(Victim(enrolled.wallet.account_id, own, new_phone))
    return victims


def _customer(core: Core, server: ServerThread, clock: ManualClock, email: str, *, takeover: bool) -> Victim:
    (victim,) = _customers(core, server, clock, [email], takeover=takeover)
    return victim


def _pay(
    terminal: SignedCaller, minter: CodeMinter, amount: int, categories: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, object] = {"order_id": f"risk-{next(_orders)}", "amount": amount, "code": minter.mint().numeric}
    if categories is not None:
        body["categories"] = categories
    response = terminal.call("POST", "/v1/payments", body)
    data = response.json()
    answer: dict[str, Any] = {**(data.get("error") or data), "http": response.status_code}
    return answer


def _decisions(core: Core, payment_id: str) -> list[dict[str, Any]]:
    with core.transaction() as session:
        return explain(session, payment_id)


def _audited(core: Core, payment_id: str) -> dict[str, Any]:
    with core.transaction() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.target == payment_id)).one()
        detail: dict[str, Any] = json.loads(event.detail)
        return detail


def test_the_7pay_pattern_is_declined_and_explained(
    core: Core, server: ServerThread, terminal: SignedCaller, clock: ManualClock
) -> None:
    victim = _customer(core, server, clock, "victim@example.jp", takeover=True)
    assert victim.new_phone is not None
    fund_wallet(terminal, victim.new_phone, 10_000)
    clock.advance(60)
    first = _pay(terminal, victim.new_phone, 3_000)  # 30% of the top-up: nothing to see yet
    assert first["http"] == 200
    clock.advance(60)
    second = _pay(terminal, victim.new_phone, 5_000)  # 80% spent within minutes, from a phone added today
    assert second["http"] == 402 and second["code"] == "risk_declined"
    assert "security check" in second["message"]
    (decision,) = _decisions(core, second["payment_id"])
    assert decision["verdict"] == "decline"
    (finding,) = decision["findings"]
    assert finding["rule"] == "topup_then_spend"
    assert finding["inputs"]["topped_up_yen"] == 10_000 and finding["inputs"]["spent_yen"] == 8_000
    assert _audited(core, second["payment_id"])["rules"] == ["topup_then_spend"]
    assert _decisions(core, first["id"]) == []  # a payment no rule fired on keeps nothing


def test_the_owner_spending_a_top_up_from_their_own_phone_passes(
    core: Core, server: ServerThread, terminal: SignedCaller, clock: ManualClock
) -> None:
    owner = _customer(core, server, clock, "owner@example.jp", takeover=False)
    fund_wallet(terminal, owner.own_phone, 10_000)
    clock.advance(60)
    paid = _pay(terminal, owner.own_phone, 9_000)
    assert paid["http"] == 200
    assert _decisions(core, paid["id"]) == []


def test_a_newcomers_first_day_is_not_the_7pay_pattern(
    core: Core, server: ServerThread, terminal: SignedCaller, clock: ManualClock
) -> None:
    """A new account's first phone came with the account: topping up and spending it today is ordinary."""
    made = world.enroll_customer(
        core, server.url, world.Customer("new@example.jp", PASSWORD, "+819012345679"), device_name="first", clock=clock
    )
    phone = CodeMinter(made.wallet.device_id, made.wallet.secret, clock)
    fund_wallet(terminal, phone, 10_000)
    clock.advance(60)
    assert _pay(terminal, phone, 9_000, ["tobacco"])["http"] == 200


def test_velocity_asks_the_customer_to_approve(
    core: Core, server: ServerThread, terminal: SignedCaller, clock: ManualClock
) -> None:
    owner = _customer(core, server, clock, "fast@example.jp", takeover=False)
    fund_wallet(terminal, owner.own_phone, 10_000)
    clock.advance(61)
    limit = core.config.risk.velocity.account_per_minute
    answers = [_pay(terminal, owner.own_phone, 100) for _ in range(limit + 1)]
    assert [answer["http"] for answer in answers] == [200] * limit + [202]
    assert answers[-1]["http"] == 202 and answers[-1]["object"] == "payment"
    (decision,) = _decisions(core, answers[-1]["id"])
    assert decision["verdict"] == "step_up"
    assert decision["findings"][0]["inputs"]["account_per_minute"] == {"seen": limit + 1, "limit": limit}
    clock.advance(61)
    assert _pay(terminal, owner.own_phone, 100)["http"] == 200  # a minute later the pace is fine again


def test_high_risk_goods_from_a_new_phone_are_declined_and_from_the_owners_pass(
    core: Core, server: ServerThread, terminal: SignedCaller, clock: ManualClock
) -> None:
    victim = _customer(core, server, clock, "goods@example.jp", takeover=True)
    assert victim.new_phone is not None
    fund_wallet(terminal, victim.own_phone, 10_000)
    fund_wallet(terminal, victim.own_phone, 10_000)
    clock.advance(DAY)  # the top-ups are old news: only the goods rule can fire
    above = core.config.risk.high_risk_goods.above_yen
    refused = _pay(terminal, victim.new_phone, above + 1, ["food", "gift_card"])
    assert refused["http"] == 402 and refused["code"] == "risk_declined"
    (decision,) = _decisions(core, refused["payment_id"])
    assert decision["findings"][0]["rule"] == "high_risk_goods"
    assert decision["findings"][0]["inputs"]["categories"] == ["gift_card"]
    at_the_line = _pay(terminal, victim.new_phone, above, ["gift_card"])
    assert at_the_line["http"] == 200, at_the_line  # not above the line
    clock.advance(61)
    assert _pay(terminal, victim.own_phone, above + 1, ["tobacco"])["http"] == 200  # the owner's old phone


def test_many_new_phones_paying_at_one_store_are_stepped_up(
    core: Core, server: ServerThread, terminal: SignedCaller, clock: ManualClock
) -> None:
    limit = core.config.risk.store_cluster.new_device_accounts
    victims = _customers(core, server, clock, [f"cluster{n}@example.jp" for n in range(limit)], takeover=True)
    for victim in victims:
        assert victim.new_phone is not None
        fund_wallet(terminal, victim.own_phone, 1_000)
    clock.advance(DAY)
    answers = [_pay(terminal, victim.new_phone, 500) for victim in victims if victim.new_phone]
    assert [answer["http"] for answer in answers] == [200] * (limit - 1) + [202]
    (decision,) = _decisions(core, answers[-1]["id"])
    assert decision["findings"][0]["rule"] == "store_cluster"
    assert decision["findings"][0]["inputs"]["new_device_accounts"] == limit


def test_a_freeze_rule_freezes_the_account(
    core: Core, server: ServerThread, terminal: SignedCaller, clock: ManualClock
) -> None:
    victim = _customer(core, server, clock, "freeze@example.jp", takeover=True)
    assert victim.new_phone is not None
    goods = replace(core.config.risk.high_risk_goods, action=Verdict.FREEZE)
    core.config = replace(core.config, risk=replace(core.config.risk, high_risk_goods=goods))
    fund_wallet(terminal, victim.own_phone, 10_000)
    clock.advance(DAY)
    refused = _pay(terminal, victim.new_phone, goods.above_yen + 1, ["tobacco"])
    assert refused["code"] == "risk_declined"
    with core.transaction() as session:
        assert session.get(Account, victim.account_id).status == "frozen"  # type: ignore[union-attr]
        frozen = session.scalars(select(AuditEvent).where(AuditEvent.action == "account.frozen")).one()
        assert frozen.actor == "risk" and json.loads(frozen.detail)["rules"] == ["high_risk_goods"]
    clock.advance(61)
    assert _pay(terminal, victim.own_phone, 100)["code"] == "account_frozen"  # every phone, until an operator looks


@pytest.mark.parametrize("categories", [["Tobacco"], ["x" * 41], ["ok"] * 21, "tobacco"])
def test_malformed_categories_are_refused_and_nothing_moves(
    terminal: SignedCaller, minter: CodeMinter, funded: int, categories: object
) -> None:
    response = terminal.call(
        "POST",
        "/v1/payments",
        {"order_id": "bad-categories", "amount": 100, "code": minter.mint().numeric, "categories": categories},
    )
    assert response.status_code == 422 and error_code(response) == "parameter_invalid"


def test_possim_admin_explain_prints_the_rules_and_their_inputs(
    core: Core,
    server: ServerThread,
    terminal: SignedCaller,
    clock: ManualClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    victim = _customer(core, server, clock, "explain@example.jp", takeover=True)
    assert victim.new_phone is not None
    fund_wallet(terminal, victim.new_phone, 10_000)
    clock.advance(60)
    refused = _pay(terminal, victim.new_phone, 9_000, ["tobacco"])
    assert refused["code"] == "risk_declined"
    key_file = tmp_path / "server.key"
    key_file.write_text(core.config.server_key.hex())
    key_file.chmod(0o600)
    store = ["--db", core.config.db_url, "--key-file", str(key_file)]
    store += ["--db-schema", core.config.db_schema] if core.config.db_schema else []
    capsys.readouterr()
    assert main(["admin", *store, "explain", refused["payment_id"]]) == 0
    text = capsys.readouterr().out
    assert f"{refused['payment_id']}: payment of 9,000 yen at Shibuya 1-chome" in text
    assert "declined (risk_declined)" in text and "risk: decline" in text
    assert "topup_then_spend asked to decline: 9,000 yen spent of 10,000 yen topped up" in text
    assert "high_risk_goods asked to decline: tobacco for 9,000 yen" in text
    assert "topped_up_yen: 10000" in text
    assert main(["admin", *store, "explain", refused["payment_id"], "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert [finding["rule"] for finding in explained["decisions"][0]["findings"]] == [
        "topup_then_spend",
        "high_risk_goods",
    ]
    assert main(["admin", *store, "explain", "pay_nothing"]) == 1
    assert capsys.readouterr().err.strip() == "possim admin: no payment or top-up 'pay_nothing'"
