"""Devices: the account's phones; revoke one, or sign out everywhere (this phone included)."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Static

from protocol import ProtocolError
from wallet_app.phone.tabs.base import RowsTab
from wallet_app.state import WalletState


class DevicesTab(RowsTab):
    TAB_TITLE, TAB_ID = "Devices", "devices"
    TABLE_ID = "device-table"
    COLUMNS = ("Id", "Phone", "Status", "")

    class SignedOut(Message):
        """This phone signed itself out (revoked, or every phone signed out): the home screen leaves."""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield DataTable(id=self.TABLE_ID, cursor_type="row")
            yield Button("Revoke the selected phone", id="revoke")
            yield Button("Sign out everywhere", id="everywhere", variant="error")
            yield Static("", id="device-message")

    def fetch(self, state: WalletState) -> list[dict[str, Any]]:
        return self.wallet.client.devices(state)

    def add_row(self, table: DataTable[Any], row: dict[str, Any]) -> None:
        mark = "this phone" if row.get("this_device") else ""
        table.add_row(str(row.get("id")), str(row.get("name")), str(row.get("status")), mark, key=str(row.get("id")))

    @on(Button.Pressed, "#revoke")
    def revoke_selected(self, event: Button.Pressed) -> None:
        event.stop()
        table = self.table
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self._change("revoke", int(key or 0))

    @on(Button.Pressed, "#everywhere")
    def sign_out_everywhere(self, event: Button.Pressed) -> None:
        event.stop()
        self._change("everywhere", 0)

    @work(thread=True, exclusive=True, group="devices", exit_on_error=False)
    def _change(self, what: str, device_id: int) -> None:
        app, state = self.wallet, self.wallet.state
        if state is None:
            return
        try:
            if what == "revoke":
                app.client.revoke_device(state, device_id)
            else:
                app.client.sign_out_everywhere(state)
        except ProtocolError as error:
            self.app.call_from_thread(self.query_one("#device-message", Static).update, error.message)
            return
        if what == "everywhere" or device_id == state.device_id:
            self.post_message(self.SignedOut())
        else:
            self.app.call_from_thread(self.load)
