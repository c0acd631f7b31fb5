"""A seeded set of hard 1280×720 frames: a phone showing a fresh payment code under bad conditions.

The conditions are those a counter camera meets and the raw libraries stumble on: a phone tilted well
past the 15° design rule, held far away (a small code), moved during the exposure (motion blur), under a
lamp whose reflection washes part of the code out (glare), in low light (dim and noisy), and a mix of
them. Each condition films both forms of the code: the QR on the wallet's Pay screen, and the numeric
form's Code 128 across a phone turned to landscape. ``hardware`` never imports the wallet, so the
caller hands in the screens (``possim.bench.scan.SCREENS`` draws both with ``wallet_app.render``).

Frames come in short clips (``clip`` frames of one phone held still, its pose drifting a few pixels,
a fresh code each clip), as a camera at 30 fps sees a phone. Everything is drawn from the seed: the same
seed gives the same frames, byte for byte. The conditions were calibrated so that zxing-cpp and pyzbar
together (their union) miss a few percent of the frames (``possim bench --only scan``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial

from PIL import Image

from hardware.frames import Frame
from hardware.virtual_camera import CameraConditions, VirtualCamera
from protocol import PaymentCode, mint_code

ScreenFor = Callable[[PaymentCode], Image.Image]
FORMS = ("qr", "code128")  # the QR form on the Pay screen; the numeric form's Code 128 on a landscape phone

# Calibrated on zxing-cpp 3.1.1 and pyzbar 0.1.9: see the module docstring.
HARD_CONDITIONS: dict[str, CameraConditions] = {
    "tilted": CameraConditions(
        phone_scale=(0.45, 0.65), max_roll_deg=15, max_tilt_deg=40, blur_sigma=(0.4, 1.0), glare_probability=0.2
    ),
    "far": CameraConditions(
        phone_scale=(0.23, 0.32), max_roll_deg=12, max_tilt_deg=12, blur_sigma=(0.3, 0.9), glare_probability=0.0
    ),
    "motion": CameraConditions(
        phone_scale=(0.4, 0.6), max_tilt_deg=10, blur_sigma=(0.0, 0.6), motion_blur_px=(2, 6), glare_probability=0.0
    ),
    "glare": CameraConditions(
        phone_scale=(0.4, 0.6), glare_probability=1.0, glare_size=(0.2, 0.35), glare_strength=(0.9, 1.25)
    ),
    "low-light": CameraConditions(
        phone_scale=(0.35, 0.55), exposure=(0.22, 0.4), noise_sigma=9, glare_probability=0.0, jpeg_quality=(50, 75)
    ),
    "mixed": CameraConditions(
        phone_scale=(0.32, 0.5),
        max_roll_deg=12,
        max_tilt_deg=25,
        blur_sigma=(0.3, 0.9),
        motion_blur_px=(0, 4),
        glare_probability=0.4,
        glare_size=(0.12, 0.25),
        glare_strength=(0.6, 1.1),
        exposure=(0.5, 1.0),
        noise_sigma=6,
        jpeg_quality=(45, 75),
    ),
}


@dataclass(frozen=True)
class HardFrame:
    """One frame of the set and what is on it: ``truth`` holds every text that is a right read."""

    condition: str
    form: str  # "qr" or "code128": which screen the phone shows
    clip: int  # frames of one clip show one phone, held still, and one code
    index: int  # the frame's place in its clip
    frame: Frame
    truth: frozenset[str]
    phone: tuple[tuple[float, float], ...]  # the phone's corners in the frame (for tests and the bench only)


def _derived(seed: int, *parts: object) -> int:
    """A seed for one clip, independent of every other clip's (and of Python's hash randomisation)."""
    text = ":".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _same(screen: Image.Image) -> Image.Image:
    return screen


def clip_code(seed: int, condition: str, form: str, clip: int) -> PaymentCode:
    """The fresh code a clip's phone shows, minted offline from the seed like a wallet's."""
    number = _derived(seed, "code", condition, form, clip)
    secret = hashlib.sha256(f"possim hard frames {seed}".encode()).digest()
    return mint_code(secret, 1 + number % 9_999_999, 1_795_000_000 + number % 86_400, number % 10)


def hard_frames(
    screens: Mapping[str, ScreenFor],
    per_condition: int,
    seed: int = 0,
    clip: int = 3,
    conditions: Mapping[str, CameraConditions] | None = None,
) -> Iterator[HardFrame]:
    """``per_condition`` frames of each form under each condition (rounded up to whole clips)."""
    if per_condition < 1 or clip < 1:
        raise ValueError("per_condition and clip must be at least 1")
    chosen = HARD_CONDITIONS if conditions is None else conditions
    for name in chosen:
        for form in FORMS:
            for number in range(-(-per_condition // clip)):
                yield from hard_clip(screens, name, form, number, seed, clip, chosen[name])


def hard_clip(
    screens: Mapping[str, ScreenFor],
    condition: str,
    form: str,
    number: int,
    seed: int = 0,
    clip: int = 3,
    conditions: CameraConditions | None = None,
) -> Iterator[HardFrame]:
    """One clip of the set on its own (the same frames :func:`hard_frames` gives): to replay a miss."""
    held = replace(conditions or HARD_CONDITIONS[condition], hold_frames=clip)
    code = clip_code(seed, condition, form, number)
    screen = screens[form](code)
    truth = frozenset({code.qr, code.numeric} if form == "qr" else {code.numeric})
    camera = VirtualCamera(partial(_same, screen), seed=_derived(seed, condition, form, number), conditions=held)
    for index in range(clip):
        frame = camera.read()
        corners = camera.last_corners
        assert frame is not None and corners is not None  # no max_frames, and the phone is up
        phone = tuple((float(x), float(y)) for x, y in corners)
        yield HardFrame(condition, form, number, index, frame, truth, phone)
