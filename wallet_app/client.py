"""The wallet's link to the core: sign-up, e-mail verification, device enrollment (password and TOTP),
and device-signed requests (docs/WALLET_API.md)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from protocol import Clock, ErrorCode, ProtocolError, sign_request, system_clock
from wallet_app.state import WalletState, decode_secret


class WalletError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class WalletClient:
    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock = system_clock,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WalletClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, content: bytes, headers: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._http.request(
                method, path, content=content, headers=headers | {"content-type": "application/json"}
            )
        except httpx.HTTPError as error:
            raise WalletError(
                ErrorCode.SERVICE_UNAVAILABLE.value, f"cannot reach the core: {type(error).__name__}"
            ) from None
        try:
            data: dict[str, Any] = response.json()
        except ValueError:
            raise WalletError(ErrorCode.INTERNAL.value, f"bad answer from the core ({response.status_code})") from None
        if response.is_error:
            problem = data.get("error", {})
            raise WalletError(str(problem.get("code")), str(problem.get("message")), response.status_code)
        return data

    def sign_up(self, email: str, phone: str, password: str, display_name: str | None = None) -> dict[str, Any]:
        """Create the account: the answer carries ``totp_secret`` and ``totp_uri``, shown this once."""
        body = {"email": email, "phone": phone, "password": password, "display_name": display_name}
        return self._send("POST", "/v1/accounts", _encode(body), {})

    def verify_email(self, email: str, code: str) -> dict[str, Any]:
        """Confirm the address with the six-digit code from the verification mail."""
        return self._send("POST", "/v1/accounts/verify", _encode({"email": email, "code": code}), {})

    def resend_verification(self, email: str) -> None:
        """Ask for a new verification mail (the core never says whether the account exists)."""
        self._send("POST", "/v1/accounts/verify/resend", _encode({"email": email}), {})

    def enroll(
        self, email: str, password: str, otp: str, device_name: str, wallet_name: str = "possim wallet"
    ) -> WalletState:
        """Enroll this phone: the password, the authenticator's current code and a verified e-mail."""
        body = {"email": email, "password": password, "otp": otp, "device_name": device_name}
        data = self._send("POST", "/v1/devices", _encode(body), {})
        secret = decode_secret(str(data["device_secret"]))
        if len(secret) < 16:
            raise ProtocolError(ErrorCode.INTERNAL, "the core gave a short device secret")
        return WalletState(self.base_url, email, int(data["account_id"]), int(data["device_id"]), secret, wallet_name)

    def signed(self, state: WalletState, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        content = _encode(body)
        headers = sign_request(state.secret, state.key_id, method, path, content, self._clock()).as_dict()
        return self._send(method, path, content, headers)

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


def _items(data: dict[str, Any]) -> list[dict[str, Any]]:
    listed = data.get("data", [])
    return [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []


def _encode(body: dict[str, Any] | None) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
