"""Does possim's scanner read more hard frames than the raw libraries, at 30 frames a second on one core?

Frames come from ``hardware.hard_frames``: 1280×720 shots of a phone showing a fresh payment code (the QR
on the wallet's Pay screen, or the numeric form's Code 128 on its landscape barcode view, both drawn by
``wallet_app.render``), tilted, far away, motion-blurred, under glare, in low light and mixed, seeded.
Every frame is read by zxing-cpp, pyzbar and OpenCV (its QR detector, then its barcode detector) on
their own, by their union (zxing-cpp or pyzbar: what the old zxing-cpp→pyzbar chain read), by that
old chain, and by possim's pipeline (``hardware.decoders.default_decoder``: the same first try, then
second tries on a miss within a time budget). A read is a frame where a decoder returned the code on
screen; a misread is one where it returned any other text.

"On one core": OpenCV runs on one thread, and times are the CPU time of the reading thread
(``time.thread_time``), so a busy machine slows the figures less than a stopwatch would; the wall-clock
p50 and p95 are given beside them. The pipeline's budget is counted on the same clock here (a register
counts it on the wall clock, which is the same on an idle core).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import cv2
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from hardware.decoders import (
    RETRY_BUDGET_MS,
    ChainDecoder,
    Decoder,
    PyzbarDecoder,
    RetryDecoder,
    ScanResult,
    ZxingDecoder,
)
from hardware.frames import Frame
from hardware.hard_frames import FORMS, HARD_CONDITIONS, HardFrame, ScreenFor, hard_frames
from protocol import PaymentCode
from wallet_app.render import BEZEL_PX, code128_modules, render_code128, render_phone_screen

SEED = 1
PER_CONDITION = {False: 60, True: 6}  # frames of each form under each condition, by ``quick``
RAW = ("zxing-cpp", "pyzbar", "opencv")
UNION = ("zxing-cpp", "pyzbar")  # the raw libraries the pipeline must beat together
COLUMNS = (*RAW, "union", "chain", "pipeline")
TARGET_READ_RATE = 99.0
TARGET_P95_MS = 33.0
_LANDSCAPE = (1000, 540)
_INK = (255, 255, 255)


def pay_screen(code: PaymentCode) -> Image.Image:
    """The wallet's Pay screen (QR, small barcode, digits), as a phone shows it."""
    return render_phone_screen(code, "bench wallet", 42)


def barcode_view(code: PaymentCode) -> Image.Image:
    """The phone turned to landscape with the numeric form's Code 128 across it, drawn by the wallet."""
    width, height = _LANDSCAPE
    phone = Image.new("RGB", _LANDSCAPE, (12, 12, 14))
    ImageDraw.Draw(phone).rounded_rectangle(
        (BEZEL_PX, BEZEL_PX, width - BEZEL_PX, height - BEZEL_PX), radius=42, fill=_INK
    )
    module_px = max(1, (width - 2 * BEZEL_PX - 40) // len(code128_modules(code.numeric)))
    bars = render_code128(code.numeric, module_px=module_px, height=300).convert("RGB")
    phone.paste(bars, ((width - bars.width) // 2, (height - bars.height) // 2))
    return phone


SCREENS: dict[str, ScreenFor] = {"qr": pay_screen, "code128": barcode_view}


class OpenCVReader:
    """Raw OpenCV: ``QRCodeDetector``, then ``barcode.BarcodeDetector`` when it has one (its Code 128
    reads come back as EAN, so they count as misreads: that is what the raw library does)."""

    name = "opencv"

    def __init__(self) -> None:
        self._qr = cv2.QRCodeDetector()
        barcode = getattr(cv2, "barcode", None)
        self._bars = barcode.BarcodeDetector() if barcode is not None else None

    def texts(self, frame: Frame) -> list[str]:
        try:
            text = self._qr.detectAndDecode(frame)[0]
        except cv2.error:
            text = ""
        if text:
            return [str(text)]
        if self._bars is None:
            return []
        try:
            text = self._bars.detectAndDecode(frame)[0]
        except cv2.error:
            return []
        return [str(text)] if text else []


class _Tally:
    """Reads, misreads and milliseconds for each reader, overall and by condition and form."""

    def __init__(self) -> None:
        self.frames: Counter[str] = Counter()
        self.reads: dict[str, Counter[str]] = defaultdict(Counter)  # reader -> bucket -> frames read
        self.misreads: Counter[str] = Counter()
        self.times: dict[str, list[float]] = defaultdict(list)  # CPU milliseconds
        self.wall: dict[str, list[float]] = defaultdict(list)

    def add(self, shot: HardFrame, texts: dict[str, list[str]], seconds: dict[str, tuple[float, float]]) -> None:
        buckets = ("all", shot.condition, f"{shot.condition}/{shot.form}", shot.form)
        self.frames.update(buckets)
        read = {name: any(t in shot.truth for t in found) for name, found in texts.items()}
        read["union"] = any(read[name] for name in UNION)
        for name, ok in read.items():
            if ok:
                self.reads[name].update(buckets)
        wrong = {name: any(t not in shot.truth for t in found) for name, found in texts.items()}
        wrong["union"] = any(wrong[name] for name in UNION)
        for name, bad in wrong.items():
            self.misreads[name] += bad
        for name, (cpu, wall) in seconds.items():
            self.times[name].append(cpu * 1000)
            self.wall[name].append(wall * 1000)

    def rate(self, reader: str, bucket: str = "all") -> float:
        return round(100 * self.reads[reader][bucket] / max(1, self.frames[bucket]), 2)

    def summary(self, reader: str) -> dict[str, Any]:
        row: dict[str, Any] = {"read_rate": self.rate(reader), "misreads": self.misreads[reader]}
        times, wall = sorted(self.times.get(reader, [])), sorted(self.wall.get(reader, []))
        if times:
            row |= {"p50_ms": _quantile(times, 0.5), "p95_ms": _quantile(times, 0.95), "max_ms": round(times[-1], 2)}
            row |= {"wall_p50_ms": _quantile(wall, 0.5), "wall_p95_ms": _quantile(wall, 0.95)}
        return row

    def bucket(self, bucket: str) -> dict[str, Any]:
        return {"frames": self.frames[bucket]} | {name: self.rate(name, bucket) for name in COLUMNS}


def _quantile(ordered: list[float], share: float) -> float:
    return round(ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))], 2)


def _timed(call: Any, frame: Frame) -> tuple[list[str], tuple[float, float]]:
    cpu, wall = time.thread_time(), time.perf_counter()
    found = call(frame)
    spent = (time.thread_time() - cpu, time.perf_counter() - wall)
    return [r.text if isinstance(r, ScanResult) else str(r) for r in found], spent


class _Steps:
    """What each step of the pipeline cost and read, from its trace after every frame."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def add(self, trace: list[tuple[str, float, bool]]) -> None:
        for step, spent, read in trace:
            self.runs[step] += 1
            self.reads[step] += read
            self.seconds[step] += spent

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            step: {"runs": runs, "reads": self.reads[step], "mean_ms": round(1000 * self.seconds[step] / runs, 2)}
            for step, runs in self.runs.items()
        }


def run(quick: bool = False) -> dict[str, Any]:
    """Read every frame with each reader; read rates in percent of frames, times in milliseconds."""
    per_condition = PER_CONDITION[quick]
    readers: dict[str, Any] = {"zxing-cpp": ZxingDecoder().decode, "pyzbar": PyzbarDecoder().decode}
    readers["opencv"] = OpenCVReader().texts
    chain: Decoder = ChainDecoder([ZxingDecoder(), PyzbarDecoder()])
    pipeline = RetryDecoder(ZxingDecoder(), PyzbarDecoder(), clock=time.thread_time)  # default_decoder()'s
    readers |= {"chain": chain.decode, "pipeline": pipeline.decode}
    tally, steps = _Tally(), _Steps()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for shot in hard_frames(SCREENS, per_condition, seed=SEED):
            texts, seconds = {}, {}
            for name, call in readers.items():
                texts[name], seconds[name] = _timed(call, shot.frame)
            tally.add(shot, texts, seconds)
            steps.add(pipeline.trace)
    finally:
        cv2.setNumThreads(threads)
    summary = {name: tally.summary(name) for name in (*RAW, "union", "chain", "pipeline")}
    summary["union"]["of"] = list(UNION)
    summary["pipeline"] |= {"decoder": pipeline.name, "budget_ms": RETRY_BUDGET_MS, "retries": dict(pipeline.tries)}
    summary["pipeline"]["steps"] = steps.summary()
    rate, union = summary["pipeline"]["read_rate"], summary["union"]["read_rate"]
    return {
        "frames": tally.frames["all"],
        "seed": SEED,
        "per_condition": per_condition,
        "conditions": {name: tally.bucket(name) for name in HARD_CONDITIONS},
        "forms": {form: tally.bucket(form) for form in FORMS},
        **summary,
        "targets": {
            "beats_union": rate > union or rate == 100.0,
            "read_rate": rate >= TARGET_READ_RATE,
            "p95": summary["pipeline"]["p95_ms"] <= TARGET_P95_MS,
            "no_misreads": summary["pipeline"]["misreads"] == 0,
        },
    }


def print_table(console: Console, result: dict[str, Any]) -> None:
    """Read rates by condition, then each reader's totals and times; for ``possim bench``'s tables."""
    table = Table(title=f"scan: read rate % on {result['frames']} hard 1280×720 frames (seed {result['seed']})")
    for column in ("condition", "frames", *COLUMNS):
        table.add_column(column, justify="left" if column == "condition" else "right")
    for name, row in (*result["conditions"].items(), *result["forms"].items()):
        table.add_row(name, str(row["frames"]), *(f"{row[c]:.1f}" for c in COLUMNS))
    console.print(table)
    totals = Table(title="scan: all frames (union = zxing-cpp or pyzbar; chain = the old zxing-cpp→pyzbar)")
    for column in ("reader", "read %", "misreads", "p50 ms", "p95 ms", "max ms", "wall p95 ms"):
        totals.add_column(column, justify="left" if column == "reader" else "right")
    for name in COLUMNS:
        row = result[name]
        times = [f"{row[key]:.1f}" if key in row else "-" for key in ("p50_ms", "p95_ms", "max_ms", "wall_p95_ms")]
        totals.add_row(name, f"{row['read_rate']:.2f}", str(row["misreads"]), *times)
    console.print(totals)
    steps = Table(title=f"scan: the pipeline's steps (budget {result['pipeline']['budget_ms']:.0f} ms a frame)")
    for column in ("step", "runs", "frames read", "mean ms"):
        steps.add_column(column, justify="left" if column == "step" else "right")
    for step, row in result["pipeline"]["steps"].items():
        steps.add_row(step, str(row["runs"]), str(row["reads"]), f"{row['mean_ms']:.2f}")
    console.print(steps)
    missed = [name for name, ok in result["targets"].items() if not ok]
    console.print(f"  targets (> union, ≥ {TARGET_READ_RATE}%, p95 ≤ {TARGET_P95_MS} ms, no misreads): "
                  + ("all met" if not missed else "missed " + ", ".join(missed)))  # fmt: skip
