"""Account routes (docs/WALLET_API.md): sign-up and verification, sign-in on a new or an enrolled
device, sessions (refresh, sign-out), password change and reset, recovery codes.

Answers never tell whether an account exists: sign-up, resend and reset requests are a 202 with the
same body, their work done after the answer; every failed sign-in is the
same 401 ``credentials_invalid``; a throttled address gets 429 with ``Retry-After``.

Their work is queued in the database with the answer (``payment_core.queued_work``), so a 202 is a
promise kept across a crash; a full queue refuses with 503 and ``Retry-After`` before anything is written.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from payment_core import accounts, devices, otp, queued_work, recovery, resets, sessions, throttle
from payment_core.api_openapi import Auth, operation
from payment_core.api_request import BearerSession, CallData, SignedDevice, parse_body
from payment_core.api_views import b64
from payment_core.core import Core
from payment_core.schemas import (
    AccountBody,
    DeviceBody,
    EmptyBody,
    PasswordChangeBody,
    RecoveryCodesBody,
    RefreshBody,
    ResendBody,
    ResetConfirmBody,
    ResetRequestAnyAddressBody,
    ResetRequestBody,
    SignInBody,
    VerifyBody,
)
from payment_core.sources import current_source
from protocol import ProtocolError

PUBLIC = Auth.PUBLIC


def _accepted(message: str) -> JSONResponse:
    return JSONResponse({"object": "accepted", "message": message}, status_code=202)


def add_routes(app: FastAPI, core: Core) -> None:
    _add_signup_routes(app, core)
    _add_session_routes(app, core)
    _add_password_routes(app, core)


def _add_signup_routes(app: FastAPI, core: Core) -> None:
    @app.post("/v1/accounts", status_code=202, openapi_extra=operation(PUBLIC, (429,), AccountBody, ok=(202,)))
    def create_account(call: CallData) -> JSONResponse:
        data = parse_body(AccountBody, call.body)
        checked = accounts.check_sign_up(core, data.email, data.phone, data.password, data.display_name)
        throttle.limit_requests(core, current_source.get(), checked.email, "signup")
        accounts.queue_sign_up(core, checked)
        return _accepted(accounts.SIGNUP_ANSWER)

    @app.post("/v1/accounts/verify", openapi_extra=operation(PUBLIC, (401, 429), VerifyBody))
    def verify(call: CallData) -> JSONResponse:
        data = parse_body(VerifyBody, call.body)
        source = current_source.get()
        throttle.admit(core, source, data.email)  # six digits: guessing across accounts is throttled too
        try:
            account = otp.verify_email(core, data.email, data.code)
        except ProtocolError:
            throttle.settle(core, source, data.email, None, False, "account.verify_attempt")
            raise
        kit = accounts.second_factor_kit(core, account)
        view = {
            "object": "account",
            "id": account.id,
            "email": account.email,
            "phone": account.phone,
            "email_verified": True,
            "totp_secret": kit.totp_secret,
            "totp_uri": kit.totp_uri,
            "recovery_codes": kit.recovery_codes,
        }
        return JSONResponse(view)

    @app.post(
        "/v1/accounts/verify/resend", status_code=202, openapi_extra=operation(PUBLIC, (429,), ResendBody, ok=(202,))
    )
    def resend(call: CallData) -> JSONResponse:
        email = parse_body(ResendBody, call.body).email
        throttle.limit_requests(core, current_source.get(), email, "resend")
        queued_work.enqueue(core, "resend", {"email": email})
        return _accepted(accounts.SIGNUP_ANSWER)


def _add_session_routes(app: FastAPI, core: Core) -> None:
    # 402 risk_declined: a new phone from a country new to the account (payment_core/risk/new_place.py)
    @app.post(
        "/v1/devices", status_code=201, openapi_extra=operation(PUBLIC, (401, 402, 409, 429), DeviceBody, ok=(201,))
    )
    def enroll_device(call: CallData) -> JSONResponse:
        data = parse_body(DeviceBody, call.body)
        name = accounts.clean_name(data.device_name, "device_name", "A phone's name") or "phone"
        enrolled = devices.enroll_device(core, data.email, data.password, data.otp, name)
        view = {
            "device_id": enrolled.device.id,
            "key_id": f"dev_{enrolled.device.id}",
            "device_secret": b64(enrolled.secret),
            "account_id": enrolled.device.account_id,
        } | enrolled.tokens.view()
        return JSONResponse(view, status_code=201)

    @app.post("/v1/sessions", status_code=201, openapi_extra=operation(Auth.DEVICE, (402, 429), SignInBody, ok=(201,)))
    def sign_in(device: SignedDevice, call: CallData) -> JSONResponse:
        tokens = devices.sign_in(core, device, parse_body(SignInBody, call.body).password)
        return JSONResponse(tokens.view(), status_code=201)

    @app.post("/v1/sessions/refresh", openapi_extra=operation(PUBLIC, (401,), RefreshBody))
    def refresh(call: CallData) -> JSONResponse:
        return JSONResponse(sessions.refresh(core, parse_body(RefreshBody, call.body).refresh_token).view())

    @app.post("/v1/sessions/sign-out", openapi_extra=operation(Auth.BEARER, (), EmptyBody))
    def sign_out(session: BearerSession, call: CallData) -> JSONResponse:
        parse_body(EmptyBody, call.body)
        sessions.end(core, session)
        return JSONResponse({"session_id": session.id, "signed_out": True})

    @app.get("/v1/account", openapi_extra=operation(Auth.BEARER, ()))
    def account(session: BearerSession) -> JSONResponse:
        view = {
            "object": "account_security",
            "account_id": session.account_id,
            "session_id": session.id,
            "sessions": len(sessions.live_sessions(core, session.account_id)),
            "recovery_codes_left": recovery.remaining(core, session.account_id),
        }
        return JSONResponse(view)

    @app.post("/v1/account/recovery-codes", openapi_extra=operation(Auth.BEARER, (), RecoveryCodesBody))
    def new_recovery_codes(session: BearerSession, call: CallData) -> JSONResponse:
        otp.require_totp(core, session.account_id, parse_body(RecoveryCodesBody, call.body).otp)
        with core.transaction() as db:
            codes = recovery.issue(db, core, session.account_id, core.now())
        return JSONResponse({"recovery_codes": codes})

    @app.post("/v1/account/password", openapi_extra=operation(Auth.BEARER, (429,), PasswordChangeBody))
    def change_password(session: BearerSession, call: CallData) -> JSONResponse:
        data = parse_body(PasswordChangeBody, call.body)
        revoked = accounts.change_password(
            core, session, data.current_password, data.new_password, data.sign_out_other_devices
        )
        return JSONResponse({"password_changed": True, "other_devices_signed_out": revoked})


def _add_password_routes(app: FastAPI, core: Core) -> None:
    @app.post(
        "/v1/password-reset", status_code=202, openapi_extra=operation(PUBLIC, (429,), ResetRequestBody, ok=(202,))
    )
    def request_reset(call: CallData) -> JSONResponse:
        if core.config.defences.reset_mail_to_own_address_only:
            data: ResetRequestBody = parse_body(ResetRequestBody, call.body)
            send_to = None
        else:  # the 7pay replay's open door (config.Defences)
            door = parse_body(ResetRequestAnyAddressBody, call.body)
            data, send_to = door, accounts.normalise_email(door.send_to) if door.send_to else None
        email = accounts.normalise_email(data.email)
        throttle.limit_requests(core, current_source.get(), email, "reset")
        queued_work.enqueue(core, "reset", {"email": email, "send_to": send_to})
        return _accepted(resets.RESET_ANSWER)

    @app.post("/v1/password-reset/confirm", openapi_extra=operation(PUBLIC, (401,), ResetConfirmBody))
    def complete_reset(call: CallData) -> JSONResponse:
        data = parse_body(ResetConfirmBody, call.body)
        account = resets.complete_reset(core, data.token, data.new_password)
        return JSONResponse({"email": account.email, "password_changed": True, "devices_signed_out": True})
