"""Which new passwords are accepted (NIST SP 800-63B 5.1.1.2), and how passwords are hashed (argon2id).

Every password is NFKC-normalised first (800-63B asks for NFKC or NFKD), so a password typed with
full-width digits on a Japanese keyboard is the same password as its ASCII twin: for the length
rule, for the breached-password list and for the hash.

A new password is refused only when it is too short or too long (counted in code points), when it is
the account's e-mail address, its local part or its phone number, or when it appears in a list of
breached passwords. There are no composition rules: 800-63B says they must not be imposed.

The breached list is looked up the way Have I Been Pwned's range API works (k-anonymity): the SHA-1
of the password is split into a 5-hex-digit prefix and a 35-hex-digit suffix, a source answers
with every suffix it knows under a prefix, and the suffix is compared locally. A source is anything
with ``suffixes(prefix)`` (:class:`BreachedRanges`):

* :class:`RangeFile`: our ``PREFIX:SUFFIX`` file, held in memory. The built-in one
  (``fixtures/passwords``) is zxcvbn's 30,000 most common passwords; see its README.
* :class:`RangeDirectory`: a local copy of the whole HIBP corpus made by ``haveibeenpwned-downloader
  -s false`` (one ``ABCDE.txt`` file per prefix), read one prefix at a time.
* :class:`RangeApi`: an HTTP range API such as https://api.pwnedpasswords.com; only the 5-character
  prefix ever leaves the process, and padded answers are asked for so their size tells nothing.

A source that cannot answer (the API is down or slow, a prefix file is missing) raises
``SERVICE_UNAVAILABLE``: sign-up fails closed rather than accepting a password nobody checked.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import re
import secrets
import unicodedata
from functools import cache
from pathlib import Path
from typing import Protocol

import httpx
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

from payment_core.config import PasswordPolicy
from protocol import ErrorCode, ProtocolError

BUILTIN_RANGES = Path(__file__).resolve().parents[1] / "fixtures" / "passwords" / "common-sha1-ranges.txt.gz"
PREFIX_LENGTH = 5
SUFFIX_LENGTH = 35

_PREFIX = re.compile(r"[0-9A-F]{5}")
_RANGE_FILE_LINE = re.compile(r"([0-9A-F]{5}):([0-9A-F]{35})")
_COUNTED_LINE = re.compile(r"([0-9A-F]{35}):([0-9]+)")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")
_GZIP_MAGIC = b"\x1f\x8b"
_UNAVAILABLE_MESSAGE = "We cannot check new passwords right now; please try again in a few minutes."


class BreachedRanges(Protocol):
    def suffixes(self, prefix: str) -> frozenset[str]:
        """The 35-character uppercase SHA-1 suffixes known under ``prefix`` (5 uppercase hex digits)."""
        ...


def _require_prefix(prefix: str) -> str:
    """``prefix`` itself; anything else is refused before it reaches a path or a URL."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"a range prefix is 5 uppercase hex digits, not {prefix!r}")
    return prefix


def _unavailable(detail: str) -> ProtocolError:
    """The error for a breached-password source that cannot answer (the detail goes to the traceback)."""
    error = ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, _UNAVAILABLE_MESSAGE, param="password")
    error.add_note(detail)
    return error


def _parse_counted_lines(text: str, origin: str) -> frozenset[str]:
    """Suffixes from HIBP's ``SUFFIX:COUNT`` lines; count 0 marks padding and is skipped."""
    found: set[str] = set()
    for line in text.splitlines():
        line = line.strip().upper()
        if not line:
            continue
        match = _COUNTED_LINE.fullmatch(line)
        if match is None:
            raise _unavailable(f"{origin}: not a SUFFIX:COUNT line: {line[:60]!r}")
        if int(match[2]) > 0:
            found.add(match[1])
    return frozenset(found)


class RangeFile:
    """Our format: ``PREFIX:SUFFIX`` lines, gzip-compressed or plain, loaded once into memory."""

    def __init__(self, path: Path) -> None:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if raw.startswith(_GZIP_MAGIC) else raw).decode("ascii")
        grouped: dict[str, set[str]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip().upper()
            if not line:
                continue
            match = _RANGE_FILE_LINE.fullmatch(line)
            if match is None:
                raise ValueError(f"{path}:{number}: expected PREFIX:SUFFIX (5 and 35 hex digits), got {line[:60]!r}")
            grouped.setdefault(match[1], set()).add(match[2])
        self._ranges = {prefix: frozenset(suffixes) for prefix, suffixes in grouped.items()}

    def suffixes(self, prefix: str) -> frozenset[str]:
        return self._ranges.get(_require_prefix(prefix), frozenset())


class RangeDirectory:
    """HIBP's downloader layout: ``ABCDE.txt`` per prefix with ``SUFFIX:COUNT`` lines, read on demand.

    The full download has a file for each of the 16^5 prefixes, so a missing one means a broken copy:
    it raises ``SERVICE_UNAVAILABLE`` instead of passing every password under that prefix.
    """

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise ValueError(f"{path} is not a directory of HIBP range files")
        self._path = path

    def suffixes(self, prefix: str) -> frozenset[str]:
        file = self._path / f"{_require_prefix(prefix)}.txt"
        try:
            text = file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise _unavailable(f"cannot read {file}: {error}") from error
        return _parse_counted_lines(text, str(file))


class RangeApi:
    """An HTTP range API: ``GET {base_url}/range/{prefix}`` answers ``SUFFIX:COUNT`` lines.

    Only the prefix is sent. ``Add-Padding`` asks HIBP to pad every answer with count-0 lines, so the
    size of the answer does not narrow down the prefix to an observer of the encrypted traffic.
    """

    def __init__(self, base_url: str, timeout: float = 3.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"a range API is an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def suffixes(self, prefix: str) -> frozenset[str]:
        url = f"{self.base_url}/range/{_require_prefix(prefix)}"
        headers = {"Add-Padding": "true", "User-Agent": "possim-password-check"}
        try:
            response = httpx.get(url, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as error:
            raise _unavailable(f"GET {url} failed: {error!r}") from error
        if response.status_code != httpx.codes.OK:
            raise _unavailable(f"GET {url} answered {response.status_code}")
        return _parse_counted_lines(response.text, url)


@cache
def _builtin_ranges() -> RangeFile:
    return RangeFile(BUILTIN_RANGES)


def load_ranges(source: str) -> BreachedRanges:
    """``"builtin"`` (loaded once per process), an http(s) range API, a range file or an HIBP directory."""
    if source == "builtin":
        return _builtin_ranges()
    if source.startswith(("http://", "https://")):
        return RangeApi(source)
    path = Path(source)
    if source and path.is_dir():
        return RangeDirectory(path)
    if source and path.is_file():
        return RangeFile(path)
    raise ValueError(
        f"breached-password source {source!r} is neither 'builtin', an http(s):// range API URL, "
        "an existing PREFIX:SUFFIX file nor a directory of HIBP range files"
    )


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def is_breached(ranges: BreachedRanges, password: str) -> bool:
    """Whether the SHA-1 of the NFKC-normalised password is in ``ranges`` (only its prefix is asked for)."""
    digest = hashlib.sha1(_normalise(password).encode("utf-8"), usedforsecurity=False).hexdigest().upper()
    return digest[PREFIX_LENGTH:] in ranges.suffixes(digest[:PREFIX_LENGTH])


def _national_phone(text: str) -> str | None:
    """The number's digits, a Japanese +81 one in its domestic 0… form; None if ``text`` is not a number."""
    digits = _PHONE_SEPARATORS.sub("", _normalise(text)).removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return None
    if digits.startswith("81"):
        return "0" + digits[2:].removeprefix("0")  # +81 (0)90… is written too
    return digits


def _refuse(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.VALIDATION_FAILED, message, param="password")


def check_new_password(
    policy: PasswordPolicy, ranges: BreachedRanges, password: str, email: str, phone: str | None
) -> None:
    """Refuse a new password that NIST SP 800-63B 5.1.1.2 says must not be set; no composition rules.

    Raises ``VALIDATION_FAILED`` (param ``password``) with a message the user can act on. When
    ``ranges`` cannot answer (a :class:`RangeApi` that is down) it raises ``SERVICE_UNAVAILABLE``:
    failing open would let any password through, unnoticed, for as long as the outage lasts, and an
    attacker who can block the lookup could choose when that happens. Sign-up can wait; a breached
    password on a wallet cannot be taken back.
    """
    normalised = _normalise(password)
    if len(normalised) < policy.min_length:
        raise _refuse(f"Use at least {policy.min_length} characters; a few words in a row make a good password.")
    if len(normalised) > policy.max_length:
        raise _refuse(f"Use at most {policy.max_length} characters.")
    candidate = normalised.strip().casefold()
    address = _normalise(email).strip().casefold()
    local_part = address.rpartition("@")[0]
    if candidate in {address, local_part} - {""}:
        raise _refuse("Do not use your e-mail address, or the part before the @, as your password.")
    if phone is not None and _national_phone(normalised) in {_national_phone(phone)} - {None}:
        raise _refuse("Do not use your phone number as your password.")
    if is_breached(ranges, normalised):
        raise _refuse(
            "This password appears in lists of passwords exposed in data breaches, "
            "so attackers try it first. Choose another one."
        )


SALTED_SHA256 = "salted-sha256"
_SHA256_PREFIX = "$possim-sha256$"


class PasswordHasher:
    """argon2id with the policy's parameters, over the NFKC-normalised password; or, for the 7pay replay
    only (``PasswordPolicy.scheme``), one salted SHA-256, which a core on argon2id never accepts."""

    def __init__(self, policy: PasswordPolicy) -> None:
        self._fast = policy.scheme == SALTED_SHA256
        if not self._fast and policy.scheme != "argon2id":
            raise ValueError(f"unknown password scheme {policy.scheme!r}: argon2id or {SALTED_SHA256}")
        self._salt_len = policy.salt_len
        self._argon2 = Argon2Hasher(
            time_cost=policy.time_cost,
            memory_cost=policy.memory_cost,
            parallelism=policy.parallelism,
            hash_len=policy.hash_len,
            salt_len=policy.salt_len,
            type=Type.ID,
        )

    @property
    def fast(self) -> bool:
        """The 7pay replay's one salted SHA-256: microseconds, no work for a bounded pool."""
        return self._fast

    def hash(self, password: str) -> str:
        """The PHC-encoded hash (``$argon2id$v=19$m=…,t=…,p=…$salt$tag``), with a fresh random salt."""
        if self._fast:
            salt = secrets.token_hex(self._salt_len)
            return f"{_SHA256_PREFIX}{salt}${_sha256(salt, password)}"
        return self._argon2.hash(_normalise(password))

    def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored``; False, never an exception, for a malformed ``stored``."""
        if stored.startswith(_SHA256_PREFIX):
            salt, _, digest = stored.removeprefix(_SHA256_PREFIX).partition("$")
            return self._fast and hmac.compare_digest(digest, _sha256(salt, password))
        try:
            return self._argon2.verify(stored, _normalise(password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the policy's (True if it is malformed)."""
        if self._fast or stored.startswith(_SHA256_PREFIX):
            return self._fast != stored.startswith(_SHA256_PREFIX)
        try:
            return self._argon2.check_needs_rehash(stored)
        except InvalidHashError:
            return True


def _sha256(salt: str, password: str) -> str:
    return hashlib.sha256(f"{salt}${_normalise(password)}".encode()).hexdigest()
