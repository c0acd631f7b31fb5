"""The admin API's own credentials (issue 13): hashed keys, two scopes, and nothing else let in.

A terminal's signature, a device's signature and a wallet session's token are all refused on
``/v1/admin/...``; a read key lists but pulls no lever; a revoked or forged token is refused and the
refusal audited; bad input is one clean JSON error; every admin act is audited with its operator.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from payment_core import admin_keys
from payment_core.core import Core
from payment_core.models import AdminKey, AuditEvent, ServiceSwitch
from payment_core.server import ServerThread
from protocol import ManualClock
from tests.support import PASSWORD, SignedCaller, error_code
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState


def bearer(server: ServerThread, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def operator_token(core: Core) -> str:
    return admin_keys.create_key(core, "ops", admin_keys.OPERATOR, "admin:test").token


@pytest.fixture
def ops(server: ServerThread, operator_token: str) -> Iterator[httpx.Client]:
    with bearer(server, operator_token) as client:
        yield client


def actions(core: Core, action: str) -> list[AuditEvent]:
    with core.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_a_terminal_a_device_or_a_wallet_session_is_no_admin(
    core: Core, server: ServerThread, terminal: SignedCaller, wallet: WalletState, clock: ManualClock
) -> None:
    assert terminal.call("POST", "/v1/admin/switches/topups/pause").status_code == 401
    assert terminal.call("GET", "/v1/admin/switches").status_code == 401
    with SignedCaller(server.url, wallet.key_id, wallet.secret, clock) as device:
        assert device.call("POST", "/v1/admin/switches/signups/pause").status_code == 401
    with WalletClient(server.url, clock=clock) as phone:
        session_token = phone.sign_in(wallet, PASSWORD)
        access = phone.refresh(session_token)[0]
    with bearer(server, access) as wallet_session:
        refused = wallet_session.post("/v1/admin/switches/signups/pause")
    assert (refused.status_code, error_code(refused)) == (401, "token_invalid")
    with httpx.Client(base_url=server.url, timeout=30) as nobody:
        assert nobody.get("/v1/admin/switches").status_code == 401
    with core.read() as session:
        assert session.scalars(select(ServiceSwitch)).all() == []  # no lever was pulled
    assert len(actions(core, "admin.auth")) == 5
    assert {event.result for event in actions(core, "admin.auth")} == {"refused_token"}


def test_a_forged_or_revoked_token_is_refused(core: Core, server: ServerThread, operator_token: str) -> None:
    key_id, _, secret = operator_token.partition(".")
    forged = f"{key_id}.{'A' * len(secret)}"
    with bearer(server, forged) as forger:
        assert forger.get("/v1/admin/switches").status_code == 401
    with bearer(server, operator_token) as ops:
        assert ops.get("/v1/admin/switches").status_code == 200
        admin_keys.revoke_key(core, "ops", "admin:test")
        gone = ops.get("/v1/admin/switches")
    assert (gone.status_code, error_code(gone)) == (401, "token_invalid")
    assert [event.result for event in actions(core, "admin.auth")] == ["refused_token", "refused_revoked"]
    assert [event.actor for event in actions(core, "admin.key_revoke")] == ["admin:test"]


def test_keys_are_kept_only_as_keyed_hashes(core: Core, operator_token: str) -> None:
    with core.read() as session:
        (row,) = session.scalars(select(AdminKey)).all()
        audit_text = " ".join(event.detail + event.target for event in session.scalars(select(AuditEvent)))
    secret = operator_token.partition(".")[2]
    assert row.id == operator_token.partition(".")[0] and row.scope == "operator"
    assert len(row.token_hash) == 64 and secret not in row.token_hash and operator_token != row.token_hash
    assert secret not in audit_text
    assert [event.actor for event in actions(core, "admin.key_add")] == ["admin:test"]


def test_a_read_key_lists_but_pulls_no_lever(core: Core, server: ServerThread) -> None:
    token = admin_keys.create_key(core, "watcher", admin_keys.READ, "admin:test").token
    with bearer(server, token) as watcher:
        for path in ("/v1/admin/switches", "/v1/admin/blocks", "/v1/admin/alerts"):
            assert watcher.get(path).status_code == 200
        refused = watcher.post("/v1/admin/switches/topups/pause")
        assert (refused.status_code, error_code(refused)) == (403, "forbidden")
        assert watcher.post("/v1/admin/blocks/add", json={"kind": "country", "value": "CN"}).status_code == 403
        assert watcher.post("/v1/admin/password-resets", json={"everyone": True}).status_code == 403
    with core.read() as session:
        assert session.scalars(select(ServiceSwitch)).all() == []
    assert {event.actor for event in actions(core, "admin.read")} == {"admin:watcher"}
    assert len(actions(core, "admin.read")) == 3


def test_freeze_and_unfreeze_through_the_api(
    core: Core, ops: httpx.Client, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    frozen = ops.post(f"/v1/admin/accounts/{wallet.account_id}/freeze")
    assert frozen.json() == {"account_id": wallet.account_id, "status": "frozen"}
    declined = terminal.pay("order-1", 500, minter.mint().numeric)
    assert (declined.status_code, error_code(declined)) == (402, "account_frozen")
    assert ops.post(f"/v1/admin/accounts/{wallet.account_id}/unfreeze").json()["status"] == "active"
    assert terminal.pay("order-2", 500, minter.mint().numeric).status_code == 200
    assert [event.actor for event in actions(core, "account.frozen")] == ["admin:ops"]
    assert [event.actor for event in actions(core, "account.active")] == ["admin:ops"]
    missing = ops.post("/v1/admin/accounts/999999/freeze")
    assert (missing.status_code, error_code(missing)) == (404, "resource_missing")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/admin/blocks/add", {"kind": "cidr", "value": "not-a-network"}, "value"),
        ("/v1/admin/blocks/add", {"kind": "country", "value": "China"}, "value"),
        ("/v1/admin/blocks/add", {"kind": "city", "value": "Tokyo"}, "kind"),
        ("/v1/admin/password-resets", {}, "account_ids"),
        ("/v1/admin/password-resets", {"everyone": True, "account_ids": [1]}, "account_ids"),
        ("/v1/admin/switches/topups/pause", {"reason": "x" * 201}, "reason"),
    ],
)
def test_bad_input_is_one_clean_json_error(ops: httpx.Client, path: str, body: dict[str, object], param: str) -> None:
    answer = ops.post(path, json=body)
    assert (answer.status_code, error_code(answer)) == (422, "parameter_invalid")
    assert answer.json()["error"]["param"] == param
    assert "Traceback" not in answer.text
    unknown = ops.post("/v1/admin/switches/payments/pause")
    assert (unknown.status_code, error_code(unknown)) == (422, "parameter_invalid")


def test_the_openapi_says_who_may_call_each_admin_route(server: ServerThread) -> None:
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    admin_paths = {path: item for path, item in document["paths"].items() if path.startswith("/v1/admin/")}
    assert len(admin_paths) == 16
    for item in admin_paths.values():
        for op in item.values():
            assert op["security"] == [{"adminToken": []}]
            assert {"401", "403", "503"} <= set(op["responses"])
    assert document["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
