"""Decoders behind one interface, each reporting whether it is usable here, normalised to ScanResult.

zxing-cpp, limited to the formats possim uses, is the fastest and most robust on phone-screen frames;
pyzbar reads some glare frames zxing-cpp misses, so the default chain tries it only when zxing-cpp
finds nothing. OpenCV's QR detector is slower and weaker; ``cv2.barcode`` reads only EAN/UPC (it
misreports Code 128 as EAN), so it is not used for Code 128 at all.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from hardware.frames import Frame
from protocol import looks_like_payment_code

QR = "QRCode"
CODE128 = "Code128"
Points = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ScanResult:
    text: str
    format: str  # QRCode | Code128
    decoder: str
    points: Points | None = None

    @property
    def is_payment_code(self) -> bool:
        return looks_like_payment_code(self.text)


class Decoder(Protocol):
    name: str

    def is_usable(self) -> bool: ...

    def decode(self, frame: Frame) -> list[ScanResult]: ...


def _grey(frame: Frame) -> Frame:
    if frame.ndim == 2:
        return frame
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


class ZxingDecoder:
    name = "zxing-cpp"

    def __init__(self) -> None:
        self._zxing: Any = None
        if self.is_usable():
            import zxingcpp

            self._zxing = zxingcpp
            self._formats = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128)

    def is_usable(self) -> bool:
        return importlib.util.find_spec("zxingcpp") is not None

    def decode(self, frame: Frame) -> list[ScanResult]:
        found = []
        for barcode in self._zxing.read_barcodes(_grey(frame), formats=self._formats):
            kind = QR if barcode.format == self._zxing.BarcodeFormat.QRCode else CODE128
            p = barcode.position
            corners = ((p.top_left.x, p.top_left.y), (p.top_right.x, p.top_right.y),
                       (p.bottom_right.x, p.bottom_right.y), (p.bottom_left.x, p.bottom_left.y))  # fmt: skip
            found.append(ScanResult(barcode.text, kind, self.name, corners))
        return found


class PyzbarDecoder:
    name = "pyzbar"

    def __init__(self) -> None:
        self._decode: Any = None
        self._symbols: list[Any] = []
        try:
            from pyzbar import pyzbar

            self._decode = pyzbar.decode
            self._symbols = [pyzbar.ZBarSymbol.QRCODE, pyzbar.ZBarSymbol.CODE128]
        except (ImportError, OSError):  # OSError: the zbar shared library is missing
            self._decode = None

    def is_usable(self) -> bool:
        return self._decode is not None

    def decode(self, frame: Frame) -> list[ScanResult]:
        found = []
        for symbol in self._decode(_grey(frame), symbols=self._symbols):
            try:
                text = symbol.data.decode("ascii")
            except UnicodeDecodeError:
                continue
            kind = QR if symbol.type == "QRCODE" else CODE128
            found.append(ScanResult(text, kind, self.name, tuple((int(p.x), int(p.y)) for p in symbol.polygon)))
        return found


class OpenCVQRDecoder:
    name = "opencv"

    def __init__(self) -> None:
        self._detector = cv2.QRCodeDetector()

    def is_usable(self) -> bool:
        return True

    def decode(self, frame: Frame) -> list[ScanResult]:
        try:
            text, points, _ = self._detector.detectAndDecode(frame)
        except cv2.error:
            return []
        if not text:
            return []
        corners = tuple((int(x), int(y)) for x, y in points.reshape(-1, 2)) if points is not None else None
        return [ScanResult(text, QR, self.name, corners)]


class ChainDecoder:
    """Tries each decoder in turn; the next runs only when the previous found nothing."""

    def __init__(self, decoders: Sequence[Decoder]) -> None:
        self.decoders = [decoder for decoder in decoders if decoder.is_usable()]
        self.name = "+".join(decoder.name for decoder in self.decoders)

    def is_usable(self) -> bool:
        return bool(self.decoders)

    def decode(self, frame: Frame) -> list[ScanResult]:
        for decoder in self.decoders:
            found = decoder.decode(frame)
            if found:
                return found
        return []


def available_decoders() -> list[Decoder]:
    return [ZxingDecoder(), PyzbarDecoder(), OpenCVQRDecoder()]


def decoder_by_name(name: str) -> Decoder:
    if name == "auto":
        return default_decoder()
    for decoder in available_decoders():
        if decoder.name == name or decoder.name.split("-")[0] == name:
            if not decoder.is_usable():
                raise ValueError(f"decoder {name} is not usable on this machine")
            return decoder
    raise ValueError(f"no decoder called {name}")


def default_decoder() -> ChainDecoder:
    """zxing-cpp first, pyzbar when it finds nothing."""
    return ChainDecoder([ZxingDecoder(), PyzbarDecoder()])
