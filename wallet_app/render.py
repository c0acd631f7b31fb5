"""Render a payment code: the QR, the Code 128 barcode, and the whole phone screen the camera sees.

Code 128 is drawn with zxing-cpp's writer: python-barcode 0.16.1 drops a leading "99" digit pair, and
every rendering here is round-tripped through a real decoder in the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import qrcode
import zxingcpp
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

from protocol import PaymentCode

MAX_QR_VERSION = 3  # versions 1-3 read far more often from a phone screen at arm's length
SCREEN_SIZE = (540, 1000)
_INK = (20, 20, 28)
_ACCENT = (214, 40, 57)


def render_qr(text: str, box_size: int = 10, border: int = 4) -> Image.Image:
    """A QR at ECC level M; refuses anything that would need a version above 3."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    qr.add_data(text)
    qr.make(fit=True)
    if qr.version > MAX_QR_VERSION:
        raise ValueError(f"the code needs QR version {qr.version}; possim keeps to version {MAX_QR_VERSION}")
    image: Image.Image = qr.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("L")


def render_code128(text: str, module_px: int = 3, height: int = 150) -> Image.Image:
    """A Code 128 with quiet zones, ``module_px`` pixels a module, as a greyscale image."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.Code128)
    strip = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=module_px, add_quiet_zones=True))
    row = strip[strip.shape[0] // 2]
    return Image.fromarray(np.repeat(row[np.newaxis, :], height, axis=0).astype(np.uint8), mode="L")


def group_digits(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render_phone_screen(code: PaymentCode, wallet_name: str, seconds_left: int) -> Image.Image:
    """The wallet's Pay screen in a phone bezel: name, QR, barcode, digits and the countdown."""
    width, height = SCREEN_SIZE
    phone = Image.new("RGB", SCREEN_SIZE, (12, 12, 14))
    draw = ImageDraw.Draw(phone)
    draw.rounded_rectangle((14, 14, width - 14, height - 14), radius=42, fill=(255, 255, 255))
    draw.rectangle((14, 60, width - 14, 130), fill=_ACCENT)
    draw.text((width // 2, 95), wallet_name, font=_font(30), fill=(255, 255, 255), anchor="mm")
    draw.text((width // 2, 165), "Show this code at the register", font=_font(22), fill=_INK, anchor="mm")
    qr = render_qr(code.qr, box_size=11, border=3).convert("RGB")
    qr = qr.resize((400, 400), Image.Resampling.NEAREST)
    phone.paste(qr, ((width - 400) // 2, 195))
    bars = render_code128(code.numeric, module_px=2, height=110).convert("RGB")
    bars = bars.resize((min(bars.width, width - 60), bars.height), Image.Resampling.NEAREST)
    phone.paste(bars, ((width - bars.width) // 2, 625))
    draw.text((width // 2, 770), group_digits(code.numeric), font=_font(28), fill=_INK, anchor="mm")
    colour = _ACCENT if seconds_left <= 10 else _INK
    draw.text((width // 2, 840), f"expires in {max(0, seconds_left)} s", font=_font(26), fill=colour, anchor="mm")
    draw.text(
        (width // 2, 900), "single use · refreshes automatically", font=_font(18), fill=(120, 120, 130), anchor="mm"
    )
    return phone


def save_png(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
