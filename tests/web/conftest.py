"""Fixtures for the web wallet: the system Chromium under Playwright, the web server, a core on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from payment_core.config import Limits, Throttling
from payment_core.core import Core
from payment_core.server import ServerThread, bind_loopback
from possim.world import add_terminal, new_core, serve
from protocol import system_clock
from tests.support import SignedCaller
from wallet_app.web_server import create_web_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 8_000  # every wait in the browser tests is bounded by this
STORE = "possim 渋谷一丁目店"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the web wallet tests drive the system Chromium. "
            "Install it with `apt-get install -y chromium` (`make test` does this: scripts/system-deps.sh).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A phone-sized page (390×844 CSS px, 2 device px each) in a fresh profile."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page threw: {errors}"


def dead_url() -> str:
    """A loopback URL nothing listens on (a port bound, then released)."""
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def offline_web() -> Iterator[ServerThread]:
    """The web wallet in front of a core that is down."""
    with ServerThread(create_web_app(dead_url())) as running:
        yield running


@dataclass
class Stack:
    core: Core
    core_server: ServerThread
    web: ServerThread
    terminal: SignedCaller


def _stack(tmp_path: Path, throttling: Throttling) -> Iterator[Stack]:
    # The browser's device is enrolled seconds before the test tops it up past the new-device limit
    # (that limit is tested in tests/security): the web stack lifts it.
    core = new_core(tmp_path / "core.db", limits=Limits(new_device_hours=0), throttling=throttling)
    made = add_terminal(core, STORE, "register-1", "test")
    with (
        serve(core) as core_server,
        ServerThread(create_web_app(core_server.url)) as web,
        SignedCaller(core_server.url, made.id, made.secret, system_clock) as terminal,
    ):
        yield Stack(core, core_server, web, terminal)
    core.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A core on SQLite on the system clock (the browser mints with the real time), a register, the web wallet.

    The core's sign-in throttle is the default one: an address waits after 5 failures in 15 minutes, so
    a test keeps its deliberate failures below that (and never sends one TOTP code twice in a 30 s step)."""
    yield from _stack(tmp_path, Throttling())


@pytest.fixture
def strict_stack(tmp_path: Path) -> Iterator[Stack]:
    """The same stack, its throttle making an address wait 4 s after its first failed sign-in (then 8, 16 ...):
    long enough that the page's immediate retry lands inside the wait even on a loaded machine."""
    yield from _stack(tmp_path, Throttling(free_failures=-1))
