"""A virtual camera: films the wallet's phone screen as a 1280×720 counter webcam would, from a seed.

Each frame places the current screen (or nothing, when the phone is lowered) on a cluttered
background: the phone turned in the image plane, tilted out of it (a true 3-D tilt through a pinhole
camera, under 15° by default), slightly blurred, with exposure drift, sensor noise, an occasional
glare spot on the screen and JPEG artefacts. Harder shots are a matter of :class:`CameraConditions`:
a far-away phone (a small ``phone_scale``), motion blur along a random direction (``motion_blur_px``),
a specular glare strong enough to wash the code out (``glare_strength`` above 1), low light (a low
``exposure`` with more noise), and a phone held still for a few frames (``hold_frames``: the pose
drifts a little between them, as a hand does). The same seed gives the same frames, so a failing read
can be replayed exactly; a condition's new effects draw from the seed only when they are switched on,
so the default frames never change. A 1280×720 frame takes about 7 ms (measured in ``tests/hardware``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from hardware.frames import Frame, FrameSource

ScreenProvider = Callable[[], Image.Image | None]
DEFAULT_SIZE = (1280, 720)
_NOISE_MARGIN = 32
_NOISE_SEED = 0x9E3779B9  # the noise field is shared by every camera; each camera picks its own offsets


@dataclass(frozen=True)
class CameraConditions:
    """How hard the shot is. Defaults: a phone held up close to a counter camera.

    ``phone_scale`` is the phone's height as a fraction of the frame height; ``max_tilt_deg`` the
    out-of-plane tilt about each axis (the design rule "under about 15°"); ``max_roll_deg`` the turn in
    the image plane. Ranges are drawn uniformly per frame. ``glare_size`` is the glare's diameter as a
    fraction of the frame's shorter side and ``glare_strength`` its peak over 190 grey levels (above
    about 1.2 the middle of the spot saturates: the modules there are gone). ``motion_blur_px`` is the
    length of a straight motion-blur streak (off at 0). ``hold_frames`` is how many frames share one
    pose before the phone is shown anew (1: a new pose every frame).
    """

    phone_scale: tuple[float, float] = (0.78, 0.95)
    max_roll_deg: float = 8.0
    max_tilt_deg: float = 12.0
    blur_sigma: tuple[float, float] = (0.0, 1.2)
    noise_sigma: float = 5.0
    glare_probability: float = 0.3
    exposure: tuple[float, float] = (0.85, 1.1)  # gain on every pixel
    jpeg_quality: tuple[int, int] = (60, 90)
    glare_size: tuple[float, float] = (1 / 6, 1 / 3)
    glare_strength: tuple[float, float] = (0.6, 1.0)
    motion_blur_px: tuple[float, float] = (0.0, 0.0)
    hold_frames: int = 1

    def __post_init__(self) -> None:
        low, high = self.phone_scale
        if not 0 < low <= high <= 1.2:
            raise ValueError("phone_scale must be 0 < low <= high <= 1.2")
        if not 0 <= self.max_tilt_deg < 60:
            raise ValueError("max_tilt_deg must be in [0, 60)")
        if not 0 <= self.glare_probability <= 1:
            raise ValueError("glare_probability must be in [0, 1]")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError("jpeg_quality must be 1 <= low <= high <= 100")
        if not 0 < self.glare_size[0] <= self.glare_size[1] <= 1:
            raise ValueError("glare_size must be 0 < low <= high <= 1")
        if not 0 <= self.glare_strength[0] <= self.glare_strength[1] <= 3:
            raise ValueError("glare_strength must be 0 <= low <= high <= 3")
        if not 0 <= self.motion_blur_px[0] <= self.motion_blur_px[1] <= 64:
            raise ValueError("motion_blur_px must be 0 <= low <= high <= 64")
        if self.hold_frames < 1:
            raise ValueError("hold_frames must be at least 1")

    @classmethod
    def easy(cls) -> CameraConditions:
        """A steady, square-on phone: for demos and tests that are not about the camera."""
        return cls(max_roll_deg=2, max_tilt_deg=3, blur_sigma=(0, 0.5), noise_sigma=2, glare_probability=0)

    @classmethod
    def hard(cls) -> CameraConditions:
        """A small, tilted phone under a lamp: most frames still hold a readable QR for zxing-cpp."""
        return cls(
            phone_scale=(0.35, 0.5),
            max_roll_deg=14,
            max_tilt_deg=15,
            blur_sigma=(1.0, 2.2),
            noise_sigma=8,
            glare_probability=0.8,
            jpeg_quality=(40, 60),
        )


@lru_cache(maxsize=4)
def _noise_field(width: int, height: int, sigma: float) -> tuple[Frame, Frame]:
    """Gaussian sensor noise split into its positive and negative parts, a margin larger than a frame."""
    rng = np.random.default_rng(_NOISE_SEED)
    shape = (height + _NOISE_MARGIN, width + _NOISE_MARGIN, 3)
    noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
    plus = np.clip(noise, 0, 255).astype(np.uint8)
    minus = np.clip(-noise, 0, 255).astype(np.uint8)
    plus.flags.writeable = False
    minus.flags.writeable = False
    return plus, minus


@lru_cache(maxsize=1)
def _glare_blob(diameter: int = 256) -> npt.NDArray[np.float32]:
    axis = np.linspace(-1, 1, diameter, dtype=np.float32)
    xx, yy = np.meshgrid(axis, axis)
    blob: npt.NDArray[np.float32] = np.exp(-(xx**2 + yy**2) * 3.5) * np.float32(190)
    return blob


@lru_cache(maxsize=64)
def _motion_kernel(length: int, angle_step: int) -> npt.NDArray[np.float32]:
    """A straight streak ``length`` pixels long at ``angle_step`` × 10°, normalised: a hand's quick move."""
    size = length | 1
    kernel = np.zeros((size, size), dtype=np.float32)
    angle = math.radians(angle_step * 10)
    half = (length - 1) / 2
    centre = size // 2
    dx, dy = math.cos(angle) * half, math.sin(angle) * half
    start = (round(centre - dx), round(centre - dy))
    end = (round(centre + dx), round(centre + dy))
    cv2.line(kernel, start, end, 1.0, thickness=1, lineType=cv2.LINE_AA)
    kernel /= kernel.sum()
    kernel.flags.writeable = False
    return kernel


@dataclass(frozen=True)
class _Pose:
    """Where the phone is: its height in pixels, its roll, pitch and yaw, and where its centre falls."""

    phone_h: float
    angles: tuple[float, float, float]
    shift: tuple[float, float]  # each in [-1, 1]: the share of the free room the centre moves across
    drift: tuple[float, float] = (0.0, 0.0)  # pixels, for a held phone


def _rotation(roll_deg: float, pitch_deg: float, yaw_deg: float) -> npt.NDArray[np.float64]:
    """Turn about the camera axis (roll), then tilt about the horizontal (pitch) and vertical (yaw) axes."""
    r, p, y = (math.radians(v) for v in (roll_deg, pitch_deg, yaw_deg))
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rotation: npt.NDArray[np.float64] = ry @ rx @ rz
    return rotation


class VirtualCamera(FrameSource):
    """A seeded webcam pointed at a phone. ``screen()`` gives the phone's screen, or ``None`` when lowered.

    The screen image is treated as immutable: return a new image when the screen changes (as
    ``render_phone_screen`` does); the camera keeps the last one and converts it only when it changes.
    """

    def __init__(
        self,
        screen: ScreenProvider,
        seed: int = 0,
        size: tuple[int, int] = DEFAULT_SIZE,
        conditions: CameraConditions | None = None,
        max_frames: int | None = None,
    ) -> None:
        width, height = size
        if width < 64 or height < 64:
            raise ValueError("the frame must be at least 64×64")
        self._screen = screen
        self.size = size
        self.conditions = conditions or CameraConditions()
        self._rng = np.random.default_rng(seed)
        self._max_frames = max_frames
        self.frames_made = 0
        self.last_corners: npt.NDArray[np.float32] | None = None  # where the phone landed in the last frame
        self._pose: _Pose | None = None
        self._background = self._make_background(width, height)
        self._noise = _noise_field(width, height, self.conditions.noise_sigma)
        self._cached_image: Image.Image | None = None
        self._cached_pixels: Frame | None = None

    def _make_background(self, width: int, height: int) -> Frame:
        ramp = np.linspace(70, 150, width, dtype=np.float32)[np.newaxis, :]
        base = np.repeat(ramp, height, axis=0)
        frame = cv2.merge([base * 0.9, base, base * 1.05]).clip(0, 255).astype(np.uint8)
        for _ in range(14):  # shelves, packets, a till: soft clutter the decoder must ignore
            x, y = int(self._rng.integers(0, width)), int(self._rng.integers(0, height))
            w, h = int(self._rng.integers(width // 32, width // 5)), int(self._rng.integers(height // 36, height // 4))
            colour = tuple(int(c) for c in self._rng.integers(30, 220, size=3))
            cv2.rectangle(frame, (x, y), (x + w, y + h), colour, thickness=-1)
        return np.asarray(cv2.GaussianBlur(frame, (0, 0), 3), dtype=np.uint8)

    def _screen_pixels(self, image: Image.Image) -> Frame:
        if image is not self._cached_image or self._cached_pixels is None:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
            self._cached_pixels = np.ascontiguousarray(rgb[:, :, ::-1])
            self._cached_image = image  # held, so its id can never be reused by another image
        return self._cached_pixels

    def _draw_pose(self) -> _Pose:
        c = self.conditions
        phone_h = self.size[1] * self._rng.uniform(*c.phone_scale)
        roll, pitch, yaw = (self._rng.uniform(-m, m) for m in (c.max_roll_deg, c.max_tilt_deg, c.max_tilt_deg))
        shift = (self._rng.uniform(-1, 1), self._rng.uniform(-1, 1))
        return _Pose(phone_h, (roll, pitch, yaw), shift)

    def _next_pose(self) -> _Pose:
        """A new pose every ``hold_frames`` frames; in between, the held phone drifts a few pixels and a degree."""
        hold = self.conditions.hold_frames
        if self._pose is None or hold == 1 or self.frames_made % hold == 0:
            self._pose = self._draw_pose()
            return self._pose
        pose = self._pose
        jitter = self._rng.normal(0, 0.6, size=3)
        step = self._rng.normal(0, 2.5, size=2)
        angles = (pose.angles[0] + jitter[0], pose.angles[1] + jitter[1], pose.angles[2] + jitter[2])
        self._pose = _Pose(pose.phone_h, angles, pose.shift, (pose.drift[0] + step[0], pose.drift[1] + step[1]))
        return self._pose

    def _phone_corners(self, src_w: int, src_h: int) -> npt.NDArray[np.float32]:
        """Project the phone's corners through a pinhole camera after rolling and tilting it in 3-D."""
        pose = self._next_pose()
        width, height = self.size
        focal = width / (2 * math.tan(math.radians(35)))  # a 70° webcam
        phone_h = pose.phone_h
        phone_w = phone_h * src_w / src_h
        half = np.array([phone_w / 2, phone_h / 2, 0.0])
        local = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=np.float64) * half
        rotated = local @ _rotation(*pose.angles).T
        projected = focal * rotated[:, :2] / (focal + rotated[:, 2:3])
        span_x = max(0.0, width - (projected[:, 0].max() - projected[:, 0].min())) / 2 - 8
        span_y = max(0.0, height - (projected[:, 1].max() - projected[:, 1].min())) / 2 - 8
        centre = (
            width / 2 + pose.shift[0] * max(0.0, span_x) + pose.drift[0],
            height / 2 + pose.shift[1] * max(0.0, min(span_y, height * 0.05)) + pose.drift[1],
        )
        corners: npt.NDArray[np.float32] = (projected + centre).astype(np.float32)
        return corners

    def _place(self, frame: Frame, screen: Frame) -> npt.NDArray[np.float32]:
        src_h, src_w = screen.shape[:2]
        corners = self._phone_corners(src_w, src_h)
        height, width = frame.shape[:2]
        x0, y0 = (max(0, math.floor(v)) for v in corners.min(axis=0))
        x1, y1 = (min(limit, math.ceil(v)) for limit, v in zip((width, height), corners.max(axis=0), strict=True))
        if x1 <= x0 or y1 <= y0:
            return corners
        source = np.array([[0, 0], [src_w, 0], [src_w, src_h], [0, src_h]], dtype=np.float32)
        matrix = cv2.getPerspectiveTransform(source, corners - np.array([x0, y0], dtype=np.float32))
        region = frame[y0:y1, x0:x1]
        cv2.warpPerspective(
            screen, matrix, (x1 - x0, y1 - y0), dst=region, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT
        )
        return corners

    def _add_glare(self, frame: Frame, corners: npt.NDArray[np.float32] | None) -> None:
        """A soft bright spot, on the screen when there is one (that is where it hurts a decoder)."""
        height, width = frame.shape[:2]
        side = min(height, width)
        low, high = (int(side * share + 1e-9) for share in self.conditions.glare_size)
        diameter = int(self._rng.integers(low, max(low + 1, high)))
        if corners is not None:
            centre = corners.mean(axis=0) + self._rng.uniform(-0.35, 0.35, size=2) * np.ptp(corners, axis=0)
        else:
            centre = self._rng.uniform((0, 0), (width, height))
        x0, y0 = int(centre[0]) - diameter // 2, int(centre[1]) - diameter // 2
        fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(width, x0 + diameter), min(height, y0 + diameter)
        if fx1 <= fx0 or fy1 <= fy0:
            return
        blob = cv2.resize(_glare_blob(), (diameter, diameter), interpolation=cv2.INTER_LINEAR)
        strength = np.float32(self._rng.uniform(*self.conditions.glare_strength))
        patch = np.minimum(blob[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] * strength, 255).astype(np.uint8)
        region = frame[fy0:fy1, fx0:fx1]
        cv2.add(region, cv2.merge([patch, patch, patch]), dst=region)

    def _add_motion_blur(self, frame: Frame) -> None:
        """Smear the frame along a random direction, as a phone moved during the exposure is."""
        length = round(self._rng.uniform(*self.conditions.motion_blur_px))
        angle_step = int(self._rng.integers(0, 18))
        if length >= 2:
            cv2.filter2D(frame, -1, _motion_kernel(length, angle_step), dst=frame, borderType=cv2.BORDER_REFLECT)

    def read(self) -> Frame | None:
        if self._max_frames is not None and self.frames_made >= self._max_frames:
            return None
        c = self.conditions
        frame = self._background.copy()
        image = self._screen()
        corners = self._place(frame, self._screen_pixels(image)) if image is not None else None
        self.last_corners = corners
        if c.motion_blur_px[1] > 0:
            self._add_motion_blur(frame)
        sigma = self._rng.uniform(*c.blur_sigma)
        if sigma > 0.3:
            frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), sigma), dtype=np.uint8)
        if self._rng.random() < c.glare_probability:
            self._add_glare(frame, corners)
        gain = self._rng.uniform(*c.exposure)
        if abs(gain - 1) > 0.01:
            frame = np.asarray(cv2.convertScaleAbs(frame, alpha=gain), dtype=np.uint8)
        if c.noise_sigma > 0:
            dx, dy = (int(v) for v in self._rng.integers(0, _NOISE_MARGIN, size=2))
            height, width = frame.shape[:2]
            plus, minus = self._noise
            cv2.add(frame, plus[dy : dy + height, dx : dx + width], dst=frame)
            cv2.subtract(frame, minus[dy : dy + height, dx : dx + width], dst=frame)
        quality = int(self._rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1))
        self.frames_made += 1
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            return frame
        return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), dtype=np.uint8)
