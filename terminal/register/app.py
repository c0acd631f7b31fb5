"""The register: a Textual app a clerk runs a shift on. Built by :func:`make_app` so tests inject parts.

At start, wallet payments left pending by a register stopped mid-payment are checked with the core before
anyone can sign in (:class:`PendingScreen`, over the sign-in screen)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from rich.console import RenderableType
from serial import SerialBase
from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker

from hardware.decoders import ScanResult
from hardware.wedge import LineScanner, WedgeRead
from protocol import Symbology
from terminal.register.camera import CameraFeed
from terminal.register.commands import RegisterCommands
from terminal.register.messages import CameraStopped, CodeScanned, DisplayChanged, FramePreview
from terminal.register.screens.payment import OPEN_STATES, PaymentScreen
from terminal.register.screens.pending import PendingScreen
from terminal.register.screens.refund import RefundScreen
from terminal.register.screens.sale import SaleScreen
from terminal.register.screens.shift import ShiftScreen
from terminal.register.screens.signin import SignInScreen
from terminal.register.viewfinder import Preview, Viewfinder
from terminal.till import Till

CAMERA_STOP_SECONDS = 3.0  # how long quitting waits for the camera worker to finish its frame


class CameraStage(Protocol):
    """What stands in front of the virtual camera in the demo (the phone held up, a product)."""

    phone_up: bool

    def toggle_phone(self) -> bool: ...

    def show_product(self, jan: str | None = None) -> str: ...


@runtime_checkable
class ScanTarget(Protocol):
    def handle_scan(self, text: str, symbology: Symbology, source: str) -> None: ...


@dataclass(frozen=True)
class RegisterOptions:
    confirm_timeout: float = 30.0
    confirm_poll: float = 2.5
    wedge: bool = False  # a keyboard-wedge scanner types into the entry line: keep it focused
    receipt_path: str = ""  # where printed receipts go
    receipt_label: str = ""  # how the receipt screen names that place (blank: the file's name)
    show_clock: bool = True  # off in snapshot tests
    signin_hint: str = ""  # the demo shows its clerk id and PIN on the sign-in screen
    awaiting_hint: str = ""  # the demo says under the countdown how to answer on the customer's phone


class RegisterApp(App[None]):
    TITLE = "possim register"
    CSS_PATH = Path(__file__).with_name("register.tcss")  # absolute: subclasses live in other folders
    COMMANDS = App.COMMANDS | {RegisterCommands}
    SCREENS: ClassVar[dict[str, Callable[[], Screen[Any]]]] = {
        "signin": SignInScreen,
        "sale": SaleScreen,
        "refund": RefundScreen,
        "shift": ShiftScreen,
    }
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
        self.closing = False  # set as the app starts to close: workers' messages are dropped from then on
        self._camera_worker: Worker[None] | None = None
        self.till.on_display = self._display_changed

    def on_mount(self) -> None:
        self.push_screen(self.fresh("signin"))
        if self.till.pending_count():  # stopped mid-payment last time: ask the core before the clerk sells
            self.push_screen(PendingScreen())
        if self.camera is not None:
            self._camera_worker = self._run_camera()
        if self.line_scanner is not None:
            self.line_scanner.start()

    def on_unmount(self) -> None:
        self._stop_devices()
        if self.line_scanner is not None:
            self.line_scanner.stop()  # waits (bounded) for its thread

    def exit(self, result: None = None, return_code: int = 0, message: RenderableType | None = None) -> None:
        self._stop_devices()  # before the screens go: no frame may arrive for a screen that is gone
        super().exit(result, return_code, message)

    def _stop_devices(self) -> None:
        self.closing = True
        if self.camera is not None:
            self.camera.stop()
        if self.line_scanner is not None:
            self.line_scanner.stop(timeout=0)

    async def _wait_for_camera(self) -> None:
        """Wait (at most ``CAMERA_STOP_SECONDS``) for the camera worker to finish the frame in hand."""
        worker = self._camera_worker
        if worker is None or worker.is_finished:
            return
        with contextlib.suppress(Exception):  # a timeout, or the worker's own failure: we are leaving anyway
            await asyncio.wait_for(asyncio.shield(worker.wait()), CAMERA_STOP_SECONDS)

    def current_screen(self) -> Screen[object] | None:
        """The screen a worker's message is for; None once the app is closing (its screens may be gone)."""
        if self.closing or not self.is_running:
            return None
        stack = self.screen_stack
        return stack[-1] if stack else None

    def _serial_read(self, read: WedgeRead) -> None:  # on the serial scanner's thread
        # A serial scanner sends the text alone: what symbology it read is not said (read.kind is what the
        # text looks like, payment or product, never a symbology).
        self.post_message(CodeScanned(read.text, Symbology.UNREPORTED, "scanner"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("hold_phone", "show_product"):
            return self.stage is not None
        return True

    def fresh(self, name: str) -> str:
        """``name``, first dropping the screen left installed under it by an earlier visit.

        Textual keeps a named screen after it is popped and shows that same one next time; the register's
        screens start clean on every visit (an empty PIN field, a fresh sale), so each push builds a new one.
        """
        old = self.get_screen(name)  # built from SCREENS on the first visit
        if old.is_attached and old not in self.screen_stack:  # shown before and since left
            self.uninstall_screen(name)
            old.remove()
            self.install_screen(self.SCREENS[name](), name)
        return name

    def payment_open(self) -> bool:
        """A payment is in flight or charged but unrecorded: leaving now could lose track of money."""
        return any(isinstance(screen, PaymentScreen) and screen.state in OPEN_STATES for screen in self.screen_stack)

    async def action_quit(self) -> None:
        if self.payment_open():
            self.notify("A payment is in progress: finish or cancel it before quitting.", severity="warning")
            return
        self._stop_devices()
        await self._wait_for_camera()
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
        screen = self.current_screen()
        if screen is None or self.camera is None:
            return
        self.last_preview = message.preview
        self.camera_status = f"{self.camera.label}: {message.fps:4.1f} fps" + ("  ● read" if message.decoded else "")
        for viewfinder in screen.query(Viewfinder):
            viewfinder.show(message.preview)
        self._refresh_camera_status()

    def on_camera_stopped(self, message: CameraStopped) -> None:
        self.camera_status = f"camera {'stopped' if message.stopped else 'error'}: {message.reason}"
        self._refresh_camera_status()

    def status_line(self) -> str:
        """The camera's state, and in the demo whether the phone is held up to it."""
        if self.stage is None:
            return self.camera_status
        phone = "phone up — w lowers it" if self.stage.phone_up else "phone down — w holds it up"
        return f"{self.camera_status}\nDemo: {phone}"

    def _refresh_camera_status(self) -> None:
        screen = self.current_screen()
        if screen is None:
            return
        for widget in screen.query("#camera-status"):
            widget.update(self.status_line())  # type: ignore[attr-defined]

    def on_code_scanned(self, message: CodeScanned) -> None:
        screen = self.current_screen()
        if isinstance(screen, ScanTarget):
            screen.handle_scan(message.text, message.symbology, message.source)

    # -- demo and devices --------------------------------------------------------------------------

    def action_hold_phone(self) -> None:
        if self.stage is None:
            return
        raised = self.stage.toggle_phone()
        if raised and self.camera is not None:
            self.camera.forget()
        self._refresh_camera_status()
        self.notify("The phone is held up to the camera." if raised else "The phone is lowered.", timeout=2)

    def action_show_product(self) -> None:
        if self.stage is not None:
            jan = self.stage.show_product()
            self._refresh_camera_status()
            self.notify(f"A product ({jan}) is held up to the camera.", timeout=2)

    def _display_changed(self, upper: str, lower: str) -> None:
        self.post_message(DisplayChanged(upper, lower))  # thread safe: the till is also called from workers

    def on_display_changed(self, message: DisplayChanged) -> None:
        screen = self.current_screen()
        if screen is None:
            return
        for widget in screen.query("#pole"):
            widget.update(f"{message.upper}\n{message.lower}")  # type: ignore[attr-defined]
