"""Decoders behind one interface, each reporting whether it is usable here, normalised to ScanResult.

zxing-cpp, limited to the formats possim uses, is the fastest and most robust on phone-screen frames
(about 3 ms a 1280×720 frame); pyzbar (about 18 ms) reads some glare frames zxing-cpp misses, so the
default chain tries it only when zxing-cpp finds nothing. OpenCV's QR detector is slower (about 28 ms)
and weaker on hard frames; ``cv2.barcode`` misreports Code 128 as EAN, so OpenCV is used for QR only.
The shapes differ (zxing-cpp: ``.text``, ``.format``, ``.position``; pyzbar: ``.data`` bytes, ``.type``
such as ``"QRCODE"``, ``.polygon``; OpenCV: a string and a corner array); each becomes one ScanResult.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from hardware.frames import Frame
from protocol import Symbology, looks_like_payment_code

QR, CODE128 = Symbology.QR, Symbology.CODE128
EAN13, EAN8 = Symbology.EAN13, Symbology.EAN8  # product barcodes (JAN): read only by a register's retail decoder
_PYZBAR_NAMES = {"QRCODE": QR, "CODE128": CODE128, "EAN13": EAN13, "EAN8": EAN8}
Points = tuple[tuple[int, int], ...]


class DecoderUnavailableError(RuntimeError):
    """The decoder's library (or its shared library) is not installed here."""


@dataclass(frozen=True)
class ScanResult:
    """One symbol read from one frame, whichever decoder read it."""

    text: str
    format: Symbology  # QR ("QRCode"), CODE128 ("Code128"), or for a retail decoder EAN13 / EAN8
    decoder: str
    points: Points | None = None  # the symbol's corners in the frame, clockwise from top left when known

    @property
    def is_payment_code(self) -> bool:
        return looks_like_payment_code(self.text)


@runtime_checkable
class Decoder(Protocol):
    name: str

    def is_usable(self) -> bool: ...

    def decode(self, frame: Frame) -> list[ScanResult]: ...


def _grey(frame: Frame) -> Frame:
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY), dtype=np.uint8)
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _import(name: str) -> ModuleType | None:
    """Import an optional decoding library; ``None`` when it or its shared library is missing."""
    if importlib.util.find_spec(name.split(".")[0]) is None:
        return None
    try:
        return importlib.import_module(name)
    except (ImportError, OSError):  # OSError: the package is there, its shared library is not
        return None


class ZxingDecoder:
    """zxing-cpp, reading QR and Code 128 only (fewer formats: faster, and no EAN false positives).

    ``retail=True`` (a register's camera, which also reads products) adds EAN-13/JAN and EAN-8.
    """

    name = "zxing-cpp"

    def __init__(self, retail: bool = False) -> None:
        self._zxing: Any = _import("zxingcpp")
        if self._zxing is not None:
            fmt = self._zxing.BarcodeFormat
            self._names: dict[Any, Symbology] = {fmt.QRCode: QR, fmt.Code128: CODE128}
            if retail:
                self._names |= {fmt.EAN13: EAN13, fmt.EAN8: EAN8}
            self._formats = tuple(self._names)

    def is_usable(self) -> bool:
        return self._zxing is not None

    def decode(self, frame: Frame) -> list[ScanResult]:
        if self._zxing is None:
            raise DecoderUnavailableError("zxing-cpp is not installed (pip install zxing-cpp)")
        found = []
        for barcode in self._zxing.read_barcodes(_grey(frame), formats=self._formats):
            kind = self._names.get(barcode.format)
            if kind is None:  # never: zxing-cpp is asked for these formats only
                continue
            p = barcode.position
            corners = (
                (p.top_left.x, p.top_left.y),
                (p.top_right.x, p.top_right.y),
                (p.bottom_right.x, p.bottom_right.y),
                (p.bottom_left.x, p.bottom_left.y),
            )
            found.append(ScanResult(barcode.text, kind, self.name, corners))
        return found


class PyzbarDecoder:
    """ZBar through pyzbar, reading QR and Code 128 only (``retail=True`` adds EAN-13 and EAN-8);
    needs the libzbar0 shared library."""

    name = "pyzbar"

    def __init__(self, retail: bool = False) -> None:
        self._pyzbar: Any = _import("pyzbar.pyzbar")
        if self._pyzbar is not None:
            symbol = self._pyzbar.ZBarSymbol
            self._symbols = [symbol.QRCODE, symbol.CODE128]
            if retail:
                self._symbols += [symbol.EAN13, symbol.EAN8]

    def is_usable(self) -> bool:
        return self._pyzbar is not None

    def decode(self, frame: Frame) -> list[ScanResult]:
        if self._pyzbar is None:
            raise DecoderUnavailableError(
                "pyzbar or the zbar library is missing (pip install pyzbar; apt install libzbar0)"
            )
        found = []
        for symbol in self._pyzbar.decode(_grey(frame), symbols=self._symbols):
            try:
                text = symbol.data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            kind = _PYZBAR_NAMES.get(symbol.type)
            if kind is None:  # never: zbar is asked for these symbols only
                continue
            corners = tuple((int(p.x), int(p.y)) for p in symbol.polygon) or None
            found.append(ScanResult(text, kind, self.name, corners))
        return found


class OpenCVQRDecoder:
    """OpenCV's ``QRCodeDetector``: QR only, always present with OpenCV."""

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
    """Tries each usable decoder in turn; the next runs only when the previous found nothing."""

    def __init__(self, decoders: Sequence[Decoder]) -> None:
        self.decoders = [decoder for decoder in decoders if decoder.is_usable()]
        self.name = "+".join(decoder.name for decoder in self.decoders) or "none"

    def is_usable(self) -> bool:
        return bool(self.decoders)

    def decode(self, frame: Frame) -> list[ScanResult]:
        for decoder in self.decoders:
            found = decoder.decode(frame)
            if found:
                return found
        return []


DECODER_NAMES = ("zxing", "pyzbar", "opencv")


def all_decoders() -> list[Decoder]:
    """One of each decoder, usable here or not."""
    return [ZxingDecoder(), PyzbarDecoder(), OpenCVQRDecoder()]


def available_decoders() -> list[Decoder]:
    """The decoders usable on this machine, best first."""
    return [decoder for decoder in all_decoders() if decoder.is_usable()]


def default_decoder(retail: bool = False) -> ChainDecoder:
    """zxing-cpp, then pyzbar when it finds nothing (OpenCV only if neither is installed).

    ``retail=True`` also reads product barcodes (EAN-13/JAN, EAN-8), as a register's camera does.
    """
    chain = ChainDecoder([ZxingDecoder(retail), PyzbarDecoder(retail)])
    return chain if chain.is_usable() else ChainDecoder([OpenCVQRDecoder()])


def decoder_by_name(name: str) -> Decoder:
    """``zxing``, ``pyzbar``, ``opencv`` or ``auto``; ``ValueError`` for an unknown or unusable one."""
    if name == "auto":
        return default_decoder()
    for decoder in all_decoders():
        if name in (decoder.name, decoder.name.split("-")[0]):
            if not decoder.is_usable():
                raise ValueError(f"decoder {name} is not usable on this machine (its library is missing)")
            return decoder
    raise ValueError(f"no decoder called {name} (choose from {', '.join((*DECODER_NAMES, 'auto'))})")
