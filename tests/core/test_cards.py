"""Linking cards, and card testing made hopeless (PayPay, December 2018: leaked card numbers registered to
new wallets, security codes guessed until one fit). Over a real server, on both stores; the clock is moved,
never slept on."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from payment_core.cards import issuer_code, luhn_ok, with_check_digit
from payment_core.config import Defences
from payment_core.core import Core
from payment_core.models import AuditEvent, LinkedCard
from payment_core.server import ServerThread
from protocol import ErrorCode, ManualClock, ProtocolError
from tests.support import balance, enroll_wallet, fresh_otp
from wallet_app.client import WalletClient
from wallet_app.state import WalletState

OWN_CARD = with_check_digit("411111111111111")


def card(n: int) -> str:
    return with_check_digit(f"5{n:014d}")


def wrong(number: str) -> str:
    return f"{(int(issuer_code(number)) + 1) % 1000:03d}"


def link(core: Core, clock: ManualClock, client: WalletClient, state: WalletState, number: str, code: str) -> str:
    """ "linked", or the error code the core answered."""
    try:
        client.link_card(state, number, code, fresh_otp(core, clock, state.account_id))
    except ProtocolError as error:
        return error.code.value
    return "linked"


def audited(core: Core, action: str) -> list[AuditEvent]:
    with core.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def linked_count(core: Core) -> int:
    with core.read() as session:
        return int(session.execute(select(func.count()).select_from(LinkedCard)).scalar_one())


def test_the_owner_links_a_card_and_tops_up_from_it(
    core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    assert luhn_ok(OWN_CARD) and not luhn_ok(OWN_CARD[:-1] + str((int(OWN_CARD[-1]) + 1) % 10))
    with WalletClient(server.url, clock=clock) as client:
        answer = client.link_card(wallet, OWN_CARD, issuer_code(OWN_CARD), fresh_otp(core, clock, wallet.account_id))
        assert answer["object"] == "card" and answer["last4"] == OWN_CARD[-4:]
        topped = client.topup_card(wallet, 5_000, OWN_CARD, fresh_otp(core, clock, wallet.account_id))
        assert topped["status"] == "succeeded" and balance(core, wallet) == 5_000
        with pytest.raises(ProtocolError) as unlinked:  # a card number that was never linked
            client.topup_card(wallet, 5_000, card(1), fresh_otp(core, clock, wallet.account_id))
        assert unlinked.value.code is ErrorCode.CARD_DECLINED
        with pytest.raises(ProtocolError) as no_factor:
            client.link_card(wallet, card(2), issuer_code(card(2)), None)
        assert no_factor.value.code is ErrorCode.CREDENTIALS_INVALID
        with pytest.raises(ProtocolError) as not_a_card:
            client.link_card(wallet, "4111111111111112", "123", fresh_otp(core, clock, wallet.account_id))
        assert not_a_card.value.code is ErrorCode.CARD_DECLINED
    [event] = [e for e in audited(core, "card.link") if e.result == "succeeded"]
    assert OWN_CARD not in (event.detail or "") and OWN_CARD[-4:] in (event.detail or "")  # only the last four


def test_guessing_a_cards_code_stops_after_three_and_a_lucky_guess_links_nothing(
    core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    target = card(7)
    with WalletClient(server.url, clock=clock) as client:
        tries = [link(core, clock, client, wallet, target, wrong(target)) for _ in range(3)]
        assert tries == ["card_declined"] * 3
        # the fourth try is refused before the code is compared, even the right code
        assert link(core, clock, client, wallet, target, issuer_code(target)) == "rate_limited"
        [seen] = audited(core, "card.testing")
        assert seen.result == "blocked" and target[-4:] in (seen.detail or "")
        # a day later the card may be tried again; the right code now meets the issuer's check: the holder
        # did not start it, and refuses
        clock.advance(core.config.limits.card_code_window_seconds + 60)
        assert link(core, clock, client, wallet, target, issuer_code(target)) == "risk_declined"
        with pytest.raises(ProtocolError) as unlinked:
            client.topup_card(wallet, 5_000, target, fresh_otp(core, clock, wallet.account_id))
        assert unlinked.value.code is ErrorCode.CARD_DECLINED
        # a guess that fits within the three is refused the same way
        other = card(8)
        assert link(core, clock, client, wallet, other, wrong(other)) == "card_declined"
        assert link(core, clock, client, wallet, other, issuer_code(other)) == "risk_declined"
    assert linked_count(core) == 0
    assert [e.result for e in audited(core, "card.link")][-1] == "refused_by_issuer"


def test_one_phone_or_one_address_tests_only_a_few_codes_in_all(
    core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    limits = core.config.limits
    with WalletClient(server.url, clock=clock) as client:
        spread = [
            link(core, clock, client, wallet, card(n), wrong(card(n)))
            for n in range(limits.card_code_failures_per_device)
        ]
        assert spread == ["card_declined"] * limits.card_code_failures_per_device
        assert link(core, clock, client, wallet, card(99), issuer_code(card(99))) == "rate_limited"  # the phone
        other = enroll_wallet(server.url, clock, "jiro@example.jp", core, device_name="jiro's phone")
        rest = limits.card_code_failures_per_address - limits.card_code_failures_per_device
        again = [link(core, clock, client, other, card(200 + n), wrong(card(200 + n))) for n in range(rest)]
        assert again == ["card_declined"] * rest
        assert link(core, clock, client, other, card(300), issuer_code(card(300))) == "rate_limited"  # the address
    assert [e.detail for e in audited(core, "card.link") if e.result == "throttled"][-1].count('"address"') == 1


def test_with_7pays_defences_a_code_falls_to_guessing(
    core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    core.config = replace(
        core.config,
        limits=replace(
            core.config.limits,
            card_code_failures_per_card=0,
            card_code_failures_per_device=0,
            card_code_failures_per_address=0,
        ),
        defences=Defences(
            second_factor_for_new_phones=False, code_for_owner_topups=False, issuer_check_after_wrong_codes=False
        ),
    )
    target, right = card(42), issuer_code(card(42))
    with WalletClient(server.url, clock=clock) as client:
        guesses = 0
        for guess in (f"{n:03d}" for n in range(1000)):
            guesses += 1
            try:
                client.link_card(wallet, target, guess, None)
            except ProtocolError as error:
                assert error.code is ErrorCode.CARD_DECLINED
                continue
            break
        assert guesses == int(right) + 1
        assert client.topup_card(wallet, 50_000, target, "")["status"] == "succeeded"
    assert linked_count(core) == 1
