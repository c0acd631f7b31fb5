"""Messages the camera worker posts to the register app (it never touches widgets itself)."""

from __future__ import annotations

from textual.message import Message

from terminal.register.viewfinder import Preview


class CodeScanned(Message):
    """A code read by the camera (once per dedupe window), a wedge scanner or the keyboard."""

    def __init__(self, text: str, symbology: str, source: str) -> None:
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
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
