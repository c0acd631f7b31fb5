"""What the home screen's tabs share: the wallet app they run in, and (for History, Devices and Alerts) a
table of the core's rows fetched each time the tab is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, TabPane

from protocol import ProtocolError
from wallet_app.state import WalletState

if TYPE_CHECKING:
    from wallet_app.phone.app import WalletApp


class WalletTab(TabPane):
    """A tab of the signed-in phone: its title and id are the class's ``TAB_TITLE`` and ``TAB_ID``."""

    TAB_TITLE: ClassVar[str]
    TAB_ID: ClassVar[str]

    def __init__(self) -> None:
        super().__init__(self.TAB_TITLE, id=self.TAB_ID)

    @property
    def wallet(self) -> WalletApp:
        return cast("WalletApp", self.app)


def when(row: dict[str, Any]) -> str:
    """A row's date and time, ``MM-DD hh:mm``."""
    return str(row.get("created") or row.get("enrolled_at") or "")[5:16].replace("T", " ")


class RowsTab(WalletTab):
    """A tab showing the core's rows in ``#{TABLE_ID}``: :meth:`load` (the home screen calls it when the tab is
    opened) fetches them in a thread; offline, a notice says so and the table keeps what it had."""

    TABLE_ID: ClassVar[str]
    COLUMNS: ClassVar[tuple[str, ...]]

    def compose(self) -> ComposeResult:
        yield DataTable(id=self.TABLE_ID, cursor_type="row")

    def on_mount(self) -> None:
        self.table.add_columns(*self.COLUMNS)

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one(f"#{self.TABLE_ID}", DataTable)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        state = self.wallet.state
        if state is None:
            return
        try:
            rows = self.fetch(state)
        except ProtocolError as error:
            self.app.call_from_thread(self.app.notify, f"Offline: {error.message}", severity="warning")
            return
        self.app.call_from_thread(self.fill, rows)

    def fetch(self, state: WalletState) -> list[dict[str, Any]]:
        """The rows from the core (runs in a thread)."""
        raise NotImplementedError

    def add_row(self, table: DataTable[Any], row: dict[str, Any]) -> None:
        raise NotImplementedError

    def fill(self, rows: list[dict[str, Any]]) -> None:
        table = self.table
        table.clear()
        for row in rows:
            self.add_row(table, row)
