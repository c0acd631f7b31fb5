"""The phone wallet with no signal: it still mints codes, says it is offline, and the QR it draws in the
terminal scans (the very cells on screen, painted as pixels, decoded by zxing-cpp)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import zxingcpp
from textual.widgets import Static

from protocol import parse_code, system_clock, verify_code
from tests.register.pilot_helpers import wait_for
from wallet_app.phone.app import make_wallet_app
from wallet_app.phone.cells import cells_to_image, code128_cells, qr_cells
from wallet_app.phone.screens.home import BarcodeScreen, HomeScreen
from wallet_app.phone.widgets import CellView
from wallet_app.state import WalletState, save_state

SECRET = bytes(range(32))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _decode(image: object, symbology: zxingcpp.BarcodeFormat = zxingcpp.BarcodeFormat.QRCode) -> list[str]:
    """What a scanner set to one symbology reads (a QR's modules can pass for a short 1-D code)."""
    return [
        result.text for result in zxingcpp.read_barcodes(np.asarray(image), formats=zxingcpp.BarcodeFormats(symbology))
    ]


async def test_offline_the_phone_mints_and_its_terminal_qr_scans(tmp_path: Path) -> None:
    core_url = f"http://127.0.0.1:{_closed_port()}"  # nothing listens: no signal
    state_path = tmp_path / "wallet.json"
    save_state(WalletState(core_url, "hanako@example.jp", 1, 4242, SECRET, "Hanako's wallet"), state_path)
    app = make_wallet_app(core_url, state_path, poll_seconds=0.2)
    async with app.run_test(size=(60, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is False, "offline status")
        screen = app.screen
        assert isinstance(screen, HomeScreen) and screen.code is not None
        assert "Offline" in str(screen.query_one("#status", Static).render())
        shown = screen.query_one("#pay-code", CellView).cell_rows()
        assert _decode(cells_to_image(shown)) == [screen.code.qr]
        checked = verify_code(parse_code(screen.code.qr), SECRET, system_clock())
        assert checked.device_id == 4242

        first = screen.code
        await pilot.press("r")  # a fresh code on demand, still offline
        await pilot.pause()
        assert screen.code is not None and screen.code.qr != first.qr

        await pilot.press("b")  # the Code 128 across the screen
        await wait_for(pilot, lambda: isinstance(app.screen, BarcodeScreen), "the barcode view")
        bars = app.screen.query_one("#barcode", CellView).cell_rows()
        assert _decode(cells_to_image(bars, cell_px=4), zxingcpp.BarcodeFormat.Code128) == [screen.code.numeric]


def test_the_cell_renderings_scan_for_many_codes() -> None:
    from protocol import mint_code

    for counter in range(10):
        code = mint_code(SECRET, 1_000 + counter * 999_001, 1_795_000_000 + counter * 7, counter)
        assert _decode(cells_to_image(qr_cells(code.qr))) == [code.qr]
        assert _decode(cells_to_image(code128_cells(code.numeric), cell_px=4), zxingcpp.BarcodeFormat.Code128) == [
            code.numeric
        ]
