"""History: payments and top-ups, newest first."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from protocol import format_yen
from wallet_app.phone.tabs.base import RowsTab, when
from wallet_app.state import WalletState


class HistoryTab(RowsTab):
    TAB_TITLE, TAB_ID = "History", "history"
    TABLE_ID = "history-table"
    COLUMNS = ("When", "What", "Amount", "Where")

    def fetch(self, state: WalletState) -> list[dict[str, Any]]:
        return self.wallet.client.history(state)

    def add_row(self, table: DataTable[Any], row: dict[str, Any]) -> None:
        amount = row.get("amount")
        sign = "-" if row.get("kind") == "payment" else "+"
        shown = f"{sign}{format_yen(amount)}" if isinstance(amount, int) else ""
        table.add_row(
            when(row),
            f"{row.get('kind')} {row.get('status') or ''}",
            shown,
            row.get("store") or row.get("source") or "",
        )
