"""The hardware package's public API. (That it never loads Textual is pinned in tests/test_boundaries.py.)"""

from __future__ import annotations


def test_the_public_api_is_pinned() -> None:
    """What terminal and possim may rely on; a change here is a change of contract (docs/ARCHITECTURE.md)."""
    import hardware

    assert sorted(hardware.__all__) == sorted(
        [
            "CustomerDisplay",
            "DisplayError",
            "FileDisplay",
            "MemoryDisplay",
            "SerialDisplay",
            "fit_line",
            "format_total_line",
            "PrinterError",
            "ReceiptPrinter",
            "dummy_printer",
            "network_printer",
            "printer_from_spec",
            "usb_printer",
            "KeyboardWedge",
            "LineScanner",
            "WedgeRead",
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
