"""Image work for a second try at a frame the decoders missed: find the code, then make it easier to read.

Each function is cheap on a crop (a millisecond or two on a 300×300 region) and none of them decodes:
:class:`hardware.decoders.RetryDecoder` runs them on a miss and hands their output to the decoders.

- :func:`candidate_regions` finds where a code probably is without reading it: barcodes and QR codes
  are the densest patches of strong edges in a frame (a 2×-downscaled gradient map, box-filtered and
  thresholded; thin outlines such as a phone's bezel are opened away).
- :func:`upscaled` enlarges a small code (a far-away phone: 1-2 pixels a module) so the decoders'
  binarisers have a few pixels a module to work with.
- :func:`equalised` is CLAHE: contrast restored tile by tile, for a code half washed out by glare or
  dimmed by low light. (A local normalisation, dividing out the local mean and spread, was measured
  too: on the hard frame set it read nothing CLAHE did not, so it is not here.)
- :func:`deblurred` undoes motion blur: the streak's direction and length are estimated from the crop
  (the gradient structure tensor's weakest direction, where a QR is smeared, and its strongest, across
  a barcode's bars; the length is where the autocorrelation of the derivative along that direction
  dips, as in Yitzhaky and Kopeika's method), then a Wiener filter removes that streak.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from hardware.frames import Frame

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels, x1 and y1 excluded
FloatImage = npt.NDArray[np.float32]

_OPEN = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))
_MIN_SIDE = 20  # a region narrower than this (at half scale) cannot hold a code a decoder could read


def grey(frame: Frame) -> Frame:
    """The frame as one 8-bit channel (a grey frame is returned as it is)."""
    if frame.ndim == 2:
        return frame
    code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return np.asarray(cv2.cvtColor(frame, code), dtype=np.uint8)


def candidate_regions(image: Frame, limit: int = 2, margin: float = 0.15) -> list[Region]:
    """Up to ``limit`` regions likely to hold a code, best first, each grown by ``margin`` of its size."""
    height, width = image.shape[:2]
    small = cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    gx = cv2.convertScaleAbs(cv2.Sobel(small, cv2.CV_16S, 1, 0))
    gy = cv2.convertScaleAbs(cv2.Sobel(small, cv2.CV_16S, 0, 1))
    energy = cv2.blur(cv2.add(gx, gy), (9, 9))
    peak = float(cv2.minMaxLoc(energy)[1])
    if peak < 24:
        return []
    _, mask = cv2.threshold(energy, max(20.0, 0.4 * peak), 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _OPEN)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    scored: list[tuple[float, Region]] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if min(w, h) < _MIN_SIDE // 2 or max(w, h) < _MIN_SIDE:
            continue
        weight = float(cv2.mean(energy[y : y + h, x : x + w])[0]) * cv2.contourArea(contour)
        grow_x, grow_y = int(w * margin) + 4, int(h * margin) + 4
        region = (
            max(0, 2 * (x - grow_x)),
            max(0, 2 * (y - grow_y)),
            min(width, 2 * (x + w + grow_x)),
            min(height, 2 * (y + h + grow_y)),
        )
        scored.append((weight, region))
    scored.sort(key=lambda item: -item[0])
    return [region for _, region in scored[:limit]]


def grown(points: tuple[tuple[int, int], ...], shape: tuple[int, ...], margin: float = 0.35) -> Region:
    """The box around a code's corners, grown by ``margin`` of its size, within the frame."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    grow_x, grow_y = int((x1 - x0) * margin) + 8, int((y1 - y0) * margin) + 8
    height, width = shape[:2]
    return max(0, x0 - grow_x), max(0, y0 - grow_y), min(width, x1 + grow_x), min(height, y1 + grow_y)


def overlap(first: Region, second: Region) -> float:
    """Intersection over union of two regions (0: apart, 1: the same)."""
    x0, y0 = max(first[0], second[0]), max(first[1], second[1])
    x1, y1 = min(first[2], second[2]), min(first[3], second[3])
    shared = max(0, x1 - x0) * max(0, y1 - y0)
    areas = [(r[2] - r[0]) * (r[3] - r[1]) for r in (first, second)]
    return shared / max(1, areas[0] + areas[1] - shared)


def upscaled(crop: Frame, target: int = 300, longest: int = 900, most: float = 3.0) -> tuple[Frame, float]:
    """The crop enlarged so its shorter side reaches ``target`` pixels (at most ``most`` times, and its
    longer side at most ``longest``), and the factor; a crop already large enough is returned as it is."""
    height, width = crop.shape[:2]
    factor = min(most, target / max(1, min(height, width)), longest / max(1, height, width))
    if factor <= 1.15:
        return crop, 1.0
    return resized(crop, factor), factor


def resized(image: Frame, factor: float) -> Frame:
    """``image`` scaled by ``factor`` (bicubic: a code's edges stay steep)."""
    if factor == 1.0:
        return image
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


@lru_cache(maxsize=2)
def _clahe(clip: float, tiles: int) -> cv2.CLAHE:
    return cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles))


def equalised(crop: Frame) -> Frame:
    """CLAHE: each tile's contrast stretched (clipped), so a washed-out or dim part of the code reappears."""
    return np.asarray(_clahe(4.0, 8).apply(crop), dtype=np.uint8)


def _structure_angle(pixels: FloatImage) -> float:
    """The direction (radians, image axes) along which the crop changes least: a motion streak's."""
    gx = cv2.Sobel(pixels, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(pixels, cv2.CV_32F, 0, 1, ksize=3)
    sxx, syy, sxy = float(cv2.mean(gx * gx)[0]), float(cv2.mean(gy * gy)[0]), float(cv2.mean(gx * gy)[0])
    return (0.5 * math.atan2(2 * sxy, sxx - syy) + math.pi / 2) % math.pi


def _streak_length(pixels: FloatImage, angle: float, longest: int) -> tuple[float, float]:
    """Where the autocorrelation of the derivative along ``angle`` dips most: the streak's length, and how deep."""
    height, width = pixels.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), math.degrees(angle), 1.0)
    turned = cv2.warpAffine(pixels, turn, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    inner = turned[height // 6 : height - height // 6, width // 6 : width - width // 6]
    derivative = np.ascontiguousarray(np.diff(inner, axis=1))
    size = cv2.getOptimalDFTSize(derivative.shape[1] + longest + 1)
    padded = cv2.copyMakeBorder(derivative, 0, 0, 0, size - derivative.shape[1], cv2.BORDER_CONSTANT)
    spectrum = cv2.dft(padded, flags=cv2.DFT_ROWS | cv2.DFT_COMPLEX_OUTPUT)
    power = cv2.magnitude(spectrum[..., 0], spectrum[..., 1]) ** 2
    rows = cv2.idft(power, flags=cv2.DFT_ROWS | cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    correlation = rows[:, : longest + 1].mean(axis=0)
    if correlation[0] <= 0:
        return 0.0, 0.0
    correlation = correlation / correlation[0]
    lag = int(np.argmin(correlation[2:])) + 2
    depth = float(correlation[lag])
    if lag < longest:  # the dip's bottom between samples: a parabola through the three around it
        before, after = float(correlation[lag - 1]), float(correlation[lag + 1])
        curve = before - 2 * depth + after
        if curve > 0:
            return lag + 0.5 * (before - after) / curve, depth
    return float(lag), depth


def streak_psf(length: float, angle: float) -> FloatImage:
    """A straight streak ``length`` pixels long at ``angle`` (radians, image axes), summing to 1."""
    size = (math.ceil(length) | 1) + 2
    kernel = np.zeros((size, size), dtype=np.float32)
    centre, half = size // 2, (length - 1) / 2
    dx, dy = math.cos(angle) * half, math.sin(angle) * half
    start = (round((centre - dx) * 16), round((centre - dy) * 16))
    end = (round((centre + dx) * 16), round((centre + dy) * 16))
    cv2.line(kernel, start, end, 1.0, thickness=1, lineType=cv2.LINE_AA, shift=4)
    total = float(kernel.sum())
    if total == 0:
        kernel[centre, centre] = total = 1.0
    return kernel / total


def _spectrum(image: FloatImage) -> npt.NDArray[np.complex64]:
    planes = cv2.dft(image, flags=cv2.DFT_COMPLEX_OUTPUT)
    return np.asarray(planes).view(np.complex64)[..., 0]


def blur_estimates(crop: Frame, longest: int = 20, window: int = 256) -> list[tuple[float, float]]:
    """Likely motion streaks (length, angle), best first: along the crop's weakest direction (a QR's
    streak), and across its strongest (the only streak that hurts a barcode's bars). Measured on the
    middle ``window`` pixels, where the code is."""
    height, width = crop.shape
    top, left = max(0, (height - window) // 2), max(0, (width - window) // 2)
    pixels = crop[top : top + window, left : left + window].astype(np.float32)
    weakest = _structure_angle(pixels)
    found = []
    for angle in (weakest, (weakest + math.pi / 2) % math.pi):
        length, depth = _streak_length(pixels, angle, longest)
        if length >= 2.5 and depth < -0.1:
            found.append((depth, length, angle))
    found.sort()
    return [(length, angle) for _, length, angle in found]


def deblurred(crop: Frame, longest: int = 20, noise: float = 0.02) -> list[Frame]:
    """The crop with each likely motion streak removed by a Wiener filter, ``conj(H) / (|H|² + noise)``
    in the frequency domain (none when the crop shows no streak). The streak is measured at full size;
    a large crop (a near code, big modules) is filtered at half size and brought back."""
    estimates = blur_estimates(crop, longest)
    if not estimates:
        return []
    halve = min(crop.shape) > 320
    work = cv2.resize(crop, (crop.shape[1] // 2, crop.shape[0] // 2), interpolation=cv2.INTER_AREA) if halve else crop
    scale = 0.5 if halve else 1.0
    pad = longest + 2
    height, width = work.shape
    size_y, size_x = cv2.getOptimalDFTSize(height + 2 * pad), cv2.getOptimalDFTSize(width + 2 * pad)
    padded = cv2.copyMakeBorder(
        work, pad, size_y - height - pad, pad, size_x - width - pad, cv2.BORDER_REPLICATE
    ).astype(np.float32)
    image = _spectrum(padded)
    restored = []
    for length, angle in estimates:
        psf = streak_psf(length * scale, angle)
        kernel = np.zeros((size_y, size_x), dtype=np.float32)
        kernel[: psf.shape[0], : psf.shape[1]] = psf
        kernel = np.roll(kernel, (-(psf.shape[0] // 2), -(psf.shape[1] // 2)), axis=(0, 1))
        blur = _spectrum(kernel)
        ratio = (image * np.conj(blur) / (blur.real**2 + blur.imag**2 + np.float32(noise))).astype(np.complex64)
        planes = np.ascontiguousarray(ratio).view(np.float32).reshape(size_y, size_x, 2)
        pixels = cv2.idft(planes, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)[pad : pad + height, pad : pad + width]
        sharp = np.asarray(np.clip(pixels, 0, 255), dtype=np.uint8)
        if halve:
            sharp = np.asarray(cv2.resize(sharp, crop.shape[::-1], interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
        restored.append(sharp)
    return restored
