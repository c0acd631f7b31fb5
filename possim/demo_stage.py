"""What stands in front of the demo register's virtual camera: the demo wallet's phone, or a product.

The register only sees frames; this stage decides what the virtual camera films. Holding the phone up
mints a fresh code offline (as the wallet would) and shows its Pay screen; a product shows its JAN
barcode on a label. Thread safe: the camera worker reads it while the UI changes it.

:class:`DemoPhone` is the same customer's phone answering the core: a payment above the confirmation
threshold waits for it, and it approves or denies through the wallet API, as the real wallet app does.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from protocol import Clock, format_yen, system_clock
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.render import render_phone_screen
from wallet_app.state import WalletState

LABEL_SIZE = (640, 420)


def render_product_label(jan: str) -> Image.Image:
    """A white product label carrying the JAN (EAN-13 or EAN-8) barcode and its digits."""
    kind = zxingcpp.BarcodeFormat.EAN13 if len(jan) == 13 else zxingcpp.BarcodeFormat.EAN8
    symbol = np.asarray(zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(jan, kind), scale=1))
    row = symbol[symbol.shape[0] // 2]
    scale = max(1, (LABEL_SIZE[0] - 80) // len(row))
    bars = np.repeat(np.repeat(row[np.newaxis, :], 260, axis=0), scale, axis=1)
    label = Image.new("RGB", LABEL_SIZE, (255, 255, 255))
    label.paste(Image.fromarray(bars.astype(np.uint8), mode="L"), ((LABEL_SIZE[0] - bars.shape[1]) // 2, 50))
    draw = ImageDraw.Draw(label)
    draw.text((LABEL_SIZE[0] // 2, 360), jan, fill=(0, 0, 0), font=ImageFont.load_default(size=34), anchor="mm")
    return label


class DemoStage:
    def __init__(
        self, minter: CodeMinter, wallet_name: str, basket: Sequence[str], clock: Clock = system_clock
    ) -> None:
        self.minter, self.wallet_name, self.basket, self.clock = minter, wallet_name, list(basket), clock
        self._lock = threading.Lock()
        self._image: Image.Image | None = None
        self._next_product = 0
        self.phone_up = False
        self.last_code: str | None = None

    def screen(self) -> Image.Image | None:
        """The virtual camera's screen provider: what it films now (``None``: nothing in view)."""
        with self._lock:
            return self._image

    def toggle_phone(self) -> bool:
        """Hold the phone up with a freshly minted code, or lower it; True when it is now up."""
        with self._lock:
            self.phone_up = not self.phone_up
            if self.phone_up:
                code = self.minter.mint()
                self.last_code = code.numeric
                self._image = render_phone_screen(code, self.wallet_name, 60)
            else:
                self._image = None
            return self.phone_up

    def show_product(self, jan: str | None = None) -> str:
        """Hold a product's barcode up (the next of the demo basket when ``jan`` is None); returns the JAN."""
        with self._lock:
            if jan is None:
                jan = self.basket[self._next_product % len(self.basket)]
                self._next_product += 1
            self.phone_up = False
            self._image = render_product_label(jan)
            return jan

    def clear(self) -> None:
        with self._lock:
            self.phone_up, self._image = False, None


class DemoPhone:
    """The demo customer's phone, asked by the core to approve a payment: it answers through the wallet API."""

    def __init__(self, core_url: str, state: WalletState) -> None:
        self.core_url, self.state = core_url, state

    def answer(self, approve: bool) -> str:
        """Approve or deny every payment waiting for this customer (blocking HTTP); what happened, in words."""
        with WalletClient(self.core_url) as wallet:
            waiting = wallet.awaiting(self.state)
            for payment in waiting:
                wallet.confirm(self.state, str(payment["id"]), approve=approve)
        if not waiting:
            return "Nothing is waiting for the customer on the phone."
        amounts = ", ".join(format_yen(int(payment["amount"])) for payment in waiting)
        return f"The customer {'approved' if approve else 'denied'} {amounts} on the phone."
