"""Scan to decision: how long from a camera frame holding a fresh code to the core's answer, at a busy store?

The register under test does what a till does when a customer holds up a phone, with nothing left out:

- the phone (``wallet_app``) shows a fresh payment code on its Pay screen (``wallet_app.render``), filmed as
  a 1280×720 frame by the virtual camera (``hardware.virtual_camera``, its default conditions: the same
  rendering ``possim demo`` films). A camera delivers frames, it does not draw them, so each round's
  frames are drawn before the round, off the clock;
- the clock starts with the frame in hand: the register's decoder chain (``hardware.default_decoder``,
  retail, as the register builds it, one for the whole run, so it remembers where it last read) reads it;
- the register's own client (``terminal.client.PaymentClient``, the call the till makes) checks the code,
  signs and sends ``POST /v1/payments`` to a real ``possim core serve`` subprocess on SQLite (the default
  store, on a free loopback port); the clock stops when the core's decision is back.

Meanwhile 8 other registers of the same store pay flat out, with ``possim.bench.core_load``'s machinery:
its world (phones enrolled and funded through the API, ``setup_world``), its code pools (minted offline on each
phone's manual clock, each used once), its plans and ``possim.bench.load_client.drive`` (2 spawned client
processes, one keep-alive connection per register). A code lives 60 s (30 s of skew at the core), so the
background runs in rounds: before each round every phone mints codes it has never minted, in its most
recent seconds, and the round stops before the oldest code in play would expire (``core_load.bounded_load``). In
a round the register under test pays from when the background starts until half a second before the
round's time bound, so every measured payment has the 8 others paying beside it (``background.covered``
says whether they did); its frames are drawn while the round's client processes start and warm up. A
frame the decoder misses counts as ``error:unread`` (nothing is sent). Payments per round are bounded by
the frames drawn, rounds by ``Sizes.rounds``; each wait has a time bound.

``p50``/``p99`` are of the whole path; ``stages_ms`` splits it into ``decode`` (frame to code) and
``decision`` (check, sign, send, the core's work, the answer). ``background_payments_per_s`` counts the
other registers' approved payments over the rounds' spans. Every payment is ``AMOUNT_YEN``: a new device's
one top-up (10,000 yen) then pays for every code a phone can use in the run.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from hardware.decoders import Decoder, default_decoder
from hardware.frames import Frame
from hardware.virtual_camera import DEFAULT_SIZE, VirtualCamera
from payment_core.config import Limits
from payment_core.core import Core
from payment_core.risk import BURST_FILE, load_settings
from possim.bench import core_load
from possim.bench.core_load import Phone, Scale
from possim.bench.load_client import APPROVED, Tally, drive
from possim.bench.served import cpu_seconds, served
from possim.world import RegisteredTerminal, new_core
from protocol import DEFAULT_TTL_SECONDS, PaymentCode, PaymentStatus
from terminal.client import PaymentClient, PaymentOutcome
from wallet_app.render import render_phone_screen

BACKGROUND_TERMINALS = 8
AMOUNT_YEN = 10
TARGET_MS = {"p50": 40.0, "p99": 120.0}
SEED = 12
WALLET_NAME = "bench wallet"
_STOP_MARGIN_SECONDS = 0.5  # the register under test starts no payment this close to its round's end
_MAX_FRAMES = 300  # drawn for one round at most (2.7 MB each)
_GO_SECONDS = 120.0  # for the client processes to start and warm up (drive's own bounds are 90 s)
_JOIN_SECONDS = 120.0  # after a round's time bound, for drive to collect its tallies
_LATE_START_SECONDS = 0.25  # the others' first payments may leave this long after the register's first
_SETUP_SECONDS = 600.0  # for the world's phones to be enrolled and funded


@dataclass(frozen=True)
class Sizes:
    payments: int  # measured at the register under test
    warmup: int  # the register's own first payments, before the first round: not counted
    round_seconds: float  # a background round's time bound
    rounds: int  # at most
    first_frames: int  # drawn for the first round; later rounds draw from the pace seen so far
    measured_phones: int  # the customers at the register under test
    background_phones: int
    background_warmup: int  # per background register and round: not counted
    background_pace: float  # payments a second one background register could send at most: its jobs a round


FULL = Sizes(500, 5, 20.0, 10, 250, 4, 48, 2, 40.0)  # the others could pay 320/s a round: never run dry
QUICK = Sizes(20, 1, 4.0, 1, 20, 1, 1, 1, 12.0)


@dataclass
class _Measured:
    """What the register under test saw: milliseconds by stage, outcomes, retries."""

    total: list[float] = field(default_factory=list)
    decode: list[float] = field(default_factory=list)
    decision: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    retries: int = 0

    @property
    def payments(self) -> int:
        return sum(self.outcomes.values())


@dataclass
class _Background:
    """The other registers over every round: their tallies, the seconds they ran and the server's CPU."""

    tally: Tally = field(default_factory=Tally)
    seconds: float = 0.0
    server_cpu: float | None = 0.0
    rounds: int = 0
    covered: bool = True  # the others paid from the register's first measured payment until after its last


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="possim-bench-scan-decision-") as folder:
        db = Path(folder) / "core.db"
        core = new_core(db, risk=load_settings(BURST_FILE))  # funding every phone at one register
        try:
            key_file = core_load.write_key(Path(folder) / "server.key", core.config.server_key)
            settings = core_load.durability(core)
        except BaseException:
            core.close()
            raise
        command = [sys.executable, "-m", "possim", "core", "serve", "--db", str(db), "--key-file", str(key_file)]
        command += ["--host", "127.0.0.1", "--risk-config", str(BURST_FILE)]
        with ThreadPoolExecutor(max_workers=1) as pool:
            world = pool.submit(_set_up, core, sizes)  # while the server subprocess starts
            with served(command, Path(folder) / "core.log") as (url, pid):
                terminals, phones = world.result(timeout=_SETUP_SECONDS)
                setup_seconds = time.monotonic() - started
                measured, background, decoder = _measure(url, pid, sizes, terminals, phones)
    return _report(sizes, measured, background, decoder, settings, setup_seconds)


def _set_up(core: Core, sizes: Sizes) -> tuple[list[RegisteredTerminal], list[Phone]]:
    """``core_load.setup_world``'s world, then the in-process core closed: the subprocess serves the rest."""
    try:
        return core_load.setup_world(core, _setup_scale(sizes))
    finally:
        core.close()


def _setup_scale(sizes: Sizes) -> Scale:
    """``core_load.setup_world``'s world: one store of 9 registers (the last is under test), and every phone
    funded with ``core_load.AMOUNT_YEN`` times enough codes to reach a new device's top-up limit."""
    phones = sizes.measured_phones + sizes.background_phones
    codes = Limits().new_device_topup_max_yen // core_load.AMOUNT_YEN
    return Scale(
        stores=1,
        registers_per_store=BACKGROUND_TERMINALS + 1,
        phones=phones,
        payments=codes * phones,
        warmup=0,
        seconds=sizes.round_seconds,
        flood_payments=0,
        flood_signins=0,
    )


# -- the register under test -------------------------------------------------------------------------


class _Register:
    """One register: its camera's decoder (kept for the run) and its payment client, paying frame by frame."""

    def __init__(self, url: str, terminal: RegisteredTerminal) -> None:
        self.decoder: Decoder = default_decoder(retail=True)
        self.client: PaymentClient = terminal.client(url)
        self._prefix = f"sd-{secrets.token_hex(4)}"
        self._receipts = 0

    def close(self) -> None:
        self.client.close()

    def pay(self, frame: Frame, measured: _Measured | None) -> None:
        """Read ``frame`` and pay for a sale with what it holds, as the till does; record it in ``measured``."""
        self._receipts += 1
        receipt = f"{self._prefix}-{self._receipts:05d}"
        started = time.perf_counter()
        found = [result for result in self.decoder.decode(frame) if result.is_payment_code]
        read = time.perf_counter()
        if not found:
            if measured is not None:
                measured.outcomes["error:unread"] += 1
            return
        outcome = self.client.pay(f"{receipt}-1", AMOUNT_YEN, found[0].text, description=f"receipt {receipt}")
        decided = time.perf_counter()
        if measured is None:
            return
        measured.total.append((decided - started) * 1000)
        measured.decode.append((read - started) * 1000)
        measured.decision.append((decided - read) * 1000)
        measured.outcomes[_outcome(outcome)] += 1
        measured.retries += max(0, outcome.attempts - 1)


def _outcome(outcome: PaymentOutcome) -> str:
    """``approved``, ``declined:<code>`` or ``error:<code>``, as ``load_client.outcome_of`` names them."""
    if outcome.status == PaymentStatus.SUCCEEDED:
        return APPROVED
    if outcome.status == PaymentStatus.DECLINED:
        return f"declined:{outcome.decline_code or 'declined'}"
    return f"error:{outcome.error_code or outcome.status}"


class _Camera:
    """The customers' phones in front of the register's virtual camera: each frame a fresh code's Pay screen."""

    def __init__(self, phones: list[Phone]) -> None:
        self.phones = phones
        self._screen: Image.Image | None = None
        self._camera = VirtualCamera(lambda: self._screen, seed=SEED, size=DEFAULT_SIZE)

    def codes(self, count: int) -> tuple[list[PaymentCode], int]:
        """``count`` codes, customer ``k`` with phone ``k % phones``, each never minted before; and the second
        the oldest of them was minted in."""
        self.phones = _refreshed(self.phones)
        pools, oldest = core_load.code_pools(self.phones, math.ceil(count / len(self.phones)))
        minted = {code.qr: code for phone in self.phones for code in _minted_codes(phone)}
        return [minted[pools[number % len(pools)][number // len(pools)]] for number in range(count)], oldest

    def frames(self, codes: list[PaymentCode]) -> list[Frame]:
        """A frame of each code's Pay screen, as the register's camera films it."""
        frames = []
        for code in codes:
            self._screen = render_phone_screen(code, WALLET_NAME, _seconds_left(code))
            frame = self._camera.read()
            if frame is None:  # never: the camera has no frame limit
                raise RuntimeError("the virtual camera gave no frame")
            frames.append(frame)
        return frames


def _minted_codes(phone: Phone) -> list[PaymentCode]:
    minter = phone.minter
    return minter.minted if isinstance(minter, core_load.RecordingMinter) else []


def _seconds_left(code: PaymentCode) -> int:
    return max(0, DEFAULT_TTL_SECONDS - int(time.time() - code.minted_at))


def _refreshed(phones: list[Phone]) -> list[Phone]:
    """The phones, each knowing every code it has minted so far as used: a pool never offers one twice."""
    return [dataclasses.replace(phone, used=phone.used | core_load.minted_keys(phone)) for phone in phones]


# -- the rounds --------------------------------------------------------------------------------------


def _measure(
    url: str, pid: int, sizes: Sizes, terminals: list[RegisteredTerminal], phones: list[Phone]
) -> tuple[_Measured, _Background, str]:
    """The register's warm-up, then the rounds; what it measured, what the others did, its decoder's name."""
    camera = _Camera(phones[: sizes.measured_phones])
    others = phones[sizes.measured_phones :]
    measured, background = _Measured(), _Background()
    register = _Register(url, terminals[BACKGROUND_TERMINALS])
    try:
        warmup = camera.frames(camera.codes(sizes.warmup)[0])
        for frame in warmup:  # its connection opened, the decoder's first frames read: not counted
            register.pay(frame, None)
        del warmup
        for index in range(sizes.rounds):
            left = sizes.payments - measured.payments
            if left <= 0:
                break
            pace = sum(measured.total) / 1000 / len(measured.total) if measured.total else None  # seconds a payment
            seconds = sizes.round_seconds if pace is None else min(sizes.round_seconds, max(3.0, 1.5 * left * pace))
            count = sizes.first_frames if pace is None else math.ceil(1.25 * seconds / pace)
            codes = camera.codes(max(1, min(left, count, _MAX_FRAMES)))
            others = _refreshed(others)
            _round(url, pid, index, sizes, seconds, register, camera, codes, terminals, others, measured, background)
    finally:
        register.close()
    return measured, background, register.decoder.name


def _round(
    url: str,
    pid: int,
    index: int,
    sizes: Sizes,
    seconds: float,
    register: _Register,
    camera: _Camera,
    codes: tuple[list[PaymentCode], int],
    terminals: list[RegisteredTerminal],
    others: list[Phone],
    measured: _Measured,
    background: _Background,
) -> None:
    """One round: the 8 other registers pay for ``seconds`` (from fresh pools) while the register under test
    pays with the frames of ``codes`` (drawn while the client processes start) until half a second before
    the round's end, or the frames or the payments run out."""
    scale = Scale(
        stores=1,
        registers_per_store=BACKGROUND_TERMINALS,
        phones=len(others),
        payments=math.ceil(sizes.background_pace * seconds) * BACKGROUND_TERMINALS,
        warmup=sizes.background_warmup,
        seconds=seconds,
        flood_payments=0,
        flood_signins=0,
    )
    pools, oldest = core_load.code_pools(others, core_load.codes_per_phone(scale))
    plans = core_load.payment_plans(f"sd{index}", scale, terminals[:BACKGROUND_TERMINALS], pools)
    load = dataclasses.replace(core_load.bounded_load(scale, min(oldest, codes[1])), amount=AMOUNT_YEN)
    drawn, go = threading.Event(), threading.Event()
    went: list[float] = []
    outcome: dict[str, Any] = {}

    def on_go() -> None:  # the clients have warmed up: go once the frames are drawn
        drawn.wait(timeout=_GO_SECONDS)
        went.append(time.monotonic())
        go.set()

    def background_load() -> None:
        try:
            outcome["result"] = drive(url, plans, load, lambda: cpu_seconds(pid), on_go)
        except Exception as error:  # raised again in the measuring thread
            outcome["error"] = error

    thread = threading.Thread(target=background_load, name=f"scan-decision-background-{index}", daemon=True)
    thread.start()
    try:
        frames = camera.frames(codes[0])
    finally:
        drawn.set()
    waited_until = time.monotonic() + _GO_SECONDS
    while not go.wait(timeout=0.5) and thread.is_alive() and time.monotonic() < waited_until:
        pass
    first = last = None
    if go.is_set():
        deadline = min(went[0] + seconds, load.stop_by) - _STOP_MARGIN_SECONDS
        first = time.monotonic()
        for frame in frames:
            if measured.payments >= sizes.payments or time.monotonic() >= deadline or not thread.is_alive():
                break
            register.pay(frame, measured)
        last = time.monotonic()
    thread.join(timeout=seconds + _JOIN_SECONDS)
    if thread.is_alive():
        raise RuntimeError("the background registers did not finish in time")
    if "error" in outcome:
        raise RuntimeError(f"the background registers failed: {outcome['error']}") from outcome["error"]
    if "result" not in outcome or first is None or last is None:
        raise RuntimeError("the background registers never started paying")
    tally, cpu = outcome["result"]
    background.tally.add(tally)
    background.rounds += 1
    background.seconds += max(0.0, tally.ended - tally.started)
    background.server_cpu = None if cpu is None or background.server_cpu is None else background.server_cpu + cpu
    late = tally.started - first  # the clients' threads wake a little after go
    background.covered = background.covered and late <= _LATE_START_SECONDS and tally.ended >= last


# -- the figures -------------------------------------------------------------------------------------


def _quantiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p99": None}
    return {name: round(core_load.percentile(ordered, share), 2) for name, share in (("p50", 0.5), ("p99", 0.99))}


def _report(
    sizes: Sizes,
    measured: _Measured,
    background: _Background,
    decoder: str,
    settings: dict[str, Any],
    setup_seconds: float,
) -> dict[str, Any]:
    whole = _quantiles(measured.total)
    codes = {outcome: count for outcome, count in sorted(measured.outcomes.items()) if outcome != APPROVED}
    tally = background.tally
    other_codes = {outcome: count for outcome, count in sorted(tally.outcomes.items()) if outcome != APPROVED}
    span = background.seconds
    met = {name: whole[name] is not None and float(whole[name] or 0) <= TARGET_MS[name] for name in TARGET_MS}
    return {
        "p50": whole["p50"],
        "p99": whole["p99"],
        "payments": measured.payments,
        "approved": measured.outcomes[APPROVED],
        "declined": sum(count for outcome, count in codes.items() if outcome.startswith("declined:")),
        "errors": sum(count for outcome, count in codes.items() if outcome.startswith("error:")),
        "codes": codes,
        "cut_short": max(0, sizes.payments - measured.payments),
        "retries": measured.retries,
        "stages_ms": {"decode": _quantiles(measured.decode), "decision": _quantiles(measured.decision)},
        "background_terminals": BACKGROUND_TERMINALS,
        "background_payments_per_s": round(tally.outcomes[APPROVED] / span, 1) if span > 0 else 0.0,
        "background": {
            "approved": tally.outcomes[APPROVED],
            "sent": len(tally.latencies),
            "codes": other_codes,
            "p50_ms": _quantiles([s * 1000 for s in tally.latencies])["p50"],
            "p99_ms": _quantiles([s * 1000 for s in tally.latencies])["p99"],
            "seconds": round(span, 3),
            "rounds": background.rounds,
            "covered": background.covered,
            "phones": sizes.background_phones,
        },
        "server_cpu": None if background.server_cpu is None or span <= 0 else round(background.server_cpu / span, 2),
        "targets": {"p50_ms": TARGET_MS["p50"], "p99_ms": TARGET_MS["p99"], "p50": met["p50"], "p99": met["p99"]},
        "decoder": decoder,
        "frame": f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}",
        "store": "sqlite",
        "synchronous": settings.get("synchronous"),
        "amount_yen": AMOUNT_YEN,
        "measured_phones": sizes.measured_phones,
        "warmup": sizes.warmup,
        "setup_s": round(setup_seconds, 1),
    }
