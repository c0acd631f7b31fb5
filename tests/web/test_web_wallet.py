"""The web wallet in the system Chromium: its crypto against Python's, its codes through real decoders,
one customer's whole path (sign-in with TOTP, pay by QR, balance, approve on the phone), and the
account screens: sign-up with the e-mail code and the second-factor kit, forgot password, a throttled
sign-in."""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pyotp
import zxingcpp
from fastapi import FastAPI, Request, Response
from PIL import Image
from playwright.sync_api import Page, expect

from payment_core import devices
from payment_core.models import Device
from payment_core.server import ServerThread
from protocol import epoch_seconds, parse_code, system_clock, verify_code
from protocol.checkdigit import damm_digit
from tests.support import PASSWORD, mailed_code, mailed_reset_token
from tests.web.conftest import STORE, WAIT_MS, Stack
from tests.web.vectors import DAMM_INPUTS, mint_vectors, sign_vectors
from wallet_app.render import group_digits
from wallet_app.web_server import create_web_app

QR, CODE128 = zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128


def decode(png: bytes) -> dict[str, list[str]]:
    """Every QR and Code 128 zxing-cpp reads in a PNG, by format."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    found: dict[str, list[str]] = {"qr": [], "code128": []}
    for barcode in zxingcpp.read_barcodes(pixels):
        if barcode.format in (QR, CODE128):
            found["qr" if barcode.format == QR else "code128"].append(barcode.text)
    return found


def read_code_area(page: Page) -> tuple[str, str]:
    """Screenshot the code card and decode it: (QR text, Code 128 text); both must read."""
    found = decode(page.locator("#code-area").screenshot())
    assert len(found["qr"]) == 1 and len(found["code128"]) == 1, found
    return found["qr"][0], found["code128"][0]


def shown_digits(page: Page) -> str:
    return (page.locator("#code-digits").text_content() or "").replace(" ", "")


def next_code(page: Page, previous: str) -> str:
    """Tap the code for a new one; wait until the digits change."""
    page.locator("#code-area").click()
    page.wait_for_function(
        "prev => document.getElementById('code-digits').textContent.replaceAll(' ', '') !== prev",
        arg=previous,
        timeout=WAIT_MS,
    )
    return shown_digits(page)


# ---- the page's pure functions against the Python protocol ------------------------------------------

_RUN_VECTORS = """async ([mints, signs, damms, fallback]) => {
  possim.setForceFallback(fallback);
  const minted = [];
  for (const v of mints) {
    const code = await possim.mintCode(Uint8Array.from(v.secret), v.device, v.time, v.counter);
    minted.push({qr: code.qr, numeric: code.numeric});
  }
  const signed = [];
  for (const v of signs) {
    signed.push(await possim.signRequest(Uint8Array.from(v.secret), v.key_id, v.method, v.path, v.body, v.time, v.nonce));
  }
  return {minted, signed, damm: damms.map(possim.dammDigit), webcrypto: possim.usingWebCrypto()};
}"""


def test_page_functions_match_python_vectors(page: Page, offline_web: ServerThread) -> None:
    mints, signs = mint_vectors(), sign_vectors()
    page.goto(offline_web.url)
    for fallback in (False, True):  # WebCrypto, then the plain-JS SHA-256 a phone on plain http uses
        result = page.evaluate(_RUN_VECTORS, [mints, signs, DAMM_INPUTS, fallback])
        assert result["webcrypto"] is (not fallback)
        assert result["minted"] == [{"qr": v["qr"], "numeric": v["numeric"]} for v in mints]
        assert result["signed"] == [v["headers"] for v in signs]
        assert result["damm"] == [damm_digit(text) for text in DAMM_INPUTS]


def test_page_refuses_what_python_refuses(page: Page, offline_web: ServerThread) -> None:
    page.goto(offline_web.url)
    refused = page.evaluate(
        """async () => {
          const ok = new Uint8Array(16), cases = [[new Uint8Array(15), 1, 0, 0], [ok, 0, 0, 0],
            [ok, 10000000, 0, 0], [ok, 1, 0, 10], [ok, 1, 0, -1]];
          const out = [];
          for (const [s, d, t, c] of cases) {
            out.push(await possim.mintCode(s, d, t, c).then(() => 'minted', e => e.name));
          }
          return out;
        }"""
    )
    assert refused == ["RangeError"] * 5


def test_minter_gives_ten_distinct_codes_a_second(page: Page, offline_web: ServerThread) -> None:
    page.goto(offline_web.url)
    codes = page.evaluate(
        """async () => {
          const keys = await possim.deriveKeys(new Uint8Array(32).fill(7));
          const minter = new possim.Minter(keys, 42);
          const out = [];
          for (let i = 0; i < 11; i++) out.push(await minter.mint(1767258000));
          out.push(await minter.mint(1767258001));
          return out.map(c => c && [c.counter, c.numeric]);
        }"""
    )
    assert [c[0] for c in codes[:10]] == list(range(10))
    assert len({c[1] for c in codes[:10]}) == 10
    assert codes[10] is None  # the eleventh in one second waits for the next second
    assert codes[11][0] == 0


def test_jsbarcode_code128_keeps_every_digit(page: Page, offline_web: ServerThread) -> None:
    """The vendored JsBarcode's Code 128 of numeric codes reads back exactly (a leading "38" included)."""
    numerics = [*sorted({v["numeric"] for v in mint_vectors()})[:12], "3800000000000000000000"]
    page.goto(offline_web.url)
    images = page.evaluate(
        """texts => texts.map(text => {
          const canvas = document.createElement('canvas');
          JsBarcode(canvas, text, {format: 'CODE128', width: 2, height: 60, margin: 20, displayValue: false});
          return canvas.toDataURL('image/png');
        })""",
        numerics,
    )
    for text, url in zip(numerics, images, strict=True):
        assert decode(base64.b64decode(url.split(",", 1)[1]))["code128"] == [text]


# ---- offline: the page still mints, and the proxy answers in the core's error shape -------------------


def test_proxy_answers_503_when_the_core_is_down(offline_web: ServerThread) -> None:
    with httpx.Client(base_url=offline_web.url, timeout=10) as client:
        for method, path in (("GET", "/v1/wallet"), ("POST", "/v1/devices?x=1")):
            response = client.request(method, path, content=b"{}", headers={"content-type": "application/json"})
            assert response.status_code == 503
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("api_error", "service_unavailable")
            assert error["message"]
        page = client.get("/")
        assert page.status_code == 200 and "possim" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


def echo_core() -> FastAPI:
    """A stand-in core that answers with what it received, in an unusual status and content type."""
    app = FastAPI()

    @app.api_route("/{rest:path}", methods=["GET", "POST", "DELETE"])
    async def echo(request: Request, rest: str) -> Response:
        seen = {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "body": (await request.body()).decode(),
            "headers": {k: v for k, v in request.headers.items() if k.startswith(("x-possim-", "content-type"))},
        }
        headers = {"Retry-After": "7", "X-Core-Internal": "not for the page"}
        return Response(json.dumps(seen), 418, headers=headers, media_type="application/vnd.possim-test+json")

    return app


def test_proxy_forwards_requests_unchanged() -> None:
    signed = {
        "X-Possim-Key-Id": "dev_42",
        "X-Possim-Timestamp": "1767258000",
        "X-Possim-Nonce": "n1",
        "X-Possim-Signature": "v1=abc",
    }
    with (
        ServerThread(echo_core()) as core,
        ServerThread(create_web_app(core.url)) as web,
        httpx.Client(base_url=web.url, timeout=10) as client,
    ):
        response = client.post(
            "/v1/orders/o%3A1/reverse?b=2&a=%20x",
            content=b'{"z": 1,  "a": [2]}',
            headers=signed | {"content-type": "application/json", "cookie": "dropped=1"},
        )
        too_big = client.post("/v1/wallet", content=b"x" * 70_000)
        chunked = client.post("/v1/wallet", content=iter([b"x" * 40_000] * 2))
    assert response.status_code == 418
    assert response.headers["content-type"] == "application/vnd.possim-test+json"
    assert response.headers["retry-after"] == "7" and "x-core-internal" not in response.headers
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["raw_path"] == "/v1/orders/o%3A1/reverse"
    assert seen["query"] == "b=2&a=%20x"
    assert seen["body"] == '{"z": 1,  "a": [2]}'
    assert seen["headers"] == {k.lower(): v for k, v in signed.items()} | {"content-type": "application/json"}
    for refused in (too_big, chunked):
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "parameter_invalid"


def store_wallet(page: Page, url: str, secret: bytes, device_id: int) -> None:
    """Put an enrolled device into the page's storage, as a sign-in would, and load the page again."""
    stored = {
        "device_id": device_id,
        "key_id": f"dev_{device_id}",
        "device_secret": base64.urlsafe_b64encode(secret).decode().rstrip("="),
        "account_id": 1,
        "email": "offline@example.jp",
    }
    page.goto(url)
    page.evaluate("w => localStorage.setItem('possim.wallet', JSON.stringify(w))", stored)
    page.reload()
    expect(page.locator("#pay-screen")).to_be_visible()


def test_pay_screen_mints_offline(page: Page, offline_web: ServerThread) -> None:
    secret = secrets.token_bytes(32)
    store_wallet(page, offline_web.url, secret, 4321)
    expect(page.locator("#offline-badge")).to_be_visible()  # the first poll found no core
    qr, numeric = read_code_area(page)
    assert numeric == shown_digits(page)
    for text in (qr, numeric):
        verified = verify_code(parse_code(text), secret, system_clock())
        assert verified.device_id == 4321
    # The 40-digit form is QR version 2 (25 modules) plus 4 quiet modules a side, whole pixels a module.
    width = page.evaluate("document.getElementById('qr-canvas').width")
    assert width % 33 == 0 and width // 33 >= 6
    expect(page.locator("#countdown-text")).to_have_text(re.compile(r"^(5\d|60) s$"))
    assert next_code(page, numeric) != numeric


def test_code_renews_itself_every_30_seconds(page: Page, offline_web: ServerThread) -> None:
    """The page's clock is moved (Playwright's clock), never waited for."""
    start = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)
    page.clock.install(time=start)
    secret = secrets.token_bytes(16)
    store_wallet(page, offline_web.url, secret, 7)
    first = shown_digits(page)
    page.clock.run_for(20_000)
    expect(page.locator("#countdown-text")).to_have_text(re.compile(r"^(39|40) s$"))
    assert shown_digits(page) == first
    page.clock.run_for(11_000)
    expect(page.locator("#code-digits")).not_to_have_text(group_digits(first))
    renewed = shown_digits(page)
    verified = verify_code(parse_code(renewed), secret, start + timedelta(seconds=31))
    assert verified.minted_at - epoch_seconds(start) in (30, 31)
    expect(page.locator("#countdown-text")).to_have_text(re.compile(r"^(59|60) s$"))


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
