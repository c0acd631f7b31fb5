"""The hardware package (and the wallet's renderer) load without Textual: the register's domain has no UI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_hardware_does_not_import_textual() -> None:
    script = (
        "import sys\n"
        "import hardware, hardware.frames, hardware.virtual_camera, hardware.decoders\n"
        "import hardware.scanner, hardware.scan_files, wallet_app.render\n"
        "from hardware.decoders import default_decoder\n"
        "default_decoder()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'textual')\n"
        "assert not loaded, loaded\n"
        "assert 'zxingcpp' in sys.modules and 'cv2' in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_the_public_api_is_pinned() -> None:
    """What terminal and possim may rely on; a change here is a change of contract (DESIGN.md)."""
    import hardware

    assert sorted(hardware.__all__) == sorted(
        [
            "CODE128",
            "QR",
            "CameraConditions",
            "ChainDecoder",
            "Decoder",
            "DecoderUnavailableError",
            "Deduper",
            "FakeFrameSource",
            "Frame",
            "FrameSource",
            "FrameSourceError",
            "ImageFileSource",
            "LatestFrameReader",
            "OpenCVQRDecoder",
            "PyzbarDecoder",
            "ScanReport",
            "ScanResult",
            "ScannerLoop",
            "VideoSource",
            "VirtualCamera",
            "ZxingDecoder",
            "available_decoders",
            "decoder_by_name",
            "default_decoder",
            "scan_once",
            "scan_path",
        ]
    )
    assert all(getattr(hardware, name) is not None for name in hardware.__all__)
