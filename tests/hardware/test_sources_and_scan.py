"""Image and video files through the same interface as a camera; bad files give one clear error each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardware.decoders import ScanResult, ZxingDecoder
from hardware.frames import FakeFrameSource, FrameSourceError, ImageFileSource, LatestFrameReader, VideoSource
from hardware.scan_files import scan_path
from hardware.scanner import ScannerLoop, scan_once
from hardware.virtual_camera import VirtualCamera
from possim.cli import main
from protocol import ManualClock, mint_code
from wallet_app.render import render_phone_screen

CODE = mint_code(b"v" * 32, 765, 1_795_000_000, 1)
SCREEN = render_phone_screen(CODE, "Hanako's wallet", 30)


def camera_frames(count: int, seed: int = 5) -> list[np.ndarray]:
    camera = VirtualCamera(lambda: SCREEN, seed=seed)
    return [frame for frame in (camera.read() for _ in range(count)) if frame is not None]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "phone.jpg"
    assert cv2.imwrite(str(path), camera_frames(1)[0])
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (1280, 720))
    for frame in camera_frames(12):
        writer.write(frame)
    writer.release()
    return path


def test_image_file_reads_once(photo: Path) -> None:
    with ImageFileSource(photo) as source:
        first = source.read()
        assert first is not None and first.shape == (720, 1280, 3)
        assert source.read() is None


def test_video_file_plays_through_the_camera_class(video: Path) -> None:
    with VideoSource(video, size=None) as source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert len(frames) == 12
    assert scan_once(FakeFrameSource(frames), ZxingDecoder()) == ZxingDecoder().decode(frames[0])[0]


def test_scan_path_on_image_and_video(photo: Path, video: Path) -> None:
    for path, frames in ((photo, 1), (video, 12)):
        report = scan_path(path)
        assert report.error is None
        assert report.frames == frames
        assert (CODE.qr, "QRCode") in report.codes
        assert report.ms > 0


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.png", b""), ("garbage.jpg", b"\x00\x01not an image at all" * 50), ("cut.png", b"\x89PNG\r\n\x1a\n\x00")],
)
def test_corrupt_files_give_a_clear_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FrameSourceError, match="not a readable image"):
        ImageFileSource(path)
    report = scan_path(path)
    assert report.codes == [] and report.error is not None and str(path) in report.error


def test_broken_video_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    assert scan_path(broken).error is not None
    assert scan_path(tmp_path / "nope.png").error == f"{tmp_path / 'nope.png'}: no such file"
    with pytest.raises(FrameSourceError):
        VideoSource(tmp_path / "nope.avi")


def test_scan_command_json_lines_and_exit_code(tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"junk")
    assert main(["scan", str(photo), "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["file"] == str(photo) and {"text": CODE.qr, "format": "QRCode"} in line["codes"]
    assert isinstance(line["ms"], float)
    assert main(["scan", str(photo), str(bad), "--json"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(text) for text in captured.out.splitlines()]
    assert [entry["file"] for entry in lines] == [str(photo), str(bad)]
    assert "error" in lines[1] and lines[1]["codes"] == []
    assert captured.err.strip() == f"possim scan: {bad}: not a readable image"
    assert "Traceback" not in captured.err


def test_scan_command_human_output(photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from possim.commands.scan import run

    assert run(argparse.Namespace(files=[str(photo)], json=False, decoder="pyzbar")) == 0
    assert CODE.qr in capsys.readouterr().out


def test_scanner_loop_reports_each_code_once_per_window() -> None:
    clock = ManualClock()
    seen: list[ScanResult] = []
    frames = camera_frames(6)

    def ticking_source() -> FakeFrameSource:
        return FakeFrameSource(frames)

    loop = ScannerLoop(ticking_source(), ZxingDecoder(), seen.append, clock=clock, dedupe_seconds=3)
    loop.start()
    loop.join()
    assert [r.text for r in seen if r.format == "QRCode"] == [CODE.qr]
    assert loop.frames_read == 6 and loop.frames_decoded == 6
    clock.advance(2)
    again = ScannerLoop(ticking_source(), ZxingDecoder(), seen.append, deduper=loop.deduper)
    again.start()
    again.join()
    assert [r.text for r in seen if r.format == "QRCode"] == [CODE.qr]
    clock.advance(1.5)
    later = ScannerLoop(ticking_source(), ZxingDecoder(), seen.append, deduper=loop.deduper)
    later.start()
    later.join()
    assert [r.text for r in seen if r.format == "QRCode"] == [CODE.qr, CODE.qr]


def test_scanner_loop_survives_a_failing_decoder_and_stops_on_request() -> None:
    errors: list[Exception] = []

    class Broken:
        name = "broken"

        def is_usable(self) -> bool:
            return True

        def decode(self, frame: np.ndarray) -> list[ScanResult]:
            raise RuntimeError("decoder bug")

    camera = VirtualCamera(lambda: SCREEN, seed=1, max_frames=5)
    loop = ScannerLoop(camera, Broken(), lambda r: None, on_error=errors.append)
    with loop:
        loop.join()
    assert len(errors) == 5 and not loop.running


def test_latest_frame_reader_keeps_only_the_newest() -> None:
    frames = [np.full((4, 4, 3), value, dtype=np.uint8) for value in range(50)]
    reader = LatestFrameReader(FakeFrameSource(frames)).start()
    reader.ended.wait(5)
    newest = reader.latest(timeout=1)
    assert newest is not None and int(newest[0, 0, 0]) == 49
    assert reader.latest(timeout=0.01) is None
    assert reader.frames_read == 50
    reader.stop()


def test_webcam_reads_when_one_is_attached() -> None:
    if not VideoSource.camera_attached(0):
        pytest.skip("no webcam attached to this machine")
    with VideoSource(0) as camera:
        frame = camera.read()
    assert frame is not None and frame.ndim == 3


def test_scan_command_without_input_or_with_an_absent_camera(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan"]) == 2
    assert "give files to scan" in capsys.readouterr().err
    absent = 97  # no machine here has 98 cameras
    assert main(["scan", "--camera", str(absent), "--frames", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"possim scan: {absent}: cannot open") and "Traceback" not in err
