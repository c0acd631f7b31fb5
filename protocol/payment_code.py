"""The one-time payment code: format, offline minting, parsing and verification.

A code names a device, the second it was minted and a counter (0-9) within that second, and carries a
MAC over the three made with a key derived from the device secret (at least 128 bits, provisioned at
enrollment). The wallet mints codes offline; only the core, which can derive the same secret, verifies.

Two renderings of one code, both all digits and both starting with the issuer prefix ``38`` (WeChat
Pay uses 10-15 and Alipay 25-30; 38 is possim's, so a register can route on the first two digits):

``numeric`` form, 22 digits, for Code 128, 1-D scanners and hand entry::

    38 DDDDDDD TTTT C MMMMMMM K
    |  |       |    | |       `-- Damm check digit over the 21 digits before it
    |  |       |    | `---------- MAC: 7 digits (HMAC-SHA256 truncated, about 23 bits)
    |  |       |    `------------ counter within the second, 0-9
    |  |       `----------------- minting time, epoch seconds mod 10,000 (the core restores the rest)
    |  `------------------------- device number, 7 digits (drawn at random at enrollment)
    `---------------------------- issuer prefix

``qr`` form, 40 digits, for the QR code (numeric mode: QR version 2 at ECC level M holds 48 digits)::

    38 DDDDDDD TTTTTTTTTT C MMMMMMMMMMMMMMMMMMM K   (full epoch seconds, 19-digit MAC, about 63 bits)

Design note, the odds of a guess: a forger must first know a device number (the core draws them at random
from the 10^7 the field holds, so a number not seen on a code names nobody almost always; the core answers
an unknown number exactly as a wrong MAC) and then hit the MAC. For the numeric form one guess succeeds
with probability 1 in 10^7; the core throttles failed codes by the register and the store sending them,
and after 100 failures a day naming one device refuses that device's numeric codes, from any store, for
the day (``payment_core.codes``): 100 guesses a day for a year give odds of about 1 in 270. The QR form's
1 in 10^19 is out of reach, so a device's QR codes are never refused for guesses at it. A code is single use
(the core records every (device, second, counter) it accepts, even when the payment then fails), expires
``DEFAULT_TTL_SECONDS`` after minting, and a revoked device's codes fail. The MAC is checked before the
time: a code outside its window is told how far its phone's clock looks off only when its MAC is right, and
a wrong MAC is a counted guess whatever second it names (see :func:`verify_code`).

The numeric form keeps only the last four digits of the time; the core restores the second nearest its
own clock, so a code must reach it within 5,000 s (about 83 minutes) of minting, either way; an older one
restores to the wrong second and fails its MAC (so a phone whose clock is off by more than that is told so
only through its QR form, which carries the whole second). The counter allows ten distinct codes a second
from one device: 600 a minute.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from protocol.checkdigit import damm_digit, damm_valid
from protocol.clock import epoch_seconds, from_epoch
from protocol.errors import ClockSkew, ErrorCode, ProtocolError, SkewedClock, ahead_or_behind, describe_seconds

ISSUER_PREFIX = "38"
DEFAULT_TTL_SECONDS = 60
DEFAULT_SKEW_SECONDS = 30
DEVICE_DIGITS = 7
MAX_DEVICE_NUMBER = 10**DEVICE_DIGITS - 1
COUNTERS_PER_SECOND = 10
MIN_SECRET_BYTES = 16
_SHORT_TIME_MOD = 10_000
_SHORT_MAC_DIGITS = 7
_QR_MAC_DIGITS = 19
NUMERIC_LENGTH = 22
QR_LENGTH = 40
_CODE_KEY_LABEL = b"possim/payment-code-key/v1"


class CodeForm(StrEnum):
    NUMERIC = "numeric"
    QR = "qr"


@dataclass(frozen=True)
class PaymentCode:
    """A minted code: both renderings of it and what it names."""

    device_id: int
    minted_at: int  # epoch seconds
    counter: int
    numeric: str
    qr: str

    def text(self, form: CodeForm) -> str:
        return self.numeric if form is CodeForm.NUMERIC else self.qr


@dataclass(frozen=True)
class ParsedCode:
    """What a register or the core can read from a code without any key."""

    form: CodeForm
    text: str
    device_id: int
    time_field: int  # full epoch seconds (qr) or seconds mod 10,000 (numeric)
    counter: int
    mac: str


@dataclass(frozen=True)
class VerifiedCode:
    device_id: int
    minted_at: int
    counter: int
    form: CodeForm

    @property
    def use_key(self) -> str:
        """Names the code whatever its rendering: the core refuses a second use of this key."""
        return f"{self.device_id}:{self.minted_at}:{self.counter}"


def _code_key(device_secret: bytes) -> bytes:
    return hmac.new(device_secret, _CODE_KEY_LABEL, hashlib.sha256).digest()


def _macs(device_secret: bytes, device_id: int, minted_at: int, counter: int) -> tuple[str, str]:
    message = f"possim-code-v1|{device_id:0{DEVICE_DIGITS}d}|{minted_at}|{counter}".encode()
    digest = hmac.new(_code_key(device_secret), message, hashlib.sha256).digest()
    short = int.from_bytes(digest[:8], "big") % 10**_SHORT_MAC_DIGITS
    long = int.from_bytes(digest[8:24], "big") % 10**_QR_MAC_DIGITS
    return f"{short:0{_SHORT_MAC_DIGITS}d}", f"{long:0{_QR_MAC_DIGITS}d}"


def _with_check(body: str) -> str:
    return body + damm_digit(body)


def mint_code(device_secret: bytes, device_id: int, minted_at: datetime | int, counter: int) -> PaymentCode:
    """Mint a code offline. ``counter`` (0-9) tells apart codes minted in the same second."""
    if len(device_secret) < MIN_SECRET_BYTES:
        raise ValueError("device secret must be at least 128 bits")
    if not 0 < device_id <= MAX_DEVICE_NUMBER:
        raise ValueError(f"device number must be 1..{MAX_DEVICE_NUMBER}")
    if not 0 <= counter < COUNTERS_PER_SECOND:
        raise ValueError("counter must be 0..9")
    seconds = minted_at if isinstance(minted_at, int) else epoch_seconds(minted_at)
    short_mac, long_mac = _macs(device_secret, device_id, seconds, counter)
    device = f"{device_id:0{DEVICE_DIGITS}d}"
    numeric = _with_check(f"{ISSUER_PREFIX}{device}{seconds % _SHORT_TIME_MOD:04d}{counter}{short_mac}")
    qr = _with_check(f"{ISSUER_PREFIX}{device}{seconds:010d}{counter}{long_mac}")
    return PaymentCode(device_id, seconds, counter, numeric, qr)


def looks_like_payment_code(text: str) -> bool:
    """A cheap test for routing a scan: our prefix and one of our lengths, digits only."""
    return text.isascii() and text.isdigit() and text.startswith(ISSUER_PREFIX) and len(text) in (22, 40)


def parse_code(raw: str | bytes) -> ParsedCode:
    """Read a scanned or typed code. Raises only :class:`ProtocolError`, whatever the input."""
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.CODE_MALFORMED) from None
    if not isinstance(raw, str):
        raise ProtocolError(ErrorCode.CODE_MALFORMED)
    text = raw.strip().replace(" ", "").replace("-", "")
    if not (text.isascii() and text.isdigit()) or len(text) not in (NUMERIC_LENGTH, QR_LENGTH):
        raise ProtocolError(ErrorCode.CODE_MALFORMED)
    if not text.startswith(ISSUER_PREFIX):
        raise ProtocolError(ErrorCode.CODE_UNKNOWN_ISSUER)
    if not damm_valid(text):
        raise ProtocolError(ErrorCode.CODE_CHECKSUM)
    device_id = int(text[2:9])
    if device_id == 0:
        raise ProtocolError(ErrorCode.CODE_MALFORMED)
    if len(text) == NUMERIC_LENGTH:
        return ParsedCode(CodeForm.NUMERIC, text, device_id, int(text[9:13]), int(text[13]), text[14:21])
    return ParsedCode(CodeForm.QR, text, device_id, int(text[9:19]), int(text[19]), text[20:39])


def restore_minted_at(parsed: ParsedCode, now: datetime) -> int:
    """The full minting second: the second nearest ``now`` (within ±5,000 s) that matches the code.

    Nearest, not latest: a phone whose clock runs ahead (by less than 5,000 s) then gets its MAC right and
    ``code_not_yet_valid`` from the time check, not a failed MAC that would count against its device as a guess.
    """
    if parsed.form is CodeForm.QR:
        return parsed.time_field
    now_s = epoch_seconds(now)
    delta = (parsed.time_field - now_s) % _SHORT_TIME_MOD
    if delta >= _SHORT_TIME_MOD // 2:
        delta -= _SHORT_TIME_MOD
    return now_s + delta


def verify_code(
    parsed: ParsedCode,
    device_secret: bytes,
    now: datetime,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    skew_seconds: int = DEFAULT_SKEW_SECONDS,
) -> VerifiedCode:
    """Check the MAC (constant time), then the time window. Single use is the caller's (stateful) job.

    A wrong MAC is ``code_forged`` whatever the code's time. Only a code whose MAC is right, so one this
    device's phone really minted, is told about its time: ``code_not_yet_valid`` or ``code_expired`` with the
    measured seconds (:func:`code_time_refusal`). Design note, why the MAC comes first: a refusal that says
    "the phone's clock is 3 min ahead" is only true of a genuine code, and only the MAC tells a genuine code
    from a made-up one. A guesser gains nothing by it: each guess, whatever second it names, is one MAC guess
    (1 in 10^7 for the numeric form) and the core counts every wrong one against its register, its store and
    the device like any other (``payment_core.codes``), so dating guesses ahead is no cheaper than guessing a
    code to spend now. (Checked the other way round, a code dated outside the window was answered from its
    digits alone and never counted, which could not tell the clerk whose clock was wrong.)
    """
    minted_at = restore_minted_at(parsed, now)
    short_mac, long_mac = _macs(device_secret, parsed.device_id, minted_at, parsed.counter)
    expected = short_mac if parsed.form is CodeForm.NUMERIC else long_mac
    if not hmac.compare_digest(expected.encode(), parsed.mac.encode()):
        raise ProtocolError(ErrorCode.CODE_FORGED)
    refusal = code_time_refusal(minted_at, now, ttl_seconds, skew_seconds)
    if refusal is not None:
        raise refusal
    return VerifiedCode(parsed.device_id, minted_at, parsed.counter, parsed.form)


def code_time_refusal(
    minted_at: int,
    now: datetime,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    skew_seconds: int = DEFAULT_SKEW_SECONDS,
) -> ProtocolError | None:
    """None when a code minted at ``minted_at`` (epoch seconds, by the phone's clock) is inside its window at
    the core's ``now``; else the refusal, naming the phone's clock and the seconds measured (:class:`ClockSkew`).

    Dated more than ``skew_seconds`` ahead: ``code_not_yet_valid``, the phone's clock is that far ahead. Older
    than ``ttl_seconds + skew_seconds``: ``code_expired``, and the answer says both things that can be true:
    an old code, or a phone clock that far behind (a new code failing the same way tells them apart).
    """
    offset = minted_at - epoch_seconds(now)
    if offset > skew_seconds:
        how_far = ahead_or_behind(offset, "the core's")
        message = (
            f"The phone's clock is {how_far} (a code may be dated up to {skew_seconds} s ahead): "
            "set the phone's time automatically, then show a new code."
        )
        skew = ClockSkew(SkewedClock.PHONE, offset, now, skew_seconds)
        return ProtocolError(ErrorCode.CODE_NOT_YET_VALID, message, details=skew.details())
    oldest = ttl_seconds + skew_seconds
    if -offset > oldest:
        age = describe_seconds(offset)
        message = (
            f"This code was made {age} ago by the core's clock and a code is taken for {oldest} s: it is an old "
            f"code, or the phone's clock is about {age} behind the core's. Show a new code; if it fails the same "
            "way, set the phone's time automatically."
        )
        skew = ClockSkew(SkewedClock.PHONE, offset, now, oldest)
        return ProtocolError(ErrorCode.CODE_EXPIRED, message, details=skew.details())
    return None


def expires_at(code: PaymentCode, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> datetime:
    return from_epoch(code.minted_at + ttl_seconds)
