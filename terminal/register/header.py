"""The register's header: Textual's, with its clock in the store's time (the zone the receipts print in)."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.widgets import Header
from textual.widgets._header import HeaderClock  # not exported; textual is pinned below 9

from terminal.receipt import JST


class StoreClock(HeaderClock):
    """The header clock, in the store's zone rather than the machine's."""

    def render(self) -> RenderResult:
        return Text(datetime.now(JST).strftime(self.time_format))


class StoreHeader(Header):
    def compose(self) -> ComposeResult:
        for widget in super().compose():
            yield StoreClock().data_bind(Header.time_format) if type(widget) is HeaderClock else widget
