"""``possim register``: the register TUI against a running core, with a webcam, a video, or a wedge scanner."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from possim import home

PIN_ENV = "POSSIM_CLERK_PIN"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("register", help="run the register TUI")
    parser.add_argument("--core", default="http://127.0.0.1:8000", help="the payment core's URL")
    parser.add_argument("--terminal-id", default=None, help="this register's terminal id (possim admin terminal-add)")
    parser.add_argument("--terminal-secret-file", type=Path, default=None, help="file holding the terminal secret")
    parser.add_argument("--camera", default=None, help="OpenCV camera index (0) or a video file; omit for none")
    parser.add_argument(
        "--scanner",
        default="none",
        help="wedge (a USB keyboard scanner types into the register) or serial:PORT (e.g. serial:/dev/ttyACM0)",
    )
    parser.add_argument("--printer", default=None, help="dummy, file:PATH, tcp://HOST:PORT or usb:VID:PID")
    parser.add_argument("--display", type=Path, default=None, help="write the customer display's two lines here")
    parser.add_argument("--store-name", default="possim store", help="the name printed on receipts")
    parser.add_argument(
        "--register-db",
        type=Path,
        default=None,
        help="this register's journal (default: register-ID.db in the data directory, $POSSIM_HOME)",
    )
    parser.add_argument("--add-clerk", nargs=2, metavar=("CLERK_ID", "NAME"), help=f"add a clerk (PIN from ${PIN_ENV})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import serial

    from hardware.customer_display import FileDisplay, MemoryDisplay
    from hardware.decoders import default_decoder
    from hardware.frames import VideoSource
    from hardware.printer import PrinterError, printer_from_spec
    from terminal.catalog import Catalog, CatalogError
    from terminal.client import PaymentClient
    from terminal.register import CameraFeed, RegisterApp, RegisterOptions, Till
    from terminal.register_store import RegisterStore, RegisterStoreError

    terminal_id = args.terminal_id or "T1"
    db_path = args.register_db or home.register_journal(terminal_id)
    home.make_data_dir(db_path.absolute())
    try:
        store = RegisterStore(db_path, terminal_id=terminal_id)
    except RegisterStoreError as error:
        return _fail(str(error))
    with store:
        if args.add_clerk:
            pin = os.environ.get(PIN_ENV, "")
            try:
                clerk = store.clerks.add_clerk(args.add_clerk[0], args.add_clerk[1], pin)
            except RegisterStoreError as error:
                return _fail(str(error))
            print(f"clerk {clerk.clerk_id} ({clerk.name}) added to {db_path}")
            return 0
        if args.terminal_id is None or args.terminal_secret_file is None:
            return _fail("give --terminal-id and --terminal-secret-file (from possim admin terminal-add)")
        try:
            secret = bytes.fromhex(args.terminal_secret_file.read_text().strip())
            catalog = Catalog.default()
            receipts = home.receipts(terminal_id)
            printer = printer_from_spec(args.printer or f"file:{receipts}")
        except (OSError, ValueError) as error:
            return _fail(f"cannot read the terminal secret file: {error}")
        except (CatalogError, PrinterError) as error:
            return _fail(str(error))
        display = FileDisplay(args.display) if args.display else MemoryDisplay()
        port = None
        if args.scanner.startswith("serial:"):
            try:
                port = serial.serial_for_url(args.scanner.removeprefix("serial:"), timeout=0.2)
            except (serial.SerialException, ValueError) as error:
                return _fail(f"cannot open the scanner {args.scanner}: {error}")
        elif args.scanner not in ("none", "wedge"):
            return _fail("--scanner is none, wedge or serial:PORT")
        camera = None
        if args.camera is not None:
            source: int | str = int(args.camera) if args.camera.isdigit() else args.camera
            camera = CameraFeed(lambda: VideoSource(source), default_decoder(retail=True), label=f"camera {source}")
        with PaymentClient(args.core, terminal_id, secret) as client:
            till = Till(store, catalog, client, printer, display, store_name=args.store_name, terminal_id=terminal_id)
            options = RegisterOptions(wedge=args.scanner == "wedge", receipt_path=args.printer or str(receipts))
            RegisterApp(till, camera, None, options, serial_scanner=port).run()
    return 0


def _fail(message: str) -> int:
    print(f"possim register: {message}", file=sys.stderr)
    return 1
