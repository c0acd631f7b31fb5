"""The wallet's link to the core: sign-up, e-mail verification, device enrollment (password and TOTP),
and device-signed requests (docs/WALLET_API.md).

Requests are encoded (``protocol.encode_body``) and signed (``protocol.http_auth.SigningAuth``, for the
phone whose state is given) as every possim client does, so the URL sent is the URL signed. Every
failure is a :class:`protocol.ProtocolError`: the core's own error read with ``from_envelope`` (a request
refused for this phone's clock says so: :func:`phone_clock_worded`), or ``service_unavailable`` when the
core cannot be reached.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import httpx

from protocol import Clock, ErrorCode, ProtocolError, encode_body, system_clock
from protocol.errors import ClockSkew, ahead_or_behind
from protocol.http_auth import BearerAuth, SigningAuth
from wallet_app.state import WalletState, decode_secret


class WalletClient:
    # A phone gives up on an answer after this long and says it is offline (tests on a loaded machine raise it).
    DEFAULT_TIMEOUT_SECONDS = 5.0

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock = system_clock,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        wait = self.DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout
        self._http = httpx.Client(base_url=self.base_url, timeout=wait, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WalletClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None, auth: httpx.Auth | None = None
    ) -> dict[str, Any]:
        content = encode_body(body)
        headers = {"content-type": "application/json"} if content else {}
        try:
            response = self._http.request(method, path, content=content, headers=headers, auth=auth)
        except httpx.HTTPError as error:
            message = f"cannot reach the core: {type(error).__name__}"
            raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, message) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_error:
            raise phone_clock_worded(ProtocolError.from_envelope(response.status_code, data))
        if not isinstance(data, dict):
            raise ProtocolError(ErrorCode.INTERNAL, f"bad answer from the core ({response.status_code})")
        return data

    def sign_up(self, email: str, phone: str, password: str, display_name: str | None = None) -> dict[str, Any]:
        """Ask for an account: the answer is the same "check your e-mail" whether or not one exists."""
        body = {"email": email, "phone": phone, "password": password, "display_name": display_name}
        return self._send("POST", "/v1/accounts", body)

    def verify_email(self, email: str, code: str) -> dict[str, Any]:
        """Confirm the address with the six-digit code from the verification mail. The answer carries
        ``totp_secret``, ``totp_uri`` and ``recovery_codes``, shown this once."""
        return self._send("POST", "/v1/accounts/verify", {"email": email, "code": code})

    def request_password_reset(self, email: str) -> str:
        """Ask for a reset code by mail (only ever to the account's own address); the core's message."""
        return str(self._send("POST", "/v1/password-reset", {"email": email})["message"])

    def reset_password(self, token: str, new_password: str) -> dict[str, Any]:
        """Set a new password with the mailed reset code; every device is signed out by it."""
        body = {"token": token, "new_password": new_password}
        return self._send("POST", "/v1/password-reset/confirm", body)

    def sign_in(self, state: WalletState, password: str) -> WalletState:
        """A new session on this (enrolled) phone: the device key and the password."""
        data = self.signed(state, "POST", "/v1/sessions", {"password": password})
        return replace(state, refresh_token=str(data["refresh_token"]))

    def refresh(self, state: WalletState) -> tuple[str, WalletState]:
        """A fresh access token; the refresh token rotates, so keep the state this returns."""
        if not state.refresh_token:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, "this phone holds no session; sign in again")
        data = self._send("POST", "/v1/sessions/refresh", {"refresh_token": state.refresh_token})
        return str(data["access_token"]), replace(state, refresh_token=str(data["refresh_token"]))

    def bearer(self, access_token: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._send(method, path, body, BearerAuth(access_token))

    def change_password(
        self, access_token: str, current: str, new: str, sign_out_other_devices: bool = True
    ) -> dict[str, Any]:
        """By default every other device of the account is signed out (revoked): it signs in again as new."""
        body = {"current_password": current, "new_password": new, "sign_out_other_devices": sign_out_other_devices}
        return self.bearer(access_token, "POST", "/v1/account/password", body)

    def new_recovery_codes(self, access_token: str, otp: str) -> list[str]:
        data = self.bearer(access_token, "POST", "/v1/account/recovery-codes", {"otp": otp})
        return [str(code) for code in data["recovery_codes"]]

    def account_security(self, access_token: str) -> dict[str, Any]:
        return self.bearer(access_token, "GET", "/v1/account")

    def resend_verification(self, email: str) -> None:
        """Ask for a new verification mail (the core never says whether the account exists)."""
        self._send("POST", "/v1/accounts/verify/resend", {"email": email})

    def enroll(
        self, email: str, password: str, otp: str, device_name: str, wallet_name: str = "possim wallet"
    ) -> WalletState:
        """Enroll this phone: the password, the authenticator's current code (or a recovery code) and a
        verified e-mail. The state holds the session's refresh token too."""
        body = {"email": email, "password": password, "otp": otp, "device_name": device_name}
        return enrolled_state(self.base_url, email, self._send("POST", "/v1/devices", body), wallet_name)

    def signed(self, state: WalletState, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A request signed by this phone (``state``): the signature covers the URL httpx sends."""
        return self._send(method, path, body, SigningAuth(state.key_id, state.secret, self._clock))

    def balance(self, state: WalletState) -> int:
        return int(self.signed(state, "GET", "/v1/wallet")["balance"])

    def wallet(self, state: WalletState) -> dict[str, Any]:
        """``account_id``, ``device_id``, ``balance``, ``currency``, ``email``, ``display_name``."""
        return self.signed(state, "GET", "/v1/wallet")

    def topup_card(
        self, state: WalletState, amount: int, card_number: str, otp: str, topup_id: str | None = None
    ) -> dict[str, Any]:
        body = {
            "topup_id": topup_id or f"card-{secrets.token_hex(8)}",
            "amount": amount,
            "card_number": card_number,
            "otp": otp,
        }
        return self.signed(state, "POST", "/v1/topups/card", body)

    def link_card(self, state: WalletState, card_number: str, security_code: str, otp: str | None) -> dict[str, Any]:
        """Link a card to the wallet (its security code and the authenticator's code): ``{"id", "last4"}``."""
        body = {"card_number": card_number, "security_code": security_code, "otp": otp}
        return self.signed(state, "POST", "/v1/wallet/cards", body)

    def topup_bank(
        self, state: WalletState, amount: int, bank_account: str, otp: str, topup_id: str | None = None
    ) -> dict[str, Any]:
        body = {
            "topup_id": topup_id or f"bank-{secrets.token_hex(8)}",
            "amount": amount,
            "bank_account": bank_account,
            "otp": otp,
        }
        return self.signed(state, "POST", "/v1/topups/bank", body)

    def history(self, state: WalletState) -> list[dict[str, Any]]:
        """Payments, refunds and top-ups, newest first (at most 50)."""
        return _items(self.signed(state, "GET", "/v1/wallet/history"))

    def notifications(self, state: WalletState) -> list[dict[str, Any]]:
        return _items(self.signed(state, "GET", "/v1/wallet/notifications"))

    def devices(self, state: WalletState) -> list[dict[str, Any]]:
        return _items(self.signed(state, "GET", "/v1/wallet/devices"))

    def revoke_device(self, state: WalletState, device_id: int) -> dict[str, Any]:
        """Sign out one device of this account; the answer is the device, now ``revoked``."""
        return self.signed(state, "POST", f"/v1/wallet/devices/{int(device_id)}/revoke", {})

    def sign_out_everywhere(self, state: WalletState) -> int:
        """Revoke every device of the account, this one included; how many were revoked."""
        return int(self.signed(state, "POST", "/v1/wallet/sign-out-everywhere", {})["revoked"])

    def awaiting(self, state: WalletState) -> list[dict[str, Any]]:
        """Payments the core asks this account to approve (amount, store, ``confirm_before``)."""
        return _items(self.signed(state, "GET", "/v1/wallet/awaiting"))

    def confirm(self, state: WalletState, payment_id: str, approve: bool) -> dict[str, Any]:
        """Approve or deny a waiting payment; the answer is the payment in its final state."""
        body = {"decision": "approve" if approve else "deny"}
        return self.signed(state, "POST", f"/v1/wallet/payments/{payment_id}/confirm", body)


def phone_clock_worded(error: ProtocolError) -> ProtocolError:
    """A refusal of this phone's signed request for its time (``timestamp_stale``) in the owner's words: this
    phone's clock is off, by how much, and how to fix it; the core's measurement stays in ``details``
    (``protocol.errors.ClockSkew``). Any other error is returned as it is."""
    if error.code is not ErrorCode.TIMESTAMP_STALE:
        return error
    skew = ClockSkew.of(error)
    service = "the payment service's"
    how_far = ahead_or_behind(skew.offset_seconds, service) if skew is not None else f"off from {service}"
    message = (
        f"This phone's clock is {how_far} — set the date and time to automatic in the phone's settings, then try again."
    )
    return ProtocolError(error.code, message, error.param, status=error.status, details=error.details)


def _items(data: dict[str, Any]) -> list[dict[str, Any]]:
    listed = data.get("data", [])
    return [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []


def enrolled_state(base_url: str, email: str, data: dict[str, Any], wallet_name: str = "possim wallet") -> WalletState:
    """The phone's state from the core's answer to ``POST /v1/devices`` (a 201)."""
    secret = decode_secret(str(data["device_secret"]))
    if len(secret) < 16:
        raise ProtocolError(ErrorCode.INTERNAL, "the core gave a short device secret")
    return WalletState(
        base_url,
        email,
        int(data["account_id"]),
        int(data["device_id"]),
        secret,
        wallet_name,
        refresh_token=str(data["refresh_token"]),
    )
