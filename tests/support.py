"""Helpers for tests: a raw signed HTTP caller (so tests can bend any header) and wallet set-up."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from payment_core import otp, outbox
from payment_core.core import Core
from payment_core.ledger import audit_books, balance_of, book_by_name, wallet_book_name
from payment_core.models import Account
from protocol import Clock, ManualClock, sign_request
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

PASSWORD = "correct horse battery staple"
PHONE = "+819012345678"
TOTP_STEP_SECONDS = 30


class SignedCaller:
    """Signs like a terminal, but lets a test override the timestamp, nonce, signature or body."""

    def __init__(self, base_url: str, key_id: str, secret: bytes, clock: Clock) -> None:
        self.key_id = key_id
        self.secret = secret
        self.clock = clock
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def __enter__(self) -> SignedCaller:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        nonce: str | None = None,
        secret: bytes | None = None,
        sign_body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = json.dumps(body).encode() if body is not None else b""
        signed = sign_request(
            secret or self.secret,
            self.key_id,
            method,
            path,
            content if sign_body is None else sign_body,
            self.clock(),
            nonce=nonce or secrets.token_hex(16),
        )
        merged = signed.as_dict() | {"content-type": "application/json"} | (headers or {})
        return self.http.request(method, path, content=content, headers=merged)

    def pay(self, order_id: str, amount: int, code: str) -> httpx.Response:
        return self.call("POST", "/v1/payments", {"order_id": order_id, "amount": amount, "code": code})


def mailbox(core: Core, address: str) -> list[str]:
    """The bodies of the mails sent to ``address``, newest first: the simulated user's inbox.

    Sign-up and reset mails are sent after the answer (``Core.defer``): this waits for that work first."""
    core.drain()
    return [message.body for message in outbox.messages(core, to=address)]


def mailed_reset_token(core: Core, address: str) -> str:
    """The reset code of the newest password-reset mail."""
    for body in mailbox(core, address):
        found = re.search(r"Reset code: (\S+)", body)
        if found:
            return found.group(1)
    raise AssertionError(f"no reset mail for {address}")


def mailed_code(core: Core, address: str) -> str:
    """The six-digit code of the newest verification mail, read as the user would read it."""
    for body in mailbox(core, address):
        found = re.search(r"verification code is (\d{6})", body)
        if found:
            return found.group(1)
    raise AssertionError(f"no verification mail for {address}")


def totp_now(totp_secret: str, clock: Clock) -> str:
    """What the user's authenticator app shows now."""
    return pyotp.TOTP(totp_secret).at(clock())


def fresh_otp(core: Core, clock: ManualClock, account_id: int) -> str:
    """Move to the next 30 s step (a code is accepted once per step) and read the account's authenticator.

    The test derives the secret the way the core does (it holds the server key); the user would have it
    from sign-up."""
    clock.advance(TOTP_STEP_SECONDS)
    with core.transaction() as session:
        account = session.scalars(select(Account).where(Account.id == account_id)).one()
    return totp_now(otp.account_totp_secret(core, account), clock)


def sign_up_verified(client: WalletClient, core: Core, email: str) -> dict[str, Any]:
    """Sign up with a phone and verify the address with the mailed code; the verification's answer (the
    TOTP key and the recovery codes)."""
    client.sign_up(email, PHONE, PASSWORD)
    return client.verify_email(email, mailed_code(core, email))


def enroll_wallet(base_url: str, clock: Clock, email: str, core: Core, device_name: str = "test phone") -> WalletState:
    """The whole sign-up: account, verified e-mail, then this device with the password and a TOTP code."""
    with WalletClient(base_url, clock=clock) as client:
        made = sign_up_verified(client, core, email)
        code = totp_now(str(made["totp_secret"]), clock)
        return client.enroll(email, PASSWORD, code, device_name, wallet_name="Hanako's wallet")


def fund_wallet(terminal: SignedCaller, minter: CodeMinter, amount: int) -> dict[str, Any]:
    code = minter.mint()
    body = {"topup_id": f"cash-{secrets.token_hex(6)}", "amount": amount, "code": code.numeric}
    response = terminal.call("POST", "/v1/topups/cash", body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def balance(core: Core, wallet: WalletState) -> int:
    with core.transaction() as session:
        return balance_of(session, book_by_name(session, wallet_book_name(wallet.account_id)).id)


def assert_books_balance(core: Core) -> None:
    with core.transaction() as session:
        report = audit_books(session)
    assert report.balanced, report.problems
