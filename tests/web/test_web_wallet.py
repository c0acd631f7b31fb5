"""The web wallet in the system Chromium: its crypto against Python's, its codes through real decoders,
one customer's whole path (sign-in with TOTP, pay by QR, balance, approve on the phone), and the
account screens: sign-up with the e-mail code and the second-factor kit, forgot password, a throttled
sign-in."""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI, Request, Response
from playwright.sync_api import Page, expect

from payment_core.server import ServerThread
from protocol import epoch_seconds, parse_code, system_clock, verify_code
from protocol.checkdigit import damm_digit
from tests.web.pages import decode, next_code, read_code_area, shown_digits
from tests.web.vectors import DAMM_INPUTS, mint_vectors, sign_vectors
from wallet_app.render import group_digits
from wallet_app.web_server import create_web_app

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
        assert refused.status_code == 413 and refused.json()["error"]["code"] == "body_too_large"


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
    """The page's clock is moved (Playwright's clock), never waited for: it is paused, so time spent on
    a loaded machine between the steps does not count."""
    start = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)
    page.clock.install(time=start - timedelta(seconds=5))
    page.clock.pause_at(start)
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
