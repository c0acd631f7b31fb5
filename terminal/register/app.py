"""The register: a Textual app a clerk runs a shift on. Built by :func:`make_app` so tests inject parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from serial import SerialBase
from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from hardware.decoders import ScanResult
from hardware.wedge import LineScanner, WedgeRead
from terminal.register.camera import CameraFeed
from terminal.register.commands import RegisterCommands
from terminal.register.messages import CameraStopped, CodeScanned, DisplayChanged, FramePreview
from terminal.register.till import Till
from terminal.register.viewfinder import Preview, Viewfinder


class CameraStage(Protocol):
    """What stands in front of the virtual camera in the demo (the phone held up, a product)."""

    def toggle_phone(self) -> bool: ...

    def show_product(self, jan: str | None = None) -> str: ...


@runtime_checkable
class ScanTarget(Protocol):
    def handle_scan(self, text: str, symbology: str, source: str) -> None: ...


@dataclass(frozen=True)
class RegisterOptions:
    confirm_timeout: float = 30.0
    confirm_poll: float = 2.5
    wedge: bool = False  # a keyboard-wedge scanner types into the entry line: keep it focused
    receipt_path: str = ""  # where printed receipts go (shown to the clerk)
    show_clock: bool = True  # off in snapshot tests
    signin_hint: str = ""  # the demo shows its clerk id and PIN on the sign-in screen


class RegisterApp(App[None]):
    TITLE = "possim register"
    COMMANDS = App.COMMANDS | {RegisterCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="quit", tooltip="Leave the register (the shift stays open)"),
        Binding("w", "hold_phone", "Phone ↑↓", id="demo_phone", priority=True, tooltip="Demo: hold the phone up"),
        Binding("p", "show_product", "Product", id="demo_product", priority=True, tooltip="Demo: hold a product up"),
    ]

    def __init__(
        self,
        till: Till,
        camera: CameraFeed | None = None,
        stage: CameraStage | None = None,
        options: RegisterOptions | None = None,
        serial_scanner: SerialBase | None = None,
    ) -> None:
        super().__init__()
        self.till, self.camera, self.stage = till, camera, stage
        self.line_scanner = None if serial_scanner is None else LineScanner(serial_scanner, self._serial_read)
        self.options = options or RegisterOptions()
        self.camera_status = "no camera" if camera is None else f"{camera.label}: starting"
        self.last_preview: Preview | None = None
        self.till.on_display = self._display_changed

    def on_mount(self) -> None:
        from terminal.register.screens.signin import SignInScreen

        self.push_screen(SignInScreen())
        if self.camera is not None:
            self._run_camera()
        if self.line_scanner is not None:
            self.line_scanner.start()

    def on_unmount(self) -> None:
        if self.camera is not None:
            self.camera.stop()
        if self.line_scanner is not None:
            self.line_scanner.stop()

    def _serial_read(self, read: WedgeRead) -> None:  # on the serial scanner's thread
        self.post_message(CodeScanned(read.text, read.kind, "scanner"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("hold_phone", "show_product"):
            return self.stage is not None
        return True

    def payment_open(self) -> bool:
        """A payment is in flight or charged but unrecorded: leaving now could lose track of money."""
        from terminal.register.screens.payment import OPEN_STATES, PaymentScreen

        return any(isinstance(screen, PaymentScreen) and screen.state in OPEN_STATES for screen in self.screen_stack)

    async def action_quit(self) -> None:
        if self.payment_open():
            self.notify("A payment is in progress: finish or cancel it before quitting.", severity="warning")
            return
        await super().action_quit()

    # -- camera ------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="camera", exit_on_error=False)
    def _run_camera(self) -> None:
        camera = self.camera
        if camera is None:
            return

        def on_code(result: ScanResult) -> None:
            self.post_message(CodeScanned(result.text, result.format, "camera"))

        def on_preview(preview: Preview, decoded: bool, fps: float) -> None:
            self.post_message(FramePreview(preview, decoded, fps))

        def on_error(error: Exception) -> None:
            self.post_message(CameraStopped(f"{type(error).__name__}: {error}"[:120]))

        try:
            camera.run(on_code, on_preview, on_error)
        except Exception as error:
            on_error(error)
            return
        self.post_message(CameraStopped("the camera stream ended"))

    def on_frame_preview(self, message: FramePreview) -> None:
        self.last_preview = message.preview
        assert self.camera is not None
        self.camera_status = f"{self.camera.label}: {message.fps:4.1f} fps" + ("  ● read" if message.decoded else "")
        for viewfinder in self.screen.query(Viewfinder):
            viewfinder.show(message.preview)
        self._refresh_camera_status()

    def on_camera_stopped(self, message: CameraStopped) -> None:
        self.camera_status = f"camera {'stopped' if message.stopped else 'error'}: {message.reason}"
        self._refresh_camera_status()

    def _refresh_camera_status(self) -> None:
        for widget in self.screen.query("#camera-status"):
            widget.update(self.camera_status)  # type: ignore[attr-defined]

    def on_code_scanned(self, message: CodeScanned) -> None:
        screen = self.screen
        if isinstance(screen, ScanTarget):
            screen.handle_scan(message.text, message.symbology, message.source)

    # -- demo and devices --------------------------------------------------------------------------

    def action_hold_phone(self) -> None:
        if self.stage is None:
            return
        raised = self.stage.toggle_phone()
        if raised and self.camera is not None:
            self.camera.forget()
        self.notify("The phone is held up to the camera." if raised else "The phone is lowered.", timeout=2)

    def action_show_product(self) -> None:
        if self.stage is not None:
            jan = self.stage.show_product()
            self.notify(f"A product ({jan}) is held up to the camera.", timeout=2)

    def _display_changed(self, upper: str, lower: str) -> None:
        self.post_message(DisplayChanged(upper, lower))  # thread safe: the till is also called from workers

    def on_display_changed(self, message: DisplayChanged) -> None:
        for widget in self.screen.query("#pole"):
            widget.update(f"{message.upper}\n{message.lower}")  # type: ignore[attr-defined]
