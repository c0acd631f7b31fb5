"""In-store hardware: frame sources, decoders, the scanner loop. Never imports a UI toolkit."""

from hardware.decoders import (
    ChainDecoder,
    Decoder,
    OpenCVQRDecoder,
    PyzbarDecoder,
    ScanResult,
    ZxingDecoder,
    available_decoders,
    default_decoder,
)
from hardware.frames import FakeFrameSource, FrameSource, FrameSourceError, ImageFileSource, VideoSource
from hardware.scanner import ScannerLoop, scan_once
from hardware.virtual_camera import CameraConditions, VirtualCamera

__all__ = [
    "CameraConditions",
    "ChainDecoder",
    "Decoder",
    "FakeFrameSource",
    "FrameSource",
    "FrameSourceError",
    "ImageFileSource",
    "OpenCVQRDecoder",
    "PyzbarDecoder",
    "ScanResult",
    "ScannerLoop",
    "VideoSource",
    "VirtualCamera",
    "ZxingDecoder",
    "available_decoders",
    "default_decoder",
    "scan_once",
]
