"""In-store hardware: frame sources, decoders, the scanner loop, file scanning. Never imports a UI toolkit."""

from hardware.decoders import (
    CODE128,
    QR,
    ChainDecoder,
    Decoder,
    DecoderUnavailableError,
    OpenCVQRDecoder,
    PyzbarDecoder,
    ScanResult,
    ZxingDecoder,
    available_decoders,
    decoder_by_name,
    default_decoder,
)
from hardware.frames import (
    FakeFrameSource,
    Frame,
    FrameSource,
    FrameSourceError,
    ImageFileSource,
    LatestFrameReader,
    VideoSource,
)
from hardware.scan_files import ScanReport, scan_path
from hardware.scanner import Deduper, ScannerLoop, scan_once
from hardware.virtual_camera import CameraConditions, VirtualCamera

__all__ = [
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
