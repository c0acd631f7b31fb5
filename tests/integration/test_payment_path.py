"""The whole in-store path, headless: wallet renders, virtual camera films, decoder reads, register pays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import numpy as np
import pytest
from PIL import Image

from hardware.decoders import Decoder, available_decoders
from hardware.scanner import scan_once
from hardware.virtual_camera import VirtualCamera
from payment_core import terminals
from payment_core.core import Core
from payment_core.server import ServerThread
from possim.cli import main
from protocol import ManualClock
from terminal.client import PaymentClient
from tests.support import SignedCaller, assert_books_balance, balance, fund_wallet
from wallet_app.minter import CodeMinter
from wallet_app.render import render_code128, render_phone_screen
from wallet_app.state import WalletState

DECODERS = {decoder.name: decoder for decoder in available_decoders() if decoder.is_usable()}


def _same(screen: Image.Image | None) -> Image.Image | None:
    """The same picture on every frame: what the virtual camera films."""
    return screen


@pytest.fixture
def register(core: Core, server: ServerThread, clock: ManualClock) -> Iterator[PaymentClient]:
    made = terminals.provision_terminal(core, "Ikebukuro 2-chome", "register-1", "test")
    with PaymentClient(server.url, made.terminal.id, made.secret, clock=clock) as client:
        yield client


def test_every_usable_decoder_is_tried() -> None:
    assert {"zxing-cpp", "pyzbar"} <= set(DECODERS), f"usable decoders: {sorted(DECODERS)}"


@pytest.mark.parametrize("decoder_name", sorted(DECODERS))
def test_code_filmed_by_the_virtual_camera_pays(
    decoder_name: str,
    core: Core,
    register: PaymentClient,
    terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    clock: ManualClock,
) -> None:
    decoder: Decoder = DECODERS[decoder_name]
    fund_wallet(terminal, minter, 5_000)
    clock.advance(1)
    paid = 0
    for index, amount in enumerate([398, 1_280, 157]):
        code = minter.mint()
        screen = render_phone_screen(code, "Hanako's wallet", 55)
        camera = VirtualCamera(partial(_same, screen), seed=100 + index)
        scanned = scan_once(camera, decoder, max_frames=60)
        assert scanned is not None, f"{decoder_name} read nothing in 60 frames"
        assert scanned.text == code.qr
        outcome = register.pay(f"{decoder_name}-{index}", amount, scanned.text)
        assert outcome.status == "succeeded", outcome
        paid += amount
        assert outcome.balance_after == 5_000 - paid
    assert balance(core, wallet) == 5_000 - paid
    assert_books_balance(core)


def test_code128_from_a_full_width_display_pays(
    core: Core, register: PaymentClient, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState
) -> None:
    """The numeric form, as a 1-D scanner or a landscape display would show it, decodes and pays."""
    fund_wallet(terminal, minter, 1_000)
    code = minter.mint()
    image = render_code128(code.numeric).convert("RGB")
    frame = np.ascontiguousarray(np.array(image)[:, :, ::-1])
    decoder = DECODERS["zxing-cpp"]
    results = decoder.decode(frame)
    assert [r.text for r in results] == [code.numeric]
    outcome = register.pay("code128-1", 640, results[0].text)
    assert (outcome.status, outcome.balance_after) == ("succeeded", 360)


def test_headless_demo_command_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = main(["demo", "--headless", "--payments", "6", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert exit_code == 0
    assert summary["payments"] == summary["approved"] == 6
    assert summary["declined"] == 0
    assert summary["replays_rejected"] == 6
    assert summary["expired_rejected"] == 5
    assert summary["forged_rejected"] == 5
    assert summary["audit"] == "balanced"
    assert 0 < summary["scan_to_decision_ms"]["p50"] <= summary["scan_to_decision_ms"]["p99"]
