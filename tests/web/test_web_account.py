"""The web wallet's account flows in Chromium: sign-up, sign-in, pay and approve, reset, throttling."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pyotp
from playwright.sync_api import Page, expect

from payment_core import devices
from payment_core.models import Device
from protocol import parse_code
from tests.support import PASSWORD, mailed_code, mailed_reset_token
from tests.web.conftest import STORE, Stack
from tests.web.pages import decode, next_code, read_code_area, shown_digits

# ---- one customer, end to end ------------------------------------------------------------------------


RECOVERY_CODE = re.compile(r"^[a-z0-9]{5}-[a-z0-9]{5}$")
DEVICE_KEYS = {"device_id", "key_id", "device_secret", "account_id", "email", "core", "enrolled_at"}


def sign_up(stack: Stack, email: str) -> dict[str, Any]:
    """Sign up through the API, read the verification mail from the outbox, verify; returns the kit
    (``totp_secret``, ``totp_uri``, ``recovery_codes``)."""
    with httpx.Client(base_url=stack.core_server.url, timeout=10) as client:
        made = client.post(
            "/v1/accounts",
            json={"email": email, "phone": "09012345678", "password": PASSWORD, "display_name": "Hanako"},
        )
        assert made.status_code == 202, made.text
        verified = client.post("/v1/accounts/verify", json={"email": email, "code": mailed_code(stack.core, email)})
        assert verified.status_code == 200, verified.text
    kit: dict[str, Any] = verified.json()
    return kit


def stored_wallet(page: Page) -> dict[str, Any]:
    """What the page keeps in localStorage: the device, never a session token."""
    stored: dict[str, Any] = json.loads(page.evaluate("localStorage.getItem('possim.wallet')"))
    assert set(stored) == DEVICE_KEYS, stored
    assert page.evaluate("[localStorage.length, sessionStorage.length]") == [1, 0]
    return stored


def sign_in(page: Page, email: str, password: str, second_factor: str) -> None:
    page.fill("#signin-email", email)
    page.fill("#signin-password", password)
    page.fill("#signin-otp", second_factor)
    page.click("#signin-submit")


def pay(stack: Stack, order_id: str, amount: int, code: str) -> dict[str, Any]:
    response = stack.terminal.pay(order_id, amount, code)
    assert response.status_code in (200, 202), response.text
    data: dict[str, Any] = response.json()
    return data


def test_customer_signs_in_pays_and_approves_on_the_phone(page: Page, stack: Stack) -> None:
    email = "hanako@example.jp"
    totp = pyotp.TOTP(sign_up(stack, email)["totp_secret"])
    page.goto(stack.web.url)
    page.fill("#signin-device", "Hanako's browser")
    sign_in(page, email, PASSWORD, totp.now())
    expect(page.locator("#pay-screen")).to_be_visible()
    stored = stored_wallet(page)
    assert stored["key_id"] == f"dev_{stored['device_id']}" and stored["email"] == email

    # The first code, read off the screen, tops the wallet up with cash at the register.
    qr, numeric = read_code_area(page)
    assert numeric == shown_digits(page)
    assert parse_code(qr).device_id == parse_code(numeric).device_id == stored["device_id"]
    topup = stack.terminal.call("POST", "/v1/topups/cash", {"topup_id": "cash-1", "amount": 30_000, "code": numeric})
    assert topup.status_code == 200 and topup.json()["status"] == "succeeded", topup.text

    # A fresh code (tap) pays by QR.
    next_code(page, numeric)
    qr, numeric = read_code_area(page)
    paid = pay(stack, "web-1", 1_200, qr)
    assert paid["status"] == "succeeded" and paid["balance_after"] == 28_800, paid

    # The Wallet tab shows the balance and the history.
    page.click("#tab-wallet")
    expect(page.locator("#balance")).to_have_text("¥28,800")
    expect(page.locator("#history li")).to_have_count(2)
    expect(page.locator("#history li").first).to_contain_text("Payment")
    expect(page.locator("#history li").first).to_contain_text("1,200")
    expect(page.locator("#offline-badge")).to_be_hidden()

    # Above 10,000 yen the register waits; the phone asks, the customer approves.
    page.click("#tab-pay")
    next_code(page, numeric)
    qr, _ = read_code_area(page)
    waiting = pay(stack, "web-2", 12_000, qr)
    assert waiting["status"] == "awaiting_customer", waiting
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()  # the page polls every 3 s
    expect(page.locator("#confirm-amount")).to_have_text("¥12,000")
    expect(page.locator("#confirm-store")).to_contain_text(STORE)
    page.click("#confirm-approve")
    expect(dialog).to_be_hidden()
    order = stack.terminal.call("GET", "/v1/orders/web-2")
    assert order.status_code == 200 and order.json()["status"] == "succeeded", order.text
    page.click("#tab-wallet")
    expect(page.locator("#balance")).to_have_text("¥16,800")

    # Signing out revokes this browser's device at the core and forgets its secret.
    page.click("#sign-out")
    expect(page.locator("#signin-screen")).to_be_visible()
    assert page.evaluate("localStorage.getItem('possim.wallet')") is None
    with stack.core.transaction() as session:
        device = session.get(Device, stored["device_id"])
        assert device is not None and device.status == "revoked"


def test_sign_up_on_the_page_then_sign_in(page: Page, stack: Stack) -> None:
    email = "taro@example.jp"
    page.goto(stack.web.url)
    page.click("#to-signup")
    page.fill("#signup-email", email)
    page.fill("#signup-phone", "+819012345678")
    page.fill("#signup-name", "Taro")
    page.fill("#signup-password", PASSWORD)
    page.click("#signup-submit")

    # Check your e-mail: the code from the outbox (a wrong one first), then the second factor, shown once.
    expect(page.locator("#signup-check")).to_be_visible()
    expect(page.locator("#signup-form")).to_be_hidden()
    expect(page.locator("#signup-check-message")).to_have_text(re.compile(r"^Check your e-mail"))
    code = mailed_code(stack.core, email)
    page.fill("#verify-code", "000000" if code != "000000" else "111111")
    page.click("#verify-submit")
    expect(page.locator("#verify-error")).to_contain_text("wrong or has expired")
    page.fill("#verify-code", code)
    page.click("#verify-submit")
    expect(page.locator("#signup-done")).to_be_visible()
    expect(page.locator("#signup-check")).to_be_hidden()
    expect(page.locator("#signup-back")).to_be_hidden()  # no way off the page but "I have saved them"
    expect(page.locator("#signup-done")).to_contain_text("shown only once")
    secret = (page.locator("#totp-secret").text_content() or "").replace(" ", "")
    totp_qr = decode(page.locator("#totp-qr").screenshot())["qr"]  # what the authenticator app scans
    assert len(totp_qr) == 1 and totp_qr[0].startswith("otpauth://totp/"), totp_qr
    assert f"secret={secret}" in totp_qr[0]
    recovery_codes = page.locator("#recovery-codes li").all_text_contents()
    assert len(set(recovery_codes)) == 10 and all(RECOVERY_CODE.match(c) for c in recovery_codes), recovery_codes
    page.click("#signup-continue")

    # Sign in: a wrong code, then the authenticator's.
    expect(page.locator("#signin-screen")).to_be_visible()
    expect(page.locator("#signin-note")).to_contain_text("E-mail verified")
    expect(page.locator("#signin-email")).to_have_value(email)
    # The kit is gone from the page.
    assert page.locator("#recovery-codes li").count() == 0 and not page.locator("#totp-secret").text_content()
    assert page.evaluate("document.getElementById('totp-qr').width") == 0
    totp = pyotp.TOTP(secret)
    sign_in(page, email, PASSWORD, "000000" if totp.now() != "000000" else "111111")
    expect(page.locator("#signin-error")).to_contain_text("wrong")
    sign_in(page, email, PASSWORD, totp.now())
    expect(page.locator("#pay-screen")).to_be_visible()
    expect(page.locator("#wallet-name")).to_have_text("Taro")
    stored = stored_wallet(page)

    # Signed out elsewhere (the device revoked): the next poll finds out, and the page forgets the secret.
    devices.revoke_device(stack.core, int(stored["device_id"]), "test")
    expect(page.locator("#signin-screen")).to_be_visible()
    expect(page.locator("#signin-error")).to_contain_text("revoked")
    assert page.evaluate("localStorage.getItem('possim.wallet')") is None

    # A recovery code read off the sign-up page signs in (once: the same code again is refused).
    sign_in(page, email, PASSWORD, recovery_codes[3])
    expect(page.locator("#pay-screen")).to_be_visible()
    page.click("#tab-wallet")
    page.click("#sign-out")
    expect(page.locator("#signin-note")).to_have_text("Signed out.")
    sign_in(page, email, PASSWORD, recovery_codes[3])
    expect(page.locator("#signin-error")).to_contain_text("A recovery code works only once")


def test_forgot_password_on_the_page_then_sign_in_with_the_new_one(page: Page, stack: Stack) -> None:
    email = "jiro@example.jp"
    kit = sign_up(stack, email)
    new_password = "jiro's new long passphrase"
    # Another phone is signed in (with a recovery code: the authenticator's code is kept for the end).
    with httpx.Client(base_url=stack.core_server.url, timeout=10) as client:
        body = {"email": email, "password": PASSWORD, "otp": kit["recovery_codes"][0], "device_name": "old phone"}
        other = client.post("/v1/devices", json=body)
        assert other.status_code == 201, other.text

    page.goto(stack.web.url)
    page.fill("#signin-email", email)
    page.click("#to-reset")
    expect(page.locator("#reset-email")).to_have_value(email)
    expect(page.locator("#reset-confirm-form")).to_be_hidden()  # first the code, then the new password

    # The core's answer, shown as it is, is the same for an address without an account.
    page.fill("#reset-email", "nobody@example.jp")
    with page.expect_response("**/v1/password-reset") as unknown:
        page.click("#reset-request-submit")
    assert unknown.value.status == 202
    expect(page.locator("#reset-request-note")).to_contain_text("reset code is on its way")
    answer = page.locator("#reset-request-note").text_content()
    page.fill("#reset-email", email)
    with page.expect_response("**/v1/password-reset") as known:
        page.click("#reset-request-submit")
    assert known.value.status == 202
    expect(page.locator("#reset-request-note")).to_have_text(answer or "")
    expect(page.locator("#reset-confirm-form")).to_be_visible()

    page.fill("#reset-token", "not-the-code")
    page.fill("#reset-password", new_password)
    page.click("#reset-confirm-submit")
    expect(page.locator("#reset-error")).to_contain_text("wrong, used or expired")
    page.fill("#reset-token", mailed_reset_token(stack.core, email))
    page.fill("#reset-password", "short")
    page.click("#reset-confirm-submit")
    expect(page.locator("#reset-error")).to_contain_text("12 characters")  # the core's password policy
    page.fill("#reset-password", new_password)
    page.click("#reset-confirm-submit")

    # Back at sign-in, the address filled in; every device of the account was signed out.
    expect(page.locator("#signin-screen")).to_be_visible()
    expect(page.locator("#signin-note")).to_contain_text("Password changed")
    expect(page.locator("#signin-email")).to_have_value(email)
    expect(page.locator("#signin-error")).to_be_empty()
    with stack.core.transaction() as session:
        old_phone = session.get(Device, int(other.json()["device_id"]))
        assert old_phone is not None and old_phone.status == "revoked"
    page.fill("#signin-device", "Jiro's browser")
    sign_in(page, email, new_password, pyotp.TOTP(kit["totp_secret"]).now())
    expect(page.locator("#pay-screen")).to_be_visible()
    stored_wallet(page)


def test_throttled_sign_in_waits_on_the_page(page: Page, strict_stack: Stack) -> None:
    """A 429 says how long to wait, and the button stays disabled (counting down) until then."""
    email = "saburo@example.jp"
    kit = sign_up(strict_stack, email)
    page.goto(strict_stack.web.url)
    sign_in(page, email, "not the password at all", "000000")
    expect(page.locator("#signin-error")).to_contain_text("wrong")
    button = page.locator("#signin-submit")
    expect(button).to_be_enabled()
    with page.expect_response("**/v1/devices") as throttled:
        sign_in(page, email, PASSWORD, kit["recovery_codes"][0])  # at once: the address waits 4 s first
    assert throttled.value.status == 429 and int(throttled.value.headers["retry-after"]) >= 1
    expect(page.locator("#signin-error")).to_contain_text("wait before trying again. Try again in")
    expect(button).to_be_disabled()
    expect(button).to_have_text(re.compile(r"^Sign in \(\d s\)$"))
    expect(button).to_be_enabled(timeout=15_000)  # the wait is over
    expect(button).to_have_text("Sign in")
    button.click()  # the same recovery code: the refused try did not use it up
    expect(page.locator("#pay-screen")).to_be_visible()
