"""The camera viewfinder: the newest frame drawn with half blocks, the decoded symbol outlined.

Each terminal cell shows two pixels (``▀`` with the upper pixel as foreground and the lower as
background), so a 48×16 cell pane shows a 48×32 image. Frames arrive from the camera worker already
shrunk (:func:`preview_frame`); the widget only resizes to its own size and paints.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

Preview = npt.NDArray[np.uint8]
PREVIEW_WIDTH = 160  # pixels kept per preview frame (the pane is rarely wider than 80 cells)
_OUTLINE = (60, 220, 60)  # BGR green


def preview_frame(frame: npt.NDArray[np.uint8], outlines: Sequence[Sequence[tuple[int, int]]] = ()) -> Preview:
    """Shrink a camera frame for the viewfinder, outlining each decoded symbol in green."""
    height, width = frame.shape[:2]
    scale = PREVIEW_WIDTH / max(1, width)
    small = cv2.resize(frame, (PREVIEW_WIDTH, max(2, int(height * scale))), interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    for points in outlines:
        if len(points) >= 3:
            polygon = (np.array(points, dtype=np.float32) * scale).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(small, [polygon], isClosed=True, color=_OUTLINE, thickness=2)
    return np.asarray(small, dtype=np.uint8)


def _quantise(value: int) -> int:
    return (value >> 3) << 3  # 32 levels a channel: fewer distinct styles to build, no visible loss


class Viewfinder(Widget):
    """Shows the last preview given to :meth:`show`, or a placeholder line when there is none."""

    def __init__(self, placeholder: str = "No camera", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.placeholder = placeholder
        self._preview: Preview | None = None
        self._scaled: Preview | None = None
        self._styles: dict[tuple[int, int, int, int, int, int], Style] = {}
        self.frames_shown = 0

    def show(self, preview: Preview | None) -> None:
        self._preview, self._scaled = preview, None
        self.frames_shown += preview is not None
        self.refresh()

    def _image(self) -> Preview | None:
        if self._preview is None or self.size.width < 2 or self.size.height < 1:
            return None
        wanted = (self.size.width, self.size.height * 2)
        if self._scaled is None or self._scaled.shape[1::-1] != wanted:
            self._scaled = np.asarray(cv2.resize(self._preview, wanted, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        return self._scaled

    def render_line(self, y: int) -> Strip:
        image = self._image()
        width = self.size.width
        if image is None:
            text = self.placeholder if y == self.size.height // 2 else ""
            line = (" " * max(0, (width - len(text)) // 2) + text).ljust(width)[:width]
            return Strip([Segment(line, Style(color="grey50"))], width)
        upper, lower = image[2 * y], image[2 * y + 1]
        segments = []
        for x in range(width):
            b1, g1, r1 = (_quantise(int(v)) for v in upper[x])
            b2, g2, r2 = (_quantise(int(v)) for v in lower[x])
            key = (r1, g1, b1, r2, g2, b2)
            style = self._styles.get(key)
            if style is None:
                style = Style(color=f"rgb({r1},{g1},{b1})", bgcolor=f"rgb({r2},{g2},{b2})")
                if len(self._styles) < 50_000:
                    self._styles[key] = style
            segments.append(Segment("▀", style))
        return Strip(segments, width)
