"""Hostile files through the frame sources and ``possim scan``: one clear error line each, bounded memory.

The fuzz set is ``possim.bench.hostile_inputs`` (seeded; made from the wallet's real renderings and a
virtual-camera clip): corrupt, truncated, bit-flipped, decompression bombs, huge headers, sparse files
over the size limits, FIFOs, directories, unreadable and misnamed files, broken videos. ``possim scan``
reads the whole set in a subprocess whose address space is capped at 1.5 GiB, so a bomb that got
decoded would fail the test (an allocation refused) instead of taking the machine's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from hardware.frames import DEFAULT_LIMITS, FileLimits, FrameSourceError, ImageFileSource, VideoSource
from hardware.scan_files import open_file, scan_path
from possim.bench import hostile as hostile_bench
from possim.bench.hostile_inputs import (
    CODE,
    KINDS,
    REASONS,
    HostileFile,
    make_hostile_files,
    unlock,
    unreadable_files,
)
from possim.commands import scan as scan_command
from wallet_app.render import render_phone_screen

ROOT = Path(__file__).resolve().parents[2]
ADDRESS_SPACE = 1536 * 1024 * 1024  # 1.5 GiB: a 20000×20000 bomb decoded to BGR alone needs 1.2 GB
NOBODY = 65534
# `possim scan` as the existing CLI tests run it, in a fresh interpreter: argv is LIMIT FILE... (LIMIT 0: none).
SCRIPT = """
import argparse, resource, sys
limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from possim.commands import scan
parser = argparse.ArgumentParser()
scan.register(parser.add_subparsers())
args = parser.parse_args(["scan", *sys.argv[2:]])
sys.exit(args.func(args))
"""
# The same, as a user who cannot read a mode-000 file: when we are root, everything is imported first
# (the interpreter lives under /root), then the process gives up root for nobody's uid and gid.
AS_NOBODY = f"""
import argparse, os, sys
from PIL import Image
from hardware.decoders import decoder_by_name
from possim.commands import scan
import hardware.scan_files
Image.init()  # Pillow imports its format plugins on first use
parser = argparse.ArgumentParser()
scan.register(parser.add_subparsers())
decoder_by_name("auto")
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid({NOBODY})
    os.setuid({NOBODY})
args = parser.parse_args(["scan", *sys.argv[1:]])
sys.exit(args.func(args))
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[HostileFile]]:
    files = make_hostile_files(tmp_path_factory.mktemp("hostile"), seed=7, flips=2)
    yield files
    unlock(files)


def named(files: list[HostileFile], name: str) -> Path:
    return next(item.path for item in files if item.path.name == name)


def check(hostile: HostileFile, error: str | None, texts: set[str]) -> None:
    """The file ended as the set expects: refused in one line naming it and a known reason, or read."""
    where = f"{hostile.kind} {hostile.path.name}: {error}"
    if error is None:
        assert hostile.outcome in ("read", "either"), where
        assert hostile.codes <= texts, where
        return
    assert hostile.outcome in ("error", "either"), where
    assert error.startswith(f"{hostile.path}: ") and "\n" not in error and "Traceback" not in error, where
    assert any(reason in error for reason in REASONS), where
    if hostile.outcome == "error":
        assert any(reason in error for reason in hostile.reasons), where


def test_the_set_has_every_kind_and_each_kind_its_real_files(hostile: list[HostileFile]) -> None:
    assert {item.kind for item in hostile} == set(KINDS)
    good = [item for item in hostile if item.kind == "good"]
    assert {item.path.suffix for item in good} == {".png", ".jpg", ".gif", ".bmp", ".tiff", ".webp", ".avi", ".mp4"}
    assert all(item.codes for item in good)
    assert len({item.path for item in hostile}) == len(hostile)


def test_scan_path_ends_every_hostile_file_as_expected(hostile: list[HostileFile]) -> None:
    for item in hostile:
        report = scan_path(item.path)
        check(item, report.error, {text for text, _ in report.codes})
        if report.error:
            assert report.codes == [] and not report.ok


def test_the_frame_sources_refuse_each_bad_file_with_its_reason(hostile: list[HostileFile]) -> None:
    for item in hostile:
        if item.outcome != "error":
            continue
        try:
            with open_file(item.path) as source:
                frame = source.read()
        except FrameSourceError as error:
            check(item, str(error), set())
        else:  # opened, but a video without a frame that decodes
            assert frame is None and "no frames could be read" in item.reasons, item.path.name


def test_bombs_are_refused_from_their_headers_before_decoding(hostile: list[HostileFile]) -> None:
    for name in ("bomb.png", "bomb.jpg", "huge.png", "huge.jpg", "huge.gif", "huge.bmp", "huge.tiff", "huge.webp"):
        with pytest.raises(FrameSourceError, match="too many pixels"):
            ImageFileSource(named(hostile, name))
    with pytest.raises(FrameSourceError, match="truncated image"):  # its IDAT claims 2 GiB
        ImageFileSource(named(hostile, "lying.png"))
    with pytest.raises(FrameSourceError, match=r"too many JPEG scans \(1006; the limit is 100\)"):
        ImageFileSource(named(hostile, "scan-bomb.jpg"))
    with ImageFileSource(named(hostile, "at-limit.jpg")) as source:
        frame = source.read()
        assert frame is not None and frame.shape[0] * frame.shape[1] <= DEFAULT_LIMITS.max_pixels


def test_the_limits_are_settings_of_the_sources(hostile: list[HostileFile]) -> None:
    clip, screen = named(hostile, "clip.avi"), named(hostile, "screen.png")
    with pytest.raises(FrameSourceError, match=r"too many pixels in each frame \(640x360 = 230400; the limit"):
        VideoSource(clip, size=None, limits=FileLimits(max_pixels=100_000))
    with pytest.raises(FrameSourceError, match="too large for an image"):
        ImageFileSource(screen, limits=FileLimits(max_image_bytes=1000))
    with pytest.raises(FrameSourceError, match="too large for a video"):
        VideoSource(clip, limits=FileLimits(max_video_bytes=1000))
    with pytest.raises(FrameSourceError, match="too many pixels"):
        ImageFileSource(screen, limits=FileLimits(max_pixels=540 * 1000 - 1))
    with pytest.raises(ValueError, match="at least 1"):
        FileLimits(max_pixels=0)


def test_a_video_is_cut_at_its_frame_and_time_limits(hostile: list[HostileFile]) -> None:
    clip = named(hostile, "clip.avi")
    whole = scan_path(clip)
    assert whole.frames == 4 and not whole.truncated and "truncated" not in whole.as_json()
    by_frames = scan_path(clip, limits=FileLimits(max_video_frames=2))
    assert by_frames.ok and by_frames.frames == 2 and by_frames.stopped_by == "2 frames"
    assert by_frames.as_json()["truncated"] == "2 frames"
    by_time = scan_path(clip, limits=FileLimits(max_seconds=1e-9))  # over as soon as the first frame is read
    assert by_time.ok and by_time.frames == 1 and by_time.stopped_by == "1e-09 s"


def run_scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="possim")
    scan_command.register(parser.add_subparsers())
    status = scan_command.run(parser.parse_args(["scan", *argv]))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_possim_scan_human_lines_for_a_mixed_batch(
    hostile: list[HostileFile], capsys: pytest.CaptureFixture[str]
) -> None:
    batch = [named(hostile, name) for name in ("screen.png", "bomb.png", "pipe.avi", "clip.avi", "huge-frames.avi")]
    status, out, err = run_scan(capsys, *map(str, batch), "--max-video-frames", "3")
    lines = out.splitlines()
    assert status == 1 and len(lines) == len(batch)
    assert lines[0].startswith(f"{batch[0]}: QRCode {CODE.qr}")
    bomb = f"too many pixels (its header claims over {2 * (Image.MAX_IMAGE_PIXELS or 0)}; the limit is 50000000)"
    assert lines[1] == f"{batch[1]}: error: {bomb}"
    assert lines[2] == f"{batch[2]}: error: not a regular file (a named pipe)"
    assert lines[3].startswith(f"{batch[3]}: QRCode {CODE.qr}") and lines[3].endswith(
        "; stopped at the limit of 3 frames)"
    )
    assert lines[4].startswith(f"{batch[4]}: no code")  # a fresh decoder: no crop remembered from the 540×1000 screen
    assert err.splitlines() == [
        f"possim scan: {batch[1]}: {bomb}",
        f"possim scan: {batch[2]}: not a regular file (a named pipe)",
    ]


def test_possim_scan_limits_come_from_its_options(
    hostile: list[HostileFile], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="possim")
    scan_command.register(parser.add_subparsers())
    assert scan_command.file_limits(parser.parse_args(["scan", "x.png"])) == DEFAULT_LIMITS
    tiny = scan_command.file_limits(parser.parse_args(["scan", "x.png", "--max-megapixels", "1e-9"]))
    assert tiny.max_pixels == 1  # never 0, which FileLimits refuses
    screen = str(named(hostile, "screen.png"))
    status, out, _ = run_scan(capsys, screen, "--max-megapixels", "0.5", "--json")
    assert status == 1 and "too many pixels (540x1000 = 540000; the limit is 500000)" in json.loads(out)["error"]
    status, out, _ = run_scan(capsys, screen, "--max-image-mb", "0.01", "--json")
    assert status == 1 and "too large for an image" in json.loads(out)["error"]
    with pytest.raises(SystemExit) as usage:
        parser.parse_args(["scan", screen, "--max-seconds", "0"])
    assert usage.value.code == 2 and "must be above zero" in capsys.readouterr().err


def test_possim_scan_reads_the_whole_set_in_bounded_memory(hostile: list[HostileFile]) -> None:
    """Every file in one `possim scan --json` under a 1.5 GiB address space: one line each, the bombs
    refused for their pixels (not for memory), the good files and the at-limit image still read."""
    paths = [str(item.path) for item in hostile]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ADDRESS_SPACE), "--json", *paths],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == paths
    errors = []
    for item, line in zip(hostile, lines, strict=True):
        check(item, line.get("error"), {code["text"] for code in line["codes"]})
        if "error" in line:
            errors.append(f"possim scan: {line['error']}")
    assert result.stderr.splitlines() == errors  # nothing else: no native library's chatter
    for item, line in zip(hostile, lines, strict=True):
        if item.kind in ("bomb", "at-limit", "lying-length", "oversized-frames", "good"):
            assert "not enough memory" not in line.get("error", ""), item.path.name


def test_an_unreadable_file_is_refused_to_a_user_who_cannot_read_it() -> None:
    """Root reads a mode-000 file, so when the suite runs as root `possim scan` runs as nobody for this."""
    folder = Path(tempfile.mkdtemp(prefix="possim-unreadable-"))
    files: list[HostileFile] = []
    try:
        folder.chmod(0o755)  # nobody may enter; the files inside decide the rest
        screen = folder / "screen.jpg"
        files = make_readable_screen(screen)
        files += list(unreadable_files(folder, screen.read_bytes(), files[0].codes, as_root=False))
        result = subprocess.run(
            [sys.executable, "-c", AS_NOBODY, "--json", *(str(item.path) for item in files)],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr[-2000:]
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        for item, line in zip(files, lines, strict=True):
            check(item, line.get("error"), {code["text"] for code in line["codes"]})
        assert [line.get("error", "").partition(": ")[2] for line in lines[1:]] == [
            "cannot be read (permission denied)"
        ] * 2
    finally:
        unlock(files)
        shutil.rmtree(folder)


def make_readable_screen(path: Path) -> list[HostileFile]:
    render_phone_screen(CODE, "fuzz wallet", 30).convert("RGB").save(path, "JPEG", quality=90)
    path.chmod(0o644)
    return [HostileFile(path, "good", "read", codes=frozenset({CODE.qr, CODE.numeric}))]


def test_the_bench_section_reports_the_set_and_its_worst_costs() -> None:
    report = json.loads(json.dumps(hostile_bench.run(quick=True)))
    assert report["unexpected"] == []
    assert report["inputs"] == sum(report["kinds"].values()) == sum(report["refused"].values()) + report["read"]
    assert set(report["kinds"]) == set(KINDS)
    assert report["refused"]["too many pixels"] >= 8 and report["refused"]["not a regular file"] == 2
    for worst in ("worst_seconds", "worst_rss_growth_mb"):
        assert set(report[worst]) == {"file", "kind", "value"}
    assert report["worst_seconds"]["value"] > 0
    assert os.path.exists("/proc/self/clear_refs") == (report["worst_rss_growth_mb"]["value"] is not None)
