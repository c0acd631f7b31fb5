"""The wallet's widgets: a code drawn in cells, and the countdown ring."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from wallet_app.phone.cells import Cell

RING = "○◔◑◕●"


class CellView(Widget):
    """Draws rows of cells (a QR or a barcode) as they are, centred, colours fixed black on white. Its size
    is in the app's ``app.tcss`` (``CellView``); :meth:`show` sets its height to the rows."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.rows: list[list[Cell]] = []
        self._styles: dict[tuple[tuple[int, int, int], tuple[int, int, int]], Style] = {}

    def show(self, rows: list[list[Cell]]) -> None:
        self.rows = rows
        self.styles.height = len(rows)
        self.refresh(layout=True)

    def _style(self, fg: tuple[int, int, int], bg: tuple[int, int, int]) -> Style:
        style = self._styles.get((fg, bg))
        if style is None:
            style = self._styles[(fg, bg)] = Style(color=f"rgb{fg}", bgcolor=f"rgb{bg}")
        return style

    def cell_rows(self) -> list[list[Cell]]:
        """What is on screen, cell by cell (tests rasterise it to prove it scans)."""
        return self.rows

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y >= len(self.rows):
            return Strip.blank(width)
        row = self.rows[y]
        pad = max(0, (width - len(row)) // 2)
        segments = [Segment(" " * pad)] + [Segment(char, self._style(fg, bg)) for char, fg, bg in row]
        return Strip(segments).extend_cell_length(width).crop(0, width)


def ring(fraction_left: float) -> str:
    """A countdown ring: full when the code is fresh, empty when it is about to expire."""
    index = max(0, min(len(RING) - 1, round(fraction_left * (len(RING) - 1))))
    return RING[index]
