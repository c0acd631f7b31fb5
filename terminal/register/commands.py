"""The command palette's register actions (ctrl+p): every action a key does, findable by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, action on the active screen, help)
ACTIONS = (
    ("Pay by wallet (QR / barcode)", "pay_wallet", "Take the total from a possim wallet code"),
    ("Pay in cash", "pay_cash", "Take cash and give change"),
    ("Change quantity", "quantity", "Set the quantity of the selected line"),
    ("Void line", "void_line", "Cancel the selected line"),
    ("Void sale", "void_sale", "Cancel the whole sale being rung up"),
    ("Refund or void a past sale", "refund", "Find a receipt and refund it in full or in part"),
    ("Shift report", "report", "Sales and refunds of this shift by tender (X-report)"),
    ("Close shift", "close_shift", "Print the Z-report and sign out"),
)


class RegisterCommands(Provider):
    """Offers the actions the active screen can run now."""

    def _available(self) -> list[tuple[str, str, str]]:
        screen = self.screen
        return [entry for entry in ACTIONS if hasattr(screen, f"action_{entry[1]}")]

    async def discover(self) -> Hits:
        for title, action, help_text in self._available():
            yield DiscoveryHit(title, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self._available():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.screen.run_action, action), help=help_text)
