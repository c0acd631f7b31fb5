"""Decoders behind one interface, each reporting whether it is usable here, normalised to ScanResult.

zxing-cpp, limited to the formats possim uses, is the fastest and most robust on phone-screen frames
(about 3 ms a 1280×720 frame); pyzbar (about 18 ms) reads some glare frames zxing-cpp misses. OpenCV's
QR detector is slower (about 28 ms) and weaker on hard frames; ``cv2.barcode`` misreports Code 128 as
EAN, so OpenCV is used for QR only. The shapes differ (zxing-cpp: ``.text``, ``.format``,
``.position``; pyzbar: ``.data`` bytes, ``.type`` such as ``"QRCODE"``, ``.polygon``; OpenCV: a string
and a corner array); each becomes one ScanResult.

The default decoder (:class:`RetryDecoder`) reads a frame with zxing-cpp first, at the same cost as
ever; on a miss it spends what is left of a 30 ms budget on second tries aimed at the code: a crop of
where ``hardware.enhance`` locates one (or where the last code was read), enlarged when small, then
equalised (CLAHE) against glare and low light, then de-blurred (a Wiener filter for the motion streak
it measures), then read by pyzbar, and last pyzbar on the whole frame, the old chain's second decoder.
On ``possim bench --only scan``'s hard frames that reads more than zxing-cpp and pyzbar together.
A second try hands over a payment code only, and only one that ``protocol.parse_code`` accepts.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from hardware import enhance
from hardware.frames import Frame
from protocol import ProtocolError, Symbology, looks_like_payment_code, parse_code

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


Enhancement = Callable[[Frame, Frame, float], list[Frame]]  # (crop, crop enlarged, factor) -> pictures
ENHANCEMENTS: dict[str, Enhancement] = {
    "crop": lambda crop, big, factor: [big],
    "clahe": lambda crop, big, factor: [enhance.equalised(big)],
    "deblur": lambda crop, big, factor: [enhance.resized(p, factor) for p in enhance.deblurred(crop)],
}
REGION_STEPS = ("crop", "clahe", "deblur", "pyzbar-crop")  # in this order, on each region
RETRY_STEPS = ("last", "locate", *REGION_STEPS, "whole")
RETRY_BUDGET_MS = 30.0  # a whole decode, first try included: 30 frames a second on one core


def _payment_codes(results: list[ScanResult]) -> list[ScanResult]:
    """Only reads that pass the payment code's own checks (form, prefix, Damm digit): a retry never guesses."""
    kept = []
    for result in results:
        try:
            parse_code(result.text)
        except ProtocolError:
            continue
        kept.append(result)
    return kept


class RetryDecoder:
    """``first`` on the whole frame; on a miss, second tries within ``budget_ms``, ``second`` among them.

    The regions tried are the best candidate :func:`hardware.enhance.candidate_regions` finds, the
    place of the last read (when it was at most ``memory_frames`` frames ago) and the other candidates,
    none twice. Each region is read by ``first`` as it is (enlarged when small: ``crop``), equalised
    (``clahe``) and de-blurred (``deblur``), then by ``second`` (``pyzbar-crop``); the next region comes
    after all of them, and ``second`` on the whole frame (``whole``) last. ``steps`` switches them on and
    off (``RETRY_STEPS``, all by default; ``last`` and ``locate`` name where to look). ``budget_ms``
    bounds the whole decode, first try included (``None``: no bound): a step is skipped when what it
    has cost so far would not fit in what is left. A second try's reads are kept only when they are
    payment codes ``protocol.parse_code`` accepts. ``tries`` counts the frames each step read; ``trace``
    holds the last decode's steps. One decoder per camera: it remembers where it last read a code.
    """

    def __init__(
        self,
        first: Decoder,
        second: Decoder | None,
        budget_ms: float | None = RETRY_BUDGET_MS,
        steps: Sequence[str] = RETRY_STEPS,
        memory_frames: int = 30,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        unknown = set(steps) - set(RETRY_STEPS)
        if unknown:
            raise ValueError(f"unknown retry steps: {sorted(unknown)}")
        self.first, self.second = first, second
        self.name = "+".join(d.name for d in (first, second) if d is not None)
        self.steps = tuple(steps)
        self._budget = None if budget_ms is None else budget_ms / 1000
        self._memory = memory_frames
        self._clock = clock
        self._frames = 0
        self._last: tuple[enhance.Region, int, tuple[int, ...]] | None = None  # region, frame number, frame size
        self._cost: dict[str, float] = {"whole": 0.018}
        self.tries: dict[str, int] = {}  # which step read a frame the first try missed
        self.trace: list[tuple[str, float, bool]] = []  # the last decode's steps: name, seconds, read

    def is_usable(self) -> bool:
        return self.first.is_usable()

    def decode(self, frame: Frame) -> list[ScanResult]:
        start = self._clock()
        self._frames += 1
        image = enhance.grey(frame)  # once, for the first try and every second try
        found = self.first.decode(image)
        self.trace = [("first", self._clock() - start, bool(found))]
        if not found:
            found = self._retry(image, start)
        if found and found[0].points:
            self._last = (enhance.grown(found[0].points, image.shape), self._frames, image.shape[:2])
        return found

    def _fits(self, step: str, deadline: float) -> bool:
        """Whether ``step`` should end before ``deadline``, judged by what it has cost so far."""
        return self._clock() + self._cost.get(step, 0.002) <= deadline

    def _note(self, step: str, started: float, found: list[ScanResult]) -> list[ScanResult]:
        spent = self._clock() - started
        self.trace.append((step, spent, bool(found)))
        self._cost[step] = 0.7 * self._cost[step] + 0.3 * spent if step in self._cost else spent
        if found and step != "locate":
            self.tries[step] = self.tries.get(step, 0) + 1
        return found

    def _regions(self, image: Frame) -> list[enhance.Region]:
        """The best located candidate, then the last read's place, then the other candidates; no two alike."""
        located: list[enhance.Region] = []
        if "locate" in self.steps:
            started = self._clock()
            located = enhance.candidate_regions(image)
            self._note("locate", started, [])
        remembered = []
        last = self._last
        if "last" in self.steps and last is not None and self._frames - last[1] <= self._memory:
            remembered = [last[0]] if last[2] == image.shape[:2] else []  # a frame of another size: elsewhere
        regions: list[enhance.Region] = []
        for region in located[:1] + remembered + located[1:]:
            if all(enhance.overlap(region, other) < 0.5 for other in regions):
                regions.append(region)
        return regions

    def _retry(self, image: Frame, start: float) -> list[ScanResult]:
        """Every step on the likeliest region, then on the next (the located candidate is nearly always
        the code), then the whole frame to pyzbar; each only while it fits in the budget."""
        deadline = start + self._budget if self._budget is not None else float("inf")
        if not self._fits("locate", deadline):
            return []
        for x0, y0, x1, y1 in self._regions(image):
            crop = image[y0:y1, x0:x1]
            big, factor = enhance.upscaled(crop)
            for step in REGION_STEPS:
                reader = self.second if step == "pyzbar-crop" else self.first
                if step not in self.steps or reader is None or not self._fits(step, deadline):
                    continue
                started = self._clock()
                pictures = [big] if step == "pyzbar-crop" else ENHANCEMENTS[step](crop, big, factor)
                found = self._note(step, started, _read_all(reader, pictures, factor, x0, y0))
                if found:
                    return found
        if "whole" in self.steps and self.second is not None and self._fits("whole", deadline):
            started = self._clock()
            return self._note("whole", started, self.second.decode(image))
        return []


def _read_all(reader: Decoder, pictures: list[Frame], factor: float, x0: int, y0: int) -> list[ScanResult]:
    """The first picture's payment codes that ``reader`` reads, with corners in the frame's pixels."""
    for picture in pictures:
        found = _payment_codes(reader.decode(picture))
        if found:
            return [_moved(result, factor, x0, y0) for result in found]
    return []


def _moved(result: ScanResult, factor: float, x0: int, y0: int) -> ScanResult:
    """A result read in a (scaled) crop, with its corners in the frame's pixels."""
    if result.points is None:
        return result
    points = tuple((round(x / factor) + x0, round(y / factor) + y0) for x, y in result.points)
    return ScanResult(result.text, result.format, result.decoder, points)


DECODER_NAMES = ("zxing", "pyzbar", "opencv")


def all_decoders() -> list[Decoder]:
    """One of each decoder, usable here or not."""
    return [ZxingDecoder(), PyzbarDecoder(), OpenCVQRDecoder()]


def available_decoders() -> list[Decoder]:
    """The decoders usable on this machine, best first."""
    return [decoder for decoder in all_decoders() if decoder.is_usable()]


def default_decoder(retail: bool = False) -> Decoder:
    """zxing-cpp first, then second tries on a miss (:class:`RetryDecoder`, pyzbar among them); without
    zxing-cpp, pyzbar alone, and OpenCV only if neither is installed.

    ``retail=True`` also reads product barcodes (EAN-13/JAN, EAN-8), as a register's camera does.
    """
    zxing, zbar = ZxingDecoder(retail), PyzbarDecoder(retail)
    if zxing.is_usable():
        return RetryDecoder(zxing, zbar if zbar.is_usable() else None)
    chain = ChainDecoder([zbar])
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
