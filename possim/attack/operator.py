"""The operator's playbook during an attack replay (``possim attack ... --operator``): watch the admin API
for the first sign (a risk alert, the throttle's blocks, or a victim), then pull every lever 7pay pulled
over four days, at once: card top-ups and new phones paused, the countries the attack came from blocked,
and the victims' passwords reset with their stolen phones revoked. Every action goes through the admin
API with the operator's key, so each is audited with its operator."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from payment_core import geo
from protocol.http_auth import BearerAuth

POLL_SECONDS = 1.0
REQUEST_TIMEOUT = 30.0


@dataclass
class OperatorLog:
    noticed_at_s: float | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)


class Operator:
    def __init__(self, url: str, token: str, attacker_addresses: list[str], started: float) -> None:
        self.url, self.token, self.started = url, token, started
        self.countries = sorted({geo.country_of(a) for a in attacker_addresses} - {geo.country_of("127.0.0.1")})
        self.log = OperatorLog()
        self.stop = threading.Event()
        self._reset: set[int] = set()

    def run(self, deadline: float) -> None:
        with httpx.Client(base_url=self.url, auth=BearerAuth(self.token), timeout=REQUEST_TIMEOUT) as admin:
            acted = False
            while not self.stop.wait(POLL_SECONDS) and time.monotonic() < deadline:
                victims = [v["account_id"] for v in self._get(admin, "/v1/admin/victims").get("victims", [])]
                if not acted and (victims or self._signs(admin)):
                    self.log.noticed_at_s = round(time.monotonic() - self.started, 1)
                    self._act(admin, "POST", "/v1/admin/switches/topup-card/pause", {"reason": "list attack"})
                    self._act(admin, "POST", "/v1/admin/switches/enrollment/pause", {"reason": "list attack"})
                    for country in self.countries:
                        self._act(admin, "POST", "/v1/admin/blocks/add", {"kind": "country", "value": country})
                    acted = True
                if acted and victims:
                    fresh = sorted(set(victims) - self._reset)
                    if fresh:
                        body = {"account_ids": fresh[:100], "revoke_devices": True}
                        self._act(admin, "POST", "/v1/admin/password-resets", body)
                        self._reset.update(fresh[:100])

    def _signs(self, admin: httpx.Client) -> bool:
        alerts = self._get(admin, "/v1/admin/alerts")
        blocks = self._get(admin, "/v1/admin/blocks")
        return bool(alerts.get("data") or blocks.get("throttle"))

    def _get(self, admin: httpx.Client, path: str) -> dict[str, Any]:
        try:
            answer = admin.get(path)
            data = answer.json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data if isinstance(data, dict) and answer.is_success else {}

    def _act(self, admin: httpx.Client, method: str, path: str, body: dict[str, Any]) -> None:
        try:
            status = admin.request(method, path, json=body).status_code
        except httpx.HTTPError as error:
            status = -1
            path = f"{path} ({type(error).__name__})"
        at = round(time.monotonic() - self.started, 1)
        self.log.actions.append({"at_s": at, "action": f"{method} {path}", "status": status, "body": body})
