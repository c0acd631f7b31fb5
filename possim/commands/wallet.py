"""``possim wallet``: the phone wallet TUI, its code as a full-size picture, and the web wallet."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from possim import home

DEFAULT_CORE = "http://127.0.0.1:8700"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("wallet", help="the phone wallet (TUI, picture, web)")
    _add_phone_options(parser, DEFAULT_CORE, home.wallet_state())  # read when the parser is built: $POSSIM_HOME
    # The same options after the action (`possim wallet web --core URL`): where a person writes them. The
    # action's copy defaults to SUPPRESS, so it only overrides what was given before the action.
    after_action = argparse.ArgumentParser(add_help=False)
    _add_phone_options(after_action, argparse.SUPPRESS, argparse.SUPPRESS)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", parents=[after_action], help="the current code full-size: a PNG file or a window")
    show.add_argument("--png", type=Path, help="write the phone's Pay screen here")
    show.add_argument("--window", action="store_true", help="show it in a window, refreshed every 30 s")
    web = actions.add_parser("web", parents=[after_action], help="serve the phone-sized web wallet")
    web.add_argument("--host", default="127.0.0.1", help="0.0.0.0 lets a phone on the same network in")
    web.add_argument("--port", type=int, default=8800)
    web.add_argument(
        "--proxy-secret-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="the core's proxy secret, sent with every call (default proxy.secret in the data directory, "
        "written by possim core serve --trust-proxy)",
    )
    parser.set_defaults(func=run)


def _add_phone_options(parser: argparse.ArgumentParser, core: str, state: Path | str) -> None:
    parser.add_argument("--core", default=core, help=f"the payment core's URL (default {DEFAULT_CORE})")
    parser.add_argument("--state", type=Path, default=state, help="this phone's device file (0600)")


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        return _show(args)
    if args.action == "web":
        from wallet_app.web_server import serve

        print(f"possim web wallet on http://{args.host}:{args.port}/ (core {args.core})", file=sys.stderr)
        serve(
            args.core, host=args.host, port=args.port, proxy_secret_file=args.proxy_secret_file or home.proxy_secret()
        )
        return 0
    if not sys.stdout.isatty():
        print("possim wallet: the phone wallet needs a terminal (try: possim wallet show --png FILE)", file=sys.stderr)
        return 2
    from wallet_app.phone.app import make_wallet_app

    make_wallet_app(args.core, args.state).run()
    return 0


def _show(args: argparse.Namespace) -> int:
    from wallet_app.minter import CodeMinter
    from wallet_app.render import render_phone_screen, save_png
    from wallet_app.state import WalletStateError, load_state

    if args.png is None and not args.window:
        return _fail("give --png FILE or --window")
    try:
        state = load_state(args.state)
    except WalletStateError as error:
        return _fail(str(error))
    minter = CodeMinter(state.device_id, state.secret)
    if args.png is not None:
        code = minter.mint()
        save_png(render_phone_screen(code, state.wallet_name, 60), args.png)
        print(f"{args.png}: code valid for 60 s (numeric {code.numeric[:4]}…)")
    if args.window:
        return _window(minter, state.wallet_name)
    return 0


def _window(minter: Any, wallet_name: str) -> int:
    """A plain Tk window with the phone screen, re-minted every 30 s (for a webcam pointed at a 2nd screen)."""
    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        return _fail("--window needs a display (DISPLAY is not set); use --png FILE instead")
    try:
        import tkinter

        from PIL import ImageTk
    except ImportError:
        return _fail("--window needs Tk (apt install python3-tk) and Pillow's ImageTk; use --png FILE instead")
    from wallet_app.render import render_phone_screen

    root = tkinter.Tk()
    root.title(f"{wallet_name}: show this to the register's camera")
    label = tkinter.Label(root)
    label.pack()

    def refresh() -> None:
        image = ImageTk.PhotoImage(render_phone_screen(minter.mint(), wallet_name, 60))
        label.configure(image=image)
        label.image = image  # type: ignore[attr-defined]  # Tk keeps no reference of its own
        root.after(30_000, refresh)

    refresh()
    root.mainloop()
    return 0


def _fail(message: str) -> int:
    print(f"possim wallet: {message}", file=sys.stderr)
    return 1
