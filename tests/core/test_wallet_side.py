"""The wallet's side of the core: device-signed requests, card top-ups, the local secret file, minting."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from payment_core.core import Core
from protocol import ManualClock, ProtocolError, parse_code
from tests.support import PASSWORD, PHONE, SignedCaller, fresh_otp, mailbox, sign_up_verified, totp_now
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter, CodesExhausted
from wallet_app.state import WalletState, WalletStateError, load_state, save_state


def test_card_topups_need_the_device_signature_and_test_cards(
    core: Core, server: object, wallet: WalletState, clock: ManualClock
) -> None:
    def otp() -> str:
        return fresh_otp(core, clock, wallet.account_id)

    with WalletClient(wallet.core_url, clock=clock) as client:
        made = client.topup_card(wallet, 3_000, "4242 4242 4242 4242", otp(), topup_id="card-1")
        assert (made["status"], made["balance_after"]) == ("succeeded", 3_000)
        # The same top-up again replays the stored one: no second code is used, no money moves.
        assert client.topup_card(wallet, 3_000, "4242424242424242", "000000", topup_id="card-1")["id"] == made["id"]
        with pytest.raises(ProtocolError) as declined:
            client.topup_card(wallet, 1_000, "4000000000000002", otp(), topup_id="card-2")
        assert (declined.value.code, declined.value.status) == ("card_declined", 402)
        with pytest.raises(ProtocolError) as too_big:
            client.topup_card(wallet, 100_001, "4242424242424242", otp())
        assert too_big.value.code == "limit_exceeded"
        with pytest.raises(ProtocolError) as conflict:
            client.topup_card(wallet, 2_000, "4242424242424242", otp(), topup_id="card-1")
        assert conflict.value.code == "idempotency_conflict"
        assert client.balance(wallet) == 3_000
        impostor = WalletState(wallet.core_url, wallet.email, wallet.account_id, wallet.device_id, b"\x07" * 32)
        with pytest.raises(ProtocolError) as forged:
            client.balance(impostor)
        assert (forged.value.code, forged.value.status) == ("signature_invalid", 401)


def test_enrollment_needs_the_right_password_and_says_nothing_more(
    core: Core, server: object, clock: ManualClock
) -> None:
    url = f"{server.url}"  # type: ignore[attr-defined]
    with WalletClient(url, clock=clock) as client:
        made = sign_up_verified(client, core, "ken@example.jp")
        code = totp_now(made["totp_secret"], clock)
        with pytest.raises(ProtocolError) as wrong:
            client.enroll("ken@example.jp", PASSWORD + "!", code, "phone")
        with pytest.raises(ProtocolError) as unknown:
            client.enroll("nobody@example.jp", PASSWORD, code, "phone")
        assert (wrong.value.code, wrong.value.message) == (unknown.value.code, unknown.value.message)
        with pytest.raises(ProtocolError) as short:
            client.sign_up("ken2@example.jp", PHONE, "short")
        assert short.value.code == "parameter_invalid"
        fresh = client.sign_up("ken3@example.jp", PHONE, PASSWORD)
        twice = client.sign_up("KEN@example.jp", PHONE, PASSWORD)
        assert twice == fresh  # the same answer: sign-up does not tell that ken@ has an account
        assert "Someone tried to open a possim wallet with this address" in mailbox(core, "ken@example.jp")[0]


def test_wallet_file_is_private_and_round_trips(tmp_path: Path, wallet: WalletState) -> None:
    path = tmp_path / "wallet" / "device.json"
    save_state(wallet, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_state(path) == wallet
    assert load_state(path).secret == wallet.secret
    os.chmod(path, 0o644)
    with pytest.raises(WalletStateError, match="readable by others"):
        load_state(path)
    with pytest.raises(WalletStateError, match="enroll this device first"):
        load_state(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    os.chmod(broken, 0o600)
    with pytest.raises(WalletStateError, match="cannot read"):
        load_state(broken)


def test_minter_makes_ten_distinct_codes_a_second_offline() -> None:
    """600 distinct codes in a minute, with no network: the minter needs only the secret and a clock."""
    clock = ManualClock()
    minter = CodeMinter(4_321, b"s" * 32, clock)
    seen = set()
    for _second in range(60):
        for _ in range(10):
            code = minter.mint()
            assert parse_code(code.numeric).device_id == 4_321
            seen.add(code.numeric)
        with pytest.raises(CodesExhausted):
            minter.mint()
        clock.advance(1)
    assert len(seen) == 600


def test_no_secret_reaches_the_logs(
    caplog: pytest.LogCaptureFixture, terminal: SignedCaller, wallet: WalletState, minter: CodeMinter, funded: int
) -> None:
    caplog.set_level(logging.DEBUG)
    code = minter.mint()
    terminal.pay("logged-1", 100, code.qr)
    terminal.call("POST", "/v1/payments", {"order_id": "logged-2", "amount": 1, "code": "garbage"})
    text = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (wallet.secret, terminal.secret):
        assert secret.hex() not in text
    assert PASSWORD not in text
    assert code.qr[20:39] not in text  # the code's MAC
