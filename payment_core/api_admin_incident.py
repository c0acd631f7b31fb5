"""The admin API's incident routes (docs/API.md, "Admin endpoints"): what ``possim admin victims |
compensate | sweep | report | alert-lift`` do, for an admin token.

The same admin-key auth as ``payment_core.api_admin``: a ``read`` key reads the victims and the report
(each look audited, ``admin.read``), an ``operator`` key pays compensations, sweeps and lifts alerts (each
act audited by its domain function with ``admin:<key name>`` as its actor). The answers are the CLI's
``--json`` output, from the same domain functions.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from payment_core import admin_keys, incident
from payment_core.admin_keys import OPERATOR, READ
from payment_core.api_admin import ADMIN, AdminCaller, EmptyAdminBody
from payment_core.api_openapi import operation
from payment_core.api_request import CallData, parse_body
from payment_core.compensation import compensate
from payment_core.core import Core
from payment_core.incident_report import build_report
from payment_core.sweep import sweep_unanswered
from payment_core.victims import find_victims
from protocol import MAX_AMOUNT_YEN, ErrorCode, ProtocolError

COMPENSATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,59}$"  # compensation.require_compensation_id
ALERT_PATH = Annotated[int, Path(ge=1, le=2**31 - 1, description="A risk alert's id (`GET /v1/admin/alerts`).")]
# RFC 3339 (`format: date-time`): a date, a time and an offset (`Z` or `+09:00`), nothing looser.
RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})")
_TIME = "An RFC 3339 time with its offset: `2019-07-03T09:00:00Z`, `2019-07-03T18:00:00+09:00`."
_FORMAT: dict[str, Any] = {"format": "date-time"}
SINCE = Annotated[str | None, Query(description=f"From this time. {_TIME}", json_schema_extra=_FORMAT)]
UNTIL = Annotated[str | None, Query(description=f"Before this time. {_TIME}", json_schema_extra=_FORMAT)]
REPORT_SINCE = Annotated[str, Query(description=f"From this time. {_TIME}", json_schema_extra=_FORMAT)]
REPORT_UNTIL = Annotated[
    str | None, Query(description=f"Before this time (default: now). {_TIME}", json_schema_extra=_FORMAT)
]


class CompensationBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    compensation_id: StrictStr = Field(
        pattern=COMPENSATION_ID_PATTERN, description="The operator's id for it: the same id again pays nothing."
    )
    account_id: StrictInt = Field(ge=1, le=2**31 - 1)
    amount: StrictInt = Field(
        json_schema_extra={"minimum": 1, "maximum": MAX_AMOUNT_YEN, "description": "Whole yen (400 outside)."}
    )
    reason: StrictStr | None = Field(default=None, max_length=incident.REASON_MAX, description="For the audit trail.")


def utc(value: str | None, param: str) -> datetime | None:
    """An RFC 3339 time as aware UTC, or 422 naming ``param``; one beyond the calendar's ends is clamped to them."""
    if value is None:
        return None
    try:
        if not RFC3339.fullmatch(value):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        message = f"{param}: an RFC 3339 time with its offset, e.g. 2019-07-03T09:00:00Z"
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, message, param=param) from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, which is in the year 0
        return (datetime.min if parsed.year == datetime.min.year else datetime.max).replace(tzinfo=UTC)


def compensation_view(core: Core, data: CompensationBody, actor: str) -> dict[str, Any]:
    paid = compensate(core, data.account_id, data.amount, data.compensation_id, actor, data.reason or "")
    return {
        "object": "compensation",
        "compensation_id": paid.compensation_id,
        "account_id": paid.account_id,
        "amount": paid.amount,
        "at": paid.at.isoformat(),
        "replayed": paid.replayed,
    }


def add_routes(app: FastAPI) -> None:
    core = app.state.core

    @app.get("/v1/admin/victims", openapi_extra=operation(ADMIN, (403,)))
    def victims(admin: AdminCaller, since: SINCE = None, until: UNTIL = None) -> JSONResponse:
        admin.require(READ)
        start, end = utc(since, "since"), utc(until, "until")
        admin_keys.record_read(core, admin, "victims")
        with core.read() as session:
            found = find_victims(session, start, end)
        return JSONResponse({"victims": [victim.as_json() for victim in found]})

    @app.get("/v1/admin/report", openapi_extra=operation(ADMIN, (403,)))
    def report(admin: AdminCaller, since: REPORT_SINCE, until: REPORT_UNTIL = None) -> JSONResponse:
        admin.require(READ)
        start, end = utc(since, "since"), utc(until, "until") or core.now()
        if start is None:  # required: FastAPI has said 422 already
            raise ProtocolError(ErrorCode.VALIDATION_FAILED, "since: required", param="since")
        if end <= start:
            raise ProtocolError(ErrorCode.VALIDATION_FAILED, "until: must be after since", param="until")
        admin_keys.record_read(core, admin, "report")
        with core.read() as session:
            return JSONResponse(build_report(session, start, end))

    @app.post("/v1/admin/compensations", openapi_extra=operation(ADMIN, (400, 403, 404, 409), CompensationBody))
    def compensations(admin: AdminCaller, call: CallData) -> JSONResponse:
        admin.require(OPERATOR)
        data = parse_body(CompensationBody, call.body)
        return JSONResponse(compensation_view(core, data, admin.actor))

    @app.post("/v1/admin/sweep", openapi_extra=operation(ADMIN, (403,), EmptyAdminBody))
    def sweep(admin: AdminCaller, call: CallData) -> JSONResponse:
        admin.require(OPERATOR)
        parse_body(EmptyAdminBody, call.body)
        closed = sweep_unanswered(core, actor=admin.actor)
        return JSONResponse({"object": "sweep", "closed": len(closed), "payment_ids": closed})

    @app.post("/v1/admin/alerts/{alert_id}/lift", openapi_extra=operation(ADMIN, (403, 404), EmptyAdminBody))
    def lift_alert(admin: AdminCaller, call: CallData, alert_id: ALERT_PATH) -> JSONResponse:
        admin.require(OPERATOR)
        parse_body(EmptyAdminBody, call.body)
        return JSONResponse(incident.lift_alert(core, alert_id, admin.actor))
