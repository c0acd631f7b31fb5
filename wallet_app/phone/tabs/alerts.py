"""Alerts: what the core told this account (sign-ins, payments, resets)."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from wallet_app.phone.tabs.base import RowsTab, when
from wallet_app.state import WalletState


class AlertsTab(RowsTab):
    TAB_TITLE, TAB_ID = "Alerts", "alerts"
    TABLE_ID = "alert-table"
    COLUMNS = ("When", "Alert")

    def fetch(self, state: WalletState) -> list[dict[str, Any]]:
        return self.wallet.client.notifications(state)

    def add_row(self, table: DataTable[Any], row: dict[str, Any]) -> None:
        table.add_row(when(row), str(row.get("message")))
