"""Messages the camera worker posts to the register app (it never touches widgets itself)."""

from __future__ import annotations

from textual.message import Message

from protocol import Symbology
from terminal.register.viewfinder import Preview


class CodeScanned(Message):
    """A code read by the camera (once per dedupe window), a serial or wedge scanner, or the keyboard: its text,
    its symbology (what the decoder read, or ``KEYED`` / ``UNREPORTED`` when none came with it) and its source."""

    def __init__(self, text: str, symbology: Symbology, source: str) -> None:
        super().__init__()
        self.text, self.symbology, self.source = text, symbology, source


class FramePreview(Message):
    """The newest camera frame, shrunk; older ones still queued are replaced (the viewfinder wants the latest)."""

    def __init__(self, preview: Preview, decoded: bool, fps: float) -> None:
        super().__init__()
        self.preview, self.decoded, self.fps = preview, decoded, fps

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FramePreview)


class CameraStopped(Message):
    """The camera ended (``stopped``) or one frame could not be read or decoded."""

    def __init__(self, reason: str, stopped: bool = True) -> None:
        super().__init__()
        self.reason, self.stopped = reason, stopped


class DisplayChanged(Message):
    """The customer display's two lines changed (posted from any thread)."""

    def __init__(self, upper: str, lower: str) -> None:
        super().__init__()
        self.upper, self.lower = upper, lower
