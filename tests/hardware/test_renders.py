"""Every rendering the wallet ships decodes back to exactly the code, with the real decoders."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image
from pyzbar import pyzbar

from hardware.scan_files import scan_path
from protocol import mint_code
from wallet_app.render import render_code128, render_phone_screen, render_qr, save_png

RNG = random.Random(2019)


def sample_codes(count: int) -> list[tuple[str, str]]:
    codes = []
    for index in range(count):
        secret = RNG.randbytes(32)
        device = RNG.choice([1, 99, 9_999_999, 9_900_099, RNG.randrange(1, 10_000_000)])
        code = mint_code(secret, device, 1_795_000_000 + RNG.randrange(0, 10**8), index % 10)
        codes.append((code.numeric, code.qr))
    return codes


CODES = sample_codes(40)


def zxing_texts(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(np.asarray(image.convert("L")))]


def pyzbar_texts(image: Image.Image) -> list[str]:
    return [symbol.data.decode() for symbol in pyzbar.decode(image.convert("L"))]


def test_codes_with_99_pairs_are_in_the_sample() -> None:
    """python-barcode drops a leading 99 pair: the sample must hold numbers that would expose it."""
    assert sum("99" in numeric for numeric, _ in CODES) >= 10


@pytest.mark.parametrize(("numeric", "qr"), CODES)
def test_qr_and_code128_round_trip(numeric: str, qr: str) -> None:
    assert zxing_texts(render_qr(qr)) == [qr]
    assert pyzbar_texts(render_qr(qr)) == [qr]
    assert zxing_texts(render_code128(numeric)) == [numeric]
    assert pyzbar_texts(render_code128(numeric)) == [numeric]


def test_qr_stays_at_version_3_or_below() -> None:
    with pytest.raises(ValueError, match="version"):
        render_qr("9" * 200)


def test_phone_screen_carries_both_renderings() -> None:
    code = mint_code(b"k" * 32, 99, 1_795_000_000, 9)
    screen = render_phone_screen(code, "Hanako's wallet", 7)
    assert screen.size == (540, 1000)
    found = {barcode.text for barcode in zxingcpp.read_barcodes(np.asarray(screen.convert("L")))}
    assert found == {code.qr, code.numeric}


def test_saved_pngs_scan_back_through_the_cli_path(tmp_path: Path) -> None:
    code = mint_code(b"p" * 32, 9_909, 1_795_000_000, 3)
    qr_file = save_png(render_qr(code.qr), tmp_path / "qr.png")
    bars_file = save_png(render_code128(code.numeric), tmp_path / "bars.png")
    assert scan_path(qr_file).codes == [(code.qr, "QRCode")]
    assert scan_path(bars_file).codes == [(code.numeric, "Code128")]
