"""A register wired to a real core: uvicorn on a loopback port, SQLite, a funded wallet, a virtual camera."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from serial import SerialBase

from hardware.customer_display import MemoryDisplay
from hardware.decoders import default_decoder
from hardware.printer import ReceiptPrinter, dummy_printer
from hardware.virtual_camera import VirtualCamera
from payment_core.config import Limits
from payment_core.core import Core
from payment_core.server import ServerThread
from possim.demo_stage import DemoStage
from possim.world import open_world
from protocol import Clock, system_clock
from terminal.catalog import Catalog
from terminal.client import PaymentClient
from terminal.register import CameraFeed, RegisterApp, RegisterOptions, Till
from terminal.register_store import RegisterStore
from tests.support import customer
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

CLERK_ID, CLERK_NAME, CLERK_PIN = "1001", "Sato", "2580"
FUNDS = 30_000
FIXED_TIME = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)  # 12:15 in Tokyo


@dataclass
class World:
    core: Core
    server: ServerThread
    terminal_id: str
    terminal_secret: bytes
    wallet: WalletState
    minter: CodeMinter
    stage: DemoStage
    catalog: Catalog
    tmp: Path
    store: RegisterStore | None = None
    printer: ReceiptPrinter | None = None
    display: MemoryDisplay = field(default_factory=MemoryDisplay)
    clients: list[PaymentClient] = field(default_factory=list)

    def app(
        self,
        *,
        camera: bool = False,
        sleep: Callable[[float], None] | None = None,
        clock: Clock = system_clock,
        show_clock: bool = True,
        serial_scanner: SerialBase | None = None,
    ) -> RegisterApp:
        """A register app; ``sleep`` replaces the client's waits (retry backoff, confirmation polls)."""
        if self.store is None:  # a second app in one test is the same register, restarted
            self.store = RegisterStore(self.tmp / "register.db", clock, terminal_id="R1")
            self.store.clerks.add_clerk(CLERK_ID, CLERK_NAME, CLERK_PIN)
        self.printer = dummy_printer(self.tmp / "receipts.escpos")
        client = PaymentClient(
            self.server.url,
            self.terminal_id,
            self.terminal_secret,
            sleep=sleep or (lambda _s: None),
            backoff=0.01,
            retries=1,
            timeout=5,
        )
        self.clients.append(client)
        till = Till(
            self.store,
            self.catalog,
            client,
            self.printer,
            self.display,
            store_name="possim 渋谷一丁目店",
            terminal_id="R1",
            clock=clock,
        )
        feed = None
        if camera:
            filmed = FramePacedCamera(self.stage.screen, fps=20)
            feed = CameraFeed(
                filmed.open,
                default_decoder(retail=True),
                label="virtual camera",
                max_fps=20,
                preview_fps=5,
                clock=filmed.clock,
            )
        options = RegisterOptions(receipt_path=str(self.tmp / "receipts.escpos"), show_clock=show_clock)
        return RegisterApp(till, feed, self.stage, options, serial_scanner=serial_scanner)


class FramePacedCamera:
    """The virtual camera, and a clock that moves one frame's time (1/fps s) per frame it films.

    The register's dedupe window ("the same code again within 3 s is the same scan") then runs on the
    camera's own time: on a loaded machine a frame may come seconds late, and a product still held up
    must not be rung up twice because the machine was slow.
    """

    def __init__(self, screen: Callable[[], Image.Image | None], fps: int) -> None:
        self._screen, self._fps = screen, fps
        self._camera: VirtualCamera | None = None
        self._started = system_clock()

    def open(self) -> VirtualCamera:
        self._camera = VirtualCamera(self._screen, seed=3)
        return self._camera

    def clock(self) -> datetime:
        frames = self._camera.frames_made if self._camera is not None else 0
        return self._started + timedelta(seconds=frames / self._fps)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    # The register runs on the real clock, so Hanako's phone cannot be made three days old: the
    # new-device top-up limit (tested in tests/security) is lifted for the register's world.
    opened = open_world(
        tmp_path,
        customer("hanako@example.jp"),
        store="possim 渋谷一丁目店",
        device_name="test phone",
        wallet_name="Hanako's wallet",
        funds=FUNDS,
        limits=Limits(new_device_hours=0),
        actor="test",
    )
    with opened as built:
        catalog = Catalog.default()
        stage = DemoStage(built.minter, "Hanako's wallet", [product.jan for product in catalog][:5])
        world = World(
            built.core,
            built.server,
            built.terminal.id,
            built.terminal.secret,
            built.customer.wallet,
            built.minter,
            stage,
            catalog,
            tmp_path,
        )
        yield world
        for client in world.clients:
            client.close()
        if world.store is not None:
            world.store.close()
