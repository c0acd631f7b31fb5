"""The headless demo: N payments through the real scan path, then replay, expiry and forgery attempts.

Each payment: the wallet mints a code offline, renders its phone screen, the virtual camera films it,
the decoder reads it, the register's client signs the request, the core decides. Latency is measured
from the first frame the camera takes to the core's decision.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.decoders import Decoder, default_decoder
from hardware.scanner import scan_once
from hardware.virtual_camera import VirtualCamera
from payment_core.ledger import audit_books
from possim.world import DEMO_LIMITS, DEMO_RISK, demo_customer, next_code, open_world
from protocol import ErrorCode, OffsetClock, PaymentCode, PaymentStatus, damm_digit, mint_code, system_clock
from terminal.client import PaymentClient
from wallet_app.minter import CodeMinter
from wallet_app.render import render_phone_screen
from wallet_app.state import WalletState

EXTRA_ATTEMPTS = 5
MAX_FRAMES_PER_SCAN = 60
Progress = Callable[[str, int, int], None]


@dataclass
class DemoSummary:
    payments: int = 0
    approved: int = 0
    declined: int = 0
    scan_failures: int = 0
    replays_rejected: int = 0
    expired_rejected: int = 0
    forged_rejected: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    decline_reasons: dict[str, int] = field(default_factory=dict)
    audit: str = "unbalanced"
    decoder: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "payments": self.payments,
            "approved": self.approved,
            "declined": self.declined,
            "scan_failures": self.scan_failures,
            "replays_rejected": self.replays_rejected,
            "expired_rejected": self.expired_rejected,
            "forged_rejected": self.forged_rejected,
            "scan_to_decision_ms": percentiles(self.latencies_ms),
            "decline_reasons": self.decline_reasons,
            "decoder": self.decoder,
            "audit": self.audit,
        }


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None}
    if len(values) == 1:
        return {"p50": round(values[0], 2), "p99": round(values[0], 2)}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(statistics.median(values), 2), "p99": round(cuts[98], 2)}


def forge(code: PaymentCode) -> str:
    """What a forger would try: keep the device and time, change the MAC, fix the check digit."""
    body = code.numeric[:-2] + str((int(code.numeric[-2]) + 5) % 10)
    return body + damm_digit(body)


class HeadlessDemo:
    def __init__(self, work_dir: Path, seed: int = 7, decoder: Decoder | None = None) -> None:
        self.work_dir = work_dir
        self.rng = random.Random(seed)
        self.seed = seed
        self.decoder = decoder or default_decoder()

    def run(self, payments: int, progress: Progress | None = None) -> DemoSummary:
        summary = DemoSummary(decoder=self.decoder.name)
        amounts = [self.rng.randrange(100, 3_000) for _ in range(payments)]
        with open_world(
            self.work_dir,
            demo_customer(),
            store="possim demo store",
            device_name="demo phone",
            wallet_name="possim demo wallet",
            funds=sum(amounts),
            limits=DEMO_LIMITS,
            risk=DEMO_RISK,
            actor="demo",
        ) as world:
            with world.register() as client:
                used = self._pay_all(client, world.minter, amounts, summary, progress)
                self._attacks(client, world.minter, world.customer.wallet, used, summary)
            with world.core.transaction() as session:
                summary.audit = "balanced" if audit_books(session).balanced else "unbalanced"
        return summary

    def _pay_all(
        self,
        client: PaymentClient,
        minter: CodeMinter,
        amounts: list[int],
        summary: DemoSummary,
        progress: Progress | None,
    ) -> list[str]:
        used: list[str] = []
        for index, amount in enumerate(amounts):
            code = next_code(minter)
            screen = render_phone_screen(code, "possim demo wallet", 60)
            camera = VirtualCamera(lambda screen=screen: screen, seed=self.seed * 100_003 + index)  # type: ignore[misc]
            started = time.perf_counter()
            scanned = scan_once(camera, self.decoder, max_frames=MAX_FRAMES_PER_SCAN)
            summary.payments += 1
            if scanned is None:
                summary.scan_failures += 1
                summary.declined += 1
                continue
            outcome = client.pay(f"demo-{index:05d}", amount, scanned.text)
            summary.latencies_ms.append((time.perf_counter() - started) * 1000)
            if outcome.status == PaymentStatus.SUCCEEDED:
                summary.approved += 1
                used.append(scanned.text)
            else:
                summary.declined += 1
                reason = outcome.decline_code or outcome.error_code or outcome.status
                summary.decline_reasons[reason] = summary.decline_reasons.get(reason, 0) + 1
            if progress:
                progress("payments", index + 1, len(amounts))
        return used

    def _attacks(
        self,
        client: PaymentClient,
        minter: CodeMinter,
        wallet: WalletState,
        used: list[str],
        summary: DemoSummary,
    ) -> None:
        for index, text in enumerate(used):
            outcome = client.pay(f"replay-{index:05d}", 100, text)
            summary.replays_rejected += outcome.decline_code == ErrorCode.CODE_ALREADY_USED
        two_minutes_ago = OffsetClock(-120, system_clock)
        for index in range(EXTRA_ATTEMPTS):
            stale = mint_code(wallet.secret, wallet.device_id, two_minutes_ago(), index)
            outcome = client.pay(f"expired-{index}", 100, stale.qr)
            summary.expired_rejected += outcome.decline_code == ErrorCode.CODE_EXPIRED
        for index in range(EXTRA_ATTEMPTS):
            outcome = client.pay(f"forged-{index}", 100, forge(next_code(minter)))
            summary.forged_rejected += outcome.decline_code == ErrorCode.CODE_FORGED


def run_headless_demo(payments: int, seed: int = 7, progress: Progress | None = None) -> DemoSummary:
    with tempfile.TemporaryDirectory(prefix="possim-demo-") as work_dir:
        return HeadlessDemo(Path(work_dir), seed).run(payments, progress)
