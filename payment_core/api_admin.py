"""The admin API (docs/API.md, "Admin endpoints"): incident controls for an operator, under ``/v1/admin``.

Every route takes an admin token (``Authorization: Bearer <token>``, ``payment_core.admin_keys``): never a
terminal's or a device's signature, nor a wallet session. A ``read`` key lists; an ``operator`` key does
everything. Each act is audited with ``admin:<key name>`` as its actor (``payment_core.incident``,
``payment_core.forced_resets``, ``accounts.set_account_status``). The incident figures and repairs (victims,
compensations, the sweep, the report, lifting an alert) are in ``payment_core.api_admin_incident``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from payment_core import accounts, admin_keys, incident
from payment_core.admin_keys import OPERATOR, READ, Admin
from payment_core.api_openapi import Auth, operation
from payment_core.api_request import CallData, app_core, parse_body
from payment_core.api_views import listing
from payment_core.forced_resets import MAX_LISTED, force_resets
from protocol import ErrorCode, ProtocolError

_SWITCH_PATTERN = "^(" + "|".join(incident.GROUPS) + ")$"
SWITCH_PATH = Annotated[
    str, Path(pattern=_SWITCH_PATTERN, description="A kill switch, or `topups` for the three top-up switches.")
]
ACCOUNT_PATH = Annotated[int, Path(ge=1, le=2**31 - 1, description="An account's id.")]
ADMIN = Auth.ADMIN


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PauseBody(_Body):
    reason: StrictStr | None = Field(default=None, max_length=incident.REASON_MAX)


class BlockBody(_Body):
    kind: Literal["cidr", "country"]
    value: StrictStr = Field(min_length=1, max_length=64, description="A network (`203.0.113.0/24`) or `CN`.")
    reason: StrictStr | None = Field(default=None, max_length=incident.REASON_MAX)


class UnblockBody(_Body):
    kind: Literal["cidr", "country"]
    value: StrictStr = Field(min_length=1, max_length=64)


class AddressBody(_Body):
    address: StrictStr = Field(min_length=1, max_length=64, description="An address the throttle blocked.")


class ForceResetBody(_Body):
    account_ids: list[StrictInt] | None = Field(default=None, min_length=1, max_length=MAX_LISTED)
    everyone: StrictBool = False
    revoke_devices: StrictBool = False


class EmptyAdminBody(_Body):
    pass


def admin_caller(request: Request, call: CallData) -> Admin:
    return admin_keys.authenticate(app_core(request), call.headers.get("authorization"))


AdminCaller = Annotated[Admin, Depends(admin_caller)]


def add_routes(app: FastAPI) -> None:
    core = app.state.core
    _add_switch_routes(app)
    _add_block_routes(app)
    from payment_core import api_admin_incident  # it builds on this module's auth

    api_admin_incident.add_routes(app)

    @app.get("/v1/admin/alerts", openapi_extra=operation(ADMIN, (403,)))
    def alerts(admin: AdminCaller) -> JSONResponse:
        admin.require(READ)
        admin_keys.record_read(core, admin, "alerts")
        return listing(incident.list_alerts(core))

    @app.post("/v1/admin/accounts/{account_id}/freeze", openapi_extra=operation(ADMIN, (403, 404), EmptyAdminBody))
    def freeze(admin: AdminCaller, call: CallData, account_id: ACCOUNT_PATH) -> JSONResponse:
        admin.require(OPERATOR)
        parse_body(EmptyAdminBody, call.body)
        account = accounts.set_account_status(core, account_id, "frozen", admin.actor)
        return JSONResponse({"account_id": account.id, "status": account.status})

    @app.post("/v1/admin/accounts/{account_id}/unfreeze", openapi_extra=operation(ADMIN, (403, 404), EmptyAdminBody))
    def unfreeze(admin: AdminCaller, call: CallData, account_id: ACCOUNT_PATH) -> JSONResponse:
        admin.require(OPERATOR)
        parse_body(EmptyAdminBody, call.body)
        account = accounts.set_account_status(core, account_id, "active", admin.actor)
        return JSONResponse({"account_id": account.id, "status": account.status})

    @app.post("/v1/admin/password-resets", openapi_extra=operation(ADMIN, (403, 404), ForceResetBody))
    def password_resets(admin: AdminCaller, call: CallData) -> JSONResponse:
        admin.require(OPERATOR)
        data = parse_body(ForceResetBody, call.body)
        if data.everyone == (data.account_ids is not None):
            raise_one_of()
        done = force_resets(core, data.account_ids, admin.actor, revoke_devices=data.revoke_devices)
        return JSONResponse({"object": "forced_resets"} | done)


def raise_one_of() -> None:
    message = "account_ids: name the accounts, or set everyone (one of the two)"
    raise ProtocolError(ErrorCode.VALIDATION_FAILED, message, param="account_ids")


def _add_switch_routes(app: FastAPI) -> None:
    core = app.state.core

    @app.get("/v1/admin/switches", openapi_extra=operation(ADMIN, (403,)))
    def switches(admin: AdminCaller) -> JSONResponse:
        admin.require(READ)
        admin_keys.record_read(core, admin, "switches")
        return listing(incident.list_switches(core))

    @app.post("/v1/admin/switches/{name}/pause", openapi_extra=operation(ADMIN, (403,), PauseBody))
    def pause(admin: AdminCaller, call: CallData, name: SWITCH_PATH) -> JSONResponse:
        admin.require(OPERATOR)
        data = parse_body(PauseBody, call.body)
        names = incident.pause(core, name, admin.actor, data.reason)
        return JSONResponse({"object": "switches", "paused": names})

    @app.post("/v1/admin/switches/{name}/resume", openapi_extra=operation(ADMIN, (403,), EmptyAdminBody))
    def resume(admin: AdminCaller, call: CallData, name: SWITCH_PATH) -> JSONResponse:
        admin.require(OPERATOR)
        parse_body(EmptyAdminBody, call.body)
        names = incident.resume(core, name, admin.actor)
        return JSONResponse({"object": "switches", "resumed": names})


def _add_block_routes(app: FastAPI) -> None:
    core = app.state.core

    @app.get("/v1/admin/blocks", openapi_extra=operation(ADMIN, (403,)))
    def blocks(admin: AdminCaller) -> JSONResponse:
        admin.require(READ)
        admin_keys.record_read(core, admin, "blocks")
        return JSONResponse(
            {"object": "blocks", "operator": incident.list_blocks(core), "throttle": incident.list_address_blocks(core)}
        )

    @app.post("/v1/admin/blocks/add", openapi_extra=operation(ADMIN, (403,), BlockBody))
    def block(admin: AdminCaller, call: CallData) -> JSONResponse:
        admin.require(OPERATOR)
        data = parse_body(BlockBody, call.body)
        spec = incident.block_spec(data.kind, data.value)
        added = incident.block(core, spec, admin.actor, data.reason)
        return JSONResponse({"kind": spec.kind, "value": spec.value, "blocked": True, "new": added})

    @app.post("/v1/admin/blocks/lift", openapi_extra=operation(ADMIN, (403,), UnblockBody))
    def unblock(admin: AdminCaller, call: CallData) -> JSONResponse:
        admin.require(OPERATOR)
        data = parse_body(UnblockBody, call.body)
        spec = incident.block_spec(data.kind, data.value)
        lifted = incident.unblock(core, spec, admin.actor)
        return JSONResponse({"kind": spec.kind, "value": spec.value, "blocked": False, "lifted": lifted})

    @app.post("/v1/admin/address-blocks/lift", openapi_extra=operation(ADMIN, (403,), AddressBody))
    def lift_address_block(admin: AdminCaller, call: CallData) -> JSONResponse:
        admin.require(OPERATOR)
        data = parse_body(AddressBody, call.body)
        lifted = incident.lift_address_block(core, data.address, admin.actor)
        return JSONResponse({"address": data.address, "lifted": lifted})
