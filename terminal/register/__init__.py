"""The register TUI (Textual). The data layer it drives (catalog, sale, receipts, store, client) imports no Textual."""

from __future__ import annotations

from terminal.register.app import CameraStage, RegisterApp, RegisterOptions
from terminal.register.camera import CameraFeed
from terminal.till import Till, TillError

__all__ = ["CameraFeed", "CameraStage", "RegisterApp", "RegisterOptions", "Till", "TillError"]
