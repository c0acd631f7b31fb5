"""The OpenAPI description served at ``/openapi.json``: who may call each operation and every answer it can give.

Each route declares its own part with :func:`operation` (``openapi_extra``): its security requirement,
its request body and the error statuses it can produce. :func:`install` adds the shared components:
the security schemes (the ``X-Possim-*`` signature headers of docs/SIGNING.md, for terminals and for
wallet devices, and the wallet session's bearer token), the error shape the core really sends and one
response per error status (405 with ``Allow``, 429 with ``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from protocol import ErrorCode, ErrorType
from protocol.errors import SkewedClock
from protocol.signing import HEADER_KEY_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP


class Auth(Enum):
    TERMINAL = "terminal"
    DEVICE = "device"
    BEARER = "bearer"
    ADMIN = "admin"
    PUBLIC = "public"


_SIGNATURE_PARTS = {
    "KeyId": (HEADER_KEY_ID, "the caller's key id"),
    "Timestamp": (HEADER_TIMESTAMP, "decimal Unix seconds, within 120 s of the core's clock"),
    "Nonce": (HEADER_NONCE, "1-64 characters, never reused by this key"),
    "Signature": (HEADER_SIGNATURE, "`v1=` and the lowercase hex HMAC-SHA256 of the canonical request"),
}
_SIGNERS = {
    Auth.TERMINAL: ("terminal", "a register: key id `term_...` and the secret from `possim admin terminal-add`"),
    Auth.DEVICE: ("device", "an enrolled wallet device: key id `dev_<device_id>` and its `device_secret`"),
}
BEARER_SCHEME = "walletSession"
ADMIN_SCHEME = "adminToken"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Well formed but not possible: see the error code."),
    401: ("Unauthorized", "Not signed, signed wrongly, stale, replayed, or credentials that did not work."),
    402: ("PaymentRequired", "Declined: the error code says why (the decline is stored)."),
    403: ("Forbidden", "Good credentials that may not do this (a read-only admin key)."),
    404: ("NotFound", "No such resource for this caller."),
    405: ("MethodNotAllowed", "This path does not take that method; `Allow` lists the ones it takes."),
    409: ("Conflict", "Conflicts with the resource's state or with an earlier request under the same id."),
    413: ("PayloadTooLarge", "The body is over 64 KiB: refused before it is read."),
    422: ("ValidationFailed", "The request is malformed (body, path or unclear body length); `param` names the field."),
    429: ("TooManyRequests", "Throttled: wait `Retry-After` seconds."),
    503: ("ServiceUnavailable", "The store (or the breached-password lookup) cannot answer; retry later."),
}
# Every operation reads its body through one dependency, api_request.read_call (413 for a body too large, 422
# for one of unclear length) and uses the store (503); every path answers 405 to a method it does not take.
COMMON_ERRORS = (405, 413, 422, 503)


def scheme_name(signer: str, part: str) -> str:
    return f"{signer}{part}"


def security_requirement(auth: Auth) -> list[dict[str, list[str]]]:
    if auth is Auth.PUBLIC:
        return []
    if auth is Auth.BEARER:
        return [{BEARER_SCHEME: []}]
    if auth is Auth.ADMIN:
        return [{ADMIN_SCHEME: []}]
    signer = _SIGNERS[auth][0]
    return [{scheme_name(signer, part): [] for part in _SIGNATURE_PARTS}]


def ref(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}


def operation(
    auth: Auth,
    errors: Iterable[int],
    body: type[BaseModel] | None = None,
    ok: Iterable[int] = (200,),
    summary: str | None = None,
) -> dict[str, Any]:
    """The ``openapi_extra`` of one route: its security, its body and its answers (besides FastAPI's own)."""
    statuses = set(errors) | set(COMMON_ERRORS)
    if auth is not Auth.PUBLIC:
        statuses.add(401)
    responses: dict[str, Any] = {
        str(status): {"description": "Succeeded.", "content": {"application/json": {"schema": {"type": "object"}}}}
        for status in ok
    }
    responses |= {str(status): ref(status) for status in sorted(statuses)}
    extra: dict[str, Any] = {"security": security_requirement(auth), "responses": responses}
    if body is not None:
        schema = body.model_json_schema()  # no body at all reads as `{}`: optional when no field is required
        required = bool(schema.get("required"))
        extra["requestBody"] = {"required": required, "content": {"application/json": {"schema": schema}}}
    if summary is not None:
        extra["description"] = summary
    return extra


# What a refusal for time adds (`code_not_yet_valid`, `code_expired`, `timestamp_stale`: protocol.errors.ClockSkew).
_CLOCK_SKEW_FIELDS: dict[str, Any] = {
    "clock": {
        "type": "string",
        "enum": [clock.value for clock in SkewedClock],
        "description": "A refusal for time: whose clock looks off, `phone` (a code, a device's request) or `register`.",
    },
    "clock_offset_seconds": {
        "type": "integer",
        "description": "That clock minus the core's, as measured: positive ahead, negative behind (an expired code: "
        "minus its age).",
    },
    "server_time": {
        "type": "string",
        "format": "date-time",
        "description": "The core's time when it decided (ISO 8601 UTC).",
    },
    "tolerance_seconds": {
        "type": "integer",
        "minimum": 0,
        "description": "How far the offset may go that way (by default 30 s ahead and 90 s of age for a code, 120 s "
        "either way for a signature).",
    },
}


def _error_schema() -> dict[str, Any]:
    detail = {
        "type": "object",
        "required": ["type", "code", "message"],
        "properties": {
            "type": {"type": "string", "enum": [kind.value for kind in ErrorType]},
            "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
            "message": {"type": "string"},
            "param": {"type": "string", "description": "The request field the error is about."},
            "payment_id": {"type": "string", "description": "A declined payment: it is stored under this id."},
            "order_id": {"type": "string"},
            "topup_id": {"type": "string", "description": "A declined top-up: it is stored under this id."},
            "retry_after": {"type": "integer", "minimum": 1, "description": "As the `Retry-After` header."},
            **_CLOCK_SKEW_FIELDS,
        },
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "required": ["error"],
        "properties": {"error": detail},
        "additionalProperties": False,
        "description": "Every error, whatever the status (Stripe's shape).",
    }


def _components() -> dict[str, Any]:
    schemes: dict[str, Any] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A wallet session's access token (5 minutes), from `POST /v1/devices` or `POST /v1/sessions`.",
        },
        ADMIN_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An operator's admin token (`possim admin key-add`), on `/v1/admin/...` only.",
        },
    }
    for signer, who in _SIGNERS.values():
        for part, (header, what) in _SIGNATURE_PARTS.items():
            schemes[scheme_name(signer, part)] = {
                "type": "apiKey",
                "in": "header",
                "name": header,
                "description": f"Signed by {who}: {what}. The four headers go together (docs/SIGNING.md).",
            }
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    responses: dict[str, Any] = {}
    for name, description in _ERRORS.values():
        responses[name] = {"description": description, "content": error_content}
    responses["MethodNotAllowed"]["headers"] = {
        "Allow": {"description": "The methods this path takes.", "required": True, "schema": {"type": "string"}}
    }
    responses["TooManyRequests"]["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
        }
    }
    return {"securitySchemes": schemes, "schemas": {"Error": _error_schema()}, "responses": responses}


def _tidy(document: dict[str, Any]) -> dict[str, Any]:
    """Keep only our answers: FastAPI adds its own 422 (``HTTPValidationError``), which the core never sends."""
    for path_item in document.get("paths", {}).values():
        for op in path_item.values():
            answers = op.get("responses", {})
            if "$ref" in answers.get("422", {}):
                answers["422"] = {"$ref": answers["422"]["$ref"]}
            op["responses"] = dict(sorted(answers.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for fastapi_own in ("HTTPValidationError", "ValidationError"):
        schemas.pop(fastapi_own, None)
    ours = _components()
    schemas |= ours["schemas"]
    document["components"]["securitySchemes"] = ours["securitySchemes"]
    document["components"]["responses"] = ours["responses"]
    return document


def install(app: FastAPI) -> None:
    """Serve the tidied description (built once, on first request)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = _tidy(document)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
