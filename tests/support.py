"""Helpers for tests: a raw signed HTTP caller (so tests can bend any header), and wallet set-up in the
tests' words (Hanako's password and phone) over the steps of ``possim.world``."""

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
from possim import world
from possim.commands.outbox import mailed_code as mailed_code  # the verification code, read from the outbox
from protocol import Clock, ManualClock, sign_request
from terminal.client import PaymentClient
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

PASSWORD = "correct horse battery staple"
PHONE = "+819012345678"
TOTP_STEP_SECONDS = 30


class SignedCaller:
    """Signs like a terminal, but lets a test override the timestamp, nonce, signature or body."""

    def __init__(self, base_url: str, key_id: str, secret: bytes, clock: Clock) -> None:
        self.base_url = base_url
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

    Sign-up and reset mails are sent after the answer (``payment_core.queued_work``): this does that work first."""
    core.drain()
    return [message.body for message in outbox.messages(core, to=address)]


def mailed_reset_token(core: Core, address: str) -> str:
    """The reset code of the newest password-reset mail."""
    for body in mailbox(core, address):
        found = re.search(r"Reset code: (\S+)", body)
        if found:
            return found.group(1)
    raise AssertionError(f"no reset mail for {address}")


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


def customer(email: str) -> world.Customer:
    """A test customer: ``email`` with the tests' password and phone number."""
    return world.Customer(email, PASSWORD, PHONE)


def sign_up_verified(client: WalletClient, core: Core, email: str) -> dict[str, Any]:
    """Sign up with a phone and verify the address with the mailed code; the verification's answer (the
    TOTP key and the recovery codes)."""
    return world.sign_up_verified(client, core, customer(email)).answer


def enroll_wallet(base_url: str, clock: Clock, email: str, core: Core, device_name: str = "test phone") -> WalletState:
    """The whole sign-up: account, verified e-mail, then this device with the password and a TOTP code."""
    made = world.enroll_customer(
        core, base_url, customer(email), device_name=device_name, wallet_name="Hanako's wallet", clock=clock
    )
    return made.wallet


def fund_wallet(terminal: SignedCaller, minter: CodeMinter, amount: int) -> dict[str, Any]:
    """Cash at ``terminal``'s register for the wallet behind ``minter``: the core's answer to the top-up."""
    with PaymentClient(terminal.base_url, terminal.key_id, terminal.secret, clock=terminal.clock) as register:
        (topped,) = world.fund(register, minter, amount, prefix="cash")
    return topped.data or {}


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def balance(core: Core, wallet: WalletState) -> int:
    with core.transaction() as session:
        return balance_of(session, book_by_name(session, wallet_book_name(wallet.account_id)).id)


def assert_books_balance(core: Core) -> None:
    with core.transaction() as session:
        report = audit_books(session)
    assert report.balanced, report.problems
