"""Hostile image and video files made from real ones: the fuzz set of ``possim scan`` and the frame sources.

The real files are the wallet's Pay screen (its QR, drawn by ``wallet_app.render``) saved as PNG, JPEG,
GIF, BMP, TIFF and WebP, the numeric form's Code 128 as a PNG, and a short clip of the virtual camera
filming the phone as an MJPEG AVI and an MPEG-4 MP4 (``cv2.VideoWriter``). From them, everything drawn
from one seed (``random.Random``), :func:`make_hostile_files` writes:

- ``good``, ``no-code``: the real files, and a camera frame with the phone lowered (a picture, no code);
- ``zero-bytes``; ``truncated``: each real file cut after its signature, inside its header, at half and
  three bytes short;
- ``magic-noise``: a valid signature (PNG, JPEG, GIF, BMP, TIFF, WebP, MP4, AVI) before random bytes;
- ``bit-flip``: real files with 1 to 32 bits flipped at random places;
- ``bomb``: real decompression bombs (a 20000×20000 PNG of 400 KB, a 12000×12000 JPEG of 1.7 MB);
  ``huge-header``: headers claiming 100000×100000 pixels (PNG, GIF, JPEG, BMP, TIFF, WebP) with almost
  nothing behind them, and an AVI declaring 60000×60000 frames that holds 64×64 ones (read: FFmpeg
  believes the frames); ``at-limit``: a grey JPEG just within the pixel limit (read: the most an
  accepted image costs); ``lying-length``: a PNG, TIFF, BMP, WebP and AVI with one length field claiming
  2 GiB; ``scan-bomb``: a progressive JPEG repeating one scan 1000 times (each a pass over the image);
- ``huge-file``: sparse files one byte over the size limits (an image's, a video's);
- ``directory``, ``fifo``, ``unreadable`` (mode 000, and a file in a directory that cannot be searched),
  each named like an image or a video;
- ``wrong-extension``: a PNG named ``.jpg``, an AVI named ``.png``, a JPEG named ``.avi``, text named ``.png``;
- ``zero-frame-video``; ``garbage-frames`` (the clip with every frame's bytes replaced by noise);
  ``oversized-frames`` (an AVI declaring 64×64 frames that holds a 16000×16000 JPEG frame: FFmpeg
  decodes it at its own size before OpenCV scales it down).

Each :class:`HostileFile` says what must happen to it: refused with one of its ``reasons``, read (with
its ``codes``), or either (a flipped bit may land in a pixel or in a header). Root reads a mode-000
file, so ``unreadable`` files are expected to be read when the generator runs as root.
"""

from __future__ import annotations

import io
import math
import os
import random
import stat
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from hardware.frames import DEFAULT_LIMITS, FileLimits, Frame
from hardware.virtual_camera import CameraConditions, VirtualCamera
from protocol import mint_code
from wallet_app.render import render_code128, render_phone_screen

CODE = mint_code(b"h" * 32, 4242, 1_795_000_000, 3)
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF", "webp": "WEBP"}
VIDEO_FORMATS = {"avi": "MJPG", "mp4": "mp4v"}
KINDS = (
    "good", "no-code", "zero-bytes", "truncated", "magic-noise", "bit-flip", "bomb", "huge-header", "at-limit", "lying-length", "scan-bomb",
    "huge-file",
    "directory", "fifo", "unreadable", "wrong-extension", "zero-frame-video", "garbage-frames", "oversized-frames",
)  # fmt: skip
# Every reason possim gives for refusing a file (``hardware.frames``, ``hardware.scan_files``).
REASONS = (
    "no such file", "cannot be read", "is a directory", "not a regular file", "empty file", "too large",
    "truncated image", "not a readable image", "too many pixels", "too many JPEG scans", "not a readable video",
    "no frames could be read", "OpenCV could not read it", "not enough memory",
)  # fmt: skip
NOT_IMAGE = ("not a readable image", "truncated image", "too many pixels", "too many JPEG scans")
NOT_VIDEO = ("not a readable video", "no frames could be read", "too many pixels")
MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpg": b"\xff\xd8\xff\xe0",
    "gif": b"GIF89a",
    "bmp": b"BM",
    "tiff": b"II*\x00",
    "webp": b"RIFF\x00\x10\x00\x00WEBPVP8 ",
    "mp4": b"\x00\x00\x00\x18ftypisom",
    "avi": b"RIFF\x00\x10\x00\x00AVI LIST",
}
_GRAY_BLOCKS = b"\x28\xa2\x8a"  # four 8×8 blocks of mid-grey in a baseline JPEG with the standard tables


@dataclass(frozen=True)
class HostileFile:
    """One fuzz input and what must become of it.

    ``outcome``: ``"error"`` (refused, the message holding one of ``reasons``), ``"read"`` (no error;
    every text in ``codes`` found) or ``"either"`` (read or refused, but one line and no traceback).
    """

    path: Path
    kind: str
    outcome: str
    reasons: tuple[str, ...] = ()
    codes: frozenset[str] = field(default_factory=frozenset)


def make_hostile_files(
    folder: Path, seed: int = 0, flips: int = 2, limits: FileLimits = DEFAULT_LIMITS
) -> list[HostileFile]:
    """Write the fuzz set into ``folder`` (made if missing): ``flips`` bit-flipped copies of each real file."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    real = _real_files(folder)
    made: list[HostileFile] = []
    made += [HostileFile(path, "good", "read", codes=codes) for path, codes in real.items()]
    made.append(_write(folder / "lowered.png", _encode(_camera_frames(1, phone=False)[0], ".png"), "no-code", "read"))
    made += [_write(folder / f"empty.{ext}", b"", "zero-bytes", "error", ("empty file",)) for ext in ("png", "avi")]
    made += list(_truncated(folder, real))
    for ext, magic in MAGIC.items():
        noise = magic + rng.randbytes(4096)
        made.append(_write(folder / f"noise.{ext}", noise, "magic-noise", "error", _reasons(ext)))
    for path in real:
        for number in range(flips):
            made.append(_flipped(folder, path, number, rng))
    made += list(_bombs(folder))
    made += list(_lying_lengths(folder))
    made.append(_write(folder / "scan-bomb.jpg", scan_bomb(2000, 1000), "scan-bomb", "error", ("too many JPEG scans",)))
    side = math.isqrt(limits.max_pixels) // 8 * 8  # the biggest square grey JPEG within the pixel limit
    made.append(_write(folder / "at-limit.jpg", grey_jpeg(side, side), "at-limit", "read"))
    made += list(_special(folder, real, limits))
    made += list(_broken_videos(folder, rng))
    return made


def _reasons(ext: str) -> tuple[str, ...]:
    return NOT_VIDEO if ext in VIDEO_FORMATS else NOT_IMAGE


def _write(path: Path, data: bytes, kind: str, outcome: str, reasons: tuple[str, ...] = ()) -> HostileFile:
    path.write_bytes(data)
    return HostileFile(path, kind, outcome, reasons)


def _camera_frames(count: int, phone: bool = True, size: tuple[int, int] = (640, 360)) -> list[Frame]:
    screen = render_phone_screen(CODE, "fuzz wallet", 30) if phone else None
    easy = CameraConditions.easy()
    camera = VirtualCamera(lambda: screen, seed=11, conditions=easy, size=size, max_frames=count)
    frames = []
    while (frame := camera.read()) is not None:
        frames.append(frame)
    return frames


def _encode(frame: Frame, ext: str) -> bytes:
    ok, data = cv2.imencode(ext, frame)
    if not ok:
        raise RuntimeError(f"OpenCV cannot write {ext}")
    return bytes(data.tobytes())


def _real_files(folder: Path) -> dict[Path, frozenset[str]]:
    """The real files every hostile one is made from, each with the texts it must be read as."""
    screen = render_phone_screen(CODE, "fuzz wallet", 30).convert("RGB")
    both = frozenset({CODE.qr, CODE.numeric})
    files: dict[Path, frozenset[str]] = {}
    for ext, name in IMAGE_FORMATS.items():
        path = folder / f"screen.{ext}"
        screen.save(path, name, **({"quality": 90} if name in ("JPEG", "WEBP") else {}))
        files[path] = both
    code128 = folder / "code128.png"
    barcode = render_code128(CODE.numeric)
    canvas = Image.new("RGB", (barcode.width + 80, barcode.height + 80), "white")
    canvas.paste(barcode, (40, 40))
    canvas.save(code128, "PNG")
    files[code128] = frozenset({CODE.numeric})
    frames = _camera_frames(4)
    for ext, fourcc in VIDEO_FORMATS.items():
        path = folder / f"clip.{ext}"
        _write_video(path, frames, fourcc)
        files[path] = frozenset({CODE.qr})
    return files


def _write_video(path: Path, frames: list[Frame], fourcc: str) -> None:
    height, width = frames[0].shape[:2] if frames else (360, 640)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} video")
    for frame in frames:
        writer.write(frame)
    writer.release()


def _truncated(folder: Path, real: dict[Path, frozenset[str]]) -> Iterator[HostileFile]:
    for path in real:
        data = path.read_bytes()
        ext = path.suffix[1:]
        for cut in (8, 64, len(data) // 2, len(data) - 3):
            if path.name == "code128.png" and cut != len(data) // 2:
                continue
            target = folder / f"cut{cut}-{path.name}"
            # A cut video keeps the frames before the cut; a cut GIF, BMP, TIFF or WebP may still decode.
            sure = ext in ("png", "jpg") or cut <= 64
            yield _write(target, data[:cut], "truncated", "error" if sure else "either", _reasons(ext))


def _flipped(folder: Path, path: Path, number: int, rng: random.Random) -> HostileFile:
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 32)):
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(8)
    return _write(folder / f"flip{number}-{path.name}", bytes(data), "bit-flip", "either")


def _png(width: int, height: int, rows: int) -> bytes:
    """A greyscale PNG of ``width`` × ``height``: ``rows`` real rows of zeros (all of them for a bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the row's pixels
    body = b"".join(packer.compress(row) for _ in range(rows)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def grey_jpeg(width: int, height: int) -> bytes:
    """A real baseline JPEG of mid-grey, written directly: 3 bytes every 4 blocks, so a bomb is cheap."""
    template = _encode(np.full((16, 16), 128, np.uint8), ".jpg")
    scan = template.index(b"\xff\xda")
    header = bytearray(template[: scan + 2 + int.from_bytes(template[scan + 2 : scan + 4], "big")])
    frame = header.index(b"\xff\xc0")
    header[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    blocks = -(-width // 8) * -(-height // 8)
    body = _GRAY_BLOCKS * (-(-blocks // 4))
    return bytes(header) + body + b"\xff\xd9"


def scan_bomb(side: int, repeats: int) -> bytes:
    """A real progressive JPEG of ``side`` × ``side`` grey whose last scan is repeated ``repeats`` times:
    libjpeg warns and decodes every one, a full pass over the image each (a time bomb, not a memory one)."""
    written = io.BytesIO()
    Image.new("L", (side, side), 128).save(written, "JPEG", progressive=True, quality=90)
    data = written.getvalue()
    last = data[data.rindex(b"\xff\xda") : -2]
    return data[:-2] + last * repeats + b"\xff\xd9"


def _bombs(folder: Path) -> Iterator[HostileFile]:
    too_many = ("too many pixels",)
    yield _write(folder / "bomb.png", _png(20_000, 20_000, 20_000), "bomb", "error", too_many)
    yield _write(folder / "bomb.jpg", grey_jpeg(12_000, 12_000), "bomb", "error", too_many)
    side = 100_000
    yield _write(folder / "huge.png", _png(side, side, 1), "huge-header", "error", too_many)
    tiny = _encode(np.full((8, 8, 3), 90, np.uint8), ".jpg")
    frame = tiny.index(b"\xff\xc0")
    jpeg = tiny[: frame + 5] + struct.pack(">HH", 65_500, 65_500) + tiny[frame + 9 :]
    yield _write(folder / "huge.jpg", jpeg, "huge-header", "error", too_many)
    gif = b"GIF89a" + struct.pack("<HHBBB", 60_000, 60_000, 0, 0, 0)
    gif += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00\x3b"
    yield _write(folder / "huge.gif", gif, "huge-header", "error", too_many)
    bmp = b"BM" + struct.pack("<IHHI", 54 + 12, 0, 0, 54)
    bmp += struct.pack("<IiiHHIIiiII", 40, side, side, 1, 24, 0, 12, 2835, 2835, 0, 0) + bytes(12)
    yield _write(folder / "huge.bmp", bmp, "huge-header", "error", too_many)
    yield _write(folder / "huge.tiff", _tiff(side, side), "huge-header", "error", too_many)
    vp8x = struct.pack("<I", 0) + (16383).to_bytes(3, "little") * 2  # a 16384×16384 canvas, nothing else
    webp = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    yield _write(folder / "huge.webp", b"RIFF" + struct.pack("<I", len(webp)) + webp, "huge-header", "error", too_many)
    frames = [_encode(np.full((64, 64, 3), 120, np.uint8), ".jpg")] * 3
    # FFmpeg takes the frame size from the frames themselves, so these 64×64 frames play at 64×64.
    yield _write(folder / "huge-frames.avi", mjpeg_avi(frames, 60_000, 60_000), "huge-header", "read")


def _lying_lengths(folder: Path) -> Iterator[HostileFile]:
    """Real files with one length field claiming 2 GiB: a PNG's IDAT (OpenCV's reader allocates what a
    PNG chunk claims, so possim checks every chunk against the file), a TIFF's strip, a BMP's size,
    a WebP's bitstream, an AVI's first frame."""
    lie = struct.pack("<I", 0x7FFF_FFF0)
    png = bytearray((folder / "screen.png").read_bytes())
    at = png.index(b"IDAT")
    png[at - 4 : at] = lie[::-1]  # big-endian
    yield _write(folder / "lying.png", bytes(png), "lying-length", "error", ("truncated image",))
    tiff = bytearray((folder / "screen.tiff").read_bytes())
    first = struct.unpack("<I", tiff[4:8])[0]
    for entry in range(struct.unpack("<H", tiff[first : first + 2])[0]):
        at = first + 2 + 12 * entry
        if struct.unpack("<HHI", tiff[at : at + 8]) == (279, 4, 1):  # one strip's byte count, kept in the entry
            tiff[at + 8 : at + 12] = lie
    yield _write(folder / "lying.tiff", bytes(tiff), "lying-length", "either")
    bmp = bytearray((folder / "screen.bmp").read_bytes())
    bmp[2:6] = bmp[34:38] = lie  # the file's size and the pixels' size
    yield _write(folder / "lying.bmp", bytes(bmp), "lying-length", "either")
    webp = bytearray((folder / "screen.webp").read_bytes())
    webp[16:20] = lie  # the first chunk's size
    yield _write(folder / "lying.webp", bytes(webp), "lying-length", "either")
    avi = bytearray((folder / "clip.avi").read_bytes())
    at = avi.index(b"00dc", avi.index(b"movi"))
    avi[at + 4 : at + 8] = lie
    yield _write(folder / "lying.avi", bytes(avi), "lying-length", "either")


def _tiff(width: int, height: int) -> bytes:
    """A little-endian TIFF header for a ``width`` × ``height`` RGB image, with a 12-byte strip."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 2)]
    tags += [(273, 4, 8 + 2 + 12 * 8 + 4), (277, 3, 3), (278, 4, height), (279, 4, 12)]
    entries = b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags)) + entries + bytes(4) + bytes(12)


def mjpeg_avi(frames: list[bytes], width: int, height: int, fps: int = 10) -> bytes:
    """An AVI holding ``frames`` (JPEG files) as MJPEG, whatever frame size its headers declare."""

    def chunk(fourcc: bytes, data: bytes) -> bytes:
        return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def listed(kind: bytes, body: bytes) -> bytes:
        return chunk(b"LIST", kind + body)

    count = len(frames)
    avih = struct.pack("<14I", 1_000_000 // fps, 0, 0, 0x10, count, 0, 1, 0, width, height, 0, 0, 0, 0)
    strh = b"vidsMJPG" + struct.pack("<IHHIIIIIIiI4h", 0, 0, 0, 0, 1, fps, 0, count, 0, -1, 0, 0, 0, 0, 0)
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", 0, 0, 0, 0, 0)
    stream = listed(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf))
    movi, index = b"", b""
    for frame in frames:
        index += b"00dc" + struct.pack("<III", 0x10, 4 + len(movi), len(frame))
        movi += chunk(b"00dc", frame)
    body = listed(b"hdrl", chunk(b"avih", avih) + stream) + listed(b"movi", movi) + chunk(b"idx1", index)
    return chunk(b"RIFF", b"AVI " + body)


def _special(folder: Path, real: dict[Path, frozenset[str]], limits: FileLimits) -> Iterator[HostileFile]:
    """Files that are not what their names say: too big, not files, not readable, misnamed."""
    png, avi, jpg = folder / "screen.png", folder / "clip.avi", folder / "screen.jpg"
    for name, size in (("huge-file.png", limits.max_image_bytes + 1), ("huge-file.avi", limits.max_video_bytes + 1)):
        head = (png if name.endswith(".png") else avi).read_bytes()[:4096]
        with (folder / name).open("wb") as handle:
            handle.write(head)
            handle.truncate(size)  # sparse: no disk is used
        yield HostileFile(folder / name, "huge-file", "error", ("too large",))
    (folder / "folder.png").mkdir(exist_ok=True)
    yield HostileFile(folder / "folder.png", "directory", "error", ("is a directory",))
    for name in ("pipe.png", "pipe.avi"):
        if not (folder / name).exists():
            os.mkfifo(folder / name)
        yield HostileFile(folder / name, "fifo", "error", ("not a regular file",))
    yield from unreadable_files(folder, png.read_bytes(), real[png])
    misnamed: list[tuple[str, bytes, frozenset[str]]] = [
        ("png-named.jpg", png.read_bytes(), real[png]),
        ("avi-named.png", avi.read_bytes(), real[avi]),
        ("jpeg-named.avi", jpg.read_bytes(), real[jpg]),
    ]
    for name, data, codes in misnamed:
        (folder / name).write_bytes(data)
        yield HostileFile(folder / name, "wrong-extension", "read", codes=codes)
    yield _write(folder / "notes.png", b"this is a shopping list, not a picture\n" * 20, "wrong-extension", "error",
                 NOT_IMAGE)  # fmt: skip


def unreadable_files(
    folder: Path, data: bytes, codes: frozenset[str], as_root: bool | None = None
) -> Iterator[HostileFile]:
    """A mode-000 file, and a file in a mode-000 directory, each holding ``data``: refused, except to
    root, which reads both (``as_root``: whether the reader will be root; by default, whether we are)."""
    as_root = os.geteuid() == 0 if as_root is None else as_root
    locked = folder / "locked.png"
    locked.write_bytes(data)
    locked.chmod(0)
    shut = folder / "shut"
    shut.mkdir(exist_ok=True)
    (shut / "inside.png").write_bytes(data)
    shut.chmod(0)
    for path in (locked, shut / "inside.png"):
        if as_root:
            yield HostileFile(path, "unreadable", "read", codes=codes)
        else:
            yield HostileFile(path, "unreadable", "error", ("permission denied",))


def unlock(files: list[HostileFile]) -> None:
    """Give back the permissions :func:`make_hostile_files` took, so the folder can be deleted."""
    for hostile in files:
        if hostile.kind == "unreadable":
            hostile.path.parent.chmod(stat.S_IRWXU)
            hostile.path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def _broken_videos(folder: Path, rng: random.Random) -> Iterator[HostileFile]:
    writer = cv2.VideoWriter(str(folder / "no-frames.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 10, (640, 360))
    writer.release()  # a header and no frame
    yield HostileFile(folder / "no-frames.avi", "zero-frame-video", "error", NOT_VIDEO)
    data = bytearray((folder / "clip.avi").read_bytes())
    _each_frame(data, lambda start, end: data.__setitem__(slice(start, end), rng.randbytes(end - start)))
    yield _write(folder / "garbage-frames.avi", bytes(data), "garbage-frames", "error", NOT_VIDEO)
    big = grey_jpeg(16_000, 16_000)
    small = _encode(np.full((64, 64, 3), 120, np.uint8), ".jpg")
    avi = mjpeg_avi([small, big, small], 64, 64)
    yield _write(folder / "oversized-frames.avi", avi, "oversized-frames", "read")


def _each_frame(avi: bytearray, change: Callable[[int, int], None]) -> None:
    """Call ``change(start, end)`` on every video frame's bytes in an AVI's ``movi`` list (sizes kept)."""
    start = avi.find(b"movi")
    if start < 0:
        return
    position = start + 4
    while position + 8 <= len(avi):
        fourcc, size = bytes(avi[position : position + 4]), struct.unpack("<I", avi[position + 4 : position + 8])[0]
        if fourcc in (b"idx1", b"LIST") or position + 8 + size > len(avi):
            break
        if fourcc[2:] in (b"dc", b"db"):
            change(position + 8, position + 8 + size)
        position += 8 + size + (size % 2)
