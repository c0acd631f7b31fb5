"""``possim demo``: a core on SQLite, a funded demo wallet, and the register TUI on the virtual camera.

Everything runs in this process on loopback: the core under uvicorn in a thread, the register's client
talking to it over HTTP with signed requests, the virtual camera filming the demo stage (``w`` holds the
phone up, ``p`` a product). A payment above ¥10,000 waits for the customer: ``a`` approves it on the demo
phone, ``d`` denies it (through the wallet API, as the phone app would). The core and the register's
journal live in a temporary folder and are gone when the demo ends; the receipts are kept, in
``demo-receipts/`` of possim's data directory (``$POSSIM_HOME``, or the per-user data folder).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from escpos.printer import Dummy
from textual import work
from textual.binding import Binding, BindingType

from hardware.customer_display import FileDisplay
from hardware.decoders import default_decoder
from hardware.printer import PrinterError, ReceiptPrinter
from hardware.virtual_camera import VirtualCamera
from possim.demo_stage import DemoPhone, DemoStage
from possim.home import data_dir, make_data_dir
from possim.world import DEMO_LIMITS, DEMO_RISK, demo_customer, open_world
from terminal.catalog import Catalog
from terminal.receipt import store_time
from terminal.register import CameraFeed, CameraStage, RegisterApp, RegisterOptions, Till
from terminal.register.screens.payment import AWAITING, PaymentScreen
from terminal.register_store import RegisterStore

DEMO_CLERK = ("1001", "Sato", "2580")  # id, name, PIN: shown on the demo's sign-in screen
DEMO_FUNDS = 30_000
DEMO_BASKET = ("4901234567894",)  # replaced by real catalog products when the catalog has them
STORE_NAME = "possim 渋谷一丁目店"
REGISTER_NO = "R1"  # the register's own number: receipt numbers are R1-000001, ...
AWAITING_HINT = "Demo: press a to approve on the customer's phone, d to deny"


def demo_receipts_dir() -> Path:
    """Where the demo keeps its receipts: ``demo-receipts/`` in possim's data directory."""
    home = data_dir()
    make_data_dir(home / "demo-receipts")  # the data directory itself is made private when it is new
    return home / "demo-receipts"


def shown_path(path: Path) -> str:
    """``path`` as a person types it: under the home folder as ``~/…``."""
    with contextlib.suppress(ValueError):
        return f"~/{path.relative_to(Path.home())}"
    return str(path)


class KeptReceipts(ReceiptPrinter):
    """The demo's printer: each receipt's ESC/POS bytes, and a plain-text copy a person can read."""

    def __init__(self, escpos_path: Path, text_path: Path) -> None:
        super().__init__(Dummy(), name=f"file {escpos_path}", output_path=escpos_path)
        self.text_path = text_path

    def print_receipt(
        self, lines: Sequence[str], *, title_lines: int = 0, barcode: str | None = None, cut: bool = True
    ) -> None:
        super().print_receipt(lines, title_lines=title_lines, barcode=barcode, cut=cut)
        try:
            with self.text_path.open("a", encoding="utf-8") as sink:
                sink.write("\n".join(lines) + "\n\n")
        except OSError as error:
            raise PrinterError(f"cannot write the receipt's text to {self.text_path}: {error.strerror}") from None


class DemoRegisterApp(RegisterApp):
    """The register with the demo customer's phone in reach: while a payment waits for the customer,
    ``a`` approves it on the phone and ``d`` denies it. Only the demo has these keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "phone_answer(True)", "Approve on phone", id="demo_approve", priority=True),
        Binding("d", "phone_answer(False)", "Deny on phone", id="demo_deny", priority=True),
    ]

    def __init__(
        self, till: Till, camera: CameraFeed | None, stage: CameraStage, options: RegisterOptions, *, phone: DemoPhone
    ) -> None:
        super().__init__(till, camera, stage, options)
        self.phone = phone
        self.phone_busy = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "phone_answer":
            return self.awaiting_customer() and not self.phone_busy
        return super().check_action(action, parameters)

    def awaiting_customer(self) -> bool:
        screen = self.current_screen()
        return isinstance(screen, PaymentScreen) and screen.state == AWAITING

    def action_phone_answer(self, approve: bool) -> None:
        if self.phone_busy or not self.awaiting_customer():
            return
        self.phone_busy = True
        self.refresh_bindings()
        self._answer(approve)

    @work(thread=True, exclusive=True, group="demo-phone", exit_on_error=False)
    def _answer(self, approve: bool) -> None:
        try:
            said = self.phone.answer(approve)
        except Exception as error:
            said = f"The phone could not answer: {type(error).__name__}: {error}"[:160]
        with contextlib.suppress(RuntimeError):  # the demo is closing
            self.call_from_thread(self._answered, said)

    def _answered(self, said: str) -> None:
        self.phone_busy = False
        self.refresh_bindings()
        self.notify(f"{said} The register sees it at its next check.", timeout=4)


@dataclass
class DemoRegister:
    app: DemoRegisterApp
    work_dir: Path
    core_url: str
    receipts: Path  # the ESC/POS file; the text copy is beside it (``.txt``)


@contextlib.contextmanager
def demo_register(
    seed: int = 7, work_dir: Path | None = None, *, receipts_dir: Path | None = None, camera: bool = True
) -> Iterator[DemoRegister]:
    """The demo, wired; ``receipts_dir`` defaults to :func:`demo_receipts_dir`, ``camera`` off for tests."""
    with contextlib.ExitStack() as stack:
        folder = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="possim-demo-")))
        opened = open_world(
            folder,
            demo_customer(),
            store=STORE_NAME,
            device_name="demo phone",
            wallet_name="possim wallet",
            funds=DEMO_FUNDS,
            limits=DEMO_LIMITS,
            risk=DEMO_RISK,
            actor="demo",
        )
        world = stack.enter_context(opened)
        client = stack.enter_context(world.register())
        store = stack.enter_context(RegisterStore(folder / "register.db", terminal_id=REGISTER_NO))
        store.clerks.add_clerk(*DEMO_CLERK)
        catalog = Catalog.default()
        basket = [product.jan for product in catalog][:8] or list(DEMO_BASKET)
        stage = DemoStage(world.minter, "possim wallet", basket)
        kept = receipts_dir or demo_receipts_dir()
        kept.mkdir(parents=True, exist_ok=True)
        stem = f"demo-{store_time(world.core.now()):%Y%m%d-%H%M%S}"
        receipts = kept / f"{stem}.escpos"
        till = Till(
            store,
            catalog,
            client,
            KeptReceipts(receipts, kept / f"{stem}.txt"),
            FileDisplay(folder / "customer-display.txt"),
            store_name=STORE_NAME,
            terminal_id=REGISTER_NO,
        )
        feed = None
        if camera:
            feed = CameraFeed(
                lambda: VirtualCamera(stage.screen, seed=seed), default_decoder(retail=True), label="virtual camera"
            )
        options = RegisterOptions(
            receipt_path=str(receipts),
            receipt_label=f"{shown_path(receipts)} (and {stem}.txt)",
            signin_hint=f"Demo clerk {DEMO_CLERK[0]}, PIN {DEMO_CLERK[2]}\nReceipts are kept in {shown_path(kept)}/",
            awaiting_hint=AWAITING_HINT,
        )
        app = DemoRegisterApp(till, feed, stage, options, phone=DemoPhone(world.url, world.customer.wallet))
        yield DemoRegister(app, folder, world.url, receipts)
