"""Codes drawn in terminal cells, and those cells drawn back into pixels (to prove they scan).

A terminal cell is about twice as tall as wide, so one cell holds one QR module across and two down
(``▀`` with the upper module as foreground and the lower as background): modules come out square. Dark
is black and light is white whatever the terminal's theme, as a scanner needs. Code 128 bars are drawn
two modules a cell (``▌ ▐ █`` and space), so the 22-digit code needs about 90 columns: the wallet shows it
in a landscape view. :func:`cells_to_image` paints cells as pixels the way a terminal shows them, so a
test (or ``possim wallet show``) can hand the very cells on screen to a decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from wallet_app.render import MAX_QR_VERSION, code128_modules, qr_modules

DARK = (0, 0, 0)
LIGHT = (255, 255, 255)
Cell = tuple[str, tuple[int, int, int], tuple[int, int, int]]  # character, foreground, background
_BAR_CHARS = {(False, False): " ", (True, False): "▌", (False, True): "▐", (True, True): "█"}


def _colour(dark: bool) -> tuple[int, int, int]:
    return DARK if dark else LIGHT


def qr_cells(text: str, max_version: int = MAX_QR_VERSION) -> list[list[Cell]]:
    """The QR (ECC M, quiet zone included) as rows of half-block cells."""
    modules = qr_modules(text, max_version=max_version)
    if len(modules) % 2:
        modules = np.vstack([modules, np.zeros((1, modules.shape[1]), dtype=np.bool_)])
    return [
        [
            ("▀", _colour(bool(top)), _colour(bool(bottom)))
            for top, bottom in zip(modules[row], modules[row + 1], strict=True)
        ]
        for row in range(0, len(modules), 2)
    ]


def code128_cells(text: str, height: int = 4) -> list[list[Cell]]:
    """Code 128 (quiet zones included) as ``height`` identical rows, two modules a cell."""
    bars = [bool(value) for value in code128_modules(text)]
    if len(bars) % 2:
        bars.append(False)
    row = [(_BAR_CHARS[(bars[i], bars[i + 1])], DARK, LIGHT) for i in range(0, len(bars), 2)]
    return [list(row) for _ in range(height)]


def cells_to_image(rows: Sequence[Sequence[Cell]], cell_px: int = 8) -> Image.Image:
    """Paint cells as a terminal would: ``cell_px`` wide and twice that tall, half blocks split in two."""
    height, width = len(rows) * 2 * cell_px, max((len(row) for row in rows), default=0) * cell_px
    pixels: npt.NDArray[np.uint8] = np.full((height, width, 3), 255, dtype=np.uint8)
    for y, row in enumerate(rows):
        top, middle, bottom = y * 2 * cell_px, y * 2 * cell_px + cell_px, (y + 1) * 2 * cell_px
        for x, (char, fg, bg) in enumerate(row):
            left, right, half = x * cell_px, (x + 1) * cell_px, x * cell_px + cell_px // 2
            pixels[top:bottom, left:right] = bg
            if char == "▀":
                pixels[top:middle, left:right] = fg
            elif char == "█":
                pixels[top:bottom, left:right] = fg
            elif char == "▌":
                pixels[top:bottom, left:half] = fg
            elif char == "▐":
                pixels[top:bottom, half:right] = fg
    return Image.fromarray(pixels, mode="RGB")
