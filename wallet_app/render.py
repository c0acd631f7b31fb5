"""Render a payment code: the QR, the Code 128 barcode, and the whole phone screen the camera sees.

The QR is drawn from ``qrcode``'s module matrix at ECC level M, a whole number of pixels a module, and
refuses anything above version 3 (the 40-digit QR form is version 2). Code 128 is drawn with
zxing-cpp's writer: python-barcode 0.16.1 drops a leading "99" digit pair (``"9912"`` comes back as
``"12"``). Every rendering here is round-tripped through real decoders in ``tests/hardware``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import qrcode
import zxingcpp
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M
from qrcode.exceptions import DataOverflowError

from protocol import PaymentCode

MAX_QR_VERSION = 3  # versions 1-3 read far more often from a phone screen at arm's length
QR_QUIET_MODULES = 4  # ISO/IEC 18004 asks for 4 light modules around the symbol
SCREEN_SIZE = (540, 1000)
BEZEL_PX = 14
_QR_TARGET_PX = 400
_INK = (20, 20, 28)
_ACCENT = (214, 40, 57)
_MUTED = (120, 120, 130)
_WHITE = (255, 255, 255)
_BEZEL = (12, 12, 14)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def qr_modules(text: str, border: int = QR_QUIET_MODULES, max_version: int = MAX_QR_VERSION) -> npt.NDArray[np.bool_]:
    """The QR's modules (True is dark), quiet zone included; ``ValueError`` above ``max_version`` (payment
    codes keep to version 3; the authenticator's otpauth URI needs about 6)."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
    qr.add_data(text)
    try:
        qr.make(fit=True)
    except DataOverflowError:
        raise ValueError("the text does not fit any QR version") from None
    if qr.version > max_version:
        raise ValueError(f"the text needs QR version {qr.version}; possim keeps to version {max_version} or below")
    return np.array(qr.get_matrix(), dtype=np.bool_)


def render_qr(text: str, box_size: int = 10, border: int = QR_QUIET_MODULES) -> Image.Image:
    """A greyscale QR at ECC level M, ``box_size`` pixels a module; ``ValueError`` above version 3."""
    if box_size < 1:
        raise ValueError("box_size must be at least 1 pixel")
    modules = qr_modules(text, border)
    pixels = np.where(modules, 0, 255).astype(np.uint8)
    pixels = np.repeat(np.repeat(pixels, box_size, axis=0), box_size, axis=1)
    return Image.fromarray(pixels, mode="L")


def code128_modules(text: str) -> npt.NDArray[np.bool_]:
    """The bars of a Code 128 symbol (True is a dark module), 10-module quiet zones included."""
    if not text or not text.isascii():
        raise ValueError("Code 128 carries 1 or more ASCII characters")
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.Code128)
    strip = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=1, add_quiet_zones=True))
    row: npt.NDArray[np.bool_] = strip[strip.shape[0] // 2] < 128
    return row


def render_code128(text: str, module_px: int = 3, height: int = 150) -> Image.Image:
    """A greyscale Code 128 with quiet zones, ``module_px`` pixels a module, ``height`` pixels tall."""
    if module_px < 1 or height < 1:
        raise ValueError("module_px and height must be at least 1 pixel")
    row = np.where(code128_modules(text), 0, 255).astype(np.uint8)
    row = np.repeat(row, module_px)
    return Image.fromarray(np.repeat(row[np.newaxis, :], height, axis=0), mode="L")


def group_digits(text: str, size: int = 4) -> str:
    """``"38123456"`` -> ``"3812 3456"``: how the digits are shown for hand entry."""
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _fitted(draw: ImageDraw.ImageDraw, text: str, max_width: int, size: int, min_size: int = 16) -> tuple[str, Font]:
    """Shrink the font until ``text`` fits ``max_width``; below ``min_size``, cut it with an ellipsis."""
    while size > min_size and draw.textlength(text, font=_font(size)) > max_width:
        size -= 2
    font = _font(size)
    if draw.textlength(text, font=font) <= max_width:
        return text, font
    while text and draw.textlength(text + "…", font=font) > max_width:
        text = text[:-1]
    return text + "…", font


def render_phone_screen(code: PaymentCode, wallet_name: str, seconds_left: int) -> Image.Image:
    """The wallet's Pay screen in a dark phone bezel: name, QR, barcode, grouped digits, countdown."""
    width, height = SCREEN_SIZE
    centre = width // 2
    phone = Image.new("RGB", SCREEN_SIZE, _BEZEL)
    draw = ImageDraw.Draw(phone)
    draw.rounded_rectangle((BEZEL_PX, BEZEL_PX, width - BEZEL_PX, height - BEZEL_PX), radius=42, fill=_WHITE)
    draw.rounded_rectangle((centre - 50, BEZEL_PX + 10, centre + 50, BEZEL_PX + 22), radius=6, fill=_BEZEL)
    draw.rectangle((BEZEL_PX, 60, width - BEZEL_PX, 130), fill=_ACCENT)
    name, name_font = _fitted(draw, wallet_name, width - 2 * BEZEL_PX - 40, 30)
    draw.text((centre, 95), name, font=name_font, fill=_WHITE, anchor="mm")
    draw.text((centre, 162), "Show this code at the register", font=_font(22), fill=_INK, anchor="mm")

    qr_side = len(qr_modules(code.qr))
    qr = render_qr(code.qr, box_size=max(1, _QR_TARGET_PX // qr_side))
    phone.paste(qr.convert("RGB"), ((width - qr.width) // 2, 190 + (_QR_TARGET_PX - qr.height) // 2))

    usable = width - 2 * BEZEL_PX - 20
    module_px = max(1, usable // len(code128_modules(code.numeric)))
    bars = render_code128(code.numeric, module_px=module_px, height=110)
    phone.paste(bars.convert("RGB"), ((width - bars.width) // 2, 615))

    draw.text((centre, 765), group_digits(code.numeric), font=_font(28), fill=_INK, anchor="mm")
    colour = _ACCENT if seconds_left <= 10 else _INK
    draw.text((centre, 835), f"expires in {max(0, seconds_left)} s", font=_font(26), fill=colour, anchor="mm")
    draw.text((centre, 895), "single use · refreshes automatically", font=_font(18), fill=_MUTED, anchor="mm")
    return phone


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` as PNG, creating the folder; returns the path written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, format="PNG")
    return target
