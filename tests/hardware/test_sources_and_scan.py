"""Image and video files through the same interface as a camera; bad files give one clear error each."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardware.decoders import QR, ZxingDecoder
from hardware.frames import (
    FakeFrameSource,
    Frame,
    FrameSource,
    FrameSourceError,
    ImageFileSource,
    LatestFrameReader,
    VideoSource,
)
from hardware.scan_files import scan_path
from hardware.scanner import scan_once
from hardware.virtual_camera import CameraConditions, VirtualCamera
from possim.commands import scan as scan_command
from protocol import PaymentCode, mint_code
from wallet_app.render import render_phone_screen

ROOT = Path(__file__).resolve().parents[2]
CODE = mint_code(b"v" * 32, 765, 1_795_000_000, 1)
NEXT_CODE = mint_code(b"v" * 32, 765, 1_795_000_001, 0)
SCREEN = render_phone_screen(CODE, "Hanako's wallet", 30)


def camera_frames(count: int, seed: int = 5, code: PaymentCode | None = CODE) -> list[Frame]:
    screen = render_phone_screen(code, "Hanako's wallet", 30) if code else None
    camera = VirtualCamera(lambda: screen, seed=seed, conditions=CameraConditions.easy(), max_frames=count)
    return drain(camera)


def drain(source: FrameSource) -> list[Frame]:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[Frame], fps: float = 10) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (1280, 720))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "phone.jpg"
    assert cv2.imwrite(str(path), camera_frames(1)[0])
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """Four frames of the first code, three with the phone lowered, five of the wallet's next code."""
    frames = camera_frames(4) + camera_frames(3, seed=6, code=None) + camera_frames(5, seed=7, code=NEXT_CODE)
    return write_video(tmp_path / "clip.avi", frames)


def bad_files(tmp_path: Path) -> dict[str, Path]:
    good_jpeg = cv2.imencode(".jpg", camera_frames(1)[0])[1].tobytes()
    good_png = cv2.imencode(".png", camera_frames(1)[0])[1].tobytes()
    contents = {
        "empty.png": b"",
        "garbage.jpg": b"\x00\x01not an image at all" * 50,
        "bad-header.png": b"\x89PNG\r\n\x1a\n\x00" + b"\x00" * 40 + b"IEND\xaeB`\x82",
        "cut.png": good_png[: len(good_png) // 2],
        "cut.jpg": good_jpeg[: len(good_jpeg) // 2],
        "broken.mp4": b"\x00" * 1000,
        "noise.avi": bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)),
    }
    paths = {}
    for name, content in contents.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(content)
    paths["a-folder"] = tmp_path / "a-folder"
    paths["a-folder"].mkdir()
    paths["missing.png"] = tmp_path / "missing.png"
    return paths


EXPECTED_ERRORS = {
    "empty.png": "empty file",
    "garbage.jpg": "not a readable image",
    "bad-header.png": "not a readable image",
    "cut.png": "truncated image",
    "cut.jpg": "truncated image",
    "broken.mp4": "not a readable video",
    "noise.avi": "not a readable video",
    "a-folder": "is a directory",
    "missing.png": "no such file",
}


def test_image_file_gives_one_frame(photo: Path) -> None:
    with ImageFileSource(photo) as source:
        first = source.read()
        assert first is not None and first.shape == (720, 1280, 3) and first.dtype == np.uint8
        assert source.read() is None
    assert ImageFileSource.is_usable()


def test_video_file_plays_through_the_camera_class(video: Path) -> None:
    assert VideoSource.is_usable()
    with VideoSource(video, size=None) as source:
        frames = drain(source)
    assert len(frames) == 12 and frames[0].shape == (720, 1280, 3)
    found = scan_once(FakeFrameSource(frames), ZxingDecoder())
    assert found is not None and found.text == CODE.qr and found.format == QR


def test_scan_path_reads_an_image(photo: Path) -> None:
    report = scan_path(photo)
    assert report.error is None and report.ok
    assert report.frames == 1
    assert report.codes[0] == (CODE.qr, "QRCode")
    assert report.ms > 0


def test_scan_path_reads_every_frame_of_a_video_and_dedupes(video: Path) -> None:
    report = scan_path(video)
    assert report.error is None and report.frames == 12 and not report.truncated
    qr_codes = [text for text, kind in report.codes if kind == "QRCode"]
    assert qr_codes == [CODE.qr, NEXT_CODE.qr]  # each once, in the order first seen


def test_scan_path_stops_at_max_frames_and_says_so(video: Path) -> None:
    report = scan_path(video, max_frames=3)
    assert report.frames == 3 and report.truncated and report.error is None
    assert [text for text, kind in report.codes if kind == "QRCode"] == [CODE.qr]


def test_a_video_is_recognised_by_its_content_whatever_its_name(video: Path, tmp_path: Path) -> None:
    renamed = shutil.copy(video, tmp_path / "clip.dat")
    report = scan_path(renamed)
    assert report.error is None and report.frames == 12


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_a_bad_file_gives_one_clear_error_and_no_exception(tmp_path: Path, name: str) -> None:
    path = bad_files(tmp_path)[name]
    report = scan_path(path)
    assert report.codes == [] and not report.ok
    assert report.error is not None and report.error.startswith(f"{path}: ")
    assert EXPECTED_ERRORS[name] in report.error and "\n" not in report.error


def test_sources_refuse_bad_files_with_frame_source_error(tmp_path: Path) -> None:
    paths = bad_files(tmp_path)
    for name in ("empty.png", "garbage.jpg", "cut.png", "cut.jpg", "missing.png", "a-folder"):
        with pytest.raises(FrameSourceError, match=EXPECTED_ERRORS[name]):
            ImageFileSource(paths[name])
    for name in ("broken.mp4", "noise.avi", "missing.png"):
        with pytest.raises(FrameSourceError, match=EXPECTED_ERRORS[name]):
            VideoSource(paths[name])


def run_scan(capsys: pytest.CaptureFixture[str], *files: Path, json_lines: bool = True) -> tuple[int, str, str]:
    namespace = argparse.Namespace(files=[str(f) for f in files], json=json_lines, decoder="auto")
    status = scan_command.run(namespace)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_scan_command_prints_one_json_line_per_file(
    photo: Path, video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_scan(capsys, photo, video)
    assert status == 0 and err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["file"] for line in lines] == [str(photo), str(video)]
    assert set(lines[0]) == {"file", "codes", "ms"} and isinstance(lines[0]["ms"], float)
    assert {"text": CODE.qr, "format": "QRCode"} in lines[0]["codes"]
    assert [c["text"] for c in lines[1]["codes"] if c["format"] == "QRCode"] == [CODE.qr, NEXT_CODE.qr]


def test_scan_command_fails_with_one_stderr_line_per_bad_file(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = bad_files(tmp_path)
    status, out, err = run_scan(capsys, photo, bad["garbage.jpg"], bad["missing.png"])
    assert status == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [("error" in line) for line in lines] == [False, True, True]
    assert err.splitlines() == [f"possim scan: {lines[1]['error']}", f"possim scan: {lines[2]['error']}"]


def test_scan_command_human_output(photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_scan(capsys, photo, json_lines=False)
    assert status == 0 and out.startswith(f"{photo}: QRCode {CODE.qr}") and err == ""
    lowered = tmp_path / "lowered.png"
    assert cv2.imwrite(str(lowered), camera_frames(1, code=None)[0])
    status, out, _ = run_scan(capsys, lowered, json_lines=False)
    assert status == 0 and out.startswith(f"{lowered}: no code")


def test_scan_command_human_output_names_a_missing_file_on_stdout(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.png"
    status, out, err = run_scan(capsys, missing, photo, json_lines=False)
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == f"{missing}: error: no such file"
    assert lines[1].startswith(f"{photo}: QRCode {CODE.qr}")
    assert err == f"possim scan: {missing}: no such file\n"


def test_scan_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_scan_args("--help")
    shown = capsys.readouterr().out
    assert "``" not in shown and "One line per file on stdout" in shown
    assert '"FILE: error: WHY"' in shown


def test_scan_command_keeps_native_library_chatter_off_the_terminal(tmp_path: Path) -> None:
    """libpng, libjpeg and FFmpeg write to fd 2 themselves; only our one line per bad file may appear."""
    bad = bad_files(tmp_path)
    script = (
        "import argparse, sys\n"
        "from possim.commands import scan\n"
        "parser = argparse.ArgumentParser()\n"
        "scan.register(parser.add_subparsers())\n"
        "args = parser.parse_args(['scan', *sys.argv[1:]])\n"
        "sys.exit(args.func(args))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, bad.values())], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 1
    # stdout keeps its promise of one line per file; the native libraries add nothing to either stream.
    out_lines = result.stdout.splitlines()
    assert len(out_lines) == len(bad)
    for (name, path), line in zip(bad.items(), out_lines, strict=True):
        assert line.startswith(f"{path}: error: {EXPECTED_ERRORS[name]}"), line
    lines = result.stderr.splitlines()
    assert len(lines) == len(bad), result.stderr
    for name, path in bad.items():
        assert sum(line.startswith(f"possim scan: {path}: {EXPECTED_ERRORS[name]}") for line in lines) == 1


def parse_scan_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="possim")
    scan_command.register(parser.add_subparsers())
    return parser.parse_args(["scan", *argv])


def test_scan_command_without_input_or_with_an_absent_camera(capsys: pytest.CaptureFixture[str]) -> None:
    assert scan_command.run(parse_scan_args()) == 2
    assert capsys.readouterr().err == "possim scan: give files to scan, or --camera INDEX\n"
    absent = 97  # no machine here has 98 cameras
    assert scan_command.run(parse_scan_args("--camera", str(absent), "--frames", "5")) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"possim scan: camera {absent}: cannot be opened (no such device, or it is busy)\n"


def test_unusable_decoder_choice_is_one_line_and_status_2(
    photo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyzbar.pyzbar", None)
    status = scan_command.run(argparse.Namespace(files=[str(photo)], json=True, decoder="pyzbar"))
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err == "possim scan: decoder pyzbar is not usable on this machine (its library is missing)\n"


def test_latest_frame_reader_keeps_only_the_newest_frame() -> None:
    frames = [np.full((4, 4, 3), value, dtype=np.uint8) for value in range(50)]
    reader = LatestFrameReader(FakeFrameSource(frames)).start()
    assert reader.ended.wait(10)
    newest = reader.read()
    assert newest is not None and int(newest[0, 0, 0]) == 49
    assert reader.read() is None  # the stream has ended and the last frame was taken
    assert reader.frames_read == 50 and reader.frames_dropped == 49
    reader.close()


def test_latest_frame_reader_is_a_frame_source_that_hands_over_each_new_frame() -> None:
    """A reader that waits for each frame sees them all; the stream ends by itself; close closes the source."""
    gate = threading.Semaphore(0)

    class Paced(FakeFrameSource):
        def read(self) -> Frame | None:
            gate.acquire()
            return super().read()

    source = Paced([np.full((2, 2, 3), value, dtype=np.uint8) for value in range(5)])
    seen = []
    with LatestFrameReader(source) as reader:
        for _ in range(6):
            gate.release()
            frame = reader.read(timeout=10)
            seen.append(None if frame is None else int(frame[0, 0, 0]))
    assert seen == [0, 1, 2, 3, 4, None]
    assert source.closed


def test_latest_frame_reader_stops_at_max_frames_and_reports_a_failing_source() -> None:
    camera = VirtualCamera(lambda: SCREEN, seed=2)  # endless
    with LatestFrameReader(camera, max_frames=3) as reader:
        assert reader.ended.wait(10)
        assert reader.frames_read == 3

    class Unplugged(FrameSource):
        def read(self) -> Frame | None:
            raise OSError("camera unplugged")

    with LatestFrameReader(Unplugged()) as broken:
        assert broken.read(timeout=10) is None
        assert isinstance(broken.error, OSError)


def test_webcam_reads_when_one_is_attached() -> None:
    if not VideoSource.camera_attached(0):
        with pytest.raises(FrameSourceError, match="camera 0"):
            VideoSource(0)
        return
    with VideoSource(0) as camera:
        frame = camera.read()
    assert frame is not None and frame.ndim == 3
