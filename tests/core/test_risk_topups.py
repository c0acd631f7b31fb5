"""The risk rules on top-ups: cash at one register into many different wallets (a till crediting cash it
never took) and too many top-ups into one account. A cash top-up a rule steps up is declined with a
message sending the customer to the app (card or bank, with the authenticator's code), where the same
top-up passes; the findings are kept beside the top-up and named in its audit event. Real server, both
stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from payment_core.core import Core
from payment_core.models import Account, AuditEvent, Topup
from payment_core.risk import explain, load_settings
from payment_core.risk.topup_check import DECLINED_MESSAGE, STEP_UP_MESSAGE
from possim.world import add_terminal, new_core, serve
from protocol import ManualClock, ProtocolError
from tests.conftest import Database
from tests.support import SignedCaller, balance, enroll_wallet, fresh_otp
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

CARD = "4242424242424242"


def _cash(terminal: SignedCaller, topup_id: str, minter: CodeMinter, amount: int = 1_000) -> dict[str, Any]:
    response = terminal.call(
        "POST", "/v1/topups/cash", {"topup_id": topup_id, "amount": amount, "code": minter.mint().numeric}
    )
    data = response.json()
    return {**(data.get("error") or data), "http": response.status_code}


def _topup_id(core: Core, source: str, key: str) -> str:
    with core.transaction() as session:
        return session.scalars(select(Topup.id).where(Topup.source == source, Topup.topup_key == key)).one()


def _decision(core: Core, topup_id: str) -> dict[str, Any]:
    with core.transaction() as session:
        (decision,) = explain(session, topup_id)
        event = session.scalars(select(AuditEvent).where(AuditEvent.target == topup_id)).one()
    return {**decision, "audit": json.loads(event.detail)}


def _wallets(core: Core, url: str, clock: ManualClock, count: int) -> list[tuple[WalletState, CodeMinter]]:
    made = [enroll_wallet(url, clock, f"shopper{n}@example.jp", core, device_name=f"phone {n}") for n in range(count)]
    return [(state, CodeMinter(state.device_id, state.secret, clock)) for state in made]


def test_cash_into_many_wallets_at_one_register_is_stepped_up(
    core: Core, server: Any, terminal: SignedCaller, second_terminal: SignedCaller, clock: ManualClock
) -> None:
    rule = core.config.risk.cash_topup_spread
    wallets = _wallets(core, server.url, clock, rule.accounts + 1)
    for n, (_, minter) in enumerate(wallets[: rule.accounts - 1]):  # a busy hour's worth, and then some
        assert _cash(terminal, f"till-{n}", minter)["http"] == 200
        clock.advance(60)
    state, minter = wallets[rule.accounts - 1]
    stopped = _cash(terminal, "till-last", minter)
    assert (stopped["http"], stopped["code"]) == (402, "risk_declined")
    assert stopped["message"] == STEP_UP_MESSAGE and "app" in stopped["message"]
    assert balance(core, state) == 0  # nothing credited

    decision = _decision(core, _topup_id(core, terminal.key_id, "till-last"))
    assert decision["kind"] == "topup" and decision["verdict"] == "step_up"
    (finding,) = decision["findings"]
    assert finding["rule"] == "cash_topup_spread" and finding["inputs"]["accounts"] == rule.accounts
    assert decision["audit"]["rules"] == ["cash_topup_spread"] and decision["audit"]["risk"] == "step_up"

    assert _cash(second_terminal, "other-till", minter)["http"] == 200  # another register is not this one
    with WalletClient(server.url, clock=clock) as phone:  # the customer tops up from the app: passes
        made = phone.topup_card(state, 1_000, CARD, fresh_otp(core, clock, state.account_id))
    assert made["status"] == "succeeded"
    clock.advance(rule.within_minutes * 60)
    last_state, last_minter = wallets[rule.accounts]
    assert _cash(terminal, "till-later", last_minter)["http"] == 200  # the window has passed
    assert balance(core, last_state) == 1_000


def test_many_top_ups_into_one_account_send_cash_to_the_app(
    core: Core, server: Any, terminal: SignedCaller, wallet: WalletState, minter: CodeMinter, clock: ManualClock
) -> None:
    rule = core.config.risk.topup_velocity
    for n in range(rule.account_per_hour):
        assert _cash(terminal, f"again-{n}", minter)["http"] == 200
        clock.advance(60)
    stopped = _cash(terminal, "again-more", minter)
    assert (stopped["http"], stopped["code"], stopped["message"]) == (402, "risk_declined", STEP_UP_MESSAGE)
    decision = _decision(core, _topup_id(core, terminal.key_id, "again-more"))
    assert decision["findings"][0]["rule"] == "topup_velocity"
    assert decision["findings"][0]["inputs"]["account_per_hour"] == {
        "seen": rule.account_per_hour + 1,
        "limit": rule.account_per_hour,
    }

    with WalletClient(server.url, clock=clock) as phone:  # the owner's own top-up, with the authenticator
        made = phone.topup_card(wallet, 2_000, CARD, fresh_otp(core, clock, wallet.account_id), topup_id="own")
    assert made["status"] == "succeeded"
    kept = _decision(core, made["id"])
    assert kept["verdict"] == "step_up" and kept["audit"]["rules"] == ["topup_velocity"]  # passed, and kept
    assert balance(core, wallet) == rule.account_per_hour * 1_000 + 2_000

    clock.advance(3600)
    assert _cash(terminal, "next-hour", minter)["http"] == 200  # an hour on, cash again


@pytest.fixture
def strict_core(database: Database, clock: ManualClock, tmp_path: Path) -> Iterator[Core]:
    """A core whose operator file makes top-up velocity freeze the account, after 2 top-ups an hour."""
    path = tmp_path / "strict.toml"
    path.write_text('[topup_velocity]\naction = "freeze"\naccount_per_hour = 2\n', encoding="utf-8")
    core = new_core(database.url, db_schema=database.schema, clock=clock, risk=load_settings(path))
    yield core
    core.close()


def test_an_operator_may_make_top_up_velocity_freeze(strict_core: Core, clock: ManualClock) -> None:
    with serve(strict_core) as server:
        made = add_terminal(strict_core, "Ueno", "register-1", "test")
        state = enroll_wallet(server.url, clock, "quick@example.jp", strict_core)
        minter = CodeMinter(state.device_id, state.secret, clock)
        with SignedCaller(server.url, made.id, made.secret, clock) as terminal:
            assert _cash(terminal, "one", minter)["http"] == 200
            with WalletClient(server.url, clock=clock) as phone:
                assert phone.topup_card(state, 1_000, CARD, fresh_otp(strict_core, clock, state.account_id))
                with pytest.raises(ProtocolError) as third:  # from the app too: a freeze is no step-up
                    phone.topup_card(state, 1_000, CARD, fresh_otp(strict_core, clock, state.account_id), "third")
    assert (third.value.status, third.value.code) == (402, "risk_declined")
    assert third.value.message == DECLINED_MESSAGE
    with strict_core.transaction() as session:
        assert session.get_one(Account, state.account_id).status == "frozen"
    assert balance(strict_core, state) == 2_000


def test_top_ups_too_fast_for_one_account_or_one_register_send_cash_to_the_app(
    core: Core, server: Any, terminal: SignedCaller, minter: CodeMinter, clock: ManualClock
) -> None:
    rule = core.config.risk.topup_velocity
    answers = [_cash(terminal, f"burst-{n}", minter) for n in range(rule.account_per_minute + 1)]
    assert [answer["http"] for answer in answers] == [200] * rule.account_per_minute + [402]
    decision = _decision(core, _topup_id(core, terminal.key_id, f"burst-{rule.account_per_minute}"))
    assert decision["findings"][0]["inputs"]["account_per_minute"]["seen"] == rule.account_per_minute + 1
    clock.advance(3600)
    wallets = _wallets(core, server.url, clock, rule.terminal_per_minute + 1 - rule.account_per_minute)
    clock.advance(120)  # a minute on: only what this register takes from now counts per minute
    spread = [_cash(terminal, f"till-{n}", phone) for n, (_state, phone) in enumerate(wallets)]
    spread += [_cash(terminal, f"till-own-{n}", minter) for n in range(rule.account_per_minute)]
    assert [answer["http"] for answer in spread[:-1]] == [200] * (len(spread) - 1)
    assert spread[-1]["http"] == 402 and spread[-1]["code"] == "risk_declined"
    (finding,) = _decision(core, _topup_id(core, terminal.key_id, f"till-own-{rule.account_per_minute - 1}"))[
        "findings"
    ]
    assert finding["inputs"]["terminal_per_minute"] == {
        "seen": rule.terminal_per_minute + 1,
        "limit": rule.terminal_per_minute,
    }
    assert "at this register in a minute" in finding["reason"]
