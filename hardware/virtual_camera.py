"""A virtual camera: films the wallet's phone screen as a 1280×720 webcam would, from a seed.

Each frame places the current screen (or nothing, when the phone is lowered) on a cluttered
background with a mild perspective tilt, slight blur, sensor noise, an occasional glare spot and JPEG
artefacts. The same seed gives the same frames, so a failing read can be replayed exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from hardware.frames import Frame, FrameSource

ScreenProvider = Callable[[], Image.Image | None]


@dataclass(frozen=True)
class CameraConditions:
    """How hard the shot is. Defaults: a phone held up to a counter camera, under 15° of tilt."""

    size: tuple[int, int] = (1280, 720)
    phone_height: tuple[float, float] = (0.78, 0.95)  # of the frame height
    max_rotation_deg: float = 8.0
    max_tilt: float = 0.06  # corner jitter, as a fraction of the phone's size
    blur_sigma: tuple[float, float] = (0.0, 1.2)
    noise_sigma: float = 5.0
    glare_probability: float = 0.3
    jpeg_quality: tuple[int, int] = (60, 90)


class VirtualCamera(FrameSource):
    def __init__(
        self,
        screen: ScreenProvider,
        seed: int = 0,
        conditions: CameraConditions | None = None,
        max_frames: int | None = None,
    ) -> None:
        self._screen = screen
        self.conditions = conditions or CameraConditions()
        self._rng = np.random.default_rng(seed)
        self._max_frames = max_frames
        self.frames_made = 0
        width, height = self.conditions.size
        self._background = self._make_background(width, height)
        self._noise = [self._noise_field(width, height) for _ in range(3)]
        self._glare = self._glare_blob(260)
        self._cached_screen: tuple[int, Frame] | None = None

    def _make_background(self, width: int, height: int) -> Frame:
        ramp = np.linspace(70, 150, width, dtype=np.float32)[np.newaxis, :]
        base = np.repeat(ramp, height, axis=0)
        frame = cv2.merge([base * 0.9, base, base * 1.05]).clip(0, 255).astype(np.uint8)
        for _ in range(14):  # shelves, packets, a till: soft clutter the decoder must ignore
            x, y = int(self._rng.integers(0, width)), int(self._rng.integers(0, height))
            w, h = int(self._rng.integers(40, 260)), int(self._rng.integers(20, 160))
            colour = tuple(int(c) for c in self._rng.integers(30, 220, size=3))
            cv2.rectangle(frame, (x, y), (x + w, y + h), colour, thickness=-1)
        return np.asarray(cv2.GaussianBlur(frame, (0, 0), 3), dtype=np.uint8)

    def _noise_field(self, width: int, height: int) -> tuple[Frame, Frame]:
        noise = self._rng.normal(0, self.conditions.noise_sigma, size=(height, width, 3))
        return np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8)

    @staticmethod
    def _glare_blob(diameter: int) -> Frame:
        axis = np.linspace(-1, 1, diameter, dtype=np.float32)
        xx, yy = np.meshgrid(axis, axis)
        blob = np.exp(-(xx**2 + yy**2) * 3.5) * 170
        return np.asarray(cv2.merge([blob, blob, blob]), dtype=np.uint8)

    def _screen_pixels(self, image: Image.Image) -> Frame:
        key = id(image)
        if self._cached_screen is None or self._cached_screen[0] != key:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
            self._cached_screen = (key, np.ascontiguousarray(rgb[:, :, ::-1]))
        return self._cached_screen[1]

    def _place(self, frame: Frame, screen: Frame) -> None:
        c = self.conditions
        width, height = c.size
        src_h, src_w = screen.shape[:2]
        target_h = height * self._rng.uniform(*c.phone_height)
        scale = target_h / src_h
        w, h = src_w * scale, src_h * scale
        cx = self._rng.uniform(w / 2 + 10, width - w / 2 - 10)
        cy = height / 2 + self._rng.uniform(-0.04, 0.04) * height
        angle = math.radians(self._rng.uniform(-c.max_rotation_deg, c.max_rotation_deg))
        cos, sin = math.cos(angle), math.sin(angle)
        corners = []
        for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
            jx, jy = self._rng.uniform(-c.max_tilt, c.max_tilt, size=2) * (w, h)
            corners.append((cx + (dx + jx) * cos - (dy + jy) * sin, cy + (dx + jx) * sin + (dy + jy) * cos))
        source = np.array([[0, 0], [src_w, 0], [src_w, src_h], [0, src_h]], dtype=np.float32)
        matrix = cv2.getPerspectiveTransform(source, np.array(corners, dtype=np.float32))
        cv2.warpPerspective(screen, matrix, (width, height), dst=frame, borderMode=cv2.BORDER_TRANSPARENT)

    def _add_glare(self, frame: Frame) -> None:
        height, width = frame.shape[:2]
        size = self._glare.shape[0]
        x, y = int(self._rng.integers(0, width - size)), int(self._rng.integers(0, height - size))
        region = frame[y : y + size, x : x + size]
        cv2.add(region, self._glare, dst=region)

    def read(self) -> Frame | None:
        if self._max_frames is not None and self.frames_made >= self._max_frames:
            return None
        c = self.conditions
        frame = self._background.copy()
        image = self._screen()
        if image is not None:
            self._place(frame, self._screen_pixels(image))
        sigma = self._rng.uniform(*c.blur_sigma)
        if sigma > 0.3:
            frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), sigma), dtype=np.uint8)
        if self._rng.random() < c.glare_probability:
            self._add_glare(frame)
        plus, minus = self._noise[int(self._rng.integers(0, len(self._noise)))]
        cv2.add(frame, plus, dst=frame)
        cv2.subtract(frame, minus, dst=frame)
        quality = int(self._rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1))
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        self.frames_made += 1
        if not ok:
            return frame
        return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), dtype=np.uint8)
