"""Reading what the web wallet's page shows: its code area decoded with zxing-cpp."""

from __future__ import annotations

import io

import numpy as np
import zxingcpp
from PIL import Image
from playwright.sync_api import Page

from tests.web.conftest import WAIT_MS

QR, CODE128 = zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128


def decode(png: bytes) -> dict[str, list[str]]:
    """Every QR and Code 128 zxing-cpp reads in a PNG, by format."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    found: dict[str, list[str]] = {"qr": [], "code128": []}
    for barcode in zxingcpp.read_barcodes(pixels):
        if barcode.format in (QR, CODE128):
            found["qr" if barcode.format == QR else "code128"].append(barcode.text)
    return found


def read_code_area(page: Page) -> tuple[str, str]:
    """Screenshot the code card and decode it: (QR text, Code 128 text); both must read."""
    found = decode(page.locator("#code-area").screenshot())
    assert len(found["qr"]) == 1 and len(found["code128"]) == 1, found
    return found["qr"][0], found["code128"][0]


def shown_digits(page: Page) -> str:
    return (page.locator("#code-digits").text_content() or "").replace(" ", "")


def next_code(page: Page, previous: str) -> str:
    """Tap the code for a new one; wait until the digits change."""
    page.locator("#code-area").click()
    page.wait_for_function(
        "prev => document.getElementById('code-digits').textContent.replaceAll(' ', '') !== prev",
        arg=previous,
        timeout=WAIT_MS,
    )
    return shown_digits(page)
