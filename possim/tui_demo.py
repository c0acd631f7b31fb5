"""``possim demo``: a core on SQLite, a funded demo wallet, and the register TUI on the virtual camera.

Everything runs in this process on loopback: the core under uvicorn in a thread, the register's client
talking to it over HTTP with signed requests, the virtual camera filming the demo stage (``w`` holds the
phone up, ``p`` a product). Data lives in a temporary folder and is gone when the demo ends.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp

from hardware.customer_display import FileDisplay
from hardware.decoders import default_decoder
from hardware.printer import dummy_printer
from hardware.virtual_camera import VirtualCamera
from payment_core import terminals
from payment_core.api import create_app
from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.server import ServerThread
from possim.commands.outbox import mailed_code
from possim.demo_stage import DemoStage
from possim.headless_demo import DEMO_LIMITS
from terminal.catalog import Catalog
from terminal.client import PaymentClient
from terminal.register import CameraFeed, RegisterApp, RegisterOptions, Till
from terminal.register_store import RegisterStore
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter

DEMO_CLERK = ("1001", "Sato", "2580")  # id, name, PIN: shown on the demo's sign-in screen
DEMO_FUNDS = 30_000
DEMO_BASKET = ("4901234567894",)  # replaced by real catalog products when the catalog has them
STORE_NAME = "possim 渋谷一丁目店"
DEMO_EMAIL = "demo@possim.example"
DEMO_PHONE = "+819000000000"
REGISTER_NO = "R1"  # the register's own number: receipt numbers are R1-000001, ...


@dataclass
class DemoRegister:
    app: RegisterApp
    work_dir: Path
    core_url: str


@contextlib.contextmanager
def demo_register(seed: int = 7, work_dir: Path | None = None) -> Iterator[DemoRegister]:
    with contextlib.ExitStack() as stack:
        folder = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="possim-demo-")))
        core = Core(CoreConfig(db_url=str(folder / "core.db"), server_key=secrets.token_bytes(32), limits=DEMO_LIMITS))
        core.migrate()
        stack.callback(core.close)
        made = terminals.provision_terminal(core, STORE_NAME, "register-1", "demo")
        server = stack.enter_context(ServerThread(create_app(core)))
        password = secrets.token_urlsafe(18)
        with WalletClient(server.url) as wallet:
            wallet.sign_up(DEMO_EMAIL, DEMO_PHONE, password, "Demo customer")
            account = wallet.verify_email(DEMO_EMAIL, mailed_code(core, DEMO_EMAIL))
            otp = pyotp.TOTP(str(account["totp_secret"])).at(core.now())
            state = wallet.enroll(DEMO_EMAIL, password, otp, "demo phone", "possim wallet")
        minter = CodeMinter(state.device_id, state.secret)
        client = stack.enter_context(PaymentClient(server.url, made.terminal.id, made.secret))
        funded = client.topup_cash("demo-funds", DEMO_FUNDS, minter.mint().numeric)
        if funded.status != "succeeded":
            raise RuntimeError(f"could not fund the demo wallet: {funded.message}")
        store = stack.enter_context(RegisterStore(folder / "register.db", terminal_id=REGISTER_NO))
        store.add_clerk(*DEMO_CLERK)
        catalog = Catalog.default()
        basket = [product.jan for product in catalog][:8] or list(DEMO_BASKET)
        stage = DemoStage(minter, "possim wallet", basket)
        receipts = folder / "receipts.escpos"
        till = Till(
            store, catalog, client, dummy_printer(receipts), FileDisplay(folder / "customer-display.txt"),
            store_name=STORE_NAME, terminal_id=REGISTER_NO,
        )  # fmt: skip
        camera = CameraFeed(
            lambda: VirtualCamera(stage.screen, seed=seed), default_decoder(retail=True), label="virtual camera"
        )
        options = RegisterOptions(
            receipt_path=str(receipts), signin_hint=f"Demo clerk {DEMO_CLERK[0]}, PIN {DEMO_CLERK[2]}"
        )
        yield DemoRegister(RegisterApp(till, camera, stage, options), folder, server.url)
